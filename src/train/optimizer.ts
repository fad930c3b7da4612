import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, numberOrSchedule, Type, type OptionsOf } from '../registry/define';
import { scheduleProgress, weightSchedule } from '../schedules/schedule';
import type { PluginContext, PluginOptions, TrainProgress, Optimizer } from '../contracts';

/**
 * A learning rate as an option: a positive number, or a schedule plugin evaluated every
 * step (`{kind: cosine, from: 1e-3, to: 1e-5, end_epoch: 500}`).
 */
function learningRate(defaultValue: number) {
  return Type.Unsafe<number | PluginOptions>(
    numberOrSchedule(
      { exclusiveMinimum: 0 },
      {
        description: 'Learning rate: a number, or a schedule plugin ({kind: cosine | piecewise | linear, ...}) evaluated every step',
        default: defaultValue,
      },
    ),
  );
}

/** The learning rate's value at a step: the constant, or `at.lr` when it is scheduled. */
function lrSchedule(lr: number | PluginOptions, ctx?: PluginContext) {
  if (typeof lr === 'number') return { scheduled: () => ({}), at: () => lr };
  if (!ctx) throw new Error('a learning-rate schedule needs the plugin context (its registry)');
  const s = weightSchedule(lr, ctx.registry, ctx);
  return {
    scheduled: (p: TrainProgress) => ({ lr: s(scheduleProgress(p)) }),
    at: (at: Record<string, number | tfc.Scalar>) => {
      if (at.lr === undefined) throw new Error('the learning-rate schedule was not evaluated for this step');
      return at.lr;
    },
  };
}

const adamOptions = {
  lr: learningRate(0.001),
  beta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.9 }),
  beta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.999 }),
  epsilon: Type.Number({ exclusiveMinimum: 0, default: 1e-8 }),
};
export type AdamOptions = OptionsOf<typeof adamOptions>;

/**
 * Adam (Kingma & Ba 2015) with bias correction. The moments of all parameters live in
 * one flat vector each, so an update is a dozen kernels for the whole model instead of a
 * dozen per parameter (kernel dispatch, not arithmetic, dominates small models' steps).
 * A compiled step on the native backend instead runs TensorFlow's fused ResourceApplyAdam
 * per parameter (`fused`), on per-parameter slices of the same moments.
 */
export function adam(tf: typeof tfc, o: AdamOptions, params: Map<string, tfc.Variable>, ctx?: PluginContext): Optimizer {
  const lr = lrSchedule(o.lr, ctx);
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
    scheduled: lr.scheduled,
    fused: {
      kind: 'adam',
      beta1: o.beta1,
      beta2: o.beta2,
      epsilon: o.epsilon,
      lr: typeof o.lr === 'number' ? o.lr : 'lr',
      t,
      m,
      v,
      slots: slots.map(({ name, size }) => ({ name, size })),
    },
    apply(grads, at) {
      tf.tidy(() => {
        t.assign(tf.add(t, 1));
        // lr_t = lr · √(1 − β2^t) / (1 − β1^t)
        const lrT = tf.div(tf.mul(lr.at(at), tf.sqrt(tf.sub(1, tf.pow(o.beta2, t)))), tf.sub(1, tf.pow(o.beta1, t)));
        // tfjs gives every listed variable a gradient; a missing one would count as 0
        const g = tf.concat(slots.map((s) => (grads[s.name] ? tf.reshape(grads[s.name], [-1]) : tf.zeros([s.size]))));
        m.assign(tf.add(tf.mul(o.beta1, m), tf.mul(1 - o.beta1, g)));
        v.assign(tf.add(tf.mul(o.beta2, v), tf.mul(1 - o.beta2, tf.square(g))));
        const update = tf.div(tf.mul(lrT, m), tf.add(tf.sqrt(v), o.epsilon));
        tf.split(
          update,
          slots.map((s) => s.size),
        ).forEach((u, i) => {
          const { p } = slots[i];
          p.assign(tf.sub(p, tf.reshape(u, p.shape)));
        });
      });
    },
  };
}

export const adamOptimizerPlugin = definePlugin({
  kind: 'optimizer',
  name: 'adam',
  description: 'Adam with bias correction; state is checkpointed for exact resume',
  options: adamOptions,
  create: (o, ctx): Optimizer => adam(ctx.tf, o, ctx.params, ctx),
});

export const sgdOptimizerPlugin = definePlugin({
  kind: 'optimizer',
  name: 'sgd',
  description: 'Stochastic gradient descent with optional (heavy-ball) momentum',
  options: {
    lr: learningRate(0.01),
    momentum: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0 }),
  },
  create(o, ctx): Optimizer {
    const tf = ctx.tf;
    const params = ctx.params;
    const lr = lrSchedule(o.lr, ctx);
    const state = new Map<string, tfc.Variable>();
    const slots = [...params].map(([name, p]) => {
      const vel = tf.variable(tf.zerosLike(p), false);
      state.set(`velocity/${name}`, vel);
      return { name, p, vel };
    });
    return {
      state,
      scheduled: lr.scheduled,
      apply(grads, at) {
        const rate = lr.at(at);
        tf.tidy(() => {
          for (const { name, p, vel } of slots) {
            const g = grads[name];
            if (!g) continue;
            vel.assign(tf.add(tf.mul(o.momentum, vel), g));
            p.assign(tf.sub(p, tf.mul(rate, vel)));
          }
        });
      },
    };
  },
});
