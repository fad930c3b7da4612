import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, slot, Type, type OptionsOf } from '../registry/define';
import { collectVariables, inEvaluation, withNormSplit } from '../nn/network';
import { standardWeights } from '../registry/weights';
import { weightSchedule, scheduleProgress } from '../schedules/schedule';
import { likelihoodOf } from '../losses/likelihood';
import { gaussianLogDensity } from '../losses/gaussian-kl';
import { semiSupervisedTerms, SEMI_SUPERVISED_RATIOS } from '../losses/m2';
import { alphaNames, evalAlphaExpression, m2Options, m2Rows, semiSupervisedRows, M2_TERMS } from './m2';
import { withClass, type PassPart } from './class-passes';
import { latentModelCapabilities } from './vae';
import { UserError } from '../errors';
import type { Rng } from '../runtime/rng';
import type {
  ModelBuildContext,
  Model,
  Network,
  Phase,
  Prior,
  TrainProgress,
  ClassConditionalModel,
  Likelihood,
  Schedule,
} from '../contracts';

/**
 * Maaløe et al. 2016, "Auxiliary Deep Generative Models" (docs/models.md "Model: ADGM and
 * SDGM"): M2 with an auxiliary variable a that makes the inference model more expressive.
 *
 *   inference  q(a|x) q(y|a,x) q(z|a,y,x)                   (both models)
 *   adgm       p(y) p(z) p(x|y,z) p(a|x,y,z)                 (a only in the bound)
 *   sdgm       p(y) p(z) p(a|y,z) p(x|a,y,z)                 (a in the generative chain:
 *                                                             two stochastic layers with skips)
 *
 * Networks (inputs concatenated in this order): encoder_a q(a|x) on x; classifier q(y|a,x)
 * on [a, x]; encoder q(z|a,y,x) on [x, a, onehot(y)]; decoder p(x|·) on [z, onehot(y)]
 * (adgm) or [z, a, onehot(y)] (sdgm); decoder_a p(a|·) on [x, z, onehot(y)] (adgm) or
 * [z, onehot(y)] (sdgm). q(a|x) and p(a|·) are diagonal Gaussians whose networks emit the
 * mean and log σ² (A each), log σ² clamped to [aux_logvar_min, aux_logvar_max].
 *
 * Rows go through the passes as in M2 (m2Rows): labelled rows with their label, then every
 * unlabelled row once per class, so y is summed out exactly. One a ~ q(a|x) is drawn per row
 * and shared by its C class passes (the expectation over q(a|x) sits outside the sum over y).
 * The networks on the passes (encoder, decoder, decoder_a) get their inputs by parts where
 * they start with a product (withClass, class-passes.ts): x and a, shared by a row's class
 * passes, multiplied once per row; z per pass; onehot(y) as a lookup of the weights' rows.
 */

export type AdgmVariant = 'adgm' | 'sdgm';

/** The ADGM/SDGM model object: an M2-like classifying, class-conditional model. */
export interface AdgmModel extends ClassConditionalModel {
  variant: AdgmVariant;
  /** Auxiliary size A. */
  aux: number;
  classify(x: tfc.Tensor2D): tfc.Tensor2D;
  /** The classification weight from alpha_expression, or null when loss.alpha is used. */
  alpha: number | null;
  parts: { encoderA: Network; classifier: Network; encoder: Network; decoder: Network; decoderA: Network; prior: Prior };
}

const net = (description: string) => slot('network', { default: { kind: 'mlp', hidden: [500, 500] }, description });

/** Options of adgm and sdgm: M2's (likelihood, class_noise, class_loss, alpha_expression, ...) with a's networks and size. */
export function adgmOptions(variant: AdgmVariant) {
  const sd = variant === 'sdgm';
  return {
    ...m2Options(['bernoulli', 'gaussian', 'gaussian_learned'], 'bernoulli'),
    latent: Type.Integer({ minimum: 1, default: 100, description: 'Latent size K of z' }),
    aux: Type.Integer({ minimum: 1, default: 100, description: 'Size A of the auxiliary variable a' }),
    encoder_a: net('q(a|x): a network on x emitting the mean and log σ² of a (2A outputs)'),
    classifier: net('q(y|a,x): a network on [a, x], softmax over the C classes'),
    encoder: net("q(z|a,y,x): a network on [x, a, onehot(y)] emitting the prior's posterior parameters"),
    decoder: net(sd ? 'p(x|a,y,z): a network on [z, a, onehot(y)]' : 'p(x|y,z): a network on [z, onehot(y)]'),
    decoder_a: net(
      sd
        ? 'p(a|y,z): a network on [z, onehot(y)] emitting the mean and log σ² of a'
        : 'p(a|x,y,z): a network on [x, z, onehot(y)] emitting the mean and log σ² of a',
    ),
    aux_logvar_min: Type.Number({
      default: -30,
      description: 'Clamp of the log σ² of q(a|x) and p(a|·) from below (numerical safety; as the gaussian prior)',
    }),
    aux_logvar_max: Type.Number({ default: 20, description: 'Clamp of the log σ² of q(a|x) and p(a|·) from above' }),
    aux_samples: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 1,
      description:
        "Draws of a ~ q(a|x) per row in the objective (the authors' `samples`: 1, or 5 in their last run_mnist.py); every pass runs once per draw, so a step costs about this many times one draw. With S > 1 the bound is theirs: L(x,y) and its terms averaged over the draws, q(y|x) ≈ q̄ = the mean of q(y|a_s,x) in the class term, the weights and the entropy of an unlabelled row",
    }),
    classify_samples: Type.Integer({
      minimum: 0,
      default: 10,
      description:
        'classify(x) (the accuracy evaluator): q(y|x) ≈ the mean of q(y|a_s,x) over this many draws a_s ~ q(a|x), from a fixed stream of the run seed (the paper evaluates with 100); 0: q(y|ā,x) at the mean ā of q(a|x). The accuracy loss term (train/ and val/accuracy) always uses ā',
    }),
  };
}

export type AdgmOptions = Omit<OptionsOf<ReturnType<typeof adgmOptions>>, 'kind'>;

const EVAL_PROGRESS: TrainProgress = { epoch: 0, step: 0, fraction: 1 };

/**
 * What an ADGM/SDGM is made of: its sizes, the prior, λ_H's schedule, the likelihood and the
 * five networks (made in this order: the rng forks and the parameter names follow it), and
 * their variables.
 */
interface AdgmParts {
  tf: typeof tfc;
  sd: boolean;
  C: number;
  K: number;
  A: number;
  D: number;
  prior: Prior;
  entropySchedule: Schedule;
  /** entropy_weight is a number (else a schedule, fed to a compiled step as m2_entropy_weight). */
  constantEntropy: boolean;
  likelihood: Likelihood;
  encoderA: Network;
  classifier: Network;
  encoder: Network;
  decoder: Network;
  decoderA: Network;
  params: Map<string, tfc.Variable>;
  buffers: Map<string, tfc.Variable>;
  /** The model's training/evaluation switch (the networks read it). */
  phase?: Phase;
}

/** Build the prior, λ_H's schedule, the likelihood and the networks q(a|x), q(y|a,x), q(z|a,y,x), p(x|·), p(a|·). */
function adgmParts(o: AdgmOptions, ctx: ModelBuildContext, variant: AdgmVariant): AdgmParts {
  const data = ctx.data;
  const sd = variant === 'sdgm';
  const C = data.classes!;
  const K = o.latent;
  const A = o.aux;
  const D = data.dim;
  let built: Network | null = null;
  const prior = ctx.registry.create('prior', o.prior, {
    ...ctx,
    rng: ctx.rng.fork('prior'),
    latent: K,
    inDim: D + A + C,
    encoder: () => built!,
  });
  const entropySchedule = weightSchedule(o.entropy_weight ?? 1, ctx.registry, ctx);
  const constantEntropy = typeof (o.entropy_weight ?? 1) === 'number';
  const likelihood = likelihoodOf(o.likelihood, D);
  const create = (name: string, spec: typeof o.encoder, inDim: number, outDim: number, extra: Record<string, unknown> = {}) =>
    ctx.registry.create('network', spec, { ...ctx, rng: ctx.rng.fork(name), shape: { inDim, outDim, ...extra } });
  const encoderA = create('encoder_a', o.encoder_a, D, 2 * A, { inShape: data.shape });
  // [a, x]: a conv classifier convolves x (from column A) and joins a to its features
  const classifier = create('classifier', o.classifier, A + D, C, { inShape: data.shape, inImageAt: A });
  const encoder = create('encoder', o.encoder, D + A + C, prior.paramsPerLatent * K);
  const decoder = create(
    'decoder',
    o.decoder,
    K + (sd ? A : 0) + C,
    likelihood.outPerDim * D,
    likelihood.outPerDim > 1 ? {} : { outShape: data.shape },
  );
  const decoderA = create('decoder_a', o.decoder_a, (sd ? 0 : D) + K + C, 2 * A);
  const { params, buffers } = collectVariables({ encoder_a: encoderA, classifier, encoder, decoder, decoder_a: decoderA, prior });
  built = encoder;
  return {
    tf: ctx.tf,
    sd,
    C,
    K,
    A,
    D,
    prior,
    entropySchedule,
    constantEntropy,
    likelihood,
    encoderA,
    classifier,
    encoder,
    decoder,
    decoderA,
    params,
    buffers,
    phase: ctx.phase,
  };
}

/** The networks applied as the passes use them (inputs concatenated as the comment at the top of this file says). */
function adgmOps(m: AdgmParts, o: AdgmOptions) {
  const { tf, sd, C, K, A, prior, likelihood, encoderA, classifier, encoder, decoder, decoderA } = m;
  const cat = (...t: tfc.Tensor2D[]) => tf.concat(t, 1) as tfc.Tensor2D;
  /** Mean and clamped log σ² of a Gaussian over a from a network's [B, 2A] output. */
  const gauss = (out: tfc.Tensor2D) => ({
    mu: tf.slice(out, [0, 0], [-1, A]) as tfc.Tensor2D,
    logvar: tf.clipByValue(tf.slice(out, [0, A], [-1, A]), o.aux_logvar_min, o.aux_logvar_max) as tfc.Tensor2D,
  });
  /** p(a|·)'s network on a pass: [x, z, y] (adgm) or [z, y] (sdgm). */
  const pa = (x: tfc.Tensor2D, z: tfc.Tensor2D, y: tfc.Tensor2D) => gauss(decoderA.apply(sd ? cat(z, y) : cat(x, z, y)));
  /** p(x|·)'s network: [z, y] (adgm) or [z, a, y] (sdgm). */
  const px = (z: tfc.Tensor2D, a: tfc.Tensor2D, y: tfc.Tensor2D) => decoder.apply(sd ? cat(z, a, y) : cat(z, y));
  /** pa and px on class passes of class ys (by parts, withClass): x and a as parts that passes share. */
  const paPasses = (x: PassPart, z: tfc.Tensor2D, ys: tfc.Tensor1D) => gauss(withClass(tf, decoderA, sd ? [z] : [x, z], ys, C));
  const pxPasses = (z: tfc.Tensor2D, a: PassPart, ys: tfc.Tensor1D) => withClass(tf, decoder, sd ? [z, a] : [z], ys, C);
  const oneHot = (y: Int32Array) => tf.cast(tf.oneHot(tf.tensor1d(y, 'int32'), C), 'float32') as tfc.Tensor2D;
  const aMean = (x: tfc.Tensor2D) => gauss(encoderA.apply(x)).mu;
  const argmaxY = (x: tfc.Tensor2D, a: tfc.Tensor2D) => Int32Array.from(tf.argMax(classifier.apply(cat(a, x)), 1).dataSync());
  /** The mean of q(z|a,y,x) at ā and ŷ = argmax q(y|ā,x), with ā and ŷ. */
  const posterior = (x: tfc.Tensor2D) => {
    const a = aMean(x);
    const y = argmaxY(x, a);
    const yh = oneHot(y);
    return { a, y: yh, z: prior.mean(encoder.apply(cat(x, a, yh)), K) };
  };
  /** Decode z with class y; SDGM's a is the mean of p(a|y,z). */
  const decodeClass = (z: tfc.Tensor2D, y: Int32Array) =>
    tf.tidy(() => {
      const yh = oneHot(y);
      const a = sd ? pa(z, z, yh).mu : z;
      return likelihood.mean(px(z, a, yh));
    });
  return { ...m, cat, gauss, pa, px, paPasses, pxPasses, posterior, decodeClass };
}

type AdgmOps = ReturnType<typeof adgmOps>;
type AdgmRows = Record<keyof ReturnType<typeof m2Rows>, tfc.Tensor1D>;

/**
 * The inference passes of a step: one a ~ q(a|x) per row (shared by its class passes) and
 * its log density, q(y|a,x)'s logits, then the passes (labelled rows with their label, then
 * each unlabelled row once per class) through q(z|a,y,x) and one z each.
 */
function inferencePasses(m: AdgmOps, o: AdgmOptions, x: tfc.Tensor2D, r: AdgmRows, rng: Rng, progress: TrainProgress) {
  const { tf, C, K, A, prior, encoderA, classifier, encoder, cat, gauss } = m;
  const B = x.shape[0];
  const qa = gauss(encoderA.apply(x));
  const epsA = tf.tensor2d(rng.normals(B * A), [B, A]);
  const a = tf.add(qa.mu, tf.mul(tf.exp(tf.mul(0.5, qa.logvar)), epsA)) as tfc.Tensor2D;
  const logqa = gaussianLogDensity(a, qa.mu, qa.logvar);
  const logits = classifier.apply(cat(a, x));
  // x and a once per row (an unlabelled row's C passes share them)
  const xShared = { rows: x, idx: r.idx };
  const aShared = { rows: a, idx: r.idx };
  const enc = withClass(tf, encoder, [xShared, aShared], r.ys, C);
  // (a prior that runs a network, on its own rows, without the labelled/unlabelled split)
  const z = withNormSplit(m.phase, undefined, () =>
    prior.sample(enc, K, rng, progress, o.class_noise === 'shared' ? { rows: B, index: r.idx } : undefined),
  );
  return { qa, logqa, logits, xShared, aShared, enc, z };
}

/** The generative terms of the passes: −log p(x|·), KL(q(z|a,y,x) ‖ p(z)) and kl_a = log q(a|x) − log p(a|·). */
function generativeTerms(m: AdgmOps, q: ReturnType<typeof inferencePasses>, r: AdgmRows, progress: TrainProgress) {
  const { tf, K, prior, likelihood, pxPasses, paPasses } = m;
  const recon = likelihood.nll(tf.gather(q.xShared.rows, r.idx) as tfc.Tensor2D, pxPasses(q.z, q.aShared, r.ys));
  const kl = withNormSplit(m.phase, undefined, () => prior.kl(q.enc, K, progress, q.z));
  const p = paPasses(q.xShared, q.z, r.ys);
  const ar = tf.gather(q.aShared.rows, r.idx) as tfc.Tensor2D;
  const klA = tf.sub(tf.gather(q.logqa, r.idx), gaussianLogDensity(ar, p.mu, p.logvar)) as tfc.Tensor1D;
  return { recon, kl, klA };
}

/**
 * The rows of a step's passes (m2Rows; labelledFirstRows with `norm_groups: separate`) for
 * labels y; with S draws of a per row also the rows of the batch repeated S times, under
 * `rep_` + m2Rows's names: [x; x; …] draw-major, or with `separate` the labelled rows S times
 * then the unlabelled rows S times (each draw-major; `rep_perm` gathers them from the batch),
 * so that every network's input starts with the S·nl rows of the labelled group.
 */
function adgmRows(y: Int32Array, C: number, S: number, separate: boolean): Record<string, Int32Array> {
  const rows: Record<string, Int32Array> = semiSupervisedRows(y, y.length, C, separate);
  if (S === 1) return rows;
  const B = y.length;
  const order = rows.perm ?? Int32Array.from({ length: B }, (_, i) => i);
  const nl = separate ? rows.lab.length : B;
  const rep = new Int32Array(S * B);
  for (let s = 0; s < S; s++) {
    rep.set(order.subarray(0, nl), s * nl);
    rep.set(order.subarray(nl), S * nl + s * (B - nl));
  }
  for (const [k, v] of Object.entries(
    m2Rows(
      Int32Array.from(rep, (r) => y[r]),
      C,
    ),
  ))
    rows[`rep_${k}`] = v;
  if (separate) rows.rep_perm = rep;
  return rows;
}

/**
 * q̄(y|x) from the logits of the S·B repeated rows (adgmRows' layout: the groups of nl and
 * nu rows, each S times draw-major): log mean_s q(y|a_s,x), [B, C] in the batch's order
 * (labelled first with `separate`).
 */
function logMeanOverDraws(tf: typeof tfc, logits: tfc.Tensor2D, S: number, groups: number[], C: number): tfc.Tensor2D {
  const sizes = groups.filter((n) => n > 0);
  const logq = tf.logSoftmax(logits);
  // (one group: no split, whose gradient would be a concat of one tensor)
  const parts =
    sizes.length === 1
      ? [logq]
      : tf.split(
          logq,
          sizes.map((n) => S * n),
          0,
        );
  const means = parts.map((p, i) => tf.sub(tf.logSumExp(tf.reshape(p, [S, sizes[i], C]), 0), Math.log(S)));
  return (means.length === 1 ? means[0] : tf.concat(means, 0)) as tfc.Tensor2D;
}

/**
 * Per-pass values [S·nl + C·S·nu] of the repeated batch (adgmRows' layout: the labelled passes
 * draw-major, then for each class the unlabelled rows draw-major) → their mean over the S
 * draws, [nl + C·nu] in m2Rows's layout.
 */
function meanOverDraws(tf: typeof tfc, v: tfc.Tensor1D, S: number, nl: number, nu: number, C: number): tfc.Tensor1D {
  const parts: tfc.Tensor1D[] = [];
  if (nl > 0) parts.push(tf.mean(tf.reshape(tf.slice(v, [0], [S * nl]), [S, nl]), 0) as tfc.Tensor1D);
  if (nu > 0) parts.push(tf.reshape(tf.mean(tf.reshape(tf.slice(v, [S * nl], [C * S * nu]), [C, S, nu]), 1), [C * nu]) as tfc.Tensor1D);
  return (parts.length === 1 ? parts[0] : tf.concat(parts)) as tfc.Tensor1D;
}

/** The model's `terms`: the passes, their terms, and M2's semi-supervised objective over them. */
function adgmTerms(m: AdgmOps, o: AdgmOptions, alpha: number | null): AdgmModel['terms'] {
  const { tf, C, constantEntropy, entropySchedule, classifier, cat } = m;
  const S = o.aux_samples;
  const separate = o.norm_groups === 'separate';
  const upload = (a: Record<string, Int32Array>) =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, tf.tensor1d(v, 'int32')])) as Record<string, tfc.Tensor1D>;
  return (batch, w, rng, progress) => {
    const x = batch.x;
    const B = x.shape[0];
    const all = (batch.inputs ?? upload(adgmRows(batch.y ?? new Int32Array(B).fill(-1), C, S, separate))) as Record<string, tfc.Tensor1D>;
    const r = all as AdgmRows;
    const nl = r.lab.shape[0];
    let q: ReturnType<typeof inferencePasses>;
    let recon: tfc.Tensor1D, kl: tfc.Tensor1D, klA: tfc.Tensor1D;
    if (S === 1) {
      // norm_groups separate: the rows labelled first, batch normalisation split after them
      const xs = all.perm ? (tf.gather(x, all.perm) as tfc.Tensor2D) : x;
      const passes = withNormSplit(m.phase, all.perm ? nl : undefined, () => {
        const inf = inferencePasses(m, o, xs, r, rng, progress);
        return { inf, ...generativeTerms(m, inf, r, progress) };
      });
      q = passes.inf;
      ({ recon, kl, klA } = passes);
    } else {
      // every row S times, one draw of a each; the passes' terms averaged over the draws and
      // q(y|a,x) replaced by q̄(y|x) = mean_s q(y|a_s,x) (logits log q̄ for the softmax); with
      // norm_groups separate the labelled rows' S draws first, batch normalisation split after them
      const rr = Object.fromEntries(
        Object.entries(all)
          .filter(([k]) => k.startsWith('rep_') && k !== 'rep_perm')
          .map(([k, v]) => [k.slice('rep_'.length), v]),
      ) as AdgmRows;
      const xs = (all.rep_perm ? tf.gather(x, all.rep_perm) : tf.tile(x, [S, 1])) as tfc.Tensor2D;
      const { qs, g } = withNormSplit(m.phase, all.rep_perm ? S * nl : undefined, () => {
        const inf = inferencePasses(m, o, xs, rr, rng, progress);
        return { qs: inf, g: generativeTerms(m, inf, rr, progress) };
      });
      const avg = (v: tfc.Tensor1D) => meanOverDraws(tf, v, S, nl, B - nl, C);
      [recon, kl, klA] = [avg(g.recon), avg(g.kl), avg(g.klA)];
      q = { ...qs, logits: logMeanOverDraws(tf, qs.logits, S, all.rep_perm ? [nl, B - nl] : [B], C) };
    }
    const klBoth = tf.add(kl, klA) as tfc.Tensor1D;
    const lambdaH = constantEntropy
      ? ((o.entropy_weight as number | undefined) ?? 1)
      : (progress.scheduled?.m2_entropy_weight ?? entropySchedule(scheduleProgress(progress)));
    // the labelled rows' accuracy reads q(y|ā,x) at the mean ā of q(a|x), as validation does (in
    // evaluation: a second training-mode pass would move the classifier's running averages again)
    const accuracyLogits =
      nl > 0
        ? inEvaluation(m.phase, () =>
            classifier.apply(cat(tf.gather(q.qa.mu, r.lab) as tfc.Tensor2D, tf.gather(q.xShared.rows, r.lab) as tfc.Tensor2D)),
          )
        : undefined;
    // L uses the KL of z and of a together; each is reported on its own
    return semiSupervisedTerms({
      B,
      C,
      rows: r,
      recon,
      kl: klBoth,
      logits: q.logits,
      w: w as { c1: number; c2: number },
      alpha: alpha ?? w.alpha,
      classLoss: o.class_loss,
      lambdaH,
      report: { kl, kl_a: klA },
      accuracyLogits,
    });
  };
}

/**
 * classify(x): q(y|x) ≈ the mean of q(y|a_s,x) over S draws a_s ~ q(a|x) from a fixed
 * stream (the same for every call), or q(y|ā,x) at the mean ā when S = 0.
 */
function adgmClassify(m: AdgmOps, S: number, classifyRng: Rng): AdgmModel['classify'] {
  const { tf, C, A, D, encoderA, classifier, cat, gauss } = m;
  return (x) =>
    tf.tidy(() => {
      const qa = gauss(encoderA.apply(x));
      if (S === 0) return tf.softmax(classifier.apply(cat(qa.mu, x))) as tfc.Tensor2D;
      const B = x.shape[0];
      // draw s of row b in row s·B + b; the same stream for every call (deterministic)
      const eps = tf.tensor3d(classifyRng.clone().normals(S * B * A), [S, B, A]);
      const a = tf.add(tf.expandDims(qa.mu, 0), tf.mul(tf.expandDims(tf.exp(tf.mul(0.5, qa.logvar)), 0), eps));
      const xs = tf.add(tf.expandDims(x, 0), tf.zeros([S, 1, 1]));
      const logits = classifier.apply(tf.reshape(tf.concat([a, xs], 2), [S * B, A + D]) as tfc.Tensor2D);
      return tf.mean(tf.reshape(tf.softmax(logits), [S, B, C]), 0) as tfc.Tensor2D;
    });
}

/** Why log p(x, y, a, z) − log q(a|x) − log q(z|a,y,x) cannot be computed (no density), or null. */
function densityMissing(m: AdgmParts, o: AdgmOptions): string | null {
  if (!m.likelihood.logDensityK) return `the ${o.likelihood} likelihood here is ${m.likelihood.noDensity ?? 'not a density'}`;
  if (!m.prior.logPrior || !m.prior.logPosterior) return `prior '${o.prior.kind}' has no density (needed for log p(z) − log q(z|a,y,x))`;
  return null;
}

/**
 * k draws a_i ~ q(a|x) per row and, for every class y, one z ~ q(z|a_i,y,x):
 * w_i = Σ_y p(x, y, a_i, z_iy) / (q(a_i|x) q(z_iy|a_i,y,x)), an unbiased estimate of p(x)
 * (y summed out exactly instead of sampled from q(y|a,x)). Rows b·k·C + i·C + y.
 * Only where densityMissing is null.
 */
function adgmImportanceWeights(m: AdgmOps): NonNullable<AdgmModel['logImportanceWeights']> {
  const { tf, C, K, A, prior, encoderA, encoder, gauss, paPasses, pxPasses } = m;
  const logDensityK = m.likelihood.logDensityK!;
  const logPrior = prior.logPrior!;
  const logPosterior = prior.logPosterior!;
  return (x, k, rng) =>
    tf.tidy(() => {
      const B = x.shape[0];
      const rep = (t: tfc.Tensor2D, n: number) =>
        tf.reshape(tf.add(tf.expandDims(t, 1), tf.zeros([1, n, 1])), [t.shape[0] * n, t.shape[1]]) as tfc.Tensor2D;
      const qa = gauss(encoderA.apply(x));
      const muK = rep(qa.mu, k);
      const lvK = rep(qa.logvar, k);
      const a = tf.add(muK, tf.mul(tf.exp(tf.mul(0.5, lvK)), tf.tensor2d(rng.normals(B * k * A), [B * k, A]))) as tfc.Tensor2D;
      const logqa = tf.reshape(gaussianLogDensity(a, muK, lvK), [B, k]);
      // the passes by parts (withClass): x once per row, a once per draw, y looked up
      const index = (f: (i: number) => number) =>
        tf.tensor1d(
          Int32Array.from({ length: B * k * C }, (_, i) => f(i)),
          'int32',
        );
      const ys = index((i) => i % C);
      const xShared = { rows: x, idx: index((i) => Math.floor(i / (k * C))) };
      const aShared = { rows: a, idx: index((i) => Math.floor(i / C)) };
      const enc = withClass(tf, encoder, [xShared, aShared], ys, C);
      const z = prior.sample(enc, K, rng, EVAL_PROGRESS);
      const p = paPasses(xShared, z, ys);
      const aC = rep(a, C);
      const logJoint = tf.add(
        tf.reshape(logDensityK(x, pxPasses(z, aShared, ys), k * C), [B * k * C]),
        tf.add(tf.sub(logPrior(z), logPosterior(z, enc, K)), gaussianLogDensity(aC, p.mu, p.logvar)),
      );
      const perClass = tf.reshape(logJoint, [B, k, C]);
      return tf.sub(tf.sub(tf.logSumExp(perClass, 2), Math.log(C)), logqa) as tfc.Tensor2D;
    });
}

/**
 * Build ADGM or SDGM. Every term is a batch mean over the B rows:
 *   loss       = (Σ_lab L_w(x,y) + Σ_unlab U_w(x) + α·Σ_lab −log q(y|a,x)) / B
 * with, per pass of (x, a, y) and one z ~ q(z|a,y,x),
 *   L_w(x,y)   = c2·recon + c1·(kl + kl_a) + log C,
 *   recon      = −log p(x|·),  kl = KL(q(z|a,y,x) ‖ p(z)) (the prior's, analytic for gaussian),
 *   kl_a       = log q(a|x) − log p(a|·)   (the log densities of the sample a),
 *   U_w(x)     = Σ_y q(y|a,x)·L_w(x,y) − λ_H·H(q(y|a,x)),
 * so c1 weighs both KL-like terms (z's and a's), c2 the reconstruction, α the classifier.
 * labelled, unlabelled, elbo, recon, kl, kl_a, class, entropy and accuracy as in M2
 * (docs/models.md); accuracy reads q(y|ā,x) at the mean ā of q(a|x).
 */
export function adgmCore(o: AdgmOptions, ctx: ModelBuildContext, variant: AdgmVariant, where: string): AdgmModel {
  const data = ctx.data;
  if (!data.classes || data.classes < 2) {
    throw new UserError(`needs a data set with class labels (C ≥ 2); '${data.name}' has ${data.classes || 'none'}`, where);
  }
  if (!(o.aux_logvar_min < o.aux_logvar_max))
    throw new UserError(`aux_logvar_min (${o.aux_logvar_min}) must be below aux_logvar_max (${o.aux_logvar_max})`, where);
  const alpha =
    o.alpha_expression !== undefined
      ? evalAlphaExpression(o.alpha_expression, alphaNames(data), `${where.replace(/ \(.*/, '')}.alpha_expression`)
      : null;
  const m = adgmOps(adgmParts(o, ctx, variant), o);
  const { tf, C, K, prior, likelihood, entropySchedule, constantEntropy, posterior, px, decodeClass } = m;
  /** The prior's scheduled values plus λ_H (when it is a schedule), fed to a compiled step. */
  const scheduled = (p: TrainProgress): Record<string, number> => ({
    ...(prior.scheduled?.(p) ?? {}),
    ...(constantEntropy ? {} : { m2_entropy_weight: entropySchedule(scheduleProgress(p)) }),
  });
  const classifyRng = ctx.rng.fork('classify');
  const noDensity = densityMissing(m, o);
  const model: AdgmModel = {
    params: m.params,
    buffers: m.buffers,
    latent: K,
    classes: C,
    aux: m.A,
    variant,
    alpha,
    parts: { encoderA: m.encoderA, classifier: m.classifier, encoder: m.encoder, decoder: m.decoder, decoderA: m.decoderA, prior },
    stepInputs: (y, rows) => adgmRows(y ?? new Int32Array(rows).fill(-1), C, o.aux_samples, o.norm_groups === 'separate'),
    scheduled: prior.scheduled || !constantEntropy ? scheduled : undefined,
    ...(alpha !== null ? { fixedWeights: { alpha } } : {}),
    ratios: SEMI_SUPERVISED_RATIOS,
    terms: adgmTerms(m, o, alpha),
    classify: adgmClassify(m, o.classify_samples, classifyRng),
    /** The mean of q(z|ā,ŷ,x): ā the mean of q(a|x), ŷ = argmax q(y|ā,x). */
    encodeMean: (x) => tf.tidy(() => posterior(x).z),
    /** p(x|·)'s mean at the mean of q(z|ā,ŷ,x) (SDGM: with ā). */
    reconstruct: (x) =>
      tf.tidy(() => {
        const t = posterior(x);
        return likelihood.mean(px(t.z, t.a, t.y));
      }),
    /** Row i decoded with class i mod C (as M2). */
    decode: (z) =>
      decodeClass(
        z,
        Int32Array.from({ length: z.shape[0] }, (_, i) => i % C),
      ),
    decodeClass,
    sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
    // a reaches every network after q(a|x), which export does not compose
    exportable: undefined,
  };
  if (noDensity) model.noImportanceWeights = noDensity;
  else model.logImportanceWeights = adgmImportanceWeights(m);
  return model;
}

/** The loss terms adgmCore's `terms` returns: M2's and kl_a. */
export const ADGM_TERMS = [...M2_TERMS.slice(0, 3), 'kl_a', ...M2_TERMS.slice(3)];

const capabilities = (o: { prior: { kind: string }; likelihood: string }, info: Parameters<typeof latentModelCapabilities>[1]) => {
  const base = latentModelCapabilities(o, info);
  return {
    provides: [...base.provides, 'classify', 'class-conditional'] as ('latent' | 'density' | 'classify' | 'class-conditional')[],
    why: base.why,
  };
};

export const adgmModelPlugin = definePlugin({
  kind: 'model',
  name: 'adgm',
  termNames: () => ADGM_TERMS,
  capabilities,
  description:
    'Maaløe et al. 2016 auxiliary deep generative model (semi-supervised): q(a|x), q(y|a,x), q(z|a,y,x); p(x|y,z), p(a|x,y,z); y summed out on unlabelled rows',
  options: adgmOptions('adgm'),
  weights: standardWeights('c1', 'c2', 'alpha'),
  create: (o, ctx): Model => adgmCore(o, ctx, 'adgm', 'model (adgm)'),
});

export const sdgmModelPlugin = definePlugin({
  kind: 'model',
  name: 'sdgm',
  termNames: () => ADGM_TERMS,
  capabilities,
  description:
    'Maaløe et al. 2016 skip deep generative model (semi-supervised, a in the generative chain): q(a|x), q(y|a,x), q(z|a,y,x); p(a|y,z), p(x|a,y,z)',
  options: adgmOptions('sdgm'),
  weights: standardWeights('c1', 'c2', 'alpha'),
  create: (o, ctx): Model => adgmCore(o, ctx, 'sdgm', 'model (sdgm)'),
});
