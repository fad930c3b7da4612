import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, Type, type OptionsOf } from '../registry/types';
import type * as tfjs from '@tensorflow/tfjs';
import { applyWithWeights, type Network, type NetworkShape } from './network';
import type { Rng } from '../runtime/rng';

export const ACTIVATIONS = ['relu', 'tanh', 'softplus', 'sigmoid', 'elu', 'leakyrelu', 'linear'] as const;
type Activation = (typeof ACTIVATIONS)[number];
// activations that tfjs can fuse into the matMul kernel (one pass, fewer intermediates)
const FUSABLE = new Set<Activation>(['relu', 'sigmoid', 'elu', 'leakyrelu', 'linear']);

const mlpOptions = {
  hidden: Type.Array(Type.Integer({ minimum: 1 }), { default: [400], description: 'Hidden layer widths' }),
  activation: Enum(ACTIVATIONS, { default: 'relu' }),
};
export type MlpOptions = OptionsOf<typeof mlpOptions>;

/** Glorot-uniform weights from the run's rng (not tf.random*, so every backend draws the same). */
export function glorotUniform(tf: typeof tfc, rng: Rng, fanIn: number, fanOut: number): tfc.Variable {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const v = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < v.length; i++) v[i] = (rng.uniform() * 2 - 1) * limit;
  return tf.variable(tf.tensor2d(v, [fanIn, fanOut]), true);
}

export function mlp(tf: typeof tfc, o: MlpOptions, shape: NetworkShape, rng: Rng): Network {
  const dims = [shape.inDim, ...o.hidden, shape.outDim];
  const params = new Map<string, tfc.Variable>();
  const layers: { w: tfc.Variable; b: tfc.Variable; act: Activation }[] = [];
  for (let i = 0; i < dims.length - 1; i++) {
    const w = glorotUniform(tf, rng, dims[i], dims[i + 1]);
    const b = tf.variable(tf.zeros([dims[i + 1]]), true);
    params.set(`dense${i}/w`, w);
    params.set(`dense${i}/b`, b);
    layers.push({ w, b, act: i === dims.length - 2 ? 'linear' : o.activation });
  }
  return {
    params,
    apply(x) {
      let h: tfc.Tensor2D = x;
      for (const { w, b, act } of layers) {
        if (FUSABLE.has(act)) {
          h = tf.fused.matMul({ a: h, b: w as tfc.Tensor2D, bias: b, activation: act as any }) as tfc.Tensor2D;
        } else {
          const z = tf.add(tf.matMul(h, w as tfc.Tensor2D), b) as tfc.Tensor2D;
          h = (act === 'tanh' ? tf.tanh(z) : tf.softplus(z)) as tfc.Tensor2D;
        }
      }
      return h;
    },
    layers(tfl, input) {
      let h = input;
      layers.forEach(({ w, b, act }, i) => {
        // Layers' own activations where they match; leaky ReLU with elbo's slope 0.2 as a layer
        const dense = tfl.layers.dense({ units: w.shape[1]!, activation: act === 'leakyrelu' ? 'linear' : act, name: `dense${i}` });
        h = applyWithWeights(tfl, dense, h, [w, b]);
        if (act === 'leakyrelu') h = leakyReluLayer(tfl, `dense${i}_act`).apply(h) as tfjs.SymbolicTensor;
      });
      return h;
    },
  };
}

/** tfjs's leaky ReLU slope in elbo's networks (tf.leakyRelu(x, 0.2), fused matMul's default). */
export const LEAKY_SLOPE = 0.2;

/** elbo's leaky ReLU as a Layers layer. */
export function leakyReluLayer(tfl: typeof tfjs, name: string): tfjs.layers.Layer {
  return tfl.layers.leakyReLU({ alpha: LEAKY_SLOPE, name });
}

export const mlpNetwork = definePlugin({
  kind: 'network',
  name: 'mlp',
  description: 'Fully connected layers (Glorot init, fused matMul+bias+activation); trains on every backend',
  options: mlpOptions,
  create: (o, ctx) => mlp(ctx.tf, o, ctx.shape, ctx.rng),
});
