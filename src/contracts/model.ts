import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import type { PluginOptions } from './options';
import type { TrainProgress } from './progress';
import type { Prior } from './prior';
import type { Network, Phase } from './network';
import type { Likelihood, LikelihoodName } from './likelihood';
import type { RunDependency } from './run';

/** A batch as the model sees it. */
export interface Batch {
  x: tfc.Tensor2D;
  /**
   * Class labels of the rows, -1 where unknown (the unlabelled part of a
   * semi-supervised data set); null when the data set has no labels.
   */
  y: Int32Array | null;
  /**
   * The same labels as an int32 tensor [B] on the device, when the caller made one (the
   * training step does): models that compute with labels on the device read this, so a
   * compiled step takes the labels as an input instead of freezing them.
   */
  labels?: tfc.Tensor1D | null;
  /** The model's `stepInputs` for this batch, uploaded by the training step. */
  inputs?: Record<string, tfc.Tensor1D>;
}

/**
 * Loss weights by name (the names the model plugin declares in `weights`), already
 * evaluated for this step (schedules resolved): numbers when the step runs kernel by
 * kernel, device scalars fed to the graph in a compiled step or evaluation. Use them only
 * as operands of tf ops (`tf.mul(w.c1, kl)`), never as JavaScript numbers.
 */
export type LossWeights = Readonly<Record<string, number | tfc.Scalar>>;

/**
 * Loss weights as numbers, by name: what the training loop evaluates from their schedules
 * for a step, and the weights evaluators are given (EvalContext.unitWeights). A model's
 * `terms` accepts them as LossWeights.
 */
export type WeightValues = Readonly<Record<string, number>>;

/**
 * The interface every model shares (pythae-style): parameters, named loss terms,
 * encode/decode. `terms` returns batch means; `loss` is the weighted objective that is
 * minimised, `elbo` the unweighted evidence lower bound in nats.
 */
export interface Model {
  params: Map<string, tfc.Variable>;
  /**
   * Non-trainable state of its networks (batch normalisation's running averages), named
   * as the parameters are ('encoder/bn0/mean'): checkpointed as `model/<name>` and fed to
   * compiled graphs with the parameters, never given gradients (collectVariables in
   * nn/network.ts builds both maps). Absent or empty: none.
   */
  buffers?: Map<string, tfc.Variable>;
  /**
   * The training/evaluation switch its networks read (ModelContext.phase). buildRun sets
   * it on every model it builds; the training step sets `training` to true only around
   * its forward pass. Absent: the model has nothing that depends on it.
   */
  phase?: Phase;
  /** Latent size K; 0 for a model without a latent space (the supervised classifier). */
  latent: number;
  /**
   * 'labelled': the model learns from labelled rows only, so the training loop iterates
   * over them alone (data.labelled when set, else every training row): an epoch is one
   * pass over the labelled rows. Absent: every training row, labels known or not.
   */
  trainsOn?: 'labelled';
  /**
   * Runs this model was built on (m1m2's M1), by role: written into run.json as
   * `depends_on`.
   */
  dependsOn?: Record<string, RunDependency>;
  /**
   * The loss and its terms for one batch, as batch means by name (tf scalars): `loss` (what
   * is minimised), `elbo` (the unweighted bound, when there is one) and its pieces. The
   * plugin's `termNames(options)` declares the names.
   */
  terms(batch: Batch, w: LossWeights, rng: Rng, progress: TrainProgress): Record<string, tfc.Scalar> & { loss: tfc.Scalar };
  /**
   * Integer arrays the model derives from the labels in JavaScript (gather indices, label
   * lists). The training step uploads them before the step and hands them over as
   * `batch.inputs`, so a compiled step takes them as graph inputs instead of freezing
   * them; their lengths are part of the batch shape that picks a graph. `terms` must
   * still work without them (evaluation calls it with x and y only).
   */
  stepInputs?(y: Int32Array | null, rows: number): Record<string, Int32Array>;
  /**
   * The scheduled quantities of its priors (Prior.scheduled) at `progress`, by name: a
   * compiled step evaluates them every step, feeds them to its graph as scalars and hands
   * them to `terms` as `progress.scheduled`, where the priors read them. Without it, a
   * prior's schedule (spike-slab's c as `{kind: linear, ...}`) would be a constant of the
   * graph. A third-party model that omits it gets the merged `scheduled` of the priors it
   * created through `ctx.registry` (or `ctx.latentParts`).
   */
  scheduled?(progress: TrainProgress): Record<string, number>;
  /**
   * Loss weights the model sets itself in place of `loss.<name>` (m2's alpha_expression
   * gives alpha): logged as weight/<name>, so the record shows the weight that trains.
   */
  fixedWeights?: Record<string, number>;
  /**
   * Terms whose value over many batches (an epoch's train/ line, the val/ and test/ passes)
   * is the ratio of their batch-weighted mean to another term's, by name: M2's
   * `{accuracy: '_labelled'}`, where each batch's accuracy is Σ_lab [argmax = y] / B and
   * `_labelled` is n_lab / B, so the ratio is the accuracy on the labelled rows whatever
   * the batches hold. A term whose name begins with `_` is such a denominator, never logged
   * (src/models/model.ts, termMeans).
   */
  ratios?: Record<string, string>;
  /** Posterior means [B, K]. */
  encodeMean(x: tfc.Tensor2D): tfc.Tensor2D;
  /** μ and log σ² when the posterior is a diagonal Gaussian (augmentation along σ). */
  encodeGaussian?(x: tfc.Tensor2D): { mu: tfc.Tensor2D; logvar: tfc.Tensor2D };
  /**
   * μ as the encoder emits it (Prior.mu): for a Gaussian posterior the mean, for the
   * spike-and-slab the slab mean without the spike probabilities γ. Absent when the prior
   * has no such location.
   */
  encodeMu?(x: tfc.Tensor2D): tfc.Tensor2D;
  /** Reconstructions of x from the posterior mean, in data space [B, D]. */
  reconstruct(x: tfc.Tensor2D): tfc.Tensor2D;
  /** Decode latent codes to data space [B, D]. */
  decode(z: tfc.Tensor2D): tfc.Tensor2D;
  sampleLatent(n: number, rng: Rng): tfc.Tensor2D;
  /** log p(x, z_i) − log q(z_i|x) for k posterior draws: [B, k] (importance weighting). */
  logImportanceWeights?(x: tfc.Tensor2D, k: number, rng: Rng): tfc.Tensor2D;
  /** Why logImportanceWeights is absent, for the error message. */
  noImportanceWeights?: string;
  /**
   * Class probabilities [B, C] for models that classify (q(y|x) of M2, G-VAE's linear
   * head); read by the `accuracy` evaluator.
   */
  classify?(x: tfc.Tensor2D): tfc.Tensor2D;
  /**
   * The parts `elbo export --format tfjs` writes (export/tfjs.ts): x → posterior mean
   * (encoder, then the prior's mean) and z → data (decoder, then `output`). They compute
   * what `encodeMean` and `decode` do. Absent: the model is not exported.
   */
  exportable?: ExportableModel;
}

/**
 * A model that can decode a latent code for a chosen class (M2's p(x|y,z)): what a model
 * plugin that `provides` 'class-conditional' makes (the class-samples evaluator reads it).
 */
export interface ClassConditionalModel extends Model {
  /** Number of classes C. */
  classes: number;
  /** Decode z [B, K] with class y[i] for row i, to data space [B, D]. */
  decodeClass(z: tfc.Tensor2D, y: Int32Array): tfc.Tensor2D;
}

/** An encoder x → z and a decoder z → x, and how their outputs are read. */
export interface ExportableModel {
  latent: number;
  encoder: Network;
  decoder: Network;
  prior: Prior;
  /**
   * Decoder output → data space: the Bernoulli mean (sigmoid of the logits), the output
   * itself, or μ of a decoder that emits [μ, log σ²] (D each).
   */
  output: 'sigmoid' | 'identity' | 'gaussian-mean';
  /**
   * Class-conditional models (M2): C classes and the classifier x → logits of q(y|x); the
   * encoder then reads [x, onehot(y)] and the decoder [z, onehot(y)].
   */
  classes?: { count: number; classifier: Network };
}

/** What ModelContext.latentParts builds: the options of an encoder → z → decoder model. */
export interface LatentPartsOptions {
  /** Latent size K. */
  latent: number;
  /** The prior's options (a `$ref: '#/definitions/prior'` option), `kind` first. */
  prior: PluginOptions;
  /** The encoder's and decoder's options (`$ref: '#/definitions/network'` options). */
  encoder: PluginOptions;
  decoder: PluginOptions;
  /** p(x|z) (default bernoulli). */
  likelihood?: LikelihoodName;
}

/** What every model with an encoder → z → decoder path is built from (ModelContext.latentParts). */
export interface LatentParts {
  K: number;
  prior: Prior;
  encoder: Network;
  decoder: Network;
  /** The encoder's, decoder's and prior's parameters, named `encoder/…`, `decoder/…`, `prior/…`. */
  params: Map<string, tfc.Variable>;
  /** The networks' buffers (batch normalisation's running averages), named as params. */
  buffers: Map<string, tfc.Variable>;
  /** p(x|z) from the decoder's outputs (losses/likelihood.ts). */
  likelihood: Likelihood;
  /** −log p(x|z) per example from decoder outputs. */
  nll(x: tfc.Tensor2D, out: tfc.Tensor2D): tfc.Tensor1D;
  /** Decoder outputs in data space (probabilities for Bernoulli). */
  toData(out: tfc.Tensor2D): tfc.Tensor2D;
  /** The encoder, decoder and prior as `elbo export` writes them (Model.exportable). */
  exportable: ExportableModel;
}
