import type * as tfc from '@tensorflow/tfjs-core';

/**
 * TensorFlow ops that tfjs-node has no kernel for, registered (on first use) as kernels of
 * the tensorflow backend: the eager step runs them like any other kernel, and a traced
 * step (runtime/graph/trace.ts) records them under TensorFlow's own op names, so Grappler
 * sees the graph TensorFlow's own gradients would make.
 *
 * relu: tfjs differentiates max(x, 0) as dy·step(x), and tfjs-node runs step as four
 * kernels (IsNan, Greater, two Selects) on the activation's input, then a Cast and a Mul:
 * six passes over every activation per step, and the input stays alive, so Grappler's
 * remapper cannot fuse convolution, bias and ReLU into one kernel (_FusedConv2D). Here
 * the gradient is TensorFlow's ReluGrad(dy, y) on the output y (y > 0 exactly where
 * x > 0): one kernel, the same numbers.
 */
const RELU = 'ElboRelu';
const RELU_GRAD = 'ElboReluGrad';

/** An op attribute as tfjs-node's binding takes it. */
interface NativeAttr {
  name: string;
  type: number;
  value: number | number[] | string | boolean;
}

/** What the kernels use of tfjs-node's backend object. */
interface NativeKernelBackend {
  binding: Record<'TF_ATTR_TYPE' | 'TF_ATTR_INT' | 'TF_ATTR_FLOAT' | 'TF_ATTR_STRING' | 'TF_ATTR_BOOL' | 'TF_FLOAT' | 'TF_INT32', number>;
  executeSingleOutput(op: string, attrs: NativeAttr[], inputs: tfc.TensorInfo[]): tfc.Tensor;
  executeMultipleOutputs(op: string, attrs: NativeAttr[], inputs: tfc.TensorInfo[], numOutputs: number): tfc.Tensor[];
}

function isNative(b: unknown): b is NativeKernelBackend {
  return typeof (b as { executeSingleOutput?: unknown } | null)?.executeSingleOutput === 'function';
}

/** Whether elbo's native kernels apply: the tensorflow backend is current and is tfjs-node's (and x, when given, is float32). */
function onNative(tf: typeof tfc, x?: tfc.Tensor): boolean {
  return tf.getBackend() === 'tensorflow' && (!x || x.dtype === 'float32') && isNative(tf.backend());
}

function native(backend: unknown, op: string): NativeKernelBackend {
  if (!isNative(backend)) throw new Error(`${op} runs on the tensorflow backend only`);
  return backend;
}

function present(inputs: (tfc.TensorInfo | undefined)[], op: string): tfc.TensorInfo[] {
  const given = inputs.filter((t): t is tfc.TensorInfo => t !== undefined);
  if (given.length !== inputs.length) throw new Error(`${op}: an input is missing`);
  return given;
}

/** The attribute T = float32. */
const floatType = (b: NativeKernelBackend): NativeAttr => ({ name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT });

/** A float32 TensorFlow op on the native backend, as a tfjs kernel. */
function nativeFloatOp(op: string, inputs: (tfc.TensorInfo | undefined)[], backend: unknown): tfc.TensorInfo {
  const b = native(backend, op);
  return b.executeSingleOutput(op, [floatType(b)], present(inputs, op));
}

function registerRelu(tf: typeof tfc): void {
  if (tf.getKernel(RELU, 'tensorflow')) return;
  tf.registerKernel({
    kernelName: RELU,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => nativeFloatOp('Relu', [inputs.x], backend),
  });
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => nativeFloatOp('ReluGrad', [inputs.dy, inputs.y], backend),
  });
  tf.registerGradient({
    kernelName: RELU,
    outputsToSave: [true],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as tfc.Tensor, y: saved[0] }) as tfc.Tensor }),
  });
}

/**
 * max(x, 0). On the tensorflow backend (float32) TensorFlow's Relu, differentiated by
 * ReluGrad on its output (see above); elsewhere tfjs's own relu. Equal values and gradients
 * either way.
 */
export function relu<T extends tfc.Tensor>(tf: typeof tfc, x: T): T {
  if (!onNative(tf, x)) return tf.relu(x);
  registerRelu(tf);
  return tf.engine().runKernel(RELU, { x }) as T;
}

/**
 * softplus(x) = log(1 + eˣ) as max(x, 0) − log σ(|x|) (σ(|x|) in [½, 1]): TensorFlow's
 * Softplus kernel takes 1.6 ms on one thread for [910, 500] (M2's hidden layers) on the
 * 2-core EPYC VM, these five kernels 0.75 ms. Equal to float rounding in absolute terms
 * (below 2·10⁻⁶ for |x| up to 15; where eˣ < 6·10⁻⁸ it gives 0 for eˣ). The gradient is
 * tfjs's, dy·σ(x).
 */
const SOFTPLUS = 'ElboSoftplus';

function registerSoftplus(tf: typeof tfc): void {
  if (tf.getKernel(SOFTPLUS, 'tensorflow')) return;
  tf.registerKernel({
    kernelName: SOFTPLUS,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => {
      const b = native(backend, SOFTPLUS);
      const [x] = present([inputs.x], SOFTPLUS);
      const op = (name: string, ...args: tfc.TensorInfo[]) => b.executeSingleOutput(name, [floatType(b)], args);
      const abs = op('Abs', x);
      const sig = op('Sigmoid', abs);
      const log = op('Log', sig);
      const pos = op('Relu', x);
      const y = op('Sub', pos, log);
      [abs, sig, log, pos].forEach((t) => t.dispose());
      return y;
    },
  });
  tf.registerGradient({
    kernelName: SOFTPLUS,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy as tfc.Tensor, tf.sigmoid(saved[0])) }),
  });
}

/** log(1 + eˣ): on the tensorflow backend (float32) as above, elsewhere tfjs's softplus. */
export function softplus<T extends tfc.Tensor>(tf: typeof tfc, x: T): T {
  if (!onNative(tf, x)) return tf.softplus(x);
  registerSoftplus(tf);
  return tf.engine().runKernel(SOFTPLUS, { x }) as T;
}

/**
 * conv2dTranspose(x, filter, [B, H, W, C], stride, 'same') + bias run by TensorFlow in NCHW:
 * the input transposed to channels first, Conv2DBackpropInput and BiasAdd in NCHW, the
 * output transposed back. Measured on the 2-core EPYC VM (oneDNN, TensorFlow 2.18) for a
 * G-VAE decoder's last layer, [64, 16, 16, 32] → [64, 32, 32, 3], on one thread: 1.3 ms,
 * and 0.3 ms for the transposes, against 3.1 ms in NHWC, whose kernel is slow for few output
 * channels (with 32 it is the other way round); the bias over 3 channels costs 0.3 ms in
 * NHWC. The gradients are tfjs's for conv2dTranspose and the bias's add (the same kernels,
 * NHWC).
 */
export const DECONV_NCHW = 'ElboConv2DTransposeBiasNchw';

/** The forward pass of DECONV_NCHW on the native backend. */
function deconvNchw(tf: typeof tfc, b: NativeKernelBackend, inputs: tfc.TensorInfo[], outShape: number[], s: number): tfc.TensorInfo {
  const [x, filter, bias] = inputs;
  const [B, H, W, C] = outShape;
  const made: tfc.Tensor[] = [];
  const keep = <T extends tfc.Tensor>(t: T) => (made.push(t), t);
  const int32 = (v: number[]) => keep(tf.tensor1d(v, 'int32'));
  const { TF_ATTR_TYPE, TF_ATTR_INT, TF_ATTR_STRING, TF_ATTR_BOOL, TF_INT32 } = b.binding;
  const nchw = { name: 'data_format', type: TF_ATTR_STRING, value: 'NCHW' };
  const transpose = (t: tfc.TensorInfo, perm: number[]) =>
    b.executeSingleOutput('Transpose', [floatType(b), { name: 'Tperm', type: TF_ATTR_TYPE, value: TF_INT32 }], [t, int32(perm)]);
  const xc = keep(transpose(x, [0, 3, 1, 2]));
  const attrs = [
    floatType(b),
    { name: 'strides', type: TF_ATTR_INT, value: [1, 1, s, s] },
    { name: 'padding', type: TF_ATTR_STRING, value: 'SAME' },
    nchw,
    { name: 'use_cudnn_on_gpu', type: TF_ATTR_BOOL, value: true },
    { name: 'dilations', type: TF_ATTR_INT, value: [1, 1, 1, 1] },
  ];
  const yc = keep(b.executeSingleOutput('Conv2DBackpropInput', attrs, [int32([B, C, H, W]), filter, xc]));
  const biased = keep(b.executeSingleOutput('BiasAdd', [floatType(b), nchw], [yc, bias]));
  const y = transpose(biased, [0, 2, 3, 1]);
  made.forEach((t) => t.dispose());
  return y;
}

function registerDeconv(tf: typeof tfc): void {
  if (tf.getKernel(DECONV_NCHW, 'tensorflow')) return;
  tf.registerKernel({
    kernelName: DECONV_NCHW,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, attrs, backend }) =>
      deconvNchw(
        tf,
        native(backend, DECONV_NCHW),
        present([inputs.x, inputs.filter, inputs.bias], DECONV_NCHW),
        attrs?.outShape as number[],
        attrs?.stride as number,
      ),
  });
  tf.registerGradient({
    kernelName: DECONV_NCHW,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as tfc.Tensor4D[];
      const s = attrs.stride as number;
      const d = dy as tfc.Tensor4D;
      return {
        x: () => tf.conv2d(d, filter, s, 'same'),
        filter: () =>
          tf
            .engine()
            .runKernel(
              'Conv2DBackpropFilter',
              { x: d, dy: x },
              { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: filter.shape },
            ) as tfc.Tensor,
        bias: () => tf.sum(d, [0, 1, 2]),
      };
    },
  });
}

/**
 * tf.conv2dTranspose(x, filter, outShape, stride, 'same') + bias, in NCHW on the tensorflow
 * backend when the output has fewer than 8 channels (see above): the same values to float
 * rounding, the same gradients.
 */
export function conv2dTransposeBias(
  tf: typeof tfc,
  x: tfc.Tensor4D,
  filter: tfc.Tensor4D,
  bias: tfc.Tensor1D,
  outShape: [number, number, number, number],
  stride: number,
): tfc.Tensor4D {
  if (outShape[3] >= 8 || !onNative(tf)) return tf.add(tf.conv2dTranspose(x, filter, outShape, stride, 'same'), bias);
  registerDeconv(tf);
  return tf.engine().runKernel(DECONV_NCHW, { x, filter, bias }, { outShape, stride }) as tfc.Tensor4D;
}

/**
 * Batch normalisation while training as TensorFlow's fused kernels: FusedBatchNormV3
 * (is_training) computes the batch's mean and variance and normalises in one pass, and
 * FusedBatchNormGradV3 is its whole gradient, where tfjs differentiates tf.moments and
 * tf.batchNorm op by op (about twenty kernels over [rows, C] per layer and step). Measured on
 * the 2-core EPYC VM for [1100, 500] (ADGM's class passes), eagerly, forward and backward:
 * 15-20 ms as tfjs's ops, 2 ms fused. Its outputs: y, the batch mean, the batch's unbiased
 * variance (n/(n − 1) times the biased one it normalises with, as the running average takes
 * it), and the three reserve spaces the gradient reads.
 */
const BN_TRAIN = 'ElboBatchNormTraining';

function bnAttrs(b: NativeKernelBackend, epsilon: number): NativeAttr[] {
  const { TF_ATTR_TYPE, TF_ATTR_FLOAT, TF_ATTR_STRING, TF_ATTR_BOOL, TF_FLOAT } = b.binding;
  return [
    floatType(b),
    { name: 'U', type: TF_ATTR_TYPE, value: TF_FLOAT },
    { name: 'epsilon', type: TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: TF_ATTR_BOOL, value: true },
  ];
}

function registerBatchNormTraining(tf: typeof tfc): void {
  if (tf.getKernel(BN_TRAIN, 'tensorflow')) return;
  tf.registerKernel({
    kernelName: BN_TRAIN,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = native(backend, BN_TRAIN);
      const [x, scale, offset] = present([inputs.x, inputs.scale, inputs.offset], BN_TRAIN);
      // mean and variance are inputs for inference only: empty while training
      const empty = tf.tensor1d([], 'float32');
      const factor = { name: 'exponential_avg_factor', type: b.binding.TF_ATTR_FLOAT, value: 1 };
      const out = b.executeMultipleOutputs(
        'FusedBatchNormV3',
        [...bnAttrs(b, attrs?.epsilon as number), factor],
        [x, scale, offset, empty, empty],
        6,
      );
      empty.dispose();
      return out;
    },
  });
  tf.registerGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, false, false, true, true, true],
    gradFunc: (dy, saved, attrs) => {
      // only y carries a gradient: the batch statistics feed the running averages alone
      const dyY = (dy as tfc.Tensor[])[0];
      const [x, scale, r1, r2, r3] = saved;
      const b = native(tf.backend(), BN_TRAIN);
      const grads = b.executeMultipleOutputs('FusedBatchNormGradV3', bnAttrs(b, attrs.epsilon as number), [dyY, x, scale, r1, r2, r3], 5);
      grads.slice(3).forEach((t) => t.dispose());
      return { x: () => grads[0], scale: () => grads[1], offset: () => grads[2] };
    },
  });
}

/**
 * Batch normalisation with the batch's statistics over every axis of x but the last (its
 * C channels; n ≥ 2 values per channel): y = scale·(x − μ_B)/√(σ²_B + ε) + offset with the
 * biased σ²_B, and the batch's mean and unbiased variance. On the tensorflow backend
 * (float32) only, null elsewhere: TensorFlow's fused kernels forward and backward (above),
 * on x as [n, 1, 1, C].
 */
export function batchNormTraining<T extends tfc.Tensor>(
  tf: typeof tfc,
  x: T,
  scale: tfc.Tensor,
  offset: tfc.Tensor,
  epsilon: number,
): { y: T; mean: tfc.Tensor; unbiased: tfc.Tensor } | null {
  const C = x.shape[x.rank - 1];
  const n = x.size / C;
  if (!onNative(tf, x) || n < 2) return null;
  registerBatchNormTraining(tf);
  const out = tf.engine().runKernel(BN_TRAIN, { x: tf.reshape(x, [n, 1, 1, C]), scale, offset }, { epsilon });
  if (!Array.isArray(out)) throw new Error(`${BN_TRAIN}: expected its six outputs`);
  out.slice(3).forEach((t) => t.dispose());
  return { y: tf.reshape(out[0], x.shape) as T, mean: out[1], unbiased: out[2] };
}
