import type * as tfc from '@tensorflow/tfjs-core';

/**
 * The decoder likelihoods p(x|z) every model shares (docs/models.md "Shared pieces"), by
 * name as configs give them (losses/likelihood.ts computes them):
 *  - bernoulli: the decoder emits logits; −log p(x|z) = Σ BCE; a density.
 *  - gaussian: fixed variance, the image loss ‖x − x̂‖² (the decoder emits x̂); not
 *    normalised, so no density and no importance weights.
 *  - gaussian_learned: the decoder emits the mean and log σ² per dimension (twice the
 *    outputs); −log N(x; x̂, σ²); a density.
 */
export const LIKELIHOODS = ['bernoulli', 'gaussian', 'gaussian_learned'] as const;
export type LikelihoodName = (typeof LIKELIHOODS)[number];

/** p(x|z) read from a decoder's outputs. */
export interface Likelihood {
  name: LikelihoodName;
  /** Decoder outputs per data dimension (2: mean and log σ²). */
  outPerDim: number;
  /** −log p(x|out) per row; x [B, D], out [B, outPerDim·D] → [B]. */
  nll(x: tfc.Tensor2D, out: tfc.Tensor2D): tfc.Tensor1D;
  /** The decoder output's mean in data space [B, D] (probabilities for Bernoulli). */
  mean(out: tfc.Tensor2D): tfc.Tensor2D;
  /**
   * log p(x_b | out_{b,i}) for k rows of decoder outputs per example (rows b·k … b·k+k−1
   * belong to example b), without repeating x: [B, k]. Absent when the likelihood is not a
   * density; `noDensity` says what it is instead.
   */
  logDensityK?(x: tfc.Tensor2D, out: tfc.Tensor2D, k: number): tfc.Tensor2D;
  /**
   * The same for outputs given as h·w + b (a decoder's Network.affineHead: h [B·k, H] its
   * hidden part, w [H, outPerDim·D], b [outPerDim·D]), when that is cheaper than from
   * the outputs themselves: [B, k], equal to logDensityK(x, h·w + b, k) to float rounding.
   */
  logDensityAffineK?(x: tfc.Tensor2D, h: tfc.Tensor2D, w: tfc.Tensor2D, b: tfc.Tensor1D, k: number): tfc.Tensor2D;
  noDensity?: string;
}
