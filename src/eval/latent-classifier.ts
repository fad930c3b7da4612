import type * as tfc from '@tensorflow/tfjs-core';
import { definePlugin, Enum, ObjectOf, Type, type OptionsOf } from '../registry/define';
import { evalGraph } from './compiled';
import { binarizeOnce, labelledSubset, subset } from '../data/splits';
import { UserError } from '../errors';
import { Rng } from '../runtime/rng';
import { SVM_DEFAULTS } from '../svm/linear-svm';
import { svmPredict } from '../svm/multiclass';
import type { Model, CompileMode } from '../contracts';

export type ClassifierKind = 'logistic' | 'knn' | 'svm' | 'tsvm' | 'linear-sgd';
/** Which latent code the classifier reads: the posterior mean (Prior.mean) or μ as the encoder emits it (Prior.mu). */
export type Features = 'mean' | 'mu';
/** How `labelled: N` draws its rows: N/C per class, or N uniformly without replacement. */
export type LabelledDraw = 'balanced' | 'uniform';
export type Standardize = 'global' | 'per-dimension' | 'none';

/** Latent features of labelled examples: n rows of K values, labels in [0, C). */
export interface LatentSet {
  z: Float32Array;
  y: Int32Array;
  n: number;
}

export interface ClassifierOptions {
  classifier: ClassifierKind;
  k: number;
  standardize: Standardize;
  /** logistic only (the SVMs use C) */
  l2: number;
  steps: number;
  lr: number;
  /** svm and tsvm: the labelled examples' C (default 1, scikit-learn's) */
  C?: number;
  /** tsvm: the unlabelled examples' final weight C* (default: C) */
  C_unlabelled?: number;
  /** svm and tsvm: dual coordinate descent tolerance (1e-4) and passes per solve (1000) */
  tol?: number;
  max_iter?: number;
  /** tsvm: unlabelled training examples used at most (the evaluator subsamples; 10,000) */
  unlabelled?: number;
  /** linear-sgd: its training (see SGD_DEFAULTS) */
  sgd?: Partial<SgdOptions>;
}

/**
 * linear-sgd: the VSC reproduction's classifier (Alfo5123/Variational-Sparse-Coding,
 * notebooks/Experiment_Plots.ipynb): one linear layer K → C, a ReLU on its outputs (as
 * there), softmax cross-entropy, SGD with momentum over shuffled mini-batches (the last one
 * smaller), weights initialised U(±1/√K) as PyTorch's nn.Linear.
 */
export interface SgdOptions {
  epochs: number;
  batch_size: number;
  lr: number;
  momentum: number;
  /** A ReLU on the logits (the reproduction's Classifier.forward); false: plain softmax regression. */
  relu: boolean;
}
export const SGD_DEFAULTS: SgdOptions = { epochs: 20, batch_size: 32, lr: 0.001, momentum: 0.9, relu: true };

export const TSVM_UNLABELLED_DEFAULT = 10000;

const latentClassifierOptions = {
  classifier: Enum(['logistic', 'knn', 'svm', 'tsvm', 'linear-sgd'], {
    default: 'logistic',
    description:
      "logistic: multinomial logistic regression; knn: k nearest neighbours; svm: linear SVM (squared hinge, one-vs-rest; scikit-learn's LinearSVC, solved by LIBLINEAR's dual coordinate descent); tsvm: Joachims' transductive SVM on the same loss, the labelled examples plus `unlabelled` unlabelled training examples; linear-sgd: the VSC reproduction's classifier, one linear layer (ReLU on its outputs) trained by SGD with momentum (options under `sgd`)",
  }),
  features: Enum(['mean', 'mu'], {
    default: 'mean',
    description:
      "The latent code classified: mean = the posterior mean (the prior's `mean`; γ⊙μ for spike-slab by default); mu = μ as the encoder emits it (the slab mean, spikes ignored; the VSC reproduction's features). The same for a Gaussian posterior",
  }),
  sgd: ObjectOf(
    {
      epochs: Type.Integer({ minimum: 1, default: SGD_DEFAULTS.epochs, description: 'Passes over the labelled examples' }),
      batch_size: Type.Integer({
        minimum: 1,
        default: SGD_DEFAULTS.batch_size,
        description: 'Examples per step (the last step of an epoch takes the rest)',
      }),
      lr: Type.Number({ exclusiveMinimum: 0, default: SGD_DEFAULTS.lr, description: 'SGD learning rate' }),
      momentum: Type.Number({
        minimum: 0,
        maximum: 1,
        default: SGD_DEFAULTS.momentum,
        description: "Momentum (PyTorch's: v ← μ·v + g, p ← p − lr·v)",
      }),
      relu: Type.Boolean({
        default: SGD_DEFAULTS.relu,
        description: 'A ReLU on the logits, as the reproduction; false: plain softmax regression',
      }),
    },
    {
      additionalProperties: false,
      default: {},
      description:
        "linear-sgd: its training, by default the VSC reproduction's (20 epochs, batch 32, SGD lr 0.001, momentum 0.9, ReLU on the outputs)",
    },
  ),
  k: Type.Integer({ minimum: 1, default: 5, description: 'Neighbours for knn' }),
  standardize: Enum(['global', 'per-dimension', 'none'], {
    default: 'global',
    description:
      'Centre each latent dimension (statistics of the labelled set), then global: divide all by one common scale (unused dimensions stay small); per-dimension: unit variance each; none: raw latent means',
  }),
  l2: Type.Number({ minimum: 0, default: 0.001, description: 'logistic: L2 penalty ½·l2·‖W‖² (loss is a mean over examples)' }),
  steps: Type.Integer({ minimum: 1, default: 500, description: 'logistic: full-batch Adam steps' }),
  lr: Type.Number({ exclusiveMinimum: 0, default: 0.05, description: 'logistic: Adam learning rate' }),
  C: Type.Number({
    exclusiveMinimum: 0,
    default: SVM_DEFAULTS.C,
    description: 'svm, tsvm: C of ½‖w‖² + C Σ max(0, 1 − y wᵀx)² (a sum over examples; the intercept is penalised, as LIBLINEAR does)',
  }),
  C_unlabelled: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, description: "tsvm: the unlabelled examples' final weight C* (default: C)" }),
  ),
  tol: Type.Number({
    exclusiveMinimum: 0,
    default: SVM_DEFAULTS.tol,
    description: 'svm, tsvm: stop a solve when the projected gradient spans at most tol over a pass (LIBLINEAR, scikit-learn)',
  }),
  max_iter: Type.Integer({
    minimum: 1,
    default: SVM_DEFAULTS.maxIter,
    description: 'svm, tsvm: coordinate-descent passes per solve at most',
  }),
  unlabelled: Type.Integer({
    minimum: 0,
    default: TSVM_UNLABELLED_DEFAULT,
    description: 'tsvm: unlabelled training examples (those outside the labelled set) it uses at most, a subsample drawn with the run seed',
  }),
  labelled: Type.Optional(
    Type.Integer({
      minimum: 1,
      description:
        'When the data set has no labelled subset: use N training labels, drawn with the run seed as labelled_draw says (default: every training label)',
    }),
  ),
  labelled_draw: Enum(['balanced', 'uniform'], {
    default: 'balanced',
    description:
      'How `labelled: N` draws: balanced = N/C per class; uniform = N rows uniformly without replacement (the VSC reproduction: 5,000 of the 60,000 training images)',
  }),
  prefix: Type.String({
    pattern: '^[A-Za-z0-9_]+$',
    default: 'latent_classifier',
    description:
      "Metric names: <prefix>_error, <prefix>_accuracy, <prefix>_labelled (to run several classifiers in one config); svm adds <prefix>_svm_objective (summed over the one-vs-rest problems) and _svm_iterations (the most over them); tsvm adds those of its inductive start, _svm_error (that start's test error), _tsvm_objective, _tsvm_switches and _unlabelled",
  }),
  batch_size: Type.Integer({ minimum: 1, default: 1000, description: 'Examples per encoder pass' }),
};
export type LatentClassifierOptions = OptionsOf<typeof latentClassifierOptions>;

/**
 * Latent codes of `n` rows of `x` ([n·dim]), encoded in batches and read back: [n·K].
 * `mean`: the posterior means (the prior's `mean`); `mu`: μ as the encoder emits it.
 * On the tensorflow backend each batch runs as one compiled graph (src/eval/compiled.ts).
 */
export function encodeMeans(
  tf: typeof tfc,
  model: Model,
  x: Float32Array,
  n: number,
  dim: number,
  batch: number,
  features: Features = 'mean',
  compile?: CompileMode,
): Float32Array {
  if (features === 'mu' && !model.encodeMu) {
    throw new UserError(
      'features: mu needs a model whose prior has a location μ (gaussian, spike-slab); use features: mean',
      'eval: latent-classifier',
    );
  }
  const encode = features === 'mu' ? model.encodeMu!.bind(model) : model.encodeMean.bind(model);
  const out = new Float32Array(n * model.latent);
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    const z = tf.tidy(() => {
      const xs = tf.tensor2d(x.subarray(start * dim, end * dim), [end - start, dim]);
      const graph = evalGraph(tf, model, `encode ${features}`, [xs], ([t]) => [encode(t as tfc.Tensor2D)], null, { compile });
      return graph ? graph.run([xs], null)[0] : encode(xs);
    });
    out.set(z.dataSync() as Float32Array, start * model.latent);
    z.dispose();
  }
  return out;
}

/**
 * Shift and scale of the features, from the training features. Every mode but `none`
 * centres each dimension. `global` divides all dimensions by one common scale, the root
 * mean variance, so that the features have unit average variance and keep their relative
 * scales; `per-dimension` gives each dimension unit variance (a dimension whose std is
 * below 1% of the root mean variance is divided by that floor instead). Per-dimension
 * scaling makes an L2 penalty treat dimensions alike, but it also inflates unused,
 * near-constant latents (common in VAEs, the norm with sparse priors) into pure noise, which
 * hurts k-NN most: on M1's MNIST latents (100 labels) its 3-NN error was 48%, against 24%
 * with global scaling.
 */
function standardizer(z: Float32Array, n: number, K: number, mode: Standardize): { mean: Float32Array; scale: Float32Array } {
  const mean = new Float32Array(K);
  const scale = new Float32Array(K).fill(1);
  if (mode === 'none') return { mean, scale };
  const sum = new Float64Array(K);
  const sq = new Float64Array(K);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < K; k++) {
      const v = z[i * K + k];
      sum[k] += v;
      sq[k] += v * v;
    }
  const variance = new Float64Array(K);
  let meanVar = 0;
  for (let k = 0; k < K; k++) {
    mean[k] = sum[k] / n;
    variance[k] = Math.max(0, sq[k] / n - (sum[k] / n) ** 2);
    meanVar += variance[k] / K;
  }
  const rms = Math.max(Math.sqrt(meanVar), 1e-12);
  for (let k = 0; k < K; k++) scale[k] = mode === 'global' ? rms : Math.max(Math.sqrt(variance[k]), 1e-2 * rms);
  return { mean, scale };
}

/** Percent of `predictions` that match `y`. */
function accuracyOf(predictions: Int32Array, y: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < y.length; i++) if (predictions[i] === y[i]) correct++;
  return (100 * correct) / Math.max(1, y.length);
}

/**
 * Fit a classifier on `train` latents and report its error and accuracy (both in percent,
 * as the papers' tables) on `test`, plus the classifier's own `metrics` (names without the
 * evaluator's prefix; see svmPredict, src/svm/multiclass.ts). `unlabelled` (rows of K
 * latents) is the TSVM's unlabelled set; it is scaled with the labelled set's statistics, as
 * `test` is. `rng` orders the SVM solver's coordinate passes (default: a fixed seed).
 * Deterministic: full-batch optimisation from zero weights (logistic), a seeded solver (svm,
 * tsvm), exact nearest neighbours (knn).
 */
export function classifyLatents(
  tf: typeof tfc,
  train: LatentSet,
  test: LatentSet,
  K: number,
  classes: number,
  o: ClassifierOptions,
  extra: { unlabelled?: Float32Array; rng?: Rng } = {},
): { error: number; accuracy: number; predictions: Int32Array; metrics: Record<string, number> } {
  const { mean, scale } = standardizer(train.z, train.n, K, o.standardize);
  const apply = (z: Float32Array) => z.map((v, i) => (v - mean[i % K]) / scale[i % K]);
  const ztr = apply(train.z);
  const zte = apply(test.z);
  let metrics: Record<string, number> = {};
  let predictions: Int32Array;
  if (o.classifier === 'knn') predictions = knnPredict(tf, { ...train, z: ztr }, zte, test.n, K, classes, o.k);
  else if (o.classifier === 'logistic') predictions = linearPredict(tf, { ...train, z: ztr }, zte, test.n, K, classes, o);
  else if (o.classifier === 'linear-sgd') {
    const r = sgdPredict({ ...train, z: ztr }, zte, test.n, K, classes, { ...SGD_DEFAULTS, ...o.sgd }, extra.rng ?? new Rng(0));
    predictions = r.predictions;
    metrics = { sgd_loss: r.loss };
  } else {
    const zu = o.classifier === 'tsvm' ? apply(extra.unlabelled ?? new Float32Array(0)) : null;
    const r = svmPredict({ ...train, z: ztr }, zte, test.n, K, classes, o, extra.rng ?? new Rng(0), zu);
    predictions = r.predictions;
    metrics = r.metrics;
    if (r.inductive) metrics.svm_error = 100 - accuracyOf(r.inductive, test.y);
  }
  const accuracy = accuracyOf(predictions, test.y);
  return { error: 100 - accuracy, accuracy, predictions, metrics };
}

/**
 * Multinomial logistic regression (softmax cross-entropy) with an L2 penalty ½·l2·‖W‖² (bias
 * not penalised), fitted by full-batch Adam from zero weights. The gradient is written out
 * (a few ops per step, no tape): ∂/∂S = (softmax(S) − Y)/n.
 */
function linearPredict(
  tf: typeof tfc,
  train: LatentSet,
  zte: Float32Array,
  nTest: number,
  K: number,
  C: number,
  o: ClassifierOptions,
): Int32Array {
  const n = train.n;
  const withBias = (z: Float32Array, rows: number) => {
    const out = new Float32Array(rows * (K + 1));
    for (let i = 0; i < rows; i++) {
      out.set(z.subarray(i * K, (i + 1) * K), i * (K + 1));
      out[i * (K + 1) + K] = 1;
    }
    return tf.tensor2d(out, [rows, K + 1]);
  };
  const X = withBias(train.z, n);
  const Y = tf.tidy(() => tf.oneHot(tf.tensor1d(train.y, 'int32'), C).toFloat());
  // L2 on the weights, not on the bias row
  const penalty = tf.tidy(() => tf.mul(o.l2, tf.concat([tf.ones([K, C]), tf.zeros([1, C])], 0)));
  const gradient = (W: tfc.Tensor) =>
    tf.tidy(() => {
      const S = tf.matMul(X, W as tfc.Tensor2D);
      const dS = tf.div(tf.sub(tf.softmax(S), Y), n);
      return tf.add(tf.matMul(X, dS as tfc.Tensor2D, true, false), tf.mul(penalty, W));
    });
  const W = adam(tf, gradient, tf.zeros([K + 1, C]), o.steps, o.lr);
  const pred = tf.tidy(() => {
    const Xte = withBias(zte, nTest);
    return tf.argMax(tf.matMul(Xte, W as tfc.Tensor2D), 1);
  });
  const out = Int32Array.from(pred.dataSync());
  [pred, W, X, Y, penalty].forEach((t) => t.dispose());
  return out;
}

/**
 * The linear-sgd classifier (SgdOptions), in plain JS with float64 arithmetic: the same
 * result on every backend. Each epoch visits the training rows in a fresh order drawn from
 * `rng`. Returns the test predictions (argmax of the outputs, the first on ties) and the
 * mean training loss of the last epoch.
 */
function sgdPredict(
  train: LatentSet,
  zte: Float32Array,
  nTest: number,
  K: number,
  C: number,
  o: SgdOptions,
  rng: Rng,
): { predictions: Int32Array; loss: number } {
  const init = rng.fork('init');
  const bound = 1 / Math.sqrt(K);
  const W = Float64Array.from({ length: K * C }, () => (2 * init.uniform() - 1) * bound); // [K, C]
  const b = Float64Array.from({ length: C }, () => (2 * init.uniform() - 1) * bound);
  const vW = new Float64Array(K * C);
  const vb = new Float64Array(C);
  const gW = new Float64Array(K * C);
  const gb = new Float64Array(C);
  const a = new Float64Array(C);
  const forward = (z: Float32Array, row: number) => {
    for (let j = 0; j < C; j++) a[j] = b[j];
    for (let k = 0; k < K; k++) {
      const v = z[row * K + k];
      if (v !== 0) for (let j = 0; j < C; j++) a[j] += v * W[k * C + j];
    }
  };
  let lastLoss = NaN;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = rng.fork(`epoch-${epoch}`).permutation(train.n);
    let lossSum = 0;
    for (let start = 0; start < train.n; start += o.batch_size) {
      const end = Math.min(train.n, start + o.batch_size);
      const m = end - start;
      gW.fill(0);
      gb.fill(0);
      for (let t = start; t < end; t++) {
        const row = order[t];
        forward(train.z, row);
        // outputs (ReLU or not), softmax cross-entropy against y
        let max = -Infinity;
        for (let j = 0; j < C; j++) max = Math.max(max, o.relu ? Math.max(0, a[j]) : a[j]);
        let sum = 0;
        for (let j = 0; j < C; j++) sum += Math.exp((o.relu ? Math.max(0, a[j]) : a[j]) - max);
        const y = train.y[row];
        lossSum += max + Math.log(sum) - (o.relu ? Math.max(0, a[y]) : a[y]);
        for (let j = 0; j < C; j++) {
          const out = o.relu ? Math.max(0, a[j]) : a[j];
          let d = (Math.exp(out - max) / sum - (j === y ? 1 : 0)) / m;
          if (o.relu && a[j] <= 0) d = 0;
          if (d === 0) continue;
          gb[j] += d;
          for (let k = 0; k < K; k++) gW[k * C + j] += d * train.z[row * K + k];
        }
      }
      // PyTorch's SGD with momentum (no dampening): v ← μ·v + g, p ← p − lr·v
      for (let i = 0; i < W.length; i++) {
        vW[i] = o.momentum * vW[i] + gW[i];
        W[i] -= o.lr * vW[i];
      }
      for (let j = 0; j < C; j++) {
        vb[j] = o.momentum * vb[j] + gb[j];
        b[j] -= o.lr * vb[j];
      }
    }
    lastLoss = lossSum / train.n;
  }
  const predictions = new Int32Array(nTest);
  for (let i = 0; i < nTest; i++) {
    forward(zte, i);
    let best = 0;
    for (let j = 1; j < C; j++) if ((o.relu ? Math.max(0, a[j]) : a[j]) > (o.relu ? Math.max(0, a[best]) : a[best])) best = j;
    predictions[i] = best;
  }
  return { predictions, loss: lastLoss };
}

/** Plain Adam (β = 0.9, 0.999, ε = 1e-8) for `steps` full-batch steps from `init` (taken over); returns the result. */
function adam(tf: typeof tfc, gradient: (w: tfc.Tensor) => tfc.Tensor, init: tfc.Tensor, steps: number, lr: number): tfc.Tensor {
  const b1 = 0.9;
  const b2 = 0.999;
  let w = init;
  let m = tf.zerosLike(init);
  let v = tf.zerosLike(init);
  for (let t = 1; t <= steps; t++) {
    const next = tf.tidy(() => {
      const g = gradient(w);
      const mt = tf.add(tf.mul(b1, m), tf.mul(1 - b1, g));
      const vt = tf.add(tf.mul(b2, v), tf.mul(1 - b2, tf.square(g)));
      const step = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      const wt = tf.sub(w, tf.mul(step, tf.div(mt, tf.add(tf.sqrt(vt), 1e-8))));
      return [wt, mt, vt];
    });
    [w, m, v].forEach((x) => x.dispose());
    [w, m, v] = next;
  }
  m.dispose();
  v.dispose();
  return w;
}

/**
 * k nearest neighbours in Euclidean distance, majority vote; a tie goes to the tied class
 * whose nearest member is closest. Test rows go in chunks so memory stays bounded.
 */
function knnPredict(tf: typeof tfc, train: LatentSet, zte: Float32Array, nTest: number, K: number, C: number, k: number): Int32Array {
  const kk = Math.min(k, train.n);
  const out = new Int32Array(nTest);
  const X = tf.tensor2d(train.z, [train.n, K]);
  const xNorm = tf.tidy(() => tf.sum(tf.square(X), 1));
  const chunk = Math.max(1, Math.min(nTest, Math.floor(2e7 / Math.max(1, train.n))));
  for (let start = 0; start < nTest; start += chunk) {
    const end = Math.min(nTest, start + chunk);
    const idx = tf.tidy(() => {
      const Q = tf.tensor2d(zte.subarray(start * K, end * K), [end - start, K]);
      // −‖q − x‖² = 2 q·x − ‖x‖² − ‖q‖²; the last term does not change the ranking
      const negDist = tf.sub(tf.mul(2, tf.matMul(Q, X, false, true)), xNorm);
      return tf.topk(negDist, kk).indices;
    });
    const nn = idx.dataSync();
    idx.dispose();
    for (let r = 0; r < end - start; r++) {
      const votes = new Array(C).fill(0);
      const first = new Array(C).fill(Infinity);
      for (let j = 0; j < kk; j++) {
        const c = train.y[nn[r * kk + j]];
        votes[c]++;
        if (first[c] === Infinity) first[c] = j;
      }
      let best = 0;
      for (let c = 1; c < C; c++) if (votes[c] > votes[best] || (votes[c] === votes[best] && first[c] < first[best])) best = c;
      out[start + r] = best;
    }
  }
  X.dispose();
  xNorm.dispose();
  return out;
}

/**
 * Rows of the training split whose labels the classifier may use: the data set's labelled
 * subset, else `requested` rows drawn with `rng` (`balanced`: N/C per class; `uniform`: N
 * rows uniformly without replacement, whatever their classes), else every row.
 */
export function labelledRows(
  data: { train: { n: number; y: Int32Array | null; x: Float32Array }; labelled: Int32Array | null; classes: number },
  requested: number | undefined,
  rng: Rng,
  where: string,
  draw: LabelledDraw = 'balanced',
): Int32Array {
  if (data.labelled) {
    if (requested !== undefined && requested !== data.labelled.length) {
      throw new UserError(
        `labelled: ${requested} conflicts with the data set's labelled subset of ${data.labelled.length}; set it in one place (data.labelled or this evaluator)`,
        where,
      );
    }
    return data.labelled;
  }
  if (requested !== undefined && draw === 'uniform') {
    if (requested > data.train.n) throw new UserError(`labelled: ${requested} is more than the ${data.train.n} training rows`, where);
    return Int32Array.from(rng.permutation(data.train.n).subarray(0, requested)).sort();
  }
  if (requested !== undefined) return labelledSubset(data.train, data.classes, requested, rng, where);
  return Int32Array.from({ length: data.train.n }, (_, i) => i);
}

/**
 * M1's classifier and VSC's evaluation: encode the labelled training examples, fit a simple
 * classifier on their latent means, report its error on the test split. The transductive
 * SVM (`tsvm`) also encodes up to `unlabelled` other training examples (a subsample drawn
 * with the run's seed; their labels are never read) as its unlabelled set.
 */
export const latentClassifierEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'latent-classifier',
  metrics: (o) => {
    const names = ['error', 'accuracy', 'labelled'];
    if (o.classifier === 'svm' || o.classifier === 'tsvm') names.push('svm_objective', 'svm_iterations');
    if (o.classifier === 'tsvm') names.push('svm_error', 'tsvm_objective', 'tsvm_switches', 'unlabelled');
    if (o.classifier === 'linear-sgd') names.push('sgd_loss');
    return names.map((n) => `${o.prefix}_${n}`);
  },
  needs: ['latent'],
  description:
    'Classifier (logistic | knn | svm | tsvm | linear-sgd) fitted on the latent codes (means, or μ) of the labelled training examples; test/<prefix>_error and _accuracy in %',
  options: latentClassifierOptions,
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      const where = 'eval: latent-classifier';
      if (!data.train.y || !data.test.y || !data.classes)
        throw new UserError('the latent classifier needs class labels, but this data set has none', where);
      const rows = labelledRows(data, o.labelled, ctx.rng.fork('labelled'), where, o.labelled_draw);
      const lab = subset(data.train, data.dim, rows);
      // the test split was binarised once ('dynamic'); binarise the labelled inputs the same way
      const x = data.binarize === 'dynamic' ? binarizeOnce(lab.x, ctx.rng.fork('binarize')) : lab.x;
      const K = model.latent;
      const train: LatentSet = {
        z: encodeMeans(tf, model, x, lab.n, data.dim, o.batch_size, o.features, ctx.compile),
        y: lab.y!,
        n: lab.n,
      };
      const test: LatentSet = {
        z: encodeMeans(tf, model, data.test.x, data.test.n, data.dim, o.batch_size, o.features, ctx.compile),
        y: data.test.y,
        n: data.test.n,
      };
      let unlabelled: Float32Array | undefined;
      if (o.classifier === 'tsvm') {
        const labelled = new Set(rows);
        const pool = Int32Array.from({ length: data.train.n }, (_, i) => i).filter((i) => !labelled.has(i));
        const take = Math.min(o.unlabelled ?? TSVM_UNLABELLED_DEFAULT, pool.length);
        const picked =
          take < pool.length
            ? Int32Array.from(ctx.rng.fork('unlabelled').permutation(pool.length).subarray(0, take), (j) => pool[j]).sort()
            : pool;
        const u = subset(data.train, data.dim, picked);
        const ux = data.binarize === 'dynamic' ? binarizeOnce(u.x, ctx.rng.fork('binarize-unlabelled')) : u.x;
        unlabelled = encodeMeans(tf, model, ux, u.n, data.dim, o.batch_size, o.features, ctx.compile);
      }
      const started = Date.now();
      const r = classifyLatents(tf, train, test, K, data.classes, o, {
        unlabelled,
        rng: ctx.rng.fork(o.classifier === 'linear-sgd' ? 'sgd' : 'svm'),
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const m = r.metrics;
      const detail =
        m.svm_objective === undefined
          ? ''
          : `; inductive SVM objective ${m.svm_objective.toPrecision(6)} in ${m.svm_iterations} passes` +
            (m.svm_iterations >= (o.max_iter ?? SVM_DEFAULTS.maxIter) ? ' (max_iter reached: not converged)' : '') +
            (m.tsvm_objective === undefined
              ? ''
              : ` (test error ${m.svm_error.toFixed(2)}%); TSVM on ${m.unlabelled} unlabelled: objective ${m.tsvm_objective.toPrecision(6)}, ${m.tsvm_switches} label switches`) +
            ` (${seconds} s)`;
      const sgd = m.sgd_loss === undefined ? '' : `; last epoch's training loss ${m.sgd_loss.toFixed(4)}`;
      ctx.log(
        `latent classifier (${o.classifier} on ${o.features === 'mu' ? 'μ' : 'the latent means'}) on ${lab.n} labelled examples: test error ${r.error.toFixed(2)}%${detail}${sgd}`,
      );
      const out: Record<string, number> = {
        [`${o.prefix}_error`]: r.error,
        [`${o.prefix}_accuracy`]: r.accuracy,
        [`${o.prefix}_labelled`]: lab.n,
      };
      for (const [k, v] of Object.entries(m)) out[`${o.prefix}_${k}`] = v;
      return out;
    },
  }),
});
