import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { setTf } from '../src/runtime/tf';
import { createRegistry } from '../src/builtins';
import { Rng } from '../src/runtime/rng';
import { UserError } from '../src/errors';
import { categoricalEntropy, categoricalNll, m2Labelled, m2Unlabelled } from '../src/losses/m2';
import { m2Core, evalAlphaExpression, M2Model } from '../src/models/m2';
import { mlp } from '../src/nn/mlp';
import { loadHyperspectral, HyperspectralDataSet } from '../src/data/hyperspectral';
import { classHistogram } from '../src/data/splits';
import { pca } from '../src/eval/latent-pca';
import { runExperiment } from '../src/experiment';
import { tmpDir, smallConfig, tinyDataSet, shortSemiSupervisedRun, EVAL, sum, close } from './helpers';
import type { DataSet } from '../src/contracts';
import { termMeans } from '../src/models/model';

test.before(async () => {
  await tf.setBackend('cpu');
  setTf(tf);
});

/** A tiny labelled data set (D = 6, C = 3) for building models directly. */
const tinyData = (): DataSet => tinyDataSet({ shape: [6], classes: 3 });

function tinyModel(extra: Record<string, unknown> = {}): M2Model {
  const registry = createRegistry();
  const ctx = { tf, registry, rng: new Rng(5), baseDir: '.', data: tinyData() };
  const net = { kind: 'mlp', hidden: [5], activation: 'tanh' };
  return m2Core(
    {
      latent: 2,
      prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
      encoder: net,
      decoder: net,
      classifier: net,
      likelihood: 'bernoulli',
      class_noise: 'independent',
      class_loss: 'sum',
      entropy_weight: 1,
      ...extra,
    },
    ctx,
    null,
    'model (m2)',
  );
}

/**
 * The M2 objective computed by hand (plain JS) from the networks' own outputs and the
 * same ε draws: labelled rows first, then each unlabelled row once per class.
 */
function handObjective(
  m: M2Model,
  x: number[][],
  y: number[],
  seed: number,
  c1: number,
  c2: number,
  alpha: number,
  o: { shared?: boolean; lambdaH?: number } = {},
) {
  const { classifier, encoder, decoder } = m.parts;
  const C = m.classes;
  const K = m.latent;
  const eps = new Rng(seed);
  const softmax = (l: number[]) => {
    const mx = Math.max(...l);
    const e = l.map((v) => Math.exp(v - mx));
    return e.map((v) => v / sum(e));
  };
  const onehot = (c: number) => Array.from({ length: C }, (_, j) => (j === c ? 1 : 0));
  const L = (xi: number[], c: number, e: number[]) => {
    const enc = (encoder.apply(tf.tensor2d([[...xi, ...onehot(c)]])).arraySync() as number[][])[0];
    const mu = enc.slice(0, K);
    const lv = enc.slice(K, 2 * K);
    const z = mu.map((m_, k) => m_ + Math.exp(lv[k] / 2) * e[k]);
    const logits = (decoder.apply(tf.tensor2d([[...z, ...onehot(c)]])).arraySync() as number[][])[0];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const recon = -sum(xi.map((xv, i) => xv * Math.log(sig(logits[i])) + (1 - xv) * Math.log(1 - sig(logits[i]))));
    const kl = 0.5 * sum(mu.map((m_, k) => m_ * m_ + Math.exp(lv[k]) - lv[k] - 1));
    return { recon, kl, Lw: c2 * recon + c1 * kl + Math.log(C), L1: recon + kl + Math.log(C) };
  };
  const lab = y.flatMap((v, i) => (v >= 0 ? [i] : []));
  const unl = y.flatMap((v, i) => (v < 0 ? [i] : []));
  // ε in the order the model draws them: a draw per pass, or (shared) one per row of x
  const perRow = o.shared ? y.map(() => Array.from(eps.normals(K))) : [];
  const epsLab = o.shared ? lab.map((r) => perRow[r]) : lab.map(() => Array.from(eps.normals(K)));
  const epsUnl: number[][][] = o.shared
    ? Array.from({ length: C }, () => unl.map((r) => perRow[r]))
    : Array.from({ length: C }, () => unl.map(() => Array.from(eps.normals(K))));
  let loss = 0,
    labelled = 0,
    unlabelled = 0,
    cls = 0,
    ent = 0;
  lab.forEach((r, i) => {
    const t = L(x[r], y[r], epsLab[i]);
    const q = softmax((classifier.apply(tf.tensor2d([x[r]])).arraySync() as number[][])[0]);
    loss += t.Lw + alpha * -Math.log(q[y[r]]);
    labelled += t.L1;
    cls += -Math.log(q[y[r]]);
  });
  unl.forEach((r, i) => {
    const q = softmax((classifier.apply(tf.tensor2d([x[r]])).arraySync() as number[][])[0]);
    const H = -sum(q.map((p) => p * Math.log(p)));
    const per = Array.from({ length: C }, (_, c) => L(x[r], c, epsUnl[c][i]));
    loss += sum(per.map((t, c) => q[c] * t.Lw)) - (o.lambdaH ?? 1) * H;
    unlabelled += sum(per.map((t, c) => q[c] * t.L1)) - H;
    ent += H;
  });
  const B = y.length;
  return { loss: loss / B, labelled: labelled / B, unlabelled: unlabelled / B, class: cls / B, entropy: ent / B };
}

function batchOf(m: M2Model, y: number[]) {
  const data = tinyData();
  const x = Array.from({ length: y.length }, (_, i) => Array.from(data.train.x.subarray(i * 6, i * 6 + 6)));
  return { x, xt: tf.tensor2d(x) };
}

test('class_noise: shared gives every class pass of a row the same draw; entropy_weight scales H in the loss only', () => {
  for (const [extra, o] of [
    [{ class_noise: 'shared' }, { shared: true }],
    [
      { class_noise: 'shared', entropy_weight: 0.25 },
      { shared: true, lambdaH: 0.25 },
    ],
    [{ entropy_weight: { kind: 'linear', from: 0, to: 1, start_epoch: 0, end_epoch: 4 } }, { lambdaH: 0.5 }],
  ] as [Record<string, unknown>, { shared?: boolean; lambdaH?: number }][]) {
    const m = tinyModel(extra);
    const y = [1, -1, 0, -1, -1];
    const { x, xt } = batchOf(m, y);
    // epochFloat 2 of a 0 → 1 ramp ending at epoch 4: λ_H = 0.5
    const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 2 }, new Rng(9), {
      epoch: 2,
      step: 0,
      fraction: 0.5,
      epochFloat: 2,
    });
    const hand = handObjective(m, x, y, 9, 1, 1, 2, o);
    const what = JSON.stringify(extra);
    close(t.loss.dataSync()[0], hand.loss, 1e-4, `loss ${what}`);
    close(t.unlabelled.dataSync()[0], hand.unlabelled, 1e-4, `unlabelled (λ_H = 1 always) ${what}`);
    close(t.labelled.dataSync()[0], hand.labelled, 1e-4, `labelled ${what}`);
  }
  // independent draws do not match the shared-noise hand computation
  const m = tinyModel();
  const y = [-1, -1, -1];
  const { x, xt } = batchOf(m, y);
  const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 0 }, new Rng(9), EVAL);
  assert.ok(Math.abs(t.loss.dataSync()[0] - handObjective(m, x, y, 9, 1, 1, 0, { shared: true }).loss) > 1e-3);
});

test('U(x) equals Σ_y q(y|x)·L(x,y) − H(q(y|x)) enumerated by hand over the classes', () => {
  const m = tinyModel();
  const y = [-1, -1, -1, -1];
  const { x, xt } = batchOf(m, y);
  const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 0 }, new Rng(42), EVAL);
  const hand = handObjective(m, x, y, 42, 1, 1, 0);
  close(t.unlabelled.dataSync()[0], hand.unlabelled, 1e-4, 'unlabelled');
  close(t.loss.dataSync()[0], hand.loss, 1e-4, 'loss');
  close(t.entropy.dataSync()[0], hand.entropy, 1e-4, 'entropy');
  close(t.elbo.dataSync()[0], -hand.unlabelled, 1e-4, 'elbo');
  assert.equal(t.labelled.dataSync()[0], 0);
  assert.equal(t.class.dataSync()[0], 0);
});

test('a mixed batch: labelled L, unlabelled U, α·class and c1/c2 weights match the hand computation', () => {
  const m = tinyModel();
  const y = [2, -1, 0, -1, 1, -1];
  const { x, xt } = batchOf(m, y);
  const [c1, c2, alpha] = [0.5, 2, 3];
  const t = m.terms({ x: xt, y: Int32Array.from(y) }, { c1, c2, alpha }, new Rng(9), EVAL);
  const hand = handObjective(m, x, y, 9, c1, c2, alpha);
  for (const k of ['loss', 'labelled', 'unlabelled', 'class', 'entropy'] as const) close(t[k].dataSync()[0], hand[k], 1e-4, k);
  // elbo does not depend on the weights
  close(t.elbo.dataSync()[0], -(hand.labelled + hand.unlabelled), 1e-4, 'elbo');
});

test("class_loss: mean puts α on the labelled rows' mean −log q(y|x): the sum form with α·L/B", () => {
  const y = [2, -1, 0, -1, 1, -1, -1, -1];
  const [c1, c2, alpha] = [1, 1, 3];
  const L = 3;
  const B = y.length;
  const mean = tinyModel({ class_loss: 'mean' });
  const { x, xt } = batchOf(mean, y);
  const t = mean.terms({ x: xt, y: Int32Array.from(y) }, { c1, c2, alpha }, new Rng(9), EVAL);
  // the same parameters under the sum form with α·B/L give the same objective
  const hand = handObjective(mean, x, y, 9, c1, c2, alpha * (B / L));
  close(t.loss.dataSync()[0], hand.loss, 1e-4, 'loss (mean form)');
  // and differ from the sum form with the same α
  const sumForm = handObjective(mean, x, y, 9, c1, c2, alpha);
  assert.ok(Math.abs(t.loss.dataSync()[0] - sumForm.loss) > 1e-3, 'mean and sum with one α differ');
  // the reported class term stays Σ_lab −log q(y|x) / B in both forms
  close(t.class.dataSync()[0], hand.class, 1e-4, 'class');
});

test('the loss pieces against hand computations', () => {
  const logits = [
    [1.0, -0.5, 0.2],
    [3.0, 3.0, -1.0],
  ];
  const lt = tf.tensor2d(logits);
  const softmax = (l: number[]) => l.map((v) => Math.exp(v) / sum(l.map(Math.exp)));
  const nll = categoricalNll(lt, [2, 0]).arraySync() as number[];
  close(nll[0], -Math.log(softmax(logits[0])[2]), 1e-5, 'nll0');
  close(nll[1], -Math.log(softmax(logits[1])[0]), 1e-5, 'nll1');
  const H = categoricalEntropy(lt).arraySync() as number[];
  logits.forEach((l, i) => close(H[i], -sum(softmax(l).map((p) => p * Math.log(p))), 1e-5, `H${i}`));
  // L(x,y) = c2·recon + c1·kl + log C
  const L = m2Labelled(tf.tensor1d([10, 20]), tf.tensor1d([1, 2]), 10, 0.5, 2).arraySync() as number[];
  close(L[0], 2 * 10 + 0.5 * 1 + Math.log(10), 1e-6, 'L0');
  close(L[1], 2 * 20 + 0.5 * 2 + Math.log(10), 1e-6, 'L1');
  const per = [
    [5, 6, 7],
    [1, 2, 3],
  ];
  const U = m2Unlabelled(lt, tf.tensor2d(per)).arraySync() as number[];
  logits.forEach((l, i) => {
    const q = softmax(l);
    close(U[i], sum(q.map((p, c) => p * per[i][c])) + sum(q.map((p) => p * Math.log(p))), 1e-5, `U${i}`);
  });
  // uniform q: U = mean L − log C
  close(
    (m2Unlabelled(tf.zeros([1, 4]) as tf.Tensor2D, tf.tensor2d([[1, 2, 3, 4]])).arraySync() as number[])[0],
    2.5 - Math.log(4),
    1e-5,
    'uniform',
  );
});

test('alpha_expression: arithmetic over N_total, N_labelled, N; bad expressions are one-line UserErrors', () => {
  const names = { N_total: 50000, N_labelled: 100, N: 50000 };
  assert.equal(evalAlphaExpression('0.1*N_total/N_labelled', names), 50);
  assert.equal(evalAlphaExpression('0.1 * N', names), 5000);
  assert.equal(evalAlphaExpression('1+2*3', names), 7);
  assert.equal(evalAlphaExpression('(1+2)*3', names), 9);
  assert.equal(evalAlphaExpression('-2+5', names), 3);
  assert.equal(evalAlphaExpression('2/4/2', names), 0.25);
  assert.equal(evalAlphaExpression('1e-1*N_labelled', names), 10);
  assert.equal(evalAlphaExpression(' 7 ', names), 7);
  for (const [bad, why] of [
    ['0.1*N_totl', /unknown name 'N_totl'/],
    ['N_total/(N_labelled-100)', /finite number/],
    ['2**3', /unexpected '\*'/],
    ['(1+2', /missing '\)'/],
    ['1 2', /unexpected '2'/],
    ['process.exit(1)', /unexpected character '\.'/],
    ['exit(1)', /unknown name 'exit'/],
    ['N; 1', /unexpected character ';'/],
    ['-1', /≥ 0/],
    ['', /empty/],
  ] as [string, RegExp][]) {
    assert.throws(
      () => evalAlphaExpression(bad, names),
      (e: unknown) => e instanceof UserError && why.test(e.message) && e.where === 'model.alpha_expression' && !e.line().includes('\n'),
      bad,
    );
  }
  // a model built with it uses it instead of loss.alpha
  const m = tinyModel({ alpha_expression: '0.5*N_total/N_labelled' });
  assert.equal(m.alpha, 0.5);
});

test('gradients of the M2 loss are finite, and an unlabelled batch alone trains q(y|x)', () => {
  const m = tinyModel({ alpha_expression: '2' });
  const names = [...m.params.keys()];
  const vars = names.map((n) => m.params.get(n)!);
  for (const y of [
    [0, -1, 2, -1],
    [-1, -1, -1, -1],
  ]) {
    const { xt } = batchOf(m, y);
    const { value, grads } = tf.variableGrads(
      () => m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 1, c2: 1, alpha: 0 }, new Rng(3), EVAL).loss,
      vars,
    );
    assert.ok(Number.isFinite(value.dataSync()[0]));
    let classifierNorm = 0;
    for (const [i, v] of vars.entries()) {
      const g = Array.from(grads[v.name].dataSync() as Float32Array);
      assert.ok(g.every(Number.isFinite), `${names[i]} has a non-finite gradient`);
      if (names[i].startsWith('classifier/')) classifierNorm += g.reduce((s, u) => s + u * u, 0);
    }
    assert.ok(classifierNorm > 0, 'q(y|x) gets a gradient');
  }
});

test('class passes by parts: an mlp is its first product and the rest; M2 terms equal those on the concatenated rows', () => {
  const x = tf.tensor2d(Array.from(new Rng(8).normals(7 * 6)), [7, 6]);
  for (const extra of [{}, { hidden: [] }, { hidden: [5, 4], norm: 'batch' }, { hidden: [5, 4], dropout: 0.3 }]) {
    const o = { kind: 'mlp', hidden: [5], activation: 'softplus', norm: 'none', ...extra } as Parameters<typeof mlp>[1];
    const phase = { training: true, rng: new Rng(2) };
    const net = mlp(tf, o, { inDim: 6, outDim: 3 }, new Rng(4), phase);
    const first = net.affineInput!();
    const whole = net.apply(x).arraySync() as number[][];
    phase.rng = new Rng(2); // the same dropout masks
    const parts = first.rest(tf.matMul(x, first.w)).arraySync() as number[][];
    whole.forEach((row, i) => row.forEach((v, j) => close(parts[i][j], v, 1e-6, `${JSON.stringify(extra)} [${i}, ${j}]`)));
  }
  // x itself must enter the first product
  assert.equal(
    mlp(tf, { kind: 'mlp', hidden: [5], activation: 'relu', norm: 'none', dropout_input: 0.2 }, { inDim: 6, outDim: 3 }, new Rng(4))
      .affineInput,
    undefined,
  );
  assert.equal(
    mlp(tf, { kind: 'mlp', hidden: [5], activation: 'relu', norm: 'batch', norm_input: true }, { inDim: 6, outDim: 3 }, new Rng(4))
      .affineInput,
    undefined,
  );
  // M2: the same terms with the networks' first products and without (the concatenated rows)
  const y = [0, -1, 2, -1, -1, 1];
  const byParts = tinyModel();
  const concat = tinyModel();
  delete concat.parts.encoder.affineInput;
  delete concat.parts.decoder.affineInput;
  const { xt } = batchOf(byParts, y);
  const terms = (m: M2Model) => m.terms({ x: xt, y: Int32Array.from(y) }, { c1: 0.7, c2: 1.3, alpha: 2 }, new Rng(9), EVAL);
  const a = terms(byParts);
  const b = terms(concat);
  for (const k of Object.keys(b)) close(a[k].dataSync()[0], b[k].dataSync()[0], 1e-6, k);
});

test('classify, encodeMean, reconstruct, decode and decodeClass have the right shapes', () => {
  const m = tinyModel();
  const x = tf.tensor2d(Array.from(tinyData().train.x.subarray(0, 18)), [3, 6]);
  const p = m.classify(x).arraySync() as number[][];
  p.forEach((row) => close(sum(row), 1, 1e-5, 'probabilities sum to 1'));
  assert.deepEqual(m.encodeMean(x).shape, [3, 2]);
  assert.deepEqual(m.reconstruct(x).shape, [3, 6]);
  const z = m.sampleLatent(4, new Rng(1));
  assert.deepEqual(m.decode(z).shape, [4, 6]);
  // decode cycles the classes: row 3 uses class 0, like decodeClass with y = 0
  const a = m.decode(z).arraySync() as number[][];
  const b = m.decodeClass(z, Int32Array.from([0, 1, 2, 0])).arraySync() as number[][];
  assert.deepEqual(a, b);
});

test('PCA by power iteration finds the principal axes', () => {
  const rng = new Rng(4);
  const n = 2000;
  const x = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = 3 * rng.normal();
    const b = 1 * rng.normal();
    const c = 0.1 * rng.normal();
    // axes rotated 45° in the first two coordinates
    x[i * 3] = (a - b) / Math.SQRT2;
    x[i * 3 + 1] = (a + b) / Math.SQRT2;
    x[i * 3 + 2] = c + 5;
  }
  const r = pca(x, n, 3, 2);
  close(Math.abs(r.components[0][0]), 1 / Math.SQRT2, 0.02, 'first axis x');
  close(Math.abs(r.components[0][1]), 1 / Math.SQRT2, 0.02, 'first axis y');
  close(Math.abs(r.components[1][0]), 1 / Math.SQRT2, 0.02, 'second axis x');
  assert.ok(Math.sign(r.components[1][0]) !== Math.sign(r.components[1][1]));
  close(r.variances[0], 9, 0.1, 'variance 1');
  close(r.variances[1], 1, 0.1, 'variance 2');
  close(r.mean[2], 5, 0.01, 'mean');
});

const m2Model = (extra = '') =>
  `model={kind: m2, latent: 4, encoder: {kind: mlp, hidden: [32]}, decoder: {kind: mlp, hidden: [32]}, classifier: {kind: mlp, hidden: [32]}, alpha_expression: "0.1*N_total/N_labelled"${extra}}`;

test('a short M2 run on 20 labels lowers the objective and classifies far better than chance', async () => {
  const { r, lines } = await shortSemiSupervisedRun({
    model: m2Model(),
    eval: '[{kind: accuracy}, {kind: elbo}, {kind: class-samples, n: 3}, {kind: latent-pca, size: 128}, {kind: reconstructions, n: 4}]',
    keys: [],
    files: ['class-samples.png', 'latent-pca.png', 'latent-pca.json', 'reconstructions.png'],
  });
  assert.ok(lines.at(-1)!['val/elbo'] > lines[0]['val/elbo'], `val/elbo ${lines[0]['val/elbo']} → ${lines.at(-1)!['val/elbo']}`);
  // train/accuracy is the accuracy on the labelled rows the epoch saw (10 of every 60 rows here:
  // as a share of the batch it could not pass 1/6); the share itself is not logged
  assert.ok(lines.at(-1)!['train/accuracy'] > 0.5, `train/accuracy ${lines.at(-1)!['train/accuracy']}`);
  assert.ok(lines.at(-1)!['train/accuracy'] <= 1);
  assert.deepEqual(
    Object.keys(lines[0]).filter((k) => k.includes('/_')),
    [],
  );
  // the weight that trained: alpha from alpha_expression (0.1 · 400 / 20 = 2 here), not loss.alpha's 0
  const alpha = 0.1 * (JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8')).data.train / 20);
  assert.ok(
    lines.every((l) => Math.abs(l['weight/alpha'] - alpha) < 1e-9),
    `weight/alpha ${lines[0]['weight/alpha']} (expected ${alpha})`,
  );
  const confusion = JSON.parse(fs.readFileSync(path.join(r.runDir, 'artifacts', 'confusion.json'), 'utf8'));
  assert.equal(sum(confusion.matrix.flat()), 100);
});

test('the accuracy and class-samples evaluators refuse a model without a classifier', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  for (const ev of ['accuracy', 'class-samples']) {
    await assert.rejects(
      runExperiment({
        config: cfg,
        runsDir: path.join(dir, 'runs'),
        progress: false,
        overrides: ['train.epochs=1', `eval=[{kind: ${ev}}]`],
      }),
      (e: unknown) => e instanceof UserError && /needs a .*(classifies|class-conditional)/.test(e.message),
    );
  }
});

test('m1m2: M2 on the z1 features of a finished M1 run; clear errors without one', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const m1 = await runExperiment({
    config: cfg,
    runsDir: runs,
    progress: false,
    overrides: ['train.epochs=3', 'eval=[{kind: elbo}]', 'model.latent=6'],
  });
  assert.equal(m1.status, 'FINISHED');
  const m1m2 = (run: string | null, features = 'sample') =>
    runExperiment({
      config: cfg,
      runsDir: runs,
      progress: false,
      overrides: [
        `model={kind: m1m2, features: ${features}, ${run ? `m1_run: ${JSON.stringify(run)}, ` : ''}min_std: 0.01, latent: 3, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}, alpha_expression: "0.1*N_total/N_labelled"}`,
        'data.labelled=20',
        'train.labelled_per_batch=10',
        'train.epochs=3',
        'eval=[{kind: accuracy}, {kind: reconstructions, n: 4}, {kind: class-samples, n: 2}]',
      ],
    });
  const r = await m1m2(m1.runDir);
  assert.equal(r.status, 'FINISHED', r.error);
  assert.ok(r.metrics['test/accuracy'] >= 0 && r.metrics['test/accuracy'] <= 1);
  assert.ok(fs.existsSync(path.join(r.runDir, 'artifacts', 'class-samples.png')));
  // the posterior means instead of fresh samples of z1: other numbers, still a finished run
  const means = await m1m2(m1.runDir, 'mean');
  assert.equal(means.status, 'FINISHED', means.error);
  const firstLoss = (d: string) =>
    JSON.parse(
      fs
        .readFileSync(path.join(d, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .find((l) => l.includes('train/loss'))!,
    )['train/loss'];
  assert.notEqual(firstLoss(means.runDir), firstLoss(r.runDir));
  // neither model.m1 nor model.m1_run: refused when the config is validated, at the --set that made the model
  await assert.rejects(
    m1m2(null),
    (e: unknown) => e instanceof UserError && /^--set model=\{kind: m1m2.*: m1m2 needs an M1: .*--set model\.m1_run=/.test(e.line()),
  );
  await assert.rejects(m1m2(path.join(dir, 'nowhere')), (e: unknown) => e instanceof UserError && /not a run directory/.test(e.message));
  // a run that did not finish
  const rec = JSON.parse(fs.readFileSync(path.join(m1.runDir, 'run.json'), 'utf8'));
  fs.writeFileSync(path.join(m1.runDir, 'run.json'), JSON.stringify({ ...rec, status: 'KILLED' }));
  await assert.rejects(m1m2(m1.runDir), (e: unknown) => e instanceof UserError && /KILLED, not FINISHED/.test(e.message));
});

/** A CSV in the loader's format: `bands` values then a label; 90% of the rows are class 39. */
function writeSpectra(file: string, n: number, bands: number, header = true): void {
  const rng = new Rng(21);
  const lines = header ? [[...Array.from({ length: bands }, (_, j) => `band${j}`), 'label'].join(',')] : [];
  for (let i = 0; i < n; i++) {
    const label = i % 10 === 0 ? (i % 20 === 0 ? 7 : 40) : 39;
    const centre = label === 39 ? 100 : label === 7 ? 400 : 800;
    lines.push(
      [...Array.from({ length: bands }, (_, j) => (centre + 50 * Math.sin(j / 3 + label) + 20 * rng.normal()).toFixed(2)), label].join(','),
    );
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

test('hyperspectral CSV: labels remapped, class cap, min-max scaling by the training split, clear error when missing', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'pixels.csv');
  writeSpectra(file, 2000, 12);
  const registry = createRegistry();
  const opts = {
    kind: 'hyperspectral' as const,
    path: 'pixels.csv',
    test_fraction: 0.2,
    header: 'auto' as const,
    validation: 50,
    binarize: 'none' as const,
  };
  const ctx = { tf, registry, rng: new Rng(3), baseDir: dir };
  const full = loadHyperspectral(opts, ctx);
  assert.equal(full.classes, 3);
  assert.deepEqual(full.labelValues, [7, 39, 40]);
  assert.equal(full.test.n, 400);
  assert.equal(full.train.n + full.val!.n + full.test.n, 2000);
  const h = classHistogram(full.train.y!, 3);
  assert.ok(h[1] / sum(h) > 0.85, `class 39 dominates: ${h}`);
  const capped: HyperspectralDataSet = loadHyperspectral({ ...opts, class_cap: 40, validation: 10 }, { ...ctx, rng: new Rng(3) });
  const hc = classHistogram(capped.train.y!, 3);
  assert.ok(
    hc.every((c) => c <= 40),
    `capped: ${hc}`,
  );
  assert.equal(sum(hc) + capped.val!.n, 40 + 40 + 40);
  // every band of the training split spans exactly [0, 1]; other splits are clipped into it
  for (let j = 0; j < 12; j++) {
    const col = Array.from({ length: capped.train.n }, (_, i) => capped.train.x[i * 12 + j]);
    close(Math.min(...col), 0, 1e-6, `band ${j} min`);
    close(Math.max(...col), 1, 1e-6, `band ${j} max`);
  }
  assert.ok(capped.test.x.every((v) => v >= 0 && v <= 1));
  assert.equal(capped.normalisation.min.length, 12);
  assert.throws(
    () => loadHyperspectral({ ...opts, path: 'missing.csv' }, ctx),
    (e: unknown) => e instanceof UserError && /hyperspectral CSV not found; export labelled pixels as CSV/.test(e.message),
  );
  fs.writeFileSync(path.join(dir, 'bad.csv'), '1,2,3\n1,2\n');
  assert.throws(
    () => loadHyperspectral({ ...opts, path: 'bad.csv' }, ctx),
    (e: unknown) => e instanceof UserError && /line 2: 2 columns/.test(e.message),
  );
});

test('M2 trains on a generated hyperspectral file (class cap, gaussian_learned likelihood)', async () => {
  const dir = tmpDir();
  writeSpectra(path.join(dir, 'pixels.csv'), 600, 16, false);
  const cfg = path.join(dir, 'hyp.yaml');
  fs.writeFileSync(
    cfg,
    `experiment: hyp
data: {kind: hyperspectral, path: pixels.csv, class_cap: 60, validation: 12, labelled: 15}
model:
  kind: m2
  latent: 3
  likelihood: gaussian_learned
  encoder: {kind: mlp, hidden: [16]}
  decoder: {kind: mlp, hidden: [16]}
  classifier: {kind: mlp, hidden: [16]}
  alpha_expression: 0.1*N_total/N_labelled
train: {epochs: 3, batch_size: 32, labelled_per_batch: 6}
eval: [{kind: accuracy}, {kind: elbo}]
`,
  );
  const r = await runExperiment({ config: cfg, runsDir: path.join(dir, 'runs'), progress: false });
  assert.equal(r.status, 'FINISHED', r.error);
  assert.ok(Number.isFinite(r.metrics['test/elbo']));
  assert.ok(r.metrics['test/accuracy'] > 0);
});

test('termMeans: a ratio term over many batches is the ratio of the sums (the labelled rows accuracy), its denominator not logged', () => {
  // two batches of 4 rows: 1 labelled row right of 1, then 1 right of 3 labelled: 2 of 4 labelled rows right
  const batches = [
    { accuracy: 1 / 4, _labelled: 1 / 4, loss: 2 },
    { accuracy: 1 / 4, _labelled: 3 / 4, loss: 4 },
  ];
  const means = { accuracy: 0.25, _labelled: 0.5, loss: 3 }; // the batch-weighted means the loop keeps
  for (const k of Object.keys(means) as (keyof typeof means)[]) close(means[k], (batches[0][k] + batches[1][k]) / 2, 1e-12, k);
  const model = { ratios: { accuracy: '_labelled' } };
  assert.deepEqual(termMeans(model, means), { accuracy: 0.5, loss: 3 });
  // no labelled row seen: no accuracy, rather than 0 or NaN
  assert.deepEqual(termMeans(model, { accuracy: 0, _labelled: 0, loss: 1 }), { loss: 1 });
  // a model without ratios: the means as they are
  assert.deepEqual(termMeans({}, { accuracy: 0.25, loss: 3 }), { accuracy: 0.25, loss: 3 });
});
