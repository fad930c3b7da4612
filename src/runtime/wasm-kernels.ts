import type * as tfc from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Kernels the wasm backend lacks but training needs, written over its heap views.
 * UnsortedSegmentSum is the gradient of gather (tf.gather in M2, M1+M2 and friends):
 * without it those models could not train on wasm, the backend a plain `npm ci` gets.
 */
export function registerWasmKernels(tf: typeof tfc): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, segmentIds } = inputs as { x: tfc.TensorInfo; segmentIds: tfc.TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      // registered for 'wasm': the backend is that package's (tfjs-core types a kernel's backend as {})
      const wasm = backend as BackendWasm;
      const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
      const inner = x.shape.slice(segmentIds.shape.length).reduce((a, b) => a * b, 1);
      const out = wasm.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
      const o = wasm.typedArrayFromHeap(out);
      const xv = wasm.typedArrayFromHeap(x);
      const ids = wasm.typedArrayFromHeap(segmentIds);
      o.fill(0);
      for (let r = 0; r < rows; r++) {
        const s = ids[r];
        if (s < 0 || s >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
        const src = r * inner;
        const dst = s * inner;
        for (let i = 0; i < inner; i++) o[dst + i] += xv[src + i];
      }
      return out;
    },
  });
}
