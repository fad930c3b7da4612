import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { capPerClass, classHistogram, holdOut, labelledSubset } from '../src/data/splits';
import { Rng } from '../src/runtime/rng';
import { UserError } from '../src/errors';
import { tmpDir, smallConfig, elbo, runJson, makeIdxData, loadDataSet, dataSetError } from './helpers';

/** 1,000 rows, 90% class 0 (the hyperspectral seed's imbalance), dim 2. */
function imbalanced() {
  const n = 1000;
  const y = Int32Array.from({ length: n }, (_, i) => (i < 900 ? 0 : 1 + (i % 3)));
  const x = Float32Array.from({ length: 2 * n }, (_, i) => Math.floor(i / 2));
  return { x, y, n };
}

test('Rng.bernoulli (dynamic binarisation) draws what uniform() < p draws, value by value, and leaves the stream where they do', () => {
  const p = new Rng(3).uniforms(5000).map((u, i) => (i % 5 === 0 ? 0 : i % 7 === 0 ? 1 : u));
  const a = new Rng(11).fork('binarize');
  const b = a.clone();
  const want = p.map((v) => (b.uniform() < v ? 1 : 0));
  const got = a.bernoulli(p);
  assert.deepEqual([...got], [...want]);
  assert.deepEqual(a.state(), b.state());
  assert.ok(got.some((v) => v === 1) && got.some((v, i) => v === 0 && p[i] > 0));
  // in place, as the training loop binarises a batch
  const q = p.slice();
  assert.equal(new Rng(11).fork('binarize').bernoulli(q, q), q);
  assert.deepEqual([...q], [...want]);
});

test('labelled subset: class-balanced, seeded, rows from the split', () => {
  const s = imbalanced();
  const a = labelledSubset(s, 4, 40, new Rng(1), 'data');
  assert.deepEqual(classHistogram(s.y, 4, a), [10, 10, 10, 10]);
  assert.deepEqual(Array.from(labelledSubset(s, 4, 40, new Rng(1), 'data')), Array.from(a));
  assert.notDeepEqual(Array.from(labelledSubset(s, 4, 40, new Rng(2), 'data')), Array.from(a));
  assert.throws(
    () => labelledSubset(s, 4, 42, new Rng(1), 'data'),
    (e: unknown) => e instanceof UserError && /multiple of the number of classes/.test(e.message),
  );
  assert.throws(() => labelledSubset(s, 4, 400, new Rng(1), 'data'), /needs 100 examples of class 1, but the training split has 34/);
});

test('class cap keeps at most N per class, and holdOut splits without overlap', () => {
  const s = imbalanced();
  const capped = capPerClass(s, 2, 4, 50, new Rng(3), 'data');
  assert.deepEqual(classHistogram(capped.y!, 4), [50, 34, 33, 33]);
  const { train, val } = holdOut(s, 2, 100, new Rng(4), 'data');
  assert.equal(train.n + val!.n, 1000);
  const ids = new Set([...Array.from(train.x.filter((_, i) => i % 2 === 0)), ...Array.from(val!.x.filter((_, i) => i % 2 === 0))]);
  assert.equal(ids.size, 1000);
});

test('a semi-supervised run prints the class histograms before training; idle labelled_per_batch and a batch larger than the data are warned of', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  // elbo run on the small config, each argument an override (--set)
  const run = (...sets: string[]) => elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), ...sets.flatMap((o) => ['--set', o])]);
  const r = run('data.labelled=20', 'data.class_cap=80', 'train.labelled_per_batch=4', 'train.epochs=1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /classes in train: 0:\d+ \(\d+\.\d%\) 1:/);
  assert.match(r.stderr, /labelled subset \(20\): 0:5 \(25\.0%\) 1:5 \(25\.0%\) 2:5 \(25\.0%\) 3:5 \(25\.0%\)/);
  assert.doesNotMatch(r.stderr, /labelled_per_batch/);
  // without data.labelled every row is labelled: the extra labelled rows would do nothing, and it says so
  const all = run('train.labelled_per_batch=4', 'train.epochs=1');
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stderr, /warning: train\.labelled_per_batch \(4\) does nothing here: .* keeps every label \(no data\.labelled: N\)/);
  // a model that learns from its labelled rows alone has no unlabelled rows to mix them with either
  const alone = run(
    'data.labelled=20',
    'model={kind: classifier, network: {kind: mlp, hidden: [8]}}',
    'eval=[{kind: accuracy}]',
    'train.labelled_per_batch=4',
    'train.epochs=1',
  );
  assert.equal(alone.status, 0, alone.stderr);
  assert.match(
    alone.stderr,
    /warning: train\.labelled_per_batch \(4\) does nothing here: model 'classifier' trains on its 20 labelled rows alone/,
  );
  // its batch of 50 is larger than those 20 rows: every epoch is one full batch, and it says so
  assert.match(
    alone.stderr,
    /warning: train\.batch_size \(50\) is larger than the 20 labelled rows an epoch passes over: every epoch is one step/,
  );
  assert.doesNotMatch(r.stderr + all.stderr, /batch_size/);
  const whole = run('train.batch_size=1000', 'train.epochs=1');
  assert.equal(whole.status, 0, whole.stderr);
  assert.match(
    whole.stderr,
    /warning: train\.batch_size \(1000\) is larger than the 350 training rows an epoch passes over: .*\(full-batch\); lower it for minibatches/,
  );
});

test('validation_as_unlabelled: the validation images join the training rows after the labelled draw (the same labels), grey there, drawn once as validation; refused in one line without labels or validation', () => {
  const dir = tmpDir();
  const files = Object.fromEntries(Object.entries(makeIdxData(dir)).map(([k, v]) => [k, path.basename(v)]));
  const opts = { kind: 'idx', ...files, validation: 50, labelled: 20, binarize: 'dynamic' };
  const plain = loadDataSet(dir, opts, 5);
  const both = loadDataSet(dir, { ...opts, validation_as_unlabelled: true }, 5);
  const grey = loadDataSet(dir, { ...opts, binarize: 'none' }, 5);
  assert.equal(plain.train.n, 350);
  assert.equal(both.train.n, 400);
  assert.deepEqual([...both.labelled!], [...plain.labelled!]);
  assert.deepEqual([...both.train.x.subarray(0, 350 * 64)], [...plain.train.x]);
  assert.deepEqual([...both.train.y!.subarray(0, 350)], [...plain.train.y!]);
  // the validation split as without the option (drawn once); its copy in training grey, with its labels
  assert.deepEqual([...both.val!.x], [...plain.val!.x]);
  assert.deepEqual([...both.train.x.subarray(350 * 64)], [...grey.val!.x]);
  assert.deepEqual([...both.train.y!.subarray(350)], [...grey.val!.y!]);
  assert.ok(grey.val!.x.some((v) => v > 0 && v < 1) && both.val!.x.every((v) => v === 0 || v === 1));
  assert.match(
    dataSetError(dir, { ...opts, labelled: undefined, validation_as_unlabelled: true }),
    /validation_as_unlabelled needs labelled: N .*set validation: 0$/,
  );
  assert.match(
    dataSetError(dir, { ...opts, validation: 0, validation_as_unlabelled: true }),
    /validation_as_unlabelled needs validation images \(validation > 0\)/,
  );
});

test('validation_as_unlabelled in a run: N_total counts the validation images (alpha_expression), run.json the training rows', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const { out, stderr, rec } = runJson(cfg, path.join(dir, 'runs'), [
    'model={kind: m2, latent: 3, encoder: {kind: mlp, hidden: [8]}, decoder: {kind: mlp, hidden: [8]}, classifier: {kind: mlp, hidden: [8]}, alpha_expression: "0.1*N_total/N_labelled"}',
    'data.labelled=20',
    'data.validation_as_unlabelled=true',
    'train.labelled_per_batch=10',
    'train.epochs=1',
    'eval=[{kind: accuracy}]',
  ]);
  // 400 generated rows, 50 held out for validation and trained on unlabelled: 0.1 · 400 / 20
  assert.equal(out.metrics['weight/alpha'], 2);
  assert.deepEqual([rec.data.train, rec.data.val], [400, 50]);
  assert.match(stderr, /^run \S+: m2 on \S+ \(400 train \/ 50 val \/ 100 test\)/m);
});
