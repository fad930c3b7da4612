import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import type { LatentParts, Model } from '../contracts';
import { END_OF_TRAINING } from '../contracts/progress';

/**
 * Importance weights for any model with an encoder → z → decoder path (vae, m1, iwae,
 * gvae, and third-party models built from latentParts): the likelihood and the prior say
 * whether they are densities.
 */

/**
 * log p(x|z_i), log p(z_i) and log q(z_i|x) for k draws z_i ~ q(z|x) per example, each
 * [B, k] (draw i of example b in row b, column i). The draws are taken from `rng` example
 * by example, so splitting a test set into passes of any size gives the same numbers.
 */
export type ImportanceTerms = (x: tfc.Tensor2D, k: number, rng: Rng) => { logpx: tfc.Tensor2D; logpz: tfc.Tensor2D; logqz: tfc.Tensor2D };

/**
 * The parts of log w = log p(x, z) − log q(z|x), when the likelihood and the prior are
 * densities; otherwise why not (a sentence for the error message). What the IWAE model
 * trains on (models/iwae.ts): every term on its own, differentiable as the model's loss.
 *
 * Built for k in the thousands (the IWAE paper evaluates with k = 5000), where the
 * decoder runs on B·k rows and everything that touches a [B·k, D] tensor counts:
 *  - the encoder output is repeated k times by a broadcast add, not tf.tile (tile is
 *    about 20 times slower on the wasm backend, and its gradient is a loop of slices);
 *  - x is never repeated: the likelihood scores the k rows of one example against its x
 *    (Likelihood.logDensityK; for Bernoulli one batched matrix product and one log per
 *    group of pixels, see losses/likelihood.ts).
 */
export function importanceTerms(
  tf: typeof tfc,
  p: Pick<LatentParts, 'K' | 'prior' | 'encoder' | 'decoder' | 'likelihood'>,
  priorName: string,
): ImportanceTerms | string {
  const { K, prior, encoder, decoder, likelihood } = p;
  if (!likelihood.logDensityK) return `the ${likelihood.name} likelihood here is ${likelihood.noDensity ?? 'not a density'}`;
  if (!prior.logPrior || !prior.logPosterior) return `prior '${priorName}' has no density (needed for log p(z) − log q(z|x))`;
  const logDensityK = likelihood.logDensityK;
  return (x, k, rng) => {
    const { z, logpz, logqz } = posteriorDraws(tf, prior, K, encoder.apply(x), k, rng);
    return { logpx: logDensityK(x, decoder.apply(z), k), logpz, logqz };
  };
}

/**
 * k draws z [B·k, K] of q(z|x) per row of enc [B, P] (`sample` on enc repeated k times) and
 * their log p(z), log q(z|x) [B, k]: what importance weighting needs of a prior with densities.
 */
function posteriorDraws(tf: typeof tfc, prior: LatentParts['prior'], K: number, enc: tfc.Tensor2D, k: number, rng: Rng) {
  const B = enc.shape[0];
  const encK = repeatRows(tf, enc, k);
  const z = prior.sample(encK, K, rng, END_OF_TRAINING);
  const logpz = tf.reshape(prior.logPrior!(z), [B, k]) as tfc.Tensor2D;
  const logqz = tf.reshape(prior.logPosterior!(z, encK, K), [B, k]) as tfc.Tensor2D;
  return { z, logpz, logqz };
}

/** Each row of t [B, P] k times in a row ([B·k, P], rows b·k … b·k+k−1 from row b), by a broadcast add. */
function repeatRows(tf: typeof tfc, t: tfc.Tensor2D, k: number): tfc.Tensor2D {
  const [B, P] = t.shape;
  return tf.reshape(tf.add(tf.expandDims(t, 1), tf.zeros([1, k, 1])), [B * k, P]) as tfc.Tensor2D;
}

/**
 * A model's importance weights from its parts: `logImportanceWeights` (log p(x, z_i) −
 * log q(z_i|x), [B, k]) when the likelihood and the prior are densities (`importance` is
 * then their terms, else the sentence saying why not, which becomes `noImportanceWeights`).
 * Spread it into the model object.
 *
 * The weights are the terms' sum, computed for evaluation (the iwae evaluator's k = 5000
 * passes) with the shortcuts the parts offer, on the same draws: the prior's
 * `importanceSample` (z and log p(z) − log q(z|x) without repeating the encoder's output
 * k times: a Gaussian posterior's log q(z|x) comes from the noise), and the decoder's
 * `affineHead` with the likelihood's `logDensityAffineK` (the Bernoulli likelihood reads the
 * [B·k, D] logits once, in its normaliser). Without them, the terms themselves. Equal to
 * log p(x|z) + log p(z) − log q(z|x) of the terms to float rounding (test/iwae.test.ts);
 * differentiable, but the IWAE model trains on the terms.
 */
export function importanceWeightsOf(
  tf: typeof tfc,
  importance: ImportanceTerms | string,
  p: Pick<LatentParts, 'K' | 'prior' | 'encoder' | 'decoder' | 'likelihood'>,
): Pick<Model, 'logImportanceWeights' | 'noImportanceWeights'> {
  if (typeof importance === 'string') return { noImportanceWeights: importance };
  const { K, prior, encoder, decoder, likelihood } = p;
  /** z [B·k, K] and log p(z) − log q(z|x) [B, k]. */
  const draw = (x: tfc.Tensor2D, k: number, rng: Rng) => {
    const enc = encoder.apply(x);
    if (prior.importanceSample) return prior.importanceSample(enc, K, k, rng);
    const { z, logpz, logqz } = posteriorDraws(tf, prior, K, enc, k, rng);
    return { z, logRatio: tf.sub(logpz, logqz) as tfc.Tensor2D };
  };
  return {
    logImportanceWeights: (x, k, rng) =>
      tf.tidy(() => {
        const { z, logRatio } = draw(x, k, rng);
        const head = likelihood.logDensityAffineK && decoder.affineHead?.();
        const logpx = head
          ? likelihood.logDensityAffineK!(x, head.hidden(z), head.w, head.b, k)
          : likelihood.logDensityK!(x, decoder.apply(z), k);
        return tf.add(logpx, logRatio) as tfc.Tensor2D;
      }),
  };
}
