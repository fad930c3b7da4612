import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, slot, Type, weight, type OptionsOf } from '../registry/define';
import { collectVariables, withNormSplit } from '../nn/network';
import { standardWeights } from '../registry/weights';
import { weightSchedule, scheduleProgress } from '../schedules/schedule';
import type { Rng } from '../runtime/rng';
import { likelihoodOf } from '../losses/likelihood';
import { semiSupervisedTerms, SEMI_SUPERVISED_RATIOS } from '../losses/m2';
import { withClass } from './class-passes';
import { UserError } from '../errors';
import type { ModelBuildContext, Model, Network, Prior, TrainProgress, DataSet, LikelihoodName, ClassConditionalModel } from '../contracts';

/**
 * Kingma et al. 2014, M2 (docs/models.md "Model: M2"): p(y) uniform, p(z) from the prior slot,
 * p(x|y,z) = decoder([z, onehot(y)]); q(y|x) = softmax(classifier(x)),
 * q(z|x,y) = encoder([x, onehot(y)]).
 *
 * The core works on features f(x) of the input (identity for `m2`; the sampled latent z1
 * of a trained M1 for `m1m2`), so the stacked model reuses it unchanged.
 */

export type M2Likelihood = LikelihoodName;

/** The options m2Core reads (m2's, and m1m2's besides its own). */
export type M2CoreOptions = Omit<OptionsOf<ReturnType<typeof m2Options<readonly M2Likelihood[]>>>, 'kind'>;

/**
 * How a batch's rows go through q(z|x,y) and p(x|y,z): labelled rows with their label,
 * then every unlabelled row once per class (block c = class c), so y is summed out
 * exactly. idx/ys: row and class of each pass; lab/labY: labelled rows and their labels;
 * unl: unlabelled rows.
 */
export function m2Rows(yb: Int32Array, C: number): { idx: Int32Array; ys: Int32Array; lab: Int32Array; labY: Int32Array; unl: Int32Array } {
  const lab: number[] = [];
  const unl: number[] = [];
  for (let i = 0; i < yb.length; i++) (yb[i] >= 0 ? lab : unl).push(i);
  const nl = lab.length;
  const nu = unl.length;
  const idx = new Int32Array(nl + C * nu);
  const ys = new Int32Array(nl + C * nu);
  lab.forEach((r, i) => {
    idx[i] = r;
    ys[i] = yb[r];
  });
  for (let c = 0; c < C; c++)
    unl.forEach((r, i) => {
      idx[nl + c * nu + i] = r;
      ys[nl + c * nu + i] = c;
    });
  return { idx, ys, lab: Int32Array.from(lab), labY: Int32Array.from(lab, (r) => yb[r]), unl: Int32Array.from(unl) };
}

/**
 * m2Rows of the batch laid out labelled first (`norm_groups: separate`): `perm` lists the
 * batch's labelled rows, then its unlabelled rows, each in batch order; the model gathers x
 * by it, so that every network input of the step (rows, and passes) starts with its nl
 * labelled rows and batch normalisation can split there (Phase.normSplit).
 */
export function labelledFirstRows(yb: Int32Array, C: number): ReturnType<typeof m2Rows> & { perm: Int32Array } {
  const perm = new Int32Array(yb.length);
  let k = 0;
  for (let i = 0; i < yb.length; i++) if (yb[i] >= 0) perm[k++] = i;
  for (let i = 0; i < yb.length; i++) if (yb[i] < 0) perm[k++] = i;
  return {
    ...m2Rows(
      Int32Array.from(perm, (r) => yb[r]),
      C,
    ),
    perm,
  };
}

/** The rows of a semi-supervised step (no labels: every row unlabelled): m2Rows, or labelledFirstRows with `norm_groups: separate`. */
export function semiSupervisedRows(
  y: Int32Array | null,
  rows: number,
  C: number,
  separate: boolean,
): ReturnType<typeof m2Rows> & { perm?: Int32Array } {
  const labels = y ?? new Int32Array(rows).fill(-1);
  return separate ? labelledFirstRows(labels, C) : m2Rows(labels, C);
}

/** The M2 model object: a Model with q(y|x), a class-conditional decoder and its alpha. */
export interface M2Model extends ClassConditionalModel {
  classify(x: tfc.Tensor2D): tfc.Tensor2D;
  /** The classification weight from alpha_expression, or null when loss.alpha is used. */
  alpha: number | null;
  /** The networks and the prior (for inspection and tests). */
  parts: { classifier: Network; encoder: Network; decoder: Network; prior: Prior };
}

/**
 * What M2 models: features of x. `sample` is used by the training objective (a fresh
 * draw per batch when the features are stochastic), `mean` by classification,
 * encoding and reconstruction; `toData` maps decoded features back to data space.
 */
export interface FeatureMap {
  dim: number;
  sample(x: tfc.Tensor2D, rng: Rng): tfc.Tensor2D;
  mean(x: tfc.Tensor2D): tfc.Tensor2D;
  toData(f: tfc.Tensor2D): tfc.Tensor2D;
}

const ALPHA_NAMES = ['N_total', 'N_labelled', 'N'];

export const ALPHA_EXPRESSION_DOC =
  'Classification weight alpha as arithmetic over N_total (training examples after the validation split, class_cap and max_train; ' +
  'with data.validation_as_unlabelled the validation images too), ' +
  "N_labelled (examples whose label is known: data.labelled, else N_total) and N (= N_total, the paper's N); numbers, + - * / and " +
  'parentheses only. When given it replaces loss.alpha. Kingma et al.: 0.1*N_total/N_labelled (per labelled example)';

/**
 * Evaluate an alpha expression such as `0.1*N_total/N_labelled` over the given names:
 * numbers, + - * /, unary +/-, parentheses. A small recursive-descent parser (never eval);
 * any other character, an unknown name, or a result that is not a finite number ≥ 0 is a
 * UserError naming the option.
 */
export function evalAlphaExpression(expr: string, names: Record<string, number>, where = 'model.alpha_expression'): number {
  const fail = (msg: string): never => {
    throw new UserError(`alpha_expression '${expr}': ${msg}`, where);
  };
  // tokens: numbers, names, operators, parentheses
  const tokens: string[] = [];
  const re = /\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/()]))/y;
  let pos = 0;
  while (pos < expr.length) {
    if (/^\s*$/.test(expr.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(expr);
    if (!m)
      fail(
        `unexpected character '${expr.slice(pos).trim()[0]}' at position ${pos + 1 + (expr.slice(pos).length - expr.slice(pos).trimStart().length)} (allowed: numbers, ${ALPHA_NAMES.join(', ')}, + - * / and parentheses)`,
      );
    tokens.push(m![1] ?? m![2] ?? m![3]);
    pos = re.lastIndex;
  }
  if (!tokens.length) fail('empty expression');
  if (tokens.length > 1000) fail(`${tokens.length} tokens; at most 1000 (this bounds the nesting depth of the parser)`);
  let i = 0;
  const peek = () => tokens[i];
  const expression = (): number => {
    let v = term();
    while (peek() === '+' || peek() === '-') v = tokens[i++] === '+' ? v + term() : v - term();
    return v;
  };
  const term = (): number => {
    let v = factor();
    while (peek() === '*' || peek() === '/') v = tokens[i++] === '*' ? v * factor() : v / factor();
    return v;
  };
  const factor = (): number => {
    const t = tokens[i++];
    if (t === undefined) return fail('ends too early');
    if (t === '+') return factor();
    if (t === '-') return -factor();
    if (t === '(') {
      const v = expression();
      if (tokens[i++] !== ')') fail("missing ')'");
      return v;
    }
    if (/^[\d.]/.test(t)) return Number(t);
    if (/^[A-Za-z_]/.test(t)) {
      if (!(t in names)) fail(`unknown name '${t}' (allowed: ${ALPHA_NAMES.join(', ')})`);
      return names[t];
    }
    return fail(`unexpected '${t}'`);
  };
  const value = expression();
  if (i < tokens.length) fail(`unexpected '${tokens[i]}' after a complete expression`);
  if (!Number.isFinite(value) || value < 0) fail(`evaluates to ${value}; alpha must be a finite number ≥ 0`);
  return value;
}

/** N_total, N_labelled and N for a data set, as alpha_expression sees them. */
export function alphaNames(data: DataSet): Record<string, number> {
  const total = data.train.n;
  return { N_total: total, N: total, N_labelled: data.labelled ? data.labelled.length : total };
}

/** Options shared by m2 and m1m2 (likelihood differs: see each plugin). */
export function m2Options<const L extends readonly M2Likelihood[]>(likelihoods: L, defaultLikelihood: L[number]) {
  return {
    latent: Type.Integer({ minimum: 1, default: 50, description: 'Latent size K of z' }),
    prior: slot('prior', { default: { kind: 'gaussian' }, description: 'p(z) and the family of q(z|x,y)' }),
    encoder: slot('network', { default: { kind: 'mlp', hidden: [500] }, description: 'q(z|x,y): a network on [x, onehot(y)]' }),
    decoder: slot('network', { default: { kind: 'mlp', hidden: [500] }, description: 'p(x|y,z): a network on [z, onehot(y)]' }),
    classifier: slot('network', {
      default: { kind: 'mlp', hidden: [500] },
      description: 'q(y|x): a network on x, softmax over the C classes',
    }),
    likelihood: Enum(likelihoods, {
      default: defaultLikelihood,
      description:
        "bernoulli: Σ BCE (x in [0,1]); gaussian: the image loss ‖x − x̂‖²; gaussian_learned: −log N(x; μ, σ²) with μ and log σ² from the decoder (Kingma's type_px = gaussian)",
    }),
    class_noise: Enum(['independent', 'shared'], {
      default: 'independent',
      description:
        "Noise of z across the C class passes of an unlabelled row: independent (a draw per pass, as Kingma's code) or shared " +
        "(one draw per row for all C passes: common random numbers, so the differences L(x,y) − L(x,y') that train q(y|x) carry less sampling noise; every L(x,y) stays unbiased)",
    }),
    class_loss: Enum(['sum', 'mean'], {
      default: 'sum',
      description:
        "How α weighs the classification term: sum (Kingma's): α·Σ_lab −log q(y|x) / B, α per labelled example, the batch's labelled share scaling it; " +
        'mean: α·mean_lab −log q(y|x), the same weight whatever the labelled count (as the public reproductions write it). With L labelled rows in a batch of B rows, ' +
        "sum with α equals mean with α·L/B (Kingma's α = 50 with 100 labelled of 200 rows is mean with 25)",
    }),
    entropy_weight: weight(
      1,
      'Weight λ_H of H(q(y|x)) in the unlabelled objective U(x) = Σ_y q(y|x)·L(x,y) − λ_H·H(q(y|x)) (1: the bound). A schedule from 0 to 1 ' +
        '(a warm-up in epochs) lets q(y|x) become confident from the labels first, so p(x|y,z) learns to use y; the elbo terms always use λ_H = 1',
    ),
    alpha_expression: Type.Optional(
      Type.String({
        pattern: '^[-+*/()0-9.eE_A-Za-z\\s]+$',
        description: ALPHA_EXPRESSION_DOC,
      }),
    ),
    norm_groups: Type.Optional(
      Enum(['together', 'separate'], {
        description:
          "Batch normalisation's statistics in the training step (networks with norm: batch): together, over all the rows of a call (labelled and unlabelled mixed); " +
          "separate: the labelled rows and the unlabelled rows (their class passes) each by their own, the running averages by the unlabelled ones only, as the ADGM authors' code " +
          '(separate passes). Absent: together',
      }),
    ),
  };
}

/** The prior, the λ_H schedule, the likelihood and the three networks of M2, created in this order (so each draws the same random numbers). */
function m2Networks(o: M2CoreOptions, ctx: ModelBuildContext, features: FeatureMap | null, D: number, C: number, K: number) {
  const data = ctx.data;
  // the prior comes first (the encoder's size depends on it); a prior that reads the encoder gets it when it computes
  let built: Network | null = null;
  const prior = ctx.registry.create('prior', o.prior, {
    ...ctx,
    rng: ctx.rng.fork('prior'),
    latent: K,
    inDim: D + C,
    encoder: () => built!,
  });
  const entropySchedule = weightSchedule(o.entropy_weight ?? 1, ctx.registry, ctx);
  const constantEntropy = typeof (o.entropy_weight ?? 1) === 'number';
  const likelihood = likelihoodOf(o.likelihood, D);
  const outPerDim = likelihood.outPerDim;
  const classifier = ctx.registry.create('network', o.classifier, {
    ...ctx,
    rng: ctx.rng.fork('classifier'),
    shape: { inDim: D, outDim: C, ...(features ? {} : { inShape: data.shape }) },
  });
  const encoder = ctx.registry.create('network', o.encoder, {
    ...ctx,
    rng: ctx.rng.fork('encoder'),
    shape: { inDim: D + C, outDim: prior.paramsPerLatent * K },
  });
  const decoder = ctx.registry.create('network', o.decoder, {
    ...ctx,
    rng: ctx.rng.fork('decoder'),
    shape: { inDim: K + C, outDim: outPerDim * D, ...(features || outPerDim > 1 ? {} : { outShape: data.shape }) },
  });
  built = encoder;
  return { prior, entropySchedule, constantEntropy, likelihood, classifier, encoder, decoder };
}

/** M2's inference methods: q(y|x), the posterior mean under ŷ = argmax q(y|x), reconstruction and class-conditional decoding. */
function m2Inference(
  ctx: ModelBuildContext,
  features: FeatureMap | null,
  likelihood: ReturnType<typeof likelihoodOf>,
  parts: M2Model['parts'],
  C: number,
  K: number,
): Pick<M2Model, 'classify' | 'encodeMean' | 'reconstruct' | 'decode' | 'decodeClass'> {
  const tf = ctx.tf;
  const { classifier, encoder, decoder, prior } = parts;
  /** Decoder output → the data-space mean (through the feature map back to x). */
  const toData = (out: tfc.Tensor2D): tfc.Tensor2D => {
    const f = likelihood.mean(out);
    return features ? features.toData(f) : f;
  };
  const oneHot = (y: Int32Array) => tf.cast(tf.oneHot(tf.tensor1d(y, 'int32'), C), 'float32') as tfc.Tensor2D;
  const featMean = (x: tfc.Tensor2D) => (features ? features.mean(x) : x);
  const argmaxY = (f: tfc.Tensor2D) => Int32Array.from(tf.argMax(classifier.apply(f), 1).dataSync());
  const decodeClass = (z: tfc.Tensor2D, y: Int32Array) =>
    tf.tidy(() => toData(decoder.apply(tf.concat([z, oneHot(y)], 1) as tfc.Tensor2D)));
  const posteriorMean = (f: tfc.Tensor2D, y: Int32Array) => prior.mean(encoder.apply(tf.concat([f, oneHot(y)], 1) as tfc.Tensor2D), K);
  return {
    classify: (x) => tf.tidy(() => tf.softmax(classifier.apply(featMean(x))) as tfc.Tensor2D),
    /** Means of q(z|x, ŷ) with ŷ = argmax q(y|x). */
    encodeMean: (x) =>
      tf.tidy(() => {
        const f = featMean(x);
        return posteriorMean(f, argmaxY(f));
      }),
    /** Decode the mean of q(z|x, ŷ) with ŷ = argmax q(y|x). */
    reconstruct: (x) =>
      tf.tidy(() => {
        const f = featMean(x);
        const y = argmaxY(f);
        return toData(decoder.apply(tf.concat([posteriorMean(f, y), oneHot(y)], 1) as tfc.Tensor2D));
      }),
    /** p(x|y,z) has no y here: row i is decoded with class i mod C (a prior sample grid shows every class in turn). */
    decode: (z) =>
      decodeClass(
        z,
        Int32Array.from({ length: z.shape[0] }, (_, i) => i % C),
      ),
    decodeClass,
  };
}

/**
 * Build M2 on top of `features` (null: x itself). Every term is a batch mean:
 *   loss       = (Σ_lab L_w(x,y) + Σ_unlab U_w(x) + α·Σ_lab −log q(y|x)) / B
 * with L_w = c2·recon + c1·KL + log C (so c1, c2 act inside L and, through it, inside U),
 *   labelled   = Σ_lab L(x,y) / B, unlabelled = Σ_unlab U(x) / B (c1 = c2 = 1),
 *   elbo       = −(labelled + unlabelled), the bound on log p(x,y) resp. log p(x),
 *   recon, kl  = their expectations under q(y|x) for unlabelled rows, per row, / B,
 *   class      = Σ_lab −log q(y|x) / B, entropy = Σ_unlab H(q(y|x)) / B,
 *   accuracy   = Σ_lab [argmax q(y|x) = y] / B.
 * Each is the share of its rows in the batch mean, so with every row labelled (val/ and
 * test/, where the evaluators pass all labels) labelled, class and accuracy are plain
 * means. Unlabelled rows are tiled C times (one block per class) and go through
 * q(z|x,y) and p(x|y,z) in the same forward pass as the labelled rows.
 */
export function m2Core(o: M2CoreOptions, ctx: ModelBuildContext, features: FeatureMap | null, where: string): M2Model {
  const tf = ctx.tf;
  const data = ctx.data;
  if (!data.classes || data.classes < 2) {
    throw new UserError(`needs a data set with class labels (C ≥ 2); '${data.name}' has ${data.classes || 'none'}`, where);
  }
  const C = data.classes;
  const K = o.latent;
  const D = features ? features.dim : data.dim;
  const alpha =
    o.alpha_expression !== undefined
      ? evalAlphaExpression(o.alpha_expression, alphaNames(data), `${where.replace(/ \(.*/, '')}.alpha_expression`)
      : null;
  const { prior, entropySchedule, constantEntropy, likelihood, classifier, encoder, decoder } = m2Networks(o, ctx, features, D, C, K);
  /** The prior's scheduled values plus λ_H (when it is a schedule), fed to a compiled step. */
  const scheduled = (p: TrainProgress): Record<string, number> => ({
    ...(prior.scheduled?.(p) ?? {}),
    ...(constantEntropy ? {} : { m2_entropy_weight: entropySchedule(scheduleProgress(p)) }),
  });
  const { params, buffers } = collectVariables({ classifier, encoder, decoder, prior });

  /** −log p(x|y,z) per row. */
  const nll = likelihood.nll;
  const upload = (a: Record<string, Int32Array>) =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, tf.tensor1d(v, 'int32')])) as Record<
      keyof ReturnType<typeof m2Rows>,
      tfc.Tensor1D
    > & { perm?: tfc.Tensor1D };
  const separate = o.norm_groups === 'separate';

  const model: M2Model = {
    params,
    buffers,
    latent: K,
    classes: C,
    alpha,
    parts: { classifier, encoder, decoder, prior },
    stepInputs: (y, rows) => semiSupervisedRows(y, rows, C, separate),
    scheduled: prior.scheduled || !constantEntropy ? scheduled : undefined,
    ...(alpha !== null ? { fixedWeights: { alpha } } : {}),
    ratios: SEMI_SUPERVISED_RATIOS,
    terms(batch, w, rng, progress) {
      const B = batch.x.shape[0];
      const r = (batch.inputs ?? upload(semiSupervisedRows(batch.y, B, C, separate))) as ReturnType<typeof upload>;
      // norm_groups separate: the rows labelled first, batch normalisation split after them
      const x0 = r.perm ? (tf.gather(batch.x, r.perm) as tfc.Tensor2D) : batch.x;
      const x = features ? features.sample(x0, rng) : x0;
      const nets = <T>(fn: () => T) => withNormSplit(ctx.phase, r.perm ? r.lab.shape[0] : undefined, fn);
      const bare = <T>(fn: () => T) => withNormSplit(ctx.phase, undefined, fn);
      const enc = nets(() => withClass(tf, encoder, [{ rows: x, idx: r.idx }], r.ys, C));
      const z = bare(() => prior.sample(enc, K, rng, progress, o.class_noise === 'shared' ? { rows: B, index: r.idx } : undefined));
      const recon = nll(
        tf.gather(x, r.idx) as tfc.Tensor2D,
        nets(() => withClass(tf, decoder, [z], r.ys, C)),
      );
      const kl = bare(() => prior.kl(enc, K, progress, z));
      const logits = nets(() => classifier.apply(x));
      const lambdaH = constantEntropy
        ? ((o.entropy_weight as number | undefined) ?? 1)
        : (progress.scheduled?.m2_entropy_weight ?? entropySchedule(scheduleProgress(progress)));
      return semiSupervisedTerms({
        B,
        C,
        rows: r,
        recon,
        kl,
        logits,
        w: w as { c1: number; c2: number },
        alpha: alpha ?? w.alpha,
        classLoss: o.class_loss,
        lambdaH,
        report: { kl },
      });
    },
    ...m2Inference(ctx, features, likelihood, { classifier, encoder, decoder, prior }, C, K),
    sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
    noImportanceWeights:
      'M2 has no importance weights here (its marginal needs y summed out inside the importance sum); use the elbo evaluator',
    // m1m2's features go through M1's networks, which export does not compose
    exportable: features
      ? undefined
      : {
          latent: K,
          encoder,
          decoder,
          prior,
          output: o.likelihood === 'bernoulli' ? 'sigmoid' : o.likelihood === 'gaussian' ? 'identity' : 'gaussian-mean',
          classes: { count: C, classifier },
        },
  };
  return model;
}

/** The loss terms m2Core's `terms` returns (and so the train/, val/ and elbo evaluator names). */
export const M2_TERMS = ['loss', 'recon', 'kl', 'labelled', 'unlabelled', 'class', 'entropy', 'accuracy', 'elbo'];

export const m2ModelPlugin = definePlugin({
  kind: 'model',
  name: 'm2',
  termNames: () => M2_TERMS,
  provides: ['latent', 'classify', 'class-conditional'],
  description:
    'Kingma et al. 2014 M2 (semi-supervised): q(y|x), q(z|x,y), p(x|y,z); rows with y = −1 sum y out exactly; J = ΣL + ΣU + α·Σ_lab −log q(y|x)',
  options: m2Options(['bernoulli', 'gaussian', 'gaussian_learned'], 'bernoulli'),
  weights: standardWeights('c1', 'c2', 'alpha'),
  create: (o, ctx): Model => m2Core(o, ctx, null, 'model (m2)'),
});
