import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, Type, weight, type OptionsOf } from '../registry/define';
import type * as tfjs from '@tensorflow/tfjs';
import { logvarClampOptions } from './gaussian';
import { blockLayers, noiseRows } from './prior';
import { weightSchedule, scheduleProgress } from '../schedules/schedule';
import { spikeSlabKl, SPIKE_EPS } from '../losses/spike-slab-kl';
import { END_OF_TRAINING, type Prior, type Schedule, type TrainProgress } from '../contracts';

const spikeSlabOptions = {
  alpha: Type.Number({
    exclusiveMinimum: 0,
    maximum: 1,
    default: 0.5,
    description: 'Prior spike probability a ("alpha" in the paper): P(z_k is drawn from the slab); 1 recovers the Gaussian VAE',
  }),
  c: weight(
    50,
    'Sharpness c of the selection sigmoid(c·(η + γ − 1)); the paper warms it up from 50 to 200 ({kind: linear, from: 50, to: 200, end_epoch: N})',
  ),
  warmup: weight(
    1,
    'Spike warm-up λ of the official code: the slab is sampled from N(λμ, σ^(2λ)); a schedule 0 → 1 lets only the spikes carry information at first (1: off)',
  ),
  mean: Enum(['expected', 'selected', 'slab'], {
    default: 'expected',
    description: 'Latent mean used for features and reconstructions: expected = γ⊙μ (E_q[z]); selected = μ where γ > 0.5 else 0; slab = μ',
  }),
  ...logvarClampOptions,
};

export type SpikeSlabPriorOptions = OptionsOf<typeof spikeSlabOptions>;

export { scheduleProgress };

/**
 * The spike-and-slab prior of Variational Sparse Coding, docs/models.md "Prior 2":
 * p_s(z) = Π_k [a·N(z_k; 0, 1) + (1 − a)·δ(z_k)], with the recognition model
 * q(z|x) = Π_k [γ_k·N(μ_k, σ_k²) + (1 − γ_k)·δ(z_k)]. The encoder emits [μ, log σ², v]
 * (paramsPerLatent = 3) and log γ = −ReLU(−v), so γ ≤ 1; γ is clamped to [1e-6, 1 − 1e-6].
 *
 * No density: the mixture has a point mass at 0, so there is no logPrior/logPosterior and
 * importance-weighted evaluation (iwae) refuses the model with a clear message.
 */
export function spikeSlabPrior(tf: typeof tfc, o: SpikeSlabPriorOptions, schedules: { c: Schedule; warmup: Schedule }): Prior {
  const split = (enc: tfc.Tensor2D, K: number) => {
    const mu = tf.slice(enc, [0, 0], [-1, K]) as tfc.Tensor2D;
    const logvar = tf.clipByValue(tf.slice(enc, [0, K], [-1, K]), o.logvar_min, o.logvar_max) as tfc.Tensor2D;
    const logGamma = tf.neg(tf.relu(tf.neg(tf.slice(enc, [0, 2 * K], [-1, K])))) as tfc.Tensor2D;
    return { mu, logvar, logGamma };
  };
  const scheduledAt = (progress: TrainProgress) => {
    const at = scheduleProgress(progress);
    return { c: schedules.c(at), warmup: schedules.warmup(at) };
  };
  const gammaOf = (logGamma: tfc.Tensor2D) => tf.clipByValue(tf.exp(logGamma), SPIKE_EPS, 1 - SPIKE_EPS) as tfc.Tensor2D;
  return {
    paramsPerLatent: 3,
    kl(enc, K) {
      return tf.tidy(() => {
        const { mu, logvar, logGamma } = split(enc, K);
        return spikeSlabKl(mu, logvar, logGamma, o.alpha);
      });
    },
    /**
     * z = sigmoid(c·(η + γ − 1)) ⊙ (μ + σ ⊙ ε), η ~ U(0, 1), ε ~ N(0, 1), both from `rng`.
     * The spike warm-up λ of the official code (Tonolini et al.) samples the slab from
     * N(λμ, σ^(2λ)) instead: at λ = 0 only the spike selection carries information.
     * Without `progress`, c and λ are at the end of their schedules (as in evaluation).
     */
    scheduled: scheduledAt,
    sample(enc, K, rng, progress = END_OF_TRAINING, share) {
      const { c, warmup: lambda } = progress.scheduled ?? scheduledAt(progress);
      return tf.tidy(() => {
        const { mu, logvar, logGamma } = split(enc, K);
        const B = mu.shape[0];
        const rows = share?.rows ?? B;
        const eps = noiseRows(tf, rng.normals(rows * K), B, K, share);
        const eta = noiseRows(tf, rng.uniforms(rows * K), B, K, share);
        const m = lambda === 1 ? mu : tf.mul(lambda, mu);
        const lv = lambda === 1 ? logvar : tf.mul(lambda, logvar);
        const slab = tf.add(m, tf.mul(tf.exp(tf.mul(0.5, lv)), eps));
        const selection = tf.sigmoid(tf.mul(c, tf.sub(tf.add(eta, gammaOf(logGamma)), 1)));
        return tf.mul(selection, slab) as tfc.Tensor2D;
      });
    },
    /**
     * `expected` (default): E_q[z] = γ ⊙ μ, the exact mean of the spike-and-slab posterior.
     * `selected`: μ where γ > 0.5, else exactly 0 (the sparse code the selection keeps most often).
     * `slab`: μ, ignoring the spikes.
     */
    mean(enc, K) {
      return tf.tidy(() => {
        const { mu, logGamma } = split(enc, K);
        if (o.mean === 'slab') return mu;
        const gamma = gammaOf(logGamma);
        if (o.mean === 'selected') return tf.mul(mu, tf.cast(tf.greater(gamma, 0.5), 'float32')) as tfc.Tensor2D;
        return tf.mul(gamma, mu) as tfc.Tensor2D;
      });
    },
    /** μ, the slab mean, whatever `mean` says (features: mu of the latent-classifier). */
    mu: (enc, K) => tf.slice(enc, [0, 0], [-1, K]) as tfc.Tensor2D,
    /**
     * `mean` as Layers: γ = exp(−ReLU(−v)) is ELU(−ReLU(−v)) + 1 (ELU(x) = eˣ − 1 for x ≤ 0),
     * clamped to [ε, 1 − ε] by a ReLU with a ceiling between two shifts by ε.
     */
    exported:
      o.mean === 'selected'
        ? "its mean 'selected' (μ where γ > 0.5) is a threshold that Layers cannot write; export a run with mean: expected or slab"
        : {
            prior: { kind: 'spike-slab', alpha: o.alpha },
            meanLayers(tfl, enc, K) {
              const mu = blockLayers(tfl, enc, 3, K, 0, 'mu');
              if (o.mean === 'slab') return mu;
              const step = (layer: tfjs.layers.Layer, x: tfjs.SymbolicTensor) => layer.apply(x) as tfjs.SymbolicTensor;
              let g = step(tfl.layers.rescaling({ scale: -1, offset: 0, name: 'neg_v' }), blockLayers(tfl, enc, 3, K, 2, 'v'));
              g = step(tfl.layers.rescaling({ scale: -1, offset: 0, name: 'log_gamma' }), step(tfl.layers.reLU({ name: 'relu_neg_v' }), g));
              g = step(
                tfl.layers.rescaling({ scale: 1, offset: 1 - SPIKE_EPS, name: 'gamma_shifted' }),
                step(tfl.layers.elu({ alpha: 1, name: 'gamma_minus_1' }), g),
              );
              g = step(
                tfl.layers.rescaling({ scale: 1, offset: SPIKE_EPS, name: 'gamma' }),
                step(tfl.layers.reLU({ maxValue: 1 - 2 * SPIKE_EPS, name: 'gamma_clamped' }), g),
              );
              return tfl.layers.multiply({ name: 'mean' }).apply([g, mu]) as tfjs.SymbolicTensor;
            },
          },
    /** z_k = s_k·n_k with s_k ~ Bernoulli(a), n_k ~ N(0, 1). */
    sampleFromPrior(n, K, rng) {
      const z = rng.normals(n * K);
      const u = rng.uniforms(n * K);
      for (let i = 0; i < z.length; i++) if (u[i] >= o.alpha) z[i] = 0;
      return tf.tensor2d(z, [n, K]);
    },
  };
}

export const spikeSlabPriorPlugin = definePlugin({
  kind: 'prior',
  name: 'spike-slab',
  description:
    'Spike-and-slab prior a·N(0,1) + (1−a)·δ(0) (Variational Sparse Coding); encoder emits μ, log σ², log γ; closed-form KL; no density (no iwae)',
  options: spikeSlabOptions,
  create: (o, ctx) =>
    spikeSlabPrior(ctx.tf, o, {
      c: weightSchedule(o.c, ctx.registry, ctx),
      warmup: weightSchedule(o.warmup, ctx.registry, ctx),
    }),
});
