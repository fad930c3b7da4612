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

/** What the kernels use of tfjs-node's backend object. */
interface NativeKernelBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(op: string, attrs: { name: string; type: number; value: number }[], inputs: tfc.TensorInfo[]): tfc.TensorInfo;
}

function isNative(b: unknown): b is NativeKernelBackend {
  return typeof (b as { executeSingleOutput?: unknown } | null)?.executeSingleOutput === 'function';
}

/** A float32 TensorFlow op on the native backend, as a tfjs kernel. */
function nativeFloatOp(op: string, inputs: (tfc.TensorInfo | undefined)[], backend: unknown): tfc.TensorInfo {
  if (!isNative(backend)) throw new Error(`${op} runs on the tensorflow backend only`);
  const given = inputs.filter((t): t is tfc.TensorInfo => t !== undefined);
  if (given.length !== inputs.length) throw new Error(`${op}: an input is missing`);
  return backend.executeSingleOutput(op, [{ name: 'T', type: backend.binding.TF_ATTR_TYPE, value: backend.binding.TF_FLOAT }], given);
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
  if (tf.getBackend() !== 'tensorflow' || x.dtype !== 'float32' || !isNative(tf.backend())) return tf.relu(x);
  registerRelu(tf);
  return tf.engine().runKernel(RELU, { x }) as T;
}
