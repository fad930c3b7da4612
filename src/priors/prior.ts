import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import type { NoiseShare } from '../contracts';

/**
 * Block `index` of the P blocks of K numbers an encoder emits per example ([B, P·K] →
 * [B, K]), as Layers: what a prior's `exported.meanLayers` selects (a Gaussian's μ is block 0).
 */
export function blockLayers(
  tfl: typeof tfjs,
  enc: tfjs.SymbolicTensor,
  P: number,
  K: number,
  index: number,
  name: string,
): tfjs.SymbolicTensor {
  const grid = tfl.layers.reshape({ targetShape: [P, K, 1], name: `${name}_blocks` }).apply(enc) as tfjs.SymbolicTensor;
  const one = tfl.layers
    .cropping2D({
      cropping: [
        [index, P - 1 - index],
        [0, 0],
      ],
      name: `${name}_select`,
    })
    .apply(grid) as tfjs.SymbolicTensor;
  return tfl.layers.flatten({ name }).apply(one) as tfjs.SymbolicTensor;
}

/**
 * `values` (rows × K draws, already made) as the [B, K] noise of a sample: as drawn, or
 * gathered row by row through `share.index`. Priors call it for every array of draws.
 */
export function noiseRows(tf: typeof tfc, values: Float32Array, B: number, K: number, share?: NoiseShare): tfc.Tensor2D {
  if (!share) return tf.tensor2d(values, [B, K]);
  return tf.gather(tf.tensor2d(values, [share.rows, K]), share.index) as tfc.Tensor2D;
}
