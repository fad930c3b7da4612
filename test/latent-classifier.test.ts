import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import * as fs from 'fs';
import { getTf } from '../src/runtime/tf';
import { selectBackend } from '../src/runtime/backend';
import { classifyLatents, labelledRows, LatentSet, ClassifierOptions } from '../src/eval/latent-classifier';
import { sparsityStats } from '../src/eval/sparsity';
import { splitFashionMnist } from '../src/data/fashion-mnist';
import { runExperiment } from '../src/experiment';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { Rng } from '../src/runtime/rng';
import { tmpDir, smallConfig } from './helpers';

test.before(async () => {
  await selectBackend('cpu');
});

/** C well-separated Gaussian clusters in K dims (centres 6 apart, unit-ish noise), plus one useless dimension of large noise. */
function clusters(n: number, K: number, C: number, seed: number): LatentSet {
  const rng = new Rng(seed);
  const centres = Array.from({ length: C }, (_, c) =>
    Array.from({ length: K }, (_, k) => (k === c % (K - 1) ? 6 * (1 + Math.floor(c / (K - 1))) : 0)),
  );
  const z = new Float32Array(n * K);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % C;
    y[i] = c;
    for (let k = 0; k < K - 1; k++) z[i * K + k] = centres[c][k] + 0.5 * rng.normal();
    z[i * K + K - 1] = 0.3 * rng.normal(); // a near-constant extra dimension
  }
  return { z, y, n };
}

const base: ClassifierOptions = { classifier: 'logistic', k: 5, standardize: 'global', l2: 0.001, steps: 150, lr: 0.05 };

test('the latent classifier gets ~0 error on separable latents (logistic, knn, svm, tsvm), deterministically', () => {
  const tf = getTf();
  const K = 5;
  const C = 4;
  const train = clusters(80, K, C, 1);
  const test = clusters(400, K, C, 2);
  const extra = { unlabelled: clusters(200, K, C, 5).z }; // only the tsvm reads it
  for (const classifier of ['logistic', 'knn', 'svm', 'tsvm'] as const) {
    const before = tf.memory().numTensors;
    const a = classifyLatents(tf, train, test, K, C, { ...base, classifier }, extra);
    assert.ok(a.error <= 0.5, `${classifier}: error ${a.error}%`);
    assert.equal(a.error + a.accuracy, 100);
    assert.equal(tf.memory().numTensors, before, `${classifier} leaks tensors`);
    if (classifier === 'svm' || classifier === 'tsvm') {
      assert.ok(a.metrics.svm_objective > 0 && a.metrics.svm_iterations >= 1 && a.metrics.svm_iterations < 1000, JSON.stringify(a.metrics));
      if (classifier === 'tsvm') assert.equal(a.metrics.unlabelled, 200);
    }
    const b = classifyLatents(tf, train, test, K, C, { ...base, classifier }, extra);
    assert.deepEqual(Array.from(b.predictions), Array.from(a.predictions));
    assert.equal(b.error, a.error);
  }
  // the other feature scalings too
  for (const classifier of ['logistic', 'knn'] as const)
    for (const standardize of ['per-dimension', 'none'] as const) {
      assert.ok(classifyLatents(tf, train, test, K, C, { ...base, classifier, standardize }).error <= 0.5, `${classifier} ${standardize}`);
    }
  // labels shuffled: a chance-level result, so the metric is not trivially 0
  const perm = new Rng(3).permutation(train.n);
  const shuffled = { ...train, y: Int32Array.from(perm, (j) => train.y[j]) };
  assert.ok(classifyLatents(tf, shuffled, test, K, C, base).error > 40);
});

test('global scaling keeps unused latent dimensions small; per-dimension scaling inflates them', () => {
  const tf = getTf();
  // 2 classes on dimension 0 (±3), then 30 unused dimensions of tiny noise
  const make = (n: number, seed: number): LatentSet => {
    const rng = new Rng(seed);
    const K = 31;
    const z = new Float32Array(n * K);
    const y = Int32Array.from({ length: n }, (_, i) => i % 2);
    for (let i = 0; i < n; i++) {
      z[i * K] = (y[i] ? 3 : -3) + 0.5 * rng.normal();
      for (let k = 1; k < K; k++) z[i * K + k] = 0.01 * rng.normal();
    }
    return { z, y, n };
  };
  const train = make(40, 3);
  const test = make(400, 4);
  const knn = (standardize: 'global' | 'per-dimension') =>
    classifyLatents(tf, train, test, 31, 2, { ...base, classifier: 'knn', k: 3, standardize }).error;
  assert.ok(knn('global') <= 0.5, `global ${knn('global')}%`);
  assert.ok(knn('per-dimension') > 5, `per-dimension ${knn('per-dimension')}%`);
});

test('labelled rows: the data set subset, a class-balanced draw, or every row', () => {
  const n = 40;
  const train = { n, y: Int32Array.from({ length: n }, (_, i) => i % 4), x: new Float32Array(n) };
  const all = labelledRows({ train, labelled: null, classes: 4 }, undefined, new Rng(0), 'here');
  assert.equal(all.length, n);
  const drawn = labelledRows({ train, labelled: null, classes: 4 }, 8, new Rng(0), 'here');
  assert.deepEqual(Array.from(drawn), Array.from(labelledRows({ train, labelled: null, classes: 4 }, 8, new Rng(0), 'here')));
  assert.deepEqual(
    [0, 1, 2, 3].map((c) => Array.from(drawn).filter((i) => train.y[i] === c).length),
    [2, 2, 2, 2],
  );
  const given = Int32Array.from([1, 5, 9]);
  assert.equal(labelledRows({ train, labelled: given, classes: 4 }, undefined, new Rng(0), 'here'), given);
  assert.throws(
    () => labelledRows({ train, labelled: given, classes: 4 }, 8, new Rng(0), 'here'),
    /conflicts with the data set's labelled subset of 3/,
  );
});

test('sparsity statistics', () => {
  // 3 examples × 4 dims; dim 3 never active
  const z = Float32Array.from([1, 0, 0.005, 0, -2, 0.5, 0, 0, 0, 0, 0.02, 0]);
  const s = sparsityStats(z, 3, 4, 0.01);
  assert.deepEqual(s.activationRate, [2 / 3, 1 / 3, 1 / 3, 0]);
  assert.equal(s.activeDimsMean, 4 / 3);
  assert.equal(s.zeroFraction, 1 - 4 / 12);
  assert.equal(s.deadDims, 1);
});

test('fashion-mnist split: class-balanced test set, duplicates kept out of it, fixed by split_seed', () => {
  // 3 classes × 12 tiny "images" (distinct except one duplicated pair in class 1)
  const byClass = [0, 1, 2].map((c) =>
    Array.from({ length: 12 }, (_, i) => Uint8Array.from({ length: 784 }, (_, p) => (p === 0 ? c : p === 1 ? i : 0))),
  );
  byClass[1][7] = Uint8Array.from(byClass[1][3]);
  const o = { split: 'random' as const, test_per_class: 4, split_seed: 0 };
  const a = splitFashionMnist(byClass, o);
  assert.equal(a.test.n, 12);
  assert.equal(a.train.n, 24);
  assert.deepEqual(
    [0, 1, 2].map((c) => Array.from(a.test.y!).filter((y) => y === c).length),
    [4, 4, 4],
  );
  const key = (x: Float32Array, i: number) => `${x[i * 784]},${x[i * 784 + 1]}`;
  const testKeys = new Set(Array.from({ length: a.test.n }, (_, i) => key(a.test.x, i)));
  assert.ok(!testKeys.has(`${1 / 255},${3 / 255}`), 'a duplicated image was drawn for test');
  const trainKeys = new Set(Array.from({ length: a.train.n }, (_, i) => key(a.train.x, i)));
  assert.ok([...testKeys].every((k) => !trainKeys.has(k)));
  assert.deepEqual(splitFashionMnist(byClass, o).test.x, a.test.x);
  assert.notDeepEqual(splitFashionMnist(byClass, { ...o, split_seed: 1 }).test.x, a.test.x);
  // package order: the first test_per_class images of each class
  const p = splitFashionMnist(byClass, { ...o, split: 'package-order' });
  const firstFour = new Set(Array.from({ length: p.test.n }, (_, i) => Math.round(p.test.x[i * 784 + 1] * 255)));
  assert.deepEqual([...firstFour].sort(), [0, 1, 2, 3]);
});

test('m1 with the latent-classifier evaluator: end to end on small data, deterministic', async () => {
  const dir = tmpDir();
  const a = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    overrides: [
      'data.labelled=40',
      'data.binarize=none',
      'model={kind: m1, latent: 4, encoder: {kind: mlp, hidden: [32], activation: relu}, decoder: {kind: mlp, hidden: [32], activation: relu}}',
      'train.epochs=5',
      // the first and last are the same evaluation: they must agree to the last digit
      'eval=[{kind: latent-classifier, steps: 200}, {kind: latent-classifier, classifier: knn, k: 3, prefix: knn}, {kind: latent-classifier, steps: 200, prefix: again}, ' +
        '{kind: latent-classifier, classifier: svm, prefix: svm}, {kind: latent-classifier, classifier: tsvm, unlabelled: 200, prefix: tsvm}]',
    ],
    progress: false,
  });
  assert.equal(a.status, 'FINISHED', a.error);
  assert.equal(a.metrics['test/latent_classifier_labelled'], 40);
  for (const k of ['test/latent_classifier_accuracy', 'test/knn_accuracy', 'test/svm_accuracy', 'test/tsvm_accuracy'])
    assert.ok(a.metrics[k] > 50, `${k} ${a.metrics[k]}% (chance 25%)`);
  assert.equal(a.metrics['test/again_error'], a.metrics['test/latent_classifier_error']);
  // the TSVM: 200 of the other training rows; its inductive start is the svm evaluator's SVM (another visiting order)
  assert.equal(a.metrics['test/tsvm_unlabelled'], 200);
  assert.equal(a.metrics['test/tsvm_labelled'], 40);
  assert.ok(
    Math.abs(a.metrics['test/tsvm_svm_objective'] - a.metrics['test/svm_svm_objective']) < 1e-3 * a.metrics['test/svm_svm_objective'],
  );
  assert.ok(a.metrics['test/svm_svm_iterations'] >= 1 && a.metrics['test/tsvm_tsvm_objective'] > 0);
  assert.ok(Math.abs(a.metrics['test/tsvm_svm_error'] - a.metrics['test/svm_error']) <= 2);
  // M1's reference defaults (docs/models.md): 784-500-500-z50 softplus, Bernoulli
  fs.writeFileSync(path.join(dir, 'm1.yaml'), 'data: {kind: mnist}\nmodel: {kind: m1}\n');
  const { config } = loadConfig(path.join(dir, 'm1.yaml'), [], createRegistry());
  assert.equal(config.model.latent, 50);
  assert.deepEqual(config.model.encoder, { kind: 'mlp', hidden: [500, 500], activation: 'softplus' });
  assert.deepEqual(config.model.decoder, { kind: 'mlp', hidden: [500, 500], activation: 'softplus' });
  assert.equal(config.model.likelihood, 'bernoulli');
});
