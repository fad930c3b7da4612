import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, Type, type OptionsOf } from '../registry/define';
import type * as tfjs from '@tensorflow/tfjs';
import { applyWithWeights, evaluationPhase } from './network';
import { batchNorm, normOptions, normSettings, type BatchNorm } from './batchnorm';
import type { Rng } from '../runtime/rng';
import { dropout, glorotUniform, leakyReluLayer, LEAKY_SLOPE } from './mlp';
import { UserError } from '../errors';
import { relu, conv2dTransposeBias } from '../runtime/native-ops';
import type { Network, NetworkShape, Phase } from '../contracts';

const convOptions = {
  channels: Type.Array(Type.Integer({ minimum: 1 }), {
    minItems: 1,
    default: [32, 64],
    description: 'Channels per resolution (each halves the image)',
  }),
  kernel: Type.Integer({ minimum: 1, default: 4 }),
  residual: Type.Boolean({ default: false, description: 'A 3×3 residual block at every resolution (ResNet-like)' }),
  activation: Enum(['relu', 'elu', 'leakyrelu'], { default: 'relu' }),
  ...normOptions,
  dropout: Type.Optional(
    Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      description:
        "Dropout rate while training on the features between the dense layer and the convolutions (an encoder's flattened last feature map, a decoder's first map), inverted, masks from the run seed; validation, test and export see the whole network. Absent: 0",
    }),
  ),
  dropout_input: Type.Optional(
    Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      description: "Dropout rate on the network's input while training (an encoder's pixels, a decoder's latent code). Absent: 0",
    }),
  ),
};
export type ConvOptions = OptionsOf<typeof convOptions>;

/** Glorot-uniform conv kernel [k, k, in, out] from the run's rng. */
function convKernel(tf: typeof tfc, rng: Rng, k: number, cin: number, cout: number): tfc.Variable {
  const limit = Math.sqrt(6 / (k * k * (cin + cout)));
  const v = new Float32Array(k * k * cin * cout);
  for (let i = 0; i < v.length; i++) v[i] = (rng.uniform() * 2 - 1) * limit;
  return tf.variable(tf.tensor4d(v, [k, k, cin, cout]), true);
}

/**
 * Convolutional encoder or decoder for images, chosen by the shapes it is asked for:
 * image in → stride-2 convolutions (channels[i] each), flatten, dense to the output;
 * image out → dense, reshape, stride-2 transposed convolutions back to the image.
 * `residual` adds a 3×3 residual block after every resolution change (ResNet-like, as
 * the G-VAE code). Training needs Conv2DBackpropFilter, which the wasm backend lacks.
 * With `norm: batch` every convolution that an activation or a residual sum follows
 * (all but the decoder's last) is batch-normalised per channel (statistics over batch,
 * height and width), without its bias: `conv<i>/bn`, `deconv<i>/bn`, `…/res/bn1`,
 * `…/res/bn2`; the dense layers are not. `dropout_input` and `dropout` mask, while
 * training, the input and the features the dense layer meets (as mlp's dropout: inverted,
 * masks from phase.rng in that order). An input row with other columns beside its image
 * (shape.inImageAt) convolves the image and joins the others, undropped, to the flattened
 * features: [features, columns before the image, columns after it].
 */
export function conv(tf: typeof tfc, o: ConvOptions, shape: NetworkShape, rng: Rng, phase: Phase = evaluationPhase()): Network {
  const L = o.channels.length;
  const pixels = shape.inShape ? shape.inShape.reduce((a, b) => a * b, 1) : 0;
  const fits = pixels === shape.inDim || (shape.inImageAt !== undefined && shape.inImageAt + pixels <= shape.inDim);
  const image = shape.inShape && fits ? 'in' : shape.outShape ? 'out' : null;
  if (!image) throw new UserError('the conv network needs image data (an input or output shape [h, w, c])', 'network: conv');
  const [H, Wd, Cimg] = (image === 'in' ? shape.inShape! : shape.outShape!) as number[];
  const f = 2 ** L;
  if (H % f || Wd % f) {
    throw new UserError(
      `images of ${H}×${Wd} cannot be halved ${L} times; use ${Math.max(1, Math.floor(Math.log2(gcd(H, Wd))))} or fewer channels entries`,
      'network: conv channels',
    );
  }
  const parts = convParts(tf, o, shape, rng, phase, { H, Wd, Cimg, h0: H / f, w0: Wd / f });
  return image === 'in' ? convEncoder(parts) : convDecoder(parts);
}

/**
 * What conv's encoder and decoder share: the image's shape ([H, Wd, Cimg], and [h0, w0] at
 * the lowest resolution), the parameters (and batch-norm buffers) made so far, and the
 * pieces their steps are made of, each eagerly and as Layers (Network.layers), named like
 * its parameters.
 */
interface ConvParts {
  tf: typeof tfc;
  o: ConvOptions;
  shape: NetworkShape;
  rng: Rng;
  /** Training or evaluation (dropout masks, batch statistics), as the model sets it. */
  phase: Phase;
  params: Map<string, tfc.Variable>;
  buffers: Map<string, tfc.Variable>;
  image: { H: number; Wd: number; Cimg: number; h0: number; w0: number };
  /** The batch normalisation of a convolution's c output channels, or null (norm: none). */
  norm(name: string, c: number): BatchNorm | null;
  act(t: tfc.Tensor4D): tfc.Tensor4D;
  actLayer(tfl: typeof tfjs, x: tfjs.SymbolicTensor, name: string): tfjs.SymbolicTensor;
  convLayer(
    tfl: typeof tfjs,
    x: tfjs.SymbolicTensor,
    name: string,
    k: tfc.Variable,
    strides: number,
    bias?: tfc.Variable,
  ): tfjs.SymbolicTensor;
  /** A 3×3 residual block of c channels (its kernels drawn now). */
  residualBlock(name: string, c: number): Step;
}

function convParts(tf: typeof tfc, o: ConvOptions, shape: NetworkShape, rng: Rng, phase: Phase, image: ConvParts['image']): ConvParts {
  const params = new Map<string, tfc.Variable>();
  const buffers = new Map<string, tfc.Variable>();
  const settings = normSettings(o);
  const bnApply = (bn: BatchNorm | null, t: tfc.Tensor4D) => (bn ? bn.apply(t) : t);
  const bnLayers = (tfl: typeof tfjs, bn: BatchNorm | null, x: tfjs.SymbolicTensor) => (bn ? bn.layers(tfl, x) : x);
  const act = (t: tfc.Tensor4D) =>
    (o.activation === 'relu' ? relu(tf, t) : o.activation === 'elu' ? tf.elu(t) : tf.leakyRelu(t, LEAKY_SLOPE)) as tfc.Tensor4D;
  const actLayer = (tfl: typeof tfjs, x: tfjs.SymbolicTensor, name: string) =>
    (o.activation === 'leakyrelu' ? leakyReluLayer(tfl, name) : tfl.layers.activation({ activation: o.activation, name })).apply(
      x,
    ) as tfjs.SymbolicTensor;
  const convLayer = (tfl: typeof tfjs, x: tfjs.SymbolicTensor, name: string, k: tfc.Variable, strides: number, bias?: tfc.Variable) =>
    applyWithWeights(
      tfl,
      tfl.layers.conv2d({ filters: k.shape[3]!, kernelSize: k.shape[0]!, strides, padding: 'same', useBias: !!bias, name }),
      x,
      bias ? [k, bias] : [k],
    );
  const residualBlock = (name: string, c: number): Step => {
    const k1 = convKernel(tf, rng, 3, c, c);
    const k2 = convKernel(tf, rng, 3, c, c);
    params.set(`${name}/conv1`, k1);
    params.set(`${name}/conv2`, k2);
    const bn1 = o.norm === 'batch' ? batchNorm(tf, `${name}/bn1`, c, settings, phase, params, buffers) : null;
    const bn2 = o.norm === 'batch' ? batchNorm(tf, `${name}/bn2`, c, settings, phase, params, buffers) : null;
    const id = name.replace(/\//g, '_');
    return {
      apply: (x) =>
        tf.add(
          x,
          bnApply(bn2, tf.conv2d(act(bnApply(bn1, tf.conv2d(x, k1 as tfc.Tensor4D, 1, 'same'))), k2 as tfc.Tensor4D, 1, 'same')),
        ) as tfc.Tensor4D,
      layers: (tfl, x) => {
        const inner = bnLayers(
          tfl,
          bn2,
          convLayer(tfl, actLayer(tfl, bnLayers(tfl, bn1, convLayer(tfl, x, `${id}_conv1`, k1, 1)), `${id}_act`), `${id}_conv2`, k2, 1),
        );
        return tfl.layers.add({ name: `${id}_add` }).apply([x, inner]) as tfjs.SymbolicTensor;
      },
    };
  };
  const norm = (name: string, c: number): BatchNorm | null =>
    o.norm === 'batch' ? batchNorm(tf, `${name}/bn`, c, settings, phase, params, buffers) : null;
  return { tf, o, shape, rng, phase, params, buffers, image, norm, act, actLayer, convLayer, residualBlock };
}

/** Image in: stride-2 convolutions (channels[i] each, each with its residual block), flatten, dense to the output. */
function convEncoder(p: ConvParts): Network {
  const { tf, o, shape, rng, params, buffers, act, actLayer, convLayer } = p;
  const { H, Wd, Cimg, h0, w0 } = p.image;
  const layers: Step[] = [];
  let cin = Cimg;
  o.channels.forEach((c, i) => {
    const k = convKernel(tf, rng, o.kernel, cin, c);
    params.set(`conv${i}/w`, k);
    const bn = p.norm(`conv${i}`, c);
    if (bn) {
      // no bias: β takes its place
      layers.push({
        apply: (x) => act(bn.apply(tf.conv2d(x, k as tfc.Tensor4D, 2, 'same'))),
        layers: (tfl, x) => actLayer(tfl, bn.layers(tfl, convLayer(tfl, x, `conv${i}`, k, 2)), `conv${i}_act`),
      });
    } else {
      const b = tf.variable(tf.zeros([c]), true);
      params.set(`conv${i}/b`, b);
      layers.push({
        apply: (x) => act(tf.add(tf.conv2d(x, k as tfc.Tensor4D, 2, 'same'), b) as tfc.Tensor4D),
        layers: (tfl, x) => actLayer(tfl, convLayer(tfl, x, `conv${i}`, k, 2, b), `conv${i}_act`),
      });
    }
    if (o.residual) layers.push(p.residualBlock(`conv${i}/res`, c));
    cin = c;
  });
  const flat = h0 * w0 * cin;
  // the input row's other columns (side inputs, before and after the image) join the features
  const pixels = H * Wd * Cimg;
  const at = shape.inImageAt ?? 0;
  const side = shape.inDim - pixels;
  const w = glorotUniform(tf, rng, flat + side, shape.outDim);
  const b = tf.variable(tf.zeros([shape.outDim]), true);
  params.set('dense/w', w);
  params.set('dense/b', b);
  return {
    params,
    ...(buffers.size ? { buffers } : {}),
    apply(x) {
      const B = x.shape[0];
      const img = side ? (tf.slice(x, [0, at], [B, pixels]) as tfc.Tensor2D) : x;
      // while training: dropout on the pixels, then on the flattened features, masks in that order
      let t = tf.reshape(dropout(tf, img, o.dropout_input, p.phase), [B, H, Wd, Cimg]) as tfc.Tensor4D;
      for (const l of layers) t = l.apply(t);
      let features = dropout(tf, tf.reshape(t, [B, flat]) as tfc.Tensor2D, o.dropout, p.phase);
      if (side) {
        const before = at ? [tf.slice(x, [0, 0], [B, at])] : [];
        const after = at + pixels < shape.inDim ? [tf.slice(x, [0, at + pixels], [B, shape.inDim - at - pixels])] : [];
        features = tf.concat([features, ...before, ...after], 1) as tfc.Tensor2D;
      }
      return tf.add(tf.matMul(features, w as tfc.Tensor2D), b) as tfc.Tensor2D;
    },
    layers(tfl, x) {
      if (side) throw new UserError('a conv network with inputs beside its image has no Layers form to export', 'network: conv');
      let h = tfl.layers.reshape({ targetShape: [H, Wd, Cimg], name: 'image' }).apply(x) as tfjs.SymbolicTensor;
      for (const l of layers) h = l.layers(tfl, h);
      h = tfl.layers.flatten({ name: 'flatten' }).apply(h) as tfjs.SymbolicTensor;
      return applyWithWeights(tfl, tfl.layers.dense({ units: shape.outDim, name: 'dense' }), h, [w, b]);
    },
  };
}

/** Image out: dense → [h0, w0, channels[last]] → stride-2 transposed convolutions (each after its residual block) up to the image. */
function convDecoder(p: ConvParts): Network {
  const { tf, o, shape, rng, params, buffers, act, actLayer } = p;
  const { H, Wd, Cimg, h0, w0 } = p.image;
  const L = o.channels.length;
  const layers: Step[] = [];
  const rev = [...o.channels].reverse();
  const flat = h0 * w0 * rev[0];
  const w = glorotUniform(tf, rng, shape.inDim, flat);
  const b = tf.variable(tf.zeros([flat]), true);
  params.set('dense/w', w);
  params.set('dense/b', b);
  let hh = h0;
  let ww = w0;
  rev.forEach((c, i) => {
    const cout = i === L - 1 ? Cimg : rev[i + 1];
    if (o.residual) layers.push(p.residualBlock(`deconv${i}/res`, c));
    const k = convKernel(tf, rng, o.kernel, cout, c); // conv2dTranspose filters are [k, k, out, in]
    params.set(`deconv${i}/w`, k);
    const last = i === L - 1;
    // batch normalisation before the activation (not on the image itself), in place of the bias
    const bn = last ? null : p.norm(`deconv${i}`, cout);
    const bias = bn ? null : tf.variable(tf.zeros([cout]), true);
    if (bias) params.set(`deconv${i}/b`, bias);
    hh *= 2;
    ww *= 2;
    const oh = hh;
    const ow = ww;
    layers.push({
      apply: (x) => {
        const shape: [number, number, number, number] = [x.shape[0], oh, ow, cout];
        const y = bn
          ? bn.apply(tf.conv2dTranspose(x, k as tfc.Tensor4D, shape, 2, 'same'))
          : conv2dTransposeBias(tf, x, k as tfc.Tensor4D, bias as tfc.Tensor1D, shape, 2);
        return last ? y : act(y);
      },
      layers: (tfl, x) => {
        const deconv = tfl.layers.conv2dTranspose({
          filters: cout,
          kernelSize: o.kernel,
          strides: 2,
          padding: 'same',
          useBias: !bn,
          name: `deconv${i}`,
        });
        const y = bn ? bn.layers(tfl, applyWithWeights(tfl, deconv, x, [k])) : applyWithWeights(tfl, deconv, x, [k, bias!]);
        return last ? y : actLayer(tfl, y, `deconv${i}_act`);
      },
    });
  });
  return {
    params,
    ...(buffers.size ? { buffers } : {}),
    apply(z) {
      // while training: dropout on the code, then on the dense layer's activated output, masks in that order
      const first = act(
        tf.reshape(tf.add(tf.matMul(dropout(tf, z, o.dropout_input, p.phase), w as tfc.Tensor2D), b), [
          z.shape[0],
          h0,
          w0,
          rev[0],
        ]) as tfc.Tensor4D,
      );
      let t = o.dropout
        ? (tf.reshape(dropout(tf, tf.reshape(first, [z.shape[0], flat]) as tfc.Tensor2D, o.dropout, p.phase), first.shape) as tfc.Tensor4D)
        : first;
      for (const l of layers) t = l.apply(t);
      return tf.reshape(t, [z.shape[0], H * Wd * Cimg]) as tfc.Tensor2D;
    },
    layers(tfl, z) {
      let h = applyWithWeights(tfl, tfl.layers.dense({ units: flat, name: 'dense' }), z, [w, b]);
      h = actLayer(tfl, tfl.layers.reshape({ targetShape: [h0, w0, rev[0]], name: 'grid' }).apply(h) as tfjs.SymbolicTensor, 'dense_act');
      for (const l of layers) h = l.layers(tfl, h);
      return tfl.layers.flatten({ name: 'flatten' }).apply(h) as tfjs.SymbolicTensor;
    },
  };
}

/** One step of the network, eagerly (training) and as Layers (export). */
interface Step {
  apply(x: tfc.Tensor4D): tfc.Tensor4D;
  layers(tfl: typeof tfjs, x: tfjs.SymbolicTensor): tfjs.SymbolicTensor;
}

function gcd(a: number, b: number): number {
  return b ? gcd(b, a % b) : a;
}

export const convNetworkPlugin = definePlugin({
  kind: 'network',
  name: 'conv',
  description:
    'Convolutional encoder/decoder for images (stride-2 convs / transposed convs, optional residual blocks); not on wasm, which lacks Conv2DBackpropFilter',
  backends: ['tensorflow', 'cpu'],
  options: convOptions,
  create: (o, ctx) => conv(ctx.tf, o, ctx.shape, ctx.rng, ctx.phase),
});
