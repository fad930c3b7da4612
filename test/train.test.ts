import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { runExperiment } from '../src/experiment';
import { createRegistry } from '../src/builtins';
import { tmpDir, smallConfig, epochLines, elbo, untimed, untimedLines } from './helpers';
import { epochBatches } from '../src/train/loop';
import { Rng } from '../src/runtime/rng';
import type { PluginContext, PluginOptions } from '../src/contracts';

const quiet = { progress: false };

test('two runs with one seed give identical metrics; another seed differs', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const a = await runExperiment({ config: cfg, runsDir: runs, ...quiet });
  const b = await runExperiment({ config: cfg, runsDir: runs, ...quiet });
  const c = await runExperiment({ config: cfg, runsDir: runs, seed: 2, ...quiet });
  assert.equal(a.status, 'FINISHED');
  assert.deepEqual(untimed(a.metrics), untimed(b.metrics));
  assert.notEqual(a.metrics['test/elbo'], c.metrics['test/elbo']);
  // per-epoch curves too, to the last digit
  assert.deepEqual(untimedLines(a.runDir), untimedLines(b.runDir));
  assert.notEqual(a.runDir, b.runDir);
});

test('determinism holds on the cpu backend too', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const opts = {
    config: cfg,
    runsDir: path.join(dir, 'runs'),
    backend: 'cpu',
    overrides: ['train.epochs=1', 'eval=[{kind: elbo}]'],
    ...quiet,
  };
  const a = await runExperiment(opts);
  const b = await runExperiment(opts);
  assert.equal(a.metrics['test/elbo'], b.metrics['test/elbo']);
  assert.equal(JSON.parse(fs.readFileSync(path.join(a.runDir, 'run.json'), 'utf8')).backend.name, 'cpu');
});

test('an interrupted run is KILLED with its checkpoint, and resuming reaches the uninterrupted metrics', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const full = await runExperiment({ config: cfg, runsDir: runs, ...quiet });
  let epochsSeen = 0;
  const cut = await runExperiment({
    config: cfg,
    runsDir: runs,
    ...quiet,
    onEpoch: () => epochsSeen++,
    shouldStop: () => epochsSeen >= 1,
  });
  assert.equal(cut.status, 'KILLED');
  const rec = JSON.parse(fs.readFileSync(path.join(cut.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'KILLED');
  assert.equal(rec.epochs_completed, 1);
  assert.match(rec.error, /resume with: elbo run --resume/);
  assert.ok(fs.existsSync(path.join(cut.runDir, 'checkpoints', 'epoch-0001', 'manifest.json')));
  assert.equal(fs.readFileSync(path.join(cut.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 1);

  // the time it sits stopped does not count as the run's duration
  await new Promise((r) => setTimeout(r, 1500));
  const resumed = await runExperiment({ resume: cut.runDir, ...quiet });
  assert.equal(resumed.status, 'FINISHED');
  assert.equal(resumed.runDir, cut.runDir);
  for (const k of ['test/elbo', 'test/kl', 'test/recon', 'test/log_likelihood_k8', 'val/elbo', 'train/loss']) {
    assert.equal(resumed.metrics[k], full.metrics[k], k);
  }
  const after = JSON.parse(fs.readFileSync(path.join(cut.runDir, 'run.json'), 'utf8'));
  assert.equal(after.resumes.length, 1);
  assert.equal(after.resumes[0].from_epoch, 1);
  assert.equal(after.resumes[0].trained_s, rec.duration_s);
  const wall = (Date.parse(after.end_time) - Date.parse(after.start_time)) / 1000;
  assert.ok(after.duration_s > rec.duration_s && after.duration_s < wall - 1.4, `duration ${after.duration_s} s of ${wall} s since start`);
  assert.equal(fs.readFileSync(path.join(cut.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 4); // 3 epochs + test
  await assert.rejects(runExperiment({ resume: cut.runDir, ...quiet }), /already finished/);
});

test('a finished run trained on with --resume --set train.epochs=N reaches the numbers of an N-epoch run', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const full = await runExperiment({ config: cfg, runsDir: runs, ...quiet });
  const short = await runExperiment({ config: cfg, runsDir: runs, overrides: ['train.epochs=2'], ...quiet });
  assert.equal(short.status, 'FINISHED');
  assert.notEqual(short.metrics['test/elbo'], full.metrics['test/elbo']);
  const before = JSON.parse(fs.readFileSync(path.join(short.runDir, 'run.json'), 'utf8'));
  // anything but train.epochs, --seed, and an N that does not train on are refused before the run is touched
  await assert.rejects(runExperiment({ resume: short.runDir, overrides: ['model.latent=8'], ...quiet }), (e: { line(): string }) => {
    assert.match(e.line(), /^--set model\.latent=8: .*the one --set it takes is train\.epochs=N/);
    return true;
  });
  await assert.rejects(runExperiment({ resume: short.runDir, overrides: ['~eval.2'], ...quiet }), /train\.epochs=N/);
  await assert.rejects(runExperiment({ resume: short.runDir, seed: 3, ...quiet }), /--seed cannot change it/);
  await assert.rejects(runExperiment({ resume: short.runDir, overrides: ['train.epochs=2'], ...quiet }), /not past the 2 epochs/);
  await assert.rejects(
    runExperiment({ resume: short.runDir, ...quiet }),
    /already finished \(2 epochs\); to train it on, add --set train\.epochs=N/,
  );
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(short.runDir, 'run.json'), 'utf8')), before);

  const on = await runExperiment({ resume: short.runDir, overrides: ['train.epochs=3'], ...quiet });
  assert.equal(on.status, 'FINISHED');
  assert.equal(on.runDir, short.runDir);
  for (const k of ['test/elbo', 'test/kl', 'test/log_likelihood_k8', 'val/elbo', 'train/loss'])
    assert.equal(on.metrics[k], full.metrics[k], k);
  const rec = JSON.parse(fs.readFileSync(path.join(on.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.epochs_planned, 3);
  assert.equal(rec.epochs_completed, 3);
  assert.deepEqual(
    rec.resumes.map((r: { from_epoch: number; previous_status: string; epochs: unknown }) => [r.from_epoch, r.previous_status, r.epochs]),
    [[2, 'FINISHED', { from: 2, to: 3 }]],
  );
  // the run's config says what it trained now (and its sha256 is that config's, as a 3-epoch run's)
  const fullRec = JSON.parse(fs.readFileSync(path.join(full.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.config_sha256, fullRec.config_sha256);
  assert.equal(
    fs.readFileSync(path.join(on.runDir, 'config.yaml'), 'utf8'),
    fs.readFileSync(path.join(full.runDir, 'config.yaml'), 'utf8'),
  );
  // metrics.jsonl: three epochs and one test line, the 2-epoch test line gone
  const lines = fs
    .readFileSync(path.join(on.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.epoch ?? 'test'),
    [1, 2, 3, 'test'],
  );
  assert.equal(lines[3]['test/elbo'], full.metrics['test/elbo']);
  assert.match(elbo(['runs', 'show', on.runDir]).stdout, /resumed\s+1 time, last from epoch 2; train\.epochs 2 → 3 at epoch 2/);
});

test('a diverging run stops with a clear message, is FAILED, and keeps its last good checkpoint', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const r = await runExperiment({
    config: cfg,
    runsDir: path.join(dir, 'runs'),
    overrides: ['train.optimizer={kind: sgd, lr: 1.0e+12}', 'train.log_every=1'],
    ...quiet,
  });
  assert.equal(r.status, 'FAILED');
  assert.match(r.error!, /training diverged: .* became (NaN|Infinity|-Infinity) .*lower train\.optimizer\.lr/);
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'FAILED');
  assert.ok(rec.end_time);
});

test('memory stays flat: the tensor count does not grow over epochs', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const counts: number[] = [];
  const r = await runExperiment({
    config: cfg,
    runsDir: path.join(dir, 'runs'),
    overrides: ['train.epochs=5'],
    ...quiet,
    onEpoch: (_e, _m, tf) => counts.push(tf.memory().numTensors),
  });
  assert.equal(r.status, 'FINISHED');
  assert.equal(counts.length, 5);
  assert.ok(
    counts.every((c) => c === counts[0]),
    `tensor counts per epoch: ${counts.join(', ')}`,
  );
});

test('a training run lowers the loss', async () => {
  const dir = tmpDir();
  const r = await runExperiment({ config: smallConfig(dir), runsDir: path.join(dir, 'runs'), overrides: ['train.epochs=6'], ...quiet });
  const lines = epochLines(r.runDir);
  assert.ok(lines[5]['val/elbo'] > lines[0]['val/elbo'] + 1, `val/elbo ${lines[0]['val/elbo']} → ${lines[5]['val/elbo']}`);
});

/** The model tensors of a checkpoint directory, by name. */
function modelTensors(dir: string): Record<string, number[]> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const buf = fs.readFileSync(path.join(dir, 'weights.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const out: Record<string, number[]> = {};
  for (const t of manifest.tensors) if (t.name.startsWith('model/')) out[t.name] = Array.from(all.subarray(t.offset, t.offset + t.length));
  return out;
}

test('train.select keeps the best epoch in checkpoints/best, evaluates it, and a resumed run selects the same epoch', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  // mode min on val/elbo picks an early epoch (the ELBO rises as training goes on), so the
  // selected parameters are not the last ones
  const sel = ['train.epochs=4', 'train.select={metric: val/elbo, mode: min}', 'train.checkpoint_keep=1'];
  const full = await runExperiment({ config: cfg, runsDir: runs, overrides: sel, ...quiet });
  assert.equal(full.status, 'FINISHED', full.error);
  const epochs = epochLines(full.runDir);
  assert.equal(epochs.length, 4);
  const vals = epochs.map((m) => m['val/elbo'] as number);
  const bestEpoch = vals.indexOf(Math.min(...vals)) + 1;
  assert.ok(bestEpoch <= 2, `val/elbo per epoch: ${vals.join(', ')}`);
  const rec = JSON.parse(fs.readFileSync(path.join(full.runDir, 'run.json'), 'utf8'));
  assert.deepEqual(rec.selected, { metric: 'val/elbo', mode: 'min', epoch: bestEpoch, value: vals[bestEpoch - 1] });
  assert.deepEqual(rec.evaluated_on, { checkpoint: 'best', epoch: bestEpoch });
  assert.deepEqual(full.evaluatedOn, rec.evaluated_on);
  // checkpoint_keep prunes epoch checkpoints, never the best one
  const ckpts = path.join(full.runDir, 'checkpoints');
  assert.deepEqual(fs.readdirSync(ckpts).sort(), ['best', 'epoch-0004']);
  const bestDir = path.join(ckpts, 'best', `epoch-${String(bestEpoch).padStart(4, '0')}`);
  assert.deepEqual(fs.readdirSync(path.join(ckpts, 'best')), [path.basename(bestDir)]);

  // the evaluated parameters are the best epoch's: a run that stops at that epoch (no
  // selection) ends with the same parameters and measures the same test metrics
  const short = await runExperiment({ config: cfg, runsDir: runs, overrides: [`train.epochs=${bestEpoch}`], ...quiet });
  assert.deepEqual(short.evaluatedOn, { checkpoint: 'last', epoch: bestEpoch });
  assert.deepEqual(modelTensors(bestDir), modelTensors(path.join(short.runDir, 'checkpoints', path.basename(bestDir))));
  for (const k of ['test/elbo', 'test/kl', 'test/recon', 'test/log_likelihood_k8']) assert.equal(full.metrics[k], short.metrics[k], k);
  assert.notEqual(full.metrics['val/elbo'], short.metrics['val/elbo'], 'run.json keeps the last epoch’s val/ metrics');

  // interrupted after epoch 2 (the best epoch is behind it), then resumed: the best-so-far
  // survives in the checkpoint, so epochs 3 and 4 do not displace it
  let epochsSeen = 0;
  const cut = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: sel,
    ...quiet,
    onEpoch: () => epochsSeen++,
    shouldStop: () => epochsSeen >= 2,
  });
  assert.equal(cut.status, 'KILLED');
  assert.equal(JSON.parse(fs.readFileSync(path.join(cut.runDir, 'run.json'), 'utf8')).selected.epoch, bestEpoch);
  const resumed = await runExperiment({ resume: cut.runDir, ...quiet });
  assert.equal(resumed.status, 'FINISHED', resumed.error);
  assert.deepEqual(resumed.selected, rec.selected);
  assert.deepEqual(resumed.evaluatedOn, rec.evaluated_on);
  for (const k of ['test/elbo', 'test/kl', 'test/recon', 'test/log_likelihood_k8', 'val/elbo'])
    assert.equal(resumed.metrics[k], full.metrics[k], k);
});

test('train.select on a metric the epoch does not write fails the run with a clear message', async () => {
  // a model plugin that does not declare its terms cannot be checked before the run
  const dir = tmpDir();
  const registry = createRegistry();
  registry.register({ ...registry.get('model', 'vae'), name: 'plain', termNames: undefined }, 'test');
  const runs = path.join(dir, 'runs');
  const run = runExperiment({
    config: smallConfig(dir),
    runsDir: runs,
    registry,
    overrides: ['model.kind=plain', 'train.select={metric: val/accuracy, mode: max}'],
    ...quiet,
  });
  const message = "'val/accuracy' is not among the metrics of epoch 1 (val/recon, val/kl, val/elbo)";
  await assert.rejects(run, { message });
  const [runId] = fs.readdirSync(path.join(runs, 'small'));
  const rec = JSON.parse(fs.readFileSync(path.join(runs, 'small', runId, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'FAILED');
  assert.equal(rec.error, `train.select.metric: ${message}`);
});

test('a learning-rate schedule moves the rate every step: a stage at rate 0 leaves the parameters where the stage before left them', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const lr = 'train.optimizer={kind: adam, lr: {kind: piecewise, stages: [{epochs: 1, value: 0.01}, {epochs: 1, value: 0}]}}';
  const two = await runExperiment({ config: cfg, runsDir: runs, overrides: [lr, 'train.epochs=2', 'eval=[{kind: elbo}]'], ...quiet });
  const one = await runExperiment({ config: cfg, runsDir: runs, overrides: [lr, 'train.epochs=1', 'eval=[{kind: elbo}]'], ...quiet });
  assert.equal(two.status, 'FINISHED', two.error);
  const epochs = epochLines(two.runDir);
  assert.deepEqual(
    epochs.map((m) => m['optimizer/lr']),
    [0.01, 0],
  );
  // epoch 2 ran at rate 0 (whether its step was one TensorFlow graph or kernel by kernel)
  assert.deepEqual(
    modelTensors(path.join(two.runDir, 'checkpoints', 'epoch-0002')),
    modelTensors(path.join(one.runDir, 'checkpoints', 'epoch-0001')),
  );
  // and the rate is fed to the compiled step, not frozen into it
  const rec = JSON.parse(fs.readFileSync(path.join(two.runDir, 'run.json'), 'utf8'));
  if (rec.backend.name === 'tensorflow')
    assert.ok(
      rec.step_modes.every((m: { mode: string }) => m.mode === 'graph'),
      JSON.stringify(rec.step_modes),
    );
  // a cosine schedule from 0.01 to 0.001 over the two epochs falls from step to step
  const cos = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: ['train.optimizer.lr={kind: cosine, from: 0.01, to: 0.001, end_epoch: 2}', 'train.epochs=2', 'eval=[{kind: elbo}]'],
    ...quiet,
  });
  const lrs = epochLines(cos.runDir).map((m) => m['optimizer/lr']);
  assert.ok(lrs[0] < 0.01 && lrs[0] > 0.0055 && lrs[1] > 0.001 && lrs[1] < 0.0015, `lr per epoch (its last step) ${lrs}`);
});

test('the cosine and piecewise schedules give their values at the epochs they name', () => {
  const r = createRegistry();
  const at = (spec: object, epochFloat: number) =>
    (r.create('schedule', spec as PluginOptions, {} as PluginContext) as (p: object) => number)({
      epoch: Math.floor(epochFloat),
      step: 0,
      fraction: 0,
      epochFloat,
    });
  const cos = { kind: 'cosine', from: 1, to: 0.1, start_epoch: 2, end_epoch: 6 };
  assert.deepEqual(
    [0, 2, 4, 6, 9].map((e) => +at(cos, e).toFixed(6)),
    [1, 1, 0.55, 0.1, 0.1],
  );
  const steps = {
    kind: 'piecewise',
    stages: [
      { epochs: 1, value: 3 },
      { epochs: 3, value: 2 },
      { epochs: 9, value: 1 },
    ],
  };
  assert.deepEqual(
    [0, 0.99, 1, 3.99, 4, 12.9, 13, 100].map((e) => at(steps, e)),
    [3, 3, 2, 2, 1, 1, 1, 1],
  );
});

test('batch composition: every step takes batch_size rows of the pass and L labelled rows, cycled or drawn with replacement, from the seed', () => {
  const labelled = Int32Array.from([3, 7, 11, 19, 23]);
  const isLab = new Set(labelled);
  const rows = (draw: 'cycle' | 'replacement', seed: number) => {
    const of = epochBatches(new Rng(seed).fork('epoch-0'), 40, 10, null, labelled, 4, draw);
    return Array.from({ length: 4 }, (_, s) => Array.from(of(s)));
  };
  for (const draw of ['cycle', 'replacement'] as const) {
    const a = rows(draw, 1);
    assert.deepEqual(a, rows(draw, 1), `${draw}: the same seed gives the same rows`);
    assert.notDeepEqual(a, rows(draw, 2), `${draw}: another seed other rows`);
    for (const b of a) {
      assert.equal(b.length, 14, 'B = 10 rows of the pass + L = 4 labelled');
      assert.ok(
        b.slice(10).every((r) => isLab.has(r)),
        'the last L rows are labelled',
      );
    }
    // the pass itself: 40 distinct rows over the 4 steps
    assert.equal(new Set(a.flatMap((b) => b.slice(0, 10))).size, 40);
  }
  // cycle: 16 draws over 5 labels, each label 3 or 4 times, every 5 consecutive draws a permutation
  const cyc = rows('cycle', 1).flatMap((b) => b.slice(10));
  const count = (v: number[]) => [...labelled].map((l) => v.filter((r) => r === l).length);
  assert.ok(
    count(cyc).every((c) => c === 3 || c === 4),
    JSON.stringify(count(cyc)),
  );
  assert.equal(new Set(cyc.slice(0, 5)).size, 5);
  assert.equal(new Set(cyc.slice(5, 10)).size, 5);
  // replacement: independent draws, so over many steps some 5 consecutive draws repeat a label
  const rep = epochBatches(new Rng(1).fork('epoch-0'), 400, 10, null, labelled, 5, 'replacement');
  const windows = Array.from({ length: 40 }, (_, s) => Array.from(rep(s)).slice(10));
  assert.ok(
    windows.some((w) => new Set(w).size < 5),
    'draws with replacement repeat labels within a step',
  );
  assert.ok(
    count(windows.flat()).every((c) => c > 20),
    'every label drawn',
  );
});

test("a weight declared role: 'parameter' (a capacity) keeps its scheduled value in validation and the test evaluators; multipliers are 1 there", async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const plugin = (
    role: string,
  ) => `module.exports = { kind: 'model', name: 'cap-${role}', description: 'reports its capacity', schema: { properties: {} },
  weights: { capacity_${role}: { default: 0, description: 'a capacity', role: '${role}' } },
  termNames: () => ['loss', 'capacity'],
  create(o, ctx) {
    const tf = ctx.tf;
    const t = tf.variable(tf.ones([1]));
    return { params: new Map([['t', t]]), latent: 1,
      terms(batch, w) { return { loss: tf.sum(tf.square(t)), capacity: tf.mul(w.capacity_${role}, tf.scalar(1)) }; },
      encodeMean: (x) => x, reconstruct: (x) => x, decode: (z) => z, sampleLatent: () => null };
  } };`;
  const run = async (role: string) => {
    fs.writeFileSync(path.join(dir, `cap-${role}.js`), plugin(role));
    const r = await runExperiment({
      config: cfg,
      runsDir: path.join(dir, 'runs'),
      progress: false,
      overrides: [
        `plugins=[./cap-${role}.js]`,
        `model={kind: cap-${role}}`,
        'eval=[{kind: elbo}]',
        'train.epochs=2',
        `loss.capacity_${role}={kind: linear, from: 0, to: 10, end_epoch: 2}`,
      ],
    });
    assert.equal(r.status, 'FINISHED', r.error);
    const lines = fs
      .readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => 'epoch' in l);
    return { val: lines.map((l) => l['val/capacity']), test: r.metrics['test/capacity'] };
  };
  const parameter = await run('parameter');
  // where each epoch's training left it (just under 5 and 10: the last step's fractional epoch), and 10 at the end
  assert.ok(parameter.val[0] > 4 && parameter.val[0] <= 5, `epoch 1: ${parameter.val[0]}`);
  assert.ok(parameter.val[1] > 9 && parameter.val[1] <= 10, `epoch 2: ${parameter.val[1]}`);
  assert.equal(parameter.test, 10);
  const multiplier = await run('multiplier');
  assert.deepEqual(multiplier.val, [1, 1]);
  assert.equal(multiplier.test, 1);
});
