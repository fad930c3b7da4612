import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import type { Rng } from '../runtime/rng';
import type { TrainProgress } from './progress';

/**
 * A prior over z together with the posterior family it pairs with. The encoder emits
 * `paramsPerLatent × K` numbers per example; the prior splits them, samples z and
 * computes the KL. Sample + KL, nothing else. A prior may have trainable parameters
 * (`params`, e.g. the VampPrior's pseudo-inputs) and may read the model's encoder
 * (PriorContext.encoder) and the sampled z (the `z` of `kl`).
 *
 * `progress` is optional for callers of `kl` and `sample`: a prior created through the
 * registry receives END_OF_TRAINING (every schedule at its end value, what evaluation
 * uses) when its caller gives none. A model's `terms` passes its own `progress`, so that
 * scheduled quantities move during training.
 */
export interface Prior {
  paramsPerLatent: number;
  /** Trainable parameters by name: the model trains and checkpoints them as prior/<name>. */
  params?: Map<string, tfc.Variable>;
  /**
   * Per-example KL(q(z|x) ‖ p(z)); enc [B, P·K] → [B]. `z` is the sample the model drew
   * from `sample(enc, ...)` for these rows: a prior without a closed form estimates the KL
   * with it (log q(z|x) − log p(z)); models always pass it.
   */
  kl(enc: tfc.Tensor2D, K: number, progress?: TrainProgress, z?: tfc.Tensor2D): tfc.Tensor1D;
  /**
   * A reparameterised sample z [B, K]; every draw from `rng`. With `share`, the noise is
   * drawn for `share.rows` rows and row i of `enc` uses noise row `share.index[i]`
   * (common random numbers: passes of one example under different conditions, such as
   * M2's C class passes of an unlabelled row, see the same noise); use `noiseRows`.
   */
  sample(enc: tfc.Tensor2D, K: number, rng: Rng, progress?: TrainProgress, share?: NoiseShare): tfc.Tensor2D;
  /** The posterior mean, used for reconstructions and latent features. */
  mean(enc: tfc.Tensor2D, K: number): tfc.Tensor2D;
  /**
   * The location μ the encoder emits for the posterior's continuous part: the Gaussian's
   * mean, the spike-and-slab's slab mean (γ ignored). Latent features for protocols that
   * read μ itself (the VSC reproduction's classifier).
   */
  mu?(enc: tfc.Tensor2D, K: number): tfc.Tensor2D;
  /** Draws from p(z) (for samples): [n, K]. */
  sampleFromPrior(n: number, K: number, rng: Rng): tfc.Tensor2D;
  /** log p(z) and log q(z|x), when both are densities (needed by importance weighting). */
  logPrior?(z: tfc.Tensor2D): tfc.Tensor1D;
  logPosterior?(z: tfc.Tensor2D, enc: tfc.Tensor2D, K: number): tfc.Tensor1D;
  /**
   * k draws per example for importance weighting, and their log p(z) − log q(z|x): z
   * [B·k, K] (rows b·k … b·k+k−1 from example b) as `sample` draws it for enc repeated k
   * times (the same draws from `rng`, in the same order), logRatio [B, k]. For priors that
   * can do it without repeating enc (the Gaussian posterior's log q(z|x) is a function of
   * the noise ε and σ alone). Absent: elbo repeats enc and calls sample, logPrior and logPosterior.
   */
  importanceSample?(enc: tfc.Tensor2D, K: number, k: number, rng: Rng): { z: tfc.Tensor2D; logRatio: tfc.Tensor2D };
  /** μ and log σ² of a diagonal Gaussian posterior (models that read σ², e.g. G-VAE). */
  gaussianParams?(enc: tfc.Tensor2D, K: number): { mu: tfc.Tensor2D; logvar: tfc.Tensor2D };
  /**
   * The prior's scheduled quantities at `progress` (spike-slab's c and warm-up λ).
   * `sample` and `kl` read them from `progress.scheduled` when the caller supplies them:
   * a compiled training step feeds them to its graph as scalars there, so a schedule
   * moves every step without being frozen into the graph.
   */
  scheduled?(progress: TrainProgress): Record<string, number>;
  /**
   * What `elbo export --format tfjs` needs (export/tfjs.ts): `mean` as Layers on the
   * encoder's symbolic output [B, P·K], and p(z) as the exported page draws from it.
   * Absent: models with this prior are not exported.
   */
  exported?: PriorExport | string;
}

/** A prior's exported form (Prior.exported); a string there says why it has none. */
export interface PriorExport {
  meanLayers(tfl: typeof tfjs, enc: tfjs.SymbolicTensor, K: number): tfjs.SymbolicTensor;
  prior: ExportedPrior;
}

/**
 * p(z) as an exported model card names it for the page: `normal` is N(0, I); `spike-slab`
 * draws z_k = s_k·n_k with s_k ~ Bernoulli(alpha), n_k ~ N(0, 1).
 */
export type ExportedPrior = { kind: 'normal' } | { kind: 'spike-slab'; alpha: number };

/** Noise rows shared between rows of a batch (Prior.sample). */
export interface NoiseShare {
  rows: number;
  index: tfc.Tensor1D;
}
