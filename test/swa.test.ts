import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { selectBackend, getTf } from '../src/runtime/backend';
import { WeightAverage } from '../src/train/average';
import { runExperiment } from '../src/experiment';
import { loadFinishedRun } from '../src/models/load-run';
import { modelVariables } from '../src/models/model';
import { createRegistry } from '../src/builtins';
import { tmpDir, smallConfig, configProblems, BASE_CONFIG, epochLines } from './helpers';

let tf: typeof tfc;
before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
  tf = getTf();
});

const values = (v: tfc.Tensor) => Array.from(v.dataSync());

/** A checkpoint's tensors by name (weights.bin read through its manifest). */
function checkpointTensors(dir: string): { manifest: Record<string, unknown>; tensors: Map<string, Float32Array> } {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const buf = fs.readFileSync(path.join(dir, 'weights.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const tensors = new Map<string, Float32Array>();
  for (const t of manifest.tensors) tensors.set(t.name, all.slice(t.offset, t.offset + t.length));
  return { manifest, tensors };
}

test('WeightAverage by hand: nothing before from_epoch, then the running mean of the epochs since; with() swaps it in and puts the raw values back exactly', () => {
  const w = tf.variable(tf.tensor1d([0, 0]));
  const model = new Map([['model/w', w]]);
  const avg = new WeightAverage(tf, model, 2);
  const epochs = [
    [1, 10],
    [2, 20],
    [4, -1],
    [9, 0.5],
  ];
  const expected: (number[] | null)[] = [null, [2, 20], [3, 9.5], [5, 6.5]];
  epochs.forEach((vals, i) => {
    const epoch = i + 1;
    w.assign(tf.tensor1d(vals));
    avg.update(epoch);
    assert.equal(avg.active(epoch), epoch >= 2);
    const want = expected[i];
    if (!want) {
      assert.equal(avg.evaluated(epoch), model, 'before from_epoch the model itself is evaluated');
      assert.deepEqual(
        avg.with(epoch, () => values(w)),
        vals,
      );
      return;
    }
    values(avg.vars.get('model/w')!).forEach((v, j) => assert.ok(Math.abs(v - want[j]) < 1e-6, `epoch ${epoch}[${j}]: ${v} vs ${want[j]}`));
    const inside = avg.with(epoch, () => values(w));
    assert.deepEqual(inside, values(avg.vars.get('model/w')!), 'with(): the average is in the model variable');
    assert.deepEqual(values(w), vals, 'with(): the raw parameters are back, exactly');
  });
  assert.deepEqual([...avg.checkpointVars().keys()], ['average/model/w']);
  avg.install(4);
  assert.deepEqual(values(w), values(avg.vars.get('model/w')!));
  avg.dispose();
  w.dispose();
});

test('train.swa in a run: checkpoints hold the average of the epochs since from_epoch; validation, the test and export measure it; run.json says so', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const base = ['train.epochs=4', 'train.checkpoint_keep=4', 'eval=[{kind: elbo}]'];
  const plain = await runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: base });
  const swa = await runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: [...base, 'train.swa={from_epoch: 2}'] });
  assert.equal(swa.status, 'FINISHED', swa.error);
  const ck = (r: { runDir: string }, e: number) => checkpointTensors(path.join(r.runDir, 'checkpoints', `epoch-000${e}`));
  // training itself is untouched: the raw parameters are the plain run's, epoch by epoch
  for (const e of [1, 4]) {
    const a = ck(plain, e).tensors;
    const b = ck(swa, e).tensors;
    for (const [k, v] of a) if (k.startsWith('model/')) assert.deepEqual(b.get(k), v, `epoch ${e} ${k}`);
  }
  // the average of epochs 2-4 by hand, from the checkpoints' raw parameters
  const last = ck(swa, 4);
  assert.equal(last.manifest.evaluated, 'average');
  assert.equal(ck(swa, 1).manifest.evaluated, undefined, 'epoch 1 is before from_epoch');
  let compared = 0;
  for (const [k, v4] of last.tensors) {
    if (!k.startsWith('model/')) continue;
    const v2 = ck(swa, 2).tensors.get(k)!;
    const v3 = ck(swa, 3).tensors.get(k)!;
    const avg = last.tensors.get(`average/${k}`)!;
    assert.ok(avg, `average/${k} in the checkpoint`);
    for (let i = 0; i < avg.length; i++) {
      const want = (v2[i] + v3[i] + v4[i]) / 3;
      assert.ok(Math.abs(avg[i] - want) <= 1e-6 * (1 + Math.abs(want)), `${k}[${i}]: ${avg[i]} vs ${want}`);
    }
    compared++;
  }
  assert.ok(compared >= 4, `${compared} model tensors`);
  // validation: the same as the plain run before from_epoch, the average's after
  const pv = epochLines(plain.runDir);
  const sv = epochLines(swa.runDir);
  assert.equal(sv[0]['val/elbo'], pv[0]['val/elbo']);
  assert.equal(sv[0]['train/loss'], pv[0]['train/loss']);
  assert.equal(sv[3]['train/loss'], pv[3]['train/loss'], 'the training numbers do not change');
  assert.notEqual(sv[3]['val/elbo'], pv[3]['val/elbo'], 'validation measures the average');
  assert.notEqual(swa.metrics['test/elbo'], plain.metrics['test/elbo']);
  const record = JSON.parse(fs.readFileSync(path.join(swa.runDir, 'run.json'), 'utf8'));
  assert.deepEqual(record.evaluated_on, { checkpoint: 'last', epoch: 4, swa_epochs: 3 });
  // the learning curves say where validation begins to measure the average
  const curves = (r: { runDir: string }) => fs.readFileSync(path.join(r.runDir, 'artifacts', 'curves.svg'), 'utf8');
  assert.match(curves(swa), /weight average \(train\.swa\)/);
  assert.doesNotMatch(curves(plain), /train\.swa/);
  // what export and comparisons read: the average
  const loaded = await loadFinishedRun(swa.runDir, tf, createRegistry(), 'test');
  for (const [k, v] of modelVariables(loaded.model)) assert.deepEqual(v.dataSync(), last.tensors.get(`average/model/${k}`), k);
});

test('train.swa: an interrupted run resumes to the uninterrupted numbers exactly; with train.select the best checkpoint holds the average', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const overrides = ['train.epochs=4', 'train.swa={from_epoch: 2}', 'train.select={metric: val/elbo}', 'eval=[{kind: elbo}]'];
  const o = { config: cfg, runsDir: path.join(dir, 'runs'), overrides, progress: false };
  const full = await runExperiment(o);
  assert.equal(full.status, 'FINISHED', full.error);
  let epochs = 0;
  const cut = await runExperiment({ ...o, onEpoch: () => epochs++, shouldStop: () => epochs >= 3 });
  assert.equal(cut.status, 'KILLED');
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED', resumed.error);
  for (const k of ['test/elbo', 'test/kl', 'val/elbo', 'train/loss']) assert.equal(resumed.metrics[k], full.metrics[k], k);
  const record = JSON.parse(fs.readFileSync(path.join(full.runDir, 'run.json'), 'utf8'));
  const best = record.evaluated_on;
  assert.equal(best.checkpoint, 'best');
  // (the ELBO still improves at every epoch of this short run: the best is an average)
  assert.ok(best.epoch >= 2, JSON.stringify(best));
  assert.equal(best.swa_epochs, best.epoch - 1);
  const bestCk = checkpointTensors(path.join(full.runDir, 'checkpoints', 'best', `epoch-000${best.epoch}`));
  const epochCk = checkpointTensors(path.join(full.runDir, 'checkpoints', `epoch-000${best.epoch}`));
  assert.ok(bestCk.tensors.size > 0);
  for (const [k, v] of bestCk.tensors) assert.deepEqual(v, epochCk.tensors.get(`average/${k}`), k);
});

test('train.swa.from_epoch after the last epoch is a located error', () => {
  const lines = configProblems(`${BASE_CONFIG}train:\n  epochs: 5\n  swa: {from_epoch: 6}\n`);
  assert.ok(lines.length > 0);
  assert.match(lines[0], /train\.swa\.from_epoch/);
  assert.match(lines[0], /FILE:\d+:\d+/);
});
