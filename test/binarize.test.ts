import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { binarizeSplits, drawsEveryBatch } from '../src/data/splits';
import { Rng } from '../src/runtime/rng';
import type { Binarize, Split } from '../src/contracts';
import { tmpDir, smallConfig, elbo, lastJson, epochLines, untimed, type EvaluateOutput, type RunOutput } from './helpers';

// data.binarize: none | dynamic | training | fixed (src/data/splits.ts binarizeSplits)

function grey(n: number, seed: number): Split {
  return { x: new Rng(seed).uniforms(n * 4), y: null, n };
}

const isBinary = (x: Float32Array) => x.every((v) => v === 0 || v === 1);

test('binarizeSplits: dynamic draws validation and test once, fixed the training split too, training and none leave them grey', () => {
  const splits = { train: grey(30, 1), val: grey(10, 2), test: grey(20, 3) };
  const got = (b: Binarize) => binarizeSplits(splits, b, new Rng(5).fork('binarize'));
  for (const b of ['none', 'training'] as const) {
    const s = got(b);
    assert.equal(s.train.x, splits.train.x, b);
    assert.equal(s.val!.x, splits.val.x, b);
    assert.equal(s.test.x, splits.test.x, b);
  }
  const dynamic = got('dynamic');
  const fixed = got('fixed');
  assert.equal(dynamic.train.x, splits.train.x);
  assert.ok(isBinary(dynamic.val!.x) && isBinary(dynamic.test.x) && isBinary(fixed.train.x));
  // each split from its own stream: fixed draws validation and test as dynamic does
  assert.deepEqual([...fixed.val!.x], [...dynamic.val!.x]);
  assert.deepEqual([...fixed.test.x], [...dynamic.test.x]);
  assert.notDeepEqual([...dynamic.val!.x], [...dynamic.test.x.subarray(0, 40)]);
  // the input is not touched
  assert.ok(!isBinary(splits.val.x) && !isBinary(splits.test.x) && !isBinary(splits.train.x));
  assert.equal(binarizeSplits({ ...splits, val: null }, 'dynamic', new Rng(5)).val, null);
  assert.deepEqual((['none', 'dynamic', 'training', 'fixed'] as const).map(drawsEveryBatch), [false, true, true, false]);
});

test('binarize: training trains on the same draws as dynamic and measures validation and test on the grey values; elbo evaluate --set data.binarize=training gives those numbers for a dynamic run', async () => {
  const dir = tmpDir();
  const runs = path.join(dir, 'runs');
  const run = (b: Binarize) => {
    const r = elbo([
      'run',
      smallConfig(dir),
      '--runs-dir',
      runs,
      '--set',
      'train.epochs=2',
      '--set',
      'eval=[{kind: elbo}]',
      '--set',
      `data.binarize=${b}`,
      '--json',
      '--quiet',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const runDir: string = lastJson<RunOutput>(r.stdout).runDir;
    return { runDir, record: JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) };
  };
  const dynamic = run('dynamic');
  const training = run('training');
  const pick = (m: Record<string, number>, prefix: string) =>
    Object.fromEntries(Object.entries(untimed(m)).filter(([k]) => k.startsWith(prefix)));
  const [d, t] = [epochLines(dynamic.runDir), epochLines(training.runDir)];
  assert.equal(d.length, 2);
  for (let e = 0; e < 2; e++) {
    assert.ok(Object.keys(pick(d[e], 'train/')).length >= 3);
    assert.deepEqual(pick(t[e], 'train/'), pick(d[e], 'train/'), `epoch ${e + 1}: the same training draws`);
    assert.notEqual(t[e]['val/elbo'], d[e]['val/elbo'], `epoch ${e + 1}: validation on grey values`);
  }
  const testOf = (rec: { metrics: Record<string, number> }) => pick(rec.metrics, 'test/');
  assert.ok('test/elbo' in testOf(training.record));
  assert.notEqual(testOf(training.record)['test/elbo'], testOf(dynamic.record)['test/elbo']);

  // the dynamic run's model on the grey test split: what the training run recorded
  const e = elbo(['evaluate', dynamic.runDir, '--checkpoint', 'last', '--set', 'data.binarize=training', '--json', '--quiet']);
  assert.equal(e.status, 0, e.stderr);
  assert.deepEqual(lastJson<EvaluateOutput>(e.stdout).metrics, testOf(training.record));

  const bad = elbo(['run', smallConfig(dir), '--runs-dir', runs, '--set', 'data.binarize=grey']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /data\.binarize.*(none|dynamic|training|fixed)/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});
