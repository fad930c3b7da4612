import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import type { LatentParts, Model } from '../contracts';

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
 * densities; otherwise why not (a sentence for the error message).
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
  const logPrior = prior.logPrior;
  const logPosterior = prior.logPosterior;
  return (x, k, rng) => {
    const B = x.shape[0];
    const enc = encoder.apply(x);
    const P = enc.shape[1];
    // rows b*k .. b*k+k-1 belong to example b
    const encK = tf.reshape(tf.add(tf.expandDims(enc, 1), tf.zeros([1, k, 1])), [B * k, P]) as tfc.Tensor2D;
    const z = prior.sample(encK, K, rng, { epoch: 0, step: 0, fraction: 1 });
    const logpx = logDensityK(x, decoder.apply(z), k);
    const logpz = tf.reshape(logPrior(z), [B, k]) as tfc.Tensor2D;
    const logqz = tf.reshape(logPosterior(z, encK, K), [B, k]) as tfc.Tensor2D;
    return { logpx, logpz, logqz };
  };
}

/**
 * A model's importance weights from its parts: `logImportanceWeights` (log p(x, z_i) −
 * log q(z_i|x), [B, k]) when the likelihood and the prior are densities, else
 * `noImportanceWeights` saying why. Spread it into the model object.
 */
export function importanceWeightsOf(
  tf: typeof tfc,
  importance: ImportanceTerms | string,
): Pick<Model, 'logImportanceWeights' | 'noImportanceWeights'> {
  if (typeof importance === 'string') return { noImportanceWeights: importance };
  return {
    logImportanceWeights: (x, k, rng) =>
      tf.tidy(() => {
        const t = importance(x, k, rng);
        return tf.sub(tf.add(t.logpx, t.logpz), t.logqz) as tfc.Tensor2D;
      }),
  };
}
