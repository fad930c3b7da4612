import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, Type, type OptionsOf } from '../registry/define';
import type * as tfjs from '@tensorflow/tfjs';
import { applyWithWeights, evaluationPhase } from './network';
import type { Rng } from '../runtime/rng';
import { batchNorm, normOptions, normSettings, type BatchNorm } from './batchnorm';
import type { Network, NetworkShape, Phase } from '../contracts';
import { relu, softplus } from '../runtime/native-ops';

export const ACTIVATIONS = ['relu', 'tanh', 'softplus', 'sigmoid', 'elu', 'leakyrelu', 'linear'] as const;
type Activation = (typeof ACTIVATIONS)[number];
// activations that tfjs can fuse into the matMul kernel (one pass, fewer intermediates)
const FUSABLE = new Set<Activation>(['relu', 'sigmoid', 'elu', 'leakyrelu', 'linear']);

const mlpOptions = {
  hidden: Type.Array(Type.Integer({ minimum: 1 }), { default: [400], description: 'Hidden layer widths' }),
  activation: Enum(ACTIVATIONS, { default: 'relu' }),
  ...normOptions,
  norm_input: Type.Optional(
    Type.Boolean({
      description:
        'Batch-normalise the input features too, before the first layer (bn_input: γ, no β), as Chainer M2 implementations do; absent: false',
    }),
  ),
  dropout: Type.Optional(
    Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      description:
        'Dropout rate on every hidden layer while training (inverted dropout: kept units scaled by 1/(1 − rate); masks drawn from the run seed); validation, test and export see the whole network. Absent: 0',
    }),
  ),
  dropout_input: Type.Optional(
    Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      description:
        'Dropout rate on the input features while training (after norm_input when both are set), as in the classic MNIST MLP recipe (0.2 input, 0.5 hidden). Absent: 0',
    }),
  ),
  init_std: Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      description:
        "Initialise every weight matrix from N(0, init_std²) instead of Glorot-uniform (Kingma's M1+M2 code: 1e-3); biases start at 0 either way. Absent: Glorot-uniform",
    }),
  ),
};
export type MlpOptions = OptionsOf<typeof mlpOptions>;

/** Glorot-uniform weights from the run's rng (not tf.random*, so every backend draws the same). */
export function glorotUniform(tf: typeof tfc, rng: Rng, fanIn: number, fanOut: number): tfc.Variable {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const v = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < v.length; i++) v[i] = (rng.uniform() * 2 - 1) * limit;
  return tf.variable(tf.tensor2d(v, [fanIn, fanOut]), true);
}

/** Weights from N(0, std²), drawn from the run's rng (every backend draws the same). */
export function normalWeights(tf: typeof tfc, rng: Rng, fanIn: number, fanOut: number, std: number): tfc.Variable {
  const v = rng.normals(fanIn * fanOut);
  for (let i = 0; i < v.length; i++) v[i] *= std;
  return tf.variable(tf.tensor2d(v, [fanIn, fanOut]), true);
}

/**
 * Dense layers dims[0] → hidden… → outDim. With `norm: batch` every hidden layer is
 * dense (no bias: β takes its place) → batch normalisation (`bn<i>`) → activation; with
 * `norm_input` the input is normalised first (`bn_input`: γ, no β). `phase` says whether batch
 * normalisation uses the batch's statistics (training) or its running averages.
 */
export function mlp(tf: typeof tfc, o: MlpOptions, shape: NetworkShape, rng: Rng, phase: Phase = evaluationPhase()): Network {
  const dims = [shape.inDim, ...o.hidden, shape.outDim];
  const params = new Map<string, tfc.Variable>();
  const buffers = new Map<string, tfc.Variable>();
  const settings = normSettings(o);
  // (no β: the first dense layer's bias or batch normalisation takes a shift out)
  const input = o.norm_input ? batchNorm(tf, 'bn_input', shape.inDim, { ...settings, center: false }, phase, params, buffers) : null;
  const layers: { w: tfc.Variable; b: tfc.Variable | null; bn: BatchNorm | null; act: Activation }[] = [];
  for (let i = 0; i < dims.length - 1; i++) {
    const hidden = i < dims.length - 2;
    const w =
      o.init_std !== undefined ? normalWeights(tf, rng, dims[i], dims[i + 1], o.init_std) : glorotUniform(tf, rng, dims[i], dims[i + 1]);
    params.set(`dense${i}/w`, w);
    const bn = hidden && o.norm === 'batch' ? batchNorm(tf, `bn${i}`, dims[i + 1], settings, phase, params, buffers) : null;
    let b: tfc.Variable | null = null;
    if (!bn) {
      b = tf.variable(tf.zeros([dims[i + 1]]), true);
      params.set(`dense${i}/b`, b);
    }
    layers.push({ w, b, bn, act: hidden ? o.activation : 'linear' });
  }
  /** One layer on h: dense, batch normalisation where it has it, activation. */
  const dense = (h: tfc.Tensor2D, { w, b, bn, act }: (typeof layers)[number]): tfc.Tensor2D => {
    if (bn) return activate(tf, bn.apply(tf.matMul(h, w as tfc.Tensor2D)), act);
    // (FUSABLE holds only activations the fused kernel takes)
    if (FUSABLE.has(act))
      return tf.fused.matMul({ a: h, b: w as tfc.Tensor2D, bias: b!, activation: act as tfc.fused.Activation }) as tfc.Tensor2D;
    const z = tf.add(tf.matMul(h, w as tfc.Tensor2D), b!) as tfc.Tensor2D;
    return (act === 'tanh' ? tf.tanh(z) : softplus(tf, z)) as tfc.Tensor2D;
  };
  const last = layers[layers.length - 1];
  /** The hidden layers from `from` on, each with its dropout, on h. */
  const hiddenFrom = (h: tfc.Tensor2D, from: number): tfc.Tensor2D =>
    layers.slice(from, -1).reduce((t, layer) => dropout(tf, dense(t, layer), o.dropout, phase), h);
  /**
   * Every layer but the last: the last layer's input [B, hidden width] (x itself, normalised if
   * norm_input, without hidden layers); while training, dropout on the input and after every
   * hidden layer, the masks drawn in that order.
   */
  const hidden = (x: tfc.Tensor2D): tfc.Tensor2D => hiddenFrom(dropout(tf, input ? input.apply(x) : x, o.dropout_input, phase), 0);
  /** The first layer from its product x·w on: bias (or normalisation) and activation, as `dense` applies them. */
  const afterProduct = (xw: tfc.Tensor2D): tfc.Tensor2D => {
    const { b, bn, act } = layers[0];
    return bn ? activate(tf, bn.apply(xw), act) : activate(tf, tf.add(xw, b!) as tfc.Tensor2D, act);
  };
  // x·w by parts needs x itself to enter the first product: no input normalisation or dropout
  const plainInput = !input && !o.dropout_input;
  return {
    params,
    ...(buffers.size ? { buffers } : {}),
    apply(x) {
      return dense(hidden(x), last);
    },
    // the last layer is dense and linear (batch normalisation is for hidden layers only)
    affineHead: () => ({ hidden, w: last.w as tfc.Tensor2D, b: last.b! as tfc.Tensor1D }),
    ...(plainInput
      ? {
          affineInput: () => ({
            w: layers[0].w as tfc.Tensor2D,
            // with a hidden layer the first is not the last: its dropout, the other hidden layers, the last
            rest: (xw: tfc.Tensor2D) =>
              layers.length === 1 ? afterProduct(xw) : dense(hiddenFrom(dropout(tf, afterProduct(xw), o.dropout, phase), 1), last),
          }),
        }
      : {}),
    layers(tfl, x) {
      let h = input ? input.layers(tfl, x) : x;
      layers.forEach(({ w, b, bn, act }, i) => {
        // Layers' own activations where they match; leaky ReLU with elbo's slope 0.2 as a layer
        const layerAct = act === 'leakyrelu' ? 'linear' : act;
        if (bn) {
          h = applyWithWeights(tfl, tfl.layers.dense({ units: w.shape[1]!, useBias: false, name: `dense${i}` }), h, [w]);
          h = bn.layers(tfl, h);
          if (act !== 'linear')
            h = (
              act === 'leakyrelu'
                ? leakyReluLayer(tfl, `dense${i}_act`)
                : tfl.layers.activation({ activation: layerAct, name: `dense${i}_act` })
            ).apply(h) as tfjs.SymbolicTensor;
          return;
        }
        const dense = tfl.layers.dense({ units: w.shape[1]!, activation: layerAct, name: `dense${i}` });
        h = applyWithWeights(tfl, dense, h, [w, b!]);
        if (act === 'leakyrelu') h = leakyReluLayer(tfl, `dense${i}_act`).apply(h) as tfjs.SymbolicTensor;
      });
      return h;
    },
  };
}

/**
 * Inverted dropout while `phase.training`: each unit kept with probability 1 − rate and
 * scaled by 1/(1 − rate), the mask from `phase.rng`'s uniforms (an input of the compiled
 * step); outside training, or at rate 0, `h` itself.
 */
export function dropout(tf: typeof tfc, h: tfc.Tensor2D, rate: number | undefined, phase: Phase): tfc.Tensor2D {
  if (!rate || !phase.training) return h;
  if (!phase.rng) throw new Error('dropout while training needs the step to set phase.rng');
  const keep = 1 - rate;
  const [rows, cols] = h.shape;
  const u = tf.tensor2d(phase.rng.uniforms(rows * cols), [rows, cols]);
  return tf.mul(h, tf.mul(tf.cast(tf.less(u, keep), 'float32'), 1 / keep)) as tfc.Tensor2D;
}

/**
 * An activation by name, as the unfused layers apply it (leaky ReLU with elbo's slope; ReLU
 * and softplus as runtime/native-ops.ts runs them on the native backend: ReLU differentiated
 * by TensorFlow's ReluGrad, one kernel, where tfjs's step(x) is four).
 */
export function activate<T extends tfc.Tensor>(tf: typeof tfc, z: T, act: Activation): T {
  switch (act) {
    case 'relu':
      return relu(tf, z);
    case 'tanh':
      return tf.tanh(z);
    case 'softplus':
      return softplus(tf, z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'elu':
      return tf.elu(z);
    case 'leakyrelu':
      return tf.leakyRelu(z, LEAKY_SLOPE);
    case 'linear':
      return z;
  }
}

/** tfjs's leaky ReLU slope in elbo's networks (tf.leakyRelu(x, 0.2), fused matMul's default). */
export const LEAKY_SLOPE = 0.2;

/** elbo's leaky ReLU as a Layers layer. */
export function leakyReluLayer(tfl: typeof tfjs, name: string): tfjs.layers.Layer {
  return tfl.layers.leakyReLU({ alpha: LEAKY_SLOPE, name });
}

export const mlpNetworkPlugin = definePlugin({
  kind: 'network',
  name: 'mlp',
  description: 'Fully connected layers (Glorot init, fused matMul+bias+activation; optional batch normalisation); trains on every backend',
  options: mlpOptions,
  create: (o, ctx) => mlp(ctx.tf, o, ctx.shape, ctx.rng, ctx.phase),
});
