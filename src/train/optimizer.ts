import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Type, type OptionsOf } from '../registry/types';

/**
 * An optimizer owns its state as named variables, so a checkpoint can save and
 * restore it exactly (resume must reach the same numbers as an uninterrupted run).
 */
export interface Optimizer {
  /** One update; grads by parameter name. Runs inside the caller's tidy. */
  apply(grads: Record<string, tfc.Tensor>): void;
  state: Map<string, tfc.Variable>;
}

const adamOptions = {
  lr: Type.Number({ exclusiveMinimum: 0, default: 0.001, description: 'Learning rate' }),
  beta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.9 }),
  beta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.999 }),
  epsilon: Type.Number({ exclusiveMinimum: 0, default: 1e-8 }),
};
export type AdamOptions = OptionsOf<typeof adamOptions>;

/**
 * Adam (Kingma & Ba 2015) with bias correction. The moments of all parameters live in
 * one flat vector each, so an update is a dozen kernels for the whole model instead of a
 * dozen per parameter (kernel dispatch, not arithmetic, dominates small models' steps).
 */
export function adam(tf: typeof tfc, o: AdamOptions, params: Map<string, tfc.Variable>): Optimizer {
  const slots = [...params].map(([name, p]) => ({ name, p, size: p.size }));
  const total = slots.reduce((n, s) => n + s.size, 0);
  const t = tf.variable(tf.scalar(0), false);
  const m = tf.variable(tf.zeros([total]), false);
  const v = tf.variable(tf.zeros([total]), false);
  const state = new Map<string, tfc.Variable>([
    ['t', t],
    ['m', m],
    ['v', v],
  ]);
  return {
    state,
    apply(grads) {
      tf.tidy(() => {
        t.assign(tf.add(t, 1));
        // lr_t = lr · √(1 − β2^t) / (1 − β1^t)
        const lrT = tf.div(tf.mul(o.lr, tf.sqrt(tf.sub(1, tf.pow(o.beta2, t)))), tf.sub(1, tf.pow(o.beta1, t)));
        // tfjs gives every listed variable a gradient; a missing one would count as 0
        const g = tf.concat(slots.map((s) => (grads[s.name] ? tf.reshape(grads[s.name], [-1]) : tf.zeros([s.size]))));
        m.assign(tf.add(tf.mul(o.beta1, m), tf.mul(1 - o.beta1, g)));
        v.assign(tf.add(tf.mul(o.beta2, v), tf.mul(1 - o.beta2, tf.square(g))));
        const update = tf.div(tf.mul(lrT, m), tf.add(tf.sqrt(v), o.epsilon));
        tf.split(update, slots.map((s) => s.size)).forEach((u, i) => {
          const { p } = slots[i];
          p.assign(tf.sub(p, tf.reshape(u, p.shape)));
        });
      });
    },
  };
}

export const adamPlugin = definePlugin({
  kind: 'optimizer',
  name: 'adam',
  description: 'Adam with bias correction; state is checkpointed for exact resume',
  options: adamOptions,
  create: (o, ctx): Optimizer => adam(ctx.tf, o, ctx.params),
});

export const sgdPlugin = definePlugin({
  kind: 'optimizer',
  name: 'sgd',
  description: 'Stochastic gradient descent with optional (heavy-ball) momentum',
  options: {
    lr: Type.Number({ exclusiveMinimum: 0, default: 0.01 }),
    momentum: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0 }),
  },
  create(o, ctx): Optimizer {
    const tf = ctx.tf;
    const params = ctx.params;
    const state = new Map<string, tfc.Variable>();
    const slots = [...params].map(([name, p]) => {
      const vel = tf.variable(tf.zerosLike(p), false);
      state.set(`velocity/${name}`, vel);
      return { name, p, vel };
    });
    return {
      state,
      apply(grads) {
        tf.tidy(() => {
          for (const { name, p, vel } of slots) {
            const g = grads[name];
            if (!g) continue;
            vel.assign(tf.add(tf.mul(o.momentum, vel), g));
            p.assign(tf.sub(p, tf.mul(o.lr, vel)));
          }
        });
      },
    };
  },
});
