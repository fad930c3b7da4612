import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { rungEpochs, promotable, nextJob, type RungTable } from '../src/sweep/asha';
import { tmpDir, smallConfig, elbo, lastJson, type RunOutput, type SweepOutput } from './helpers';
import type { CellResult } from '../src/sweep/state';
import type { RunRecord } from '../src/contracts';

/**
 * Sweeps that stop bad cells early (src/sweep/asha.ts): the promotion rule on fixed rung
 * tables, and a tiny sweep end to end: a cell with an absurdly small learning rate stops at
 * the first rung, the best one is resumed from its checkpoint to max_epochs.
 */

const table = (values: Record<number, [number, number?]>, rungs = [1, 3, 9], mode: 'max' | 'min' = 'max'): RungTable => ({
  cells_sha256: 'x',
  metric: 'val/elbo',
  mode,
  reduction_factor: 3,
  rungs,
  cells: Object.fromEntries(Object.entries(values).map(([i, [v0, target]]) => [i, { target: target ?? 0, values: { 0: v0 } }])),
});

test('ASHA: rungs at grace·η^k below max_epochs, then max_epochs; the top ⌊n/η⌋ of a rung is promotable, once; the highest rung first', () => {
  assert.deepEqual(rungEpochs(1, 3, 9), [1, 3, 9]);
  assert.deepEqual(rungEpochs(1, 3, 10), [1, 3, 9, 10]);
  assert.deepEqual(rungEpochs(2, 2, 8), [2, 4, 8]);
  assert.deepEqual(rungEpochs(1, 4, 3), [1, 3]);

  // two cells at rung 0: ⌊2/3⌋ = 0, nobody goes on; with six, the best two (ties: lower index)
  assert.deepEqual(promotable(table({ 0: [-90], 1: [-80] }), 0), []);
  const six = table({ 0: [-90], 1: [-80], 2: [-100], 3: [-80], 4: [-85], 5: [-200] });
  assert.deepEqual(promotable(six, 0), [1, 3]);
  // lower is better under mode min: the two smallest values
  assert.deepEqual(promotable({ ...six, mode: 'min' }, 0), [5, 2]);
  // a promoted cell (its target is rung 1) is not promoted again; the slot is not handed on
  six.cells[1].target = 1;
  assert.deepEqual(promotable(six, 0), [3]);
  // nothing is promoted from the top rung
  assert.deepEqual(promotable(table({ 0: [-1], 1: [-2], 2: [-3] }, [1]), 0), []);

  // the next job: a claimed cell whose rung was never recorded (its process died) first
  six.cells[1].values = { 0: -80 };
  assert.deepEqual(
    nextJob(six, [6, 7], () => false),
    { cell: 1, rung: 1 },
  );
  assert.deepEqual(
    nextJob(six, [6, 7], (i) => i === 1),
    { cell: 3, rung: 1 },
    'then a promotion',
  );
  // the highest rung before lower ones: three cells recorded at rung 1, the best goes to rung 2
  six.cells[1].values[1] = -70;
  six.cells[3] = { target: 1, values: { 0: -80, 1: -75 } };
  six.cells[0] = { target: 1, values: { 0: -90, 1: -60 } };
  assert.deepEqual(
    nextJob(six, [6, 7], () => false),
    { cell: 0, rung: 2 },
  );
  six.cells[0].target = 2;
  six.cells[0].values[2] = -50;
  // no promotion left (rung 0's top two are promoted): a fresh cell, this process's only
  assert.deepEqual(
    nextJob(six, [6, 7], () => false),
    { cell: 6, rung: 0 },
  );
  assert.deepEqual(
    nextJob(six, [6, 7], (i) => i === 6),
    { cell: 7, rung: 0 },
  );
  assert.equal(
    nextJob(six, [], () => false),
    null,
  );

  // synchronous halving (kind: sha): every cell starts first; a rung promotes once no cell still trains towards it
  const sync = { ...table({ 0: [-90], 1: [-80], 2: [-100] }), sync: { total: 4 } };
  assert.deepEqual(
    nextJob(sync, [3], () => false),
    { cell: 3, rung: 0 },
    'a fresh cell before any promotion',
  );
  sync.cells[3] = { target: 0, values: {} };
  assert.equal(
    nextJob(sync, [], (i) => i === 3),
    null,
    'cell 3 is still training towards rung 0: no promotion yet',
  );
  sync.cells[3].values[0] = -70;
  assert.deepEqual(
    nextJob(sync, [], () => false),
    { cell: 3, rung: 1 },
    'then the top ⌊4/3⌋ = 1',
  );
  // the same table asynchronously: the best of the first three goes on at once
  assert.deepEqual(
    nextJob({ ...table({ 0: [-90], 1: [-80], 2: [-100] }), sync: undefined }, [3], () => false),
    { cell: 1, rung: 1 },
  );
});

function sweepDirWith(body: string): { dir: string; file: string } {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/eval:[\s\S]*$/, 'eval:\n  - kind: elbo\n'));
  const file = path.join(dir, 'sweep.yaml');
  fs.writeFileSync(file, `base: small.yaml\nset: {data.max_train: 200}\n${body}`);
  return { dir, file };
}

test('early_stop end to end: an absurdly small learning rate stops at the first rung; the best cell resumes from its checkpoint to max_epochs, its curve continued', () => {
  const { dir, file } = sweepDirWith(
    'early_stop: {kind: asha, metric: val/elbo, mode: max, grace_epochs: 1, reduction_factor: 3, max_epochs: 3}\nsweep:\n  grid:\n    train.optimizer.lr: [1.0e-7, 1.0e-3, 1.0e-2]\n',
  );
  const runs = path.join(dir, 'runs');
  const r = elbo(['sweep', file, '--runs-dir', runs, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  const asha = JSON.parse(fs.readFileSync(path.join(out.dir, 'asha.json'), 'utf8'));
  assert.deepEqual(asha.rungs, [1, 3]);
  // the rung table's winner at epoch 1 is the one that went on
  const first = [0, 1, 2].map((i) => asha.cells[i].values[0]);
  const best = first.indexOf(Math.max(...first));
  assert.notEqual(best, 0, 'lr 1e-7 is not the best after one epoch');
  const cells = out.cells;
  assert.deepEqual(
    cells.map((c: CellResult) => c.status),
    [0, 1, 2].map((i) => (i === best ? 'FINISHED' : 'STOPPED')),
  );
  assert.deepEqual(cells[0].rung, { index: 0, epoch: 1, of: 2 });
  assert.deepEqual(cells[best].rung, { index: 1, epoch: 3, of: 2 });
  const run = (i: number) => JSON.parse(fs.readFileSync(path.join(cells[i].runDir!, 'run.json'), 'utf8'));
  const lines = (i: number) =>
    fs
      .readFileSync(path.join(cells[i].runDir!, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  assert.equal(run(0).status, 'PAUSED');
  assert.equal(run(0).epochs_completed, 1);
  assert.ok(!('test/elbo' in run(0).metrics), 'a stopped cell is not evaluated on the test split');
  // the winner: one run, paused at epoch 1 and resumed from that checkpoint; its learning curve goes on
  const won = run(best);
  assert.equal(won.epochs_completed, 3);
  assert.deepEqual(
    won.resumes.map((x: RunRecord['resumes'][number]) => [x.from_epoch, x.previous_status]),
    [[1, 'PAUSED']],
  );
  const curve = lines(best).filter((l) => l.epoch !== undefined);
  assert.deepEqual(
    curve.map((l) => l.epoch),
    [1, 2, 3],
  );
  assert.equal(curve[0]['val/elbo'], first[best], 'epoch 1 as the rung recorded it');
  assert.deepEqual(
    curve.map((l) => l.step),
    [4, 8, 12],
    'steps count on from the checkpoint',
  );
  assert.equal(fs.readdirSync(path.join(out.dir, 'runs', 'small')).length, 3, 'one run per cell');
  // the same cell trained in one go: the same numbers (the pause changes nothing)
  const lr = [1e-7, 1e-3, 1e-2][best];
  const whole = elbo([
    'run',
    path.join(dir, 'small.yaml'),
    '--set',
    'data.max_train=200',
    '--set',
    `train.optimizer.lr=${lr}`,
    '--runs-dir',
    path.join(dir, 'whole'),
    '--json',
    '--quiet',
  ]);
  assert.equal(whole.status, 0, whole.stderr);
  const straight = lastJson<RunOutput>(whole.stdout).metrics;
  assert.equal(straight['val/elbo'], won.metrics['val/elbo']);
  assert.equal(straight['test/elbo'], won.metrics['test/elbo']);
  assert.match(r.stderr, /cell 0 \(train\.optimizer\.lr=1e-7\): paused at epoch 1 \(rung 1 of 2\), val\/elbo -?\d+\.\d+/);
  assert.match(
    r.stderr,
    new RegExp(`cell ${best} \\([^)]*\\): promoted, among the top 1/3 at epoch 1\ncell ${best} \\([^)]*\\): resuming \\S+\n`),
  );

  // the summary: epochs spent against the full grid
  const text = elbo(['sweep', file, '--runs-dir', runs]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(
    text.stdout,
    /^sweep sweep: 1\/3 cells finished, 2 stopped early \(rungs at epochs 1, 3; 5 epochs in all, the full grid: 9\)/m,
  );
  assert.doesNotMatch(text.stderr, /started|resuming/, 'a rerun trains nothing');
  // compare: the stopped cells shown as such, ranked by their last val/elbo with the others
  const cmp = elbo(['compare', out.dir, '--wide']);
  assert.equal(cmp.status, 0, cmp.stderr);
  const rows = cmp.stdout.trim().split('\n').slice(2);
  assert.equal(rows.length, 3);
  // keyed by the swept key itself (the sweep's axis), not the optimizer block it sits in
  assert.match(cmp.stdout, /^train\.optimizer\.lr\s+seeds\s+epochs/);
  assert.match(rows[0], /^(1e-7|0\.001|0\.01)\s+1\s+3\s+-?\d/);
  const vals = rows.map((l) => Number(/(-\d+\.\d+)\s+-?\d+\.\d+\s+-?\d+\.\d+\s*$/.exec(l)![1]));
  assert.deepEqual(
    [...vals].sort((a, b) => b - a),
    vals,
    'ranked by val/elbo, best first',
  );
  assert.equal(rows.filter((l) => /\s1 \(stopped\)\s/.test(l)).length, 2);
});

test('early_stop: bad blocks are refused with where and what to do', () => {
  const { file } = sweepDirWith(
    'early_stop: {kind: asha, grace_epochs: 3, reduction_factr: 3}\nsweep:\n  grid:\n    model.latent: [2, 4]\n',
  );
  const r = elbo(['validate', file]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /sweep\.yaml:3:\d+: unknown key 'reduction_factr' in early_stop; did you mean 'reduction_factor'\?/);
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(', reduction_factr: 3', ''));
  const g = elbo(['sweep', file, '--dry-run']);
  assert.equal(g.status, 1);
  assert.match(
    g.stderr,
    /sweep\.yaml: early_stop\.grace_epochs: grace_epochs \(3\) must be below max_epochs \(3\): with one rung nothing is stopped early/,
  );
  fs.writeFileSync(
    file,
    fs.readFileSync(file, 'utf8').replace('grace_epochs: 3', 'grace_epochs: 1').replace('model.latent: [2, 4]', 'train.epochs: [2, 4]'),
  );
  const e = elbo(['sweep', file, '--dry-run']);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /sweep\.yaml:3:\d+: with early_stop every cell trains to the same max_epochs: do not sweep train\.epochs/);
});

test('early_stop and search metrics are checked against what the cells write, before any cell trains', () => {
  const { file } = sweepDirWith(
    'early_stop: {kind: asha, metric: val/bogus, mode: max, grace_epochs: 1, reduction_factor: 3, max_epochs: 3}\nsweep:\n  grid:\n    model.latent: [2, 4]\n',
  );
  const r = elbo(['validate', file]);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /sweep\.yaml:3:\d+: every cell: early_stop\.metric 'val\/bogus' is not written by model 'vae' \(it writes: .*val\/elbo/,
  );
  // the same in sweep (nothing trains: no runs directory is made)
  const s = elbo(['sweep', file, '--runs-dir', path.join(path.dirname(file), 'runs')]);
  assert.equal(s.status, 1);
  assert.match(s.stderr, /early_stop\.metric 'val\/bogus' is not written/);
  assert.ok(!fs.existsSync(path.join(path.dirname(file), 'runs')), 'no cell started');
  // a validation metric without a validation split
  fs.writeFileSync(
    file,
    fs
      .readFileSync(file, 'utf8')
      .replace('val/bogus', 'val/elbo')
      .replace('set: {data.max_train: 200}', 'set: {data.max_train: 200, data.validation: 0}'),
  );
  const v = elbo(['validate', file]);
  assert.equal(v.status, 1);
  assert.match(v.stderr, /sweep\.yaml:3:\d+: every cell: early_stop\.metric 'val\/elbo' is a validation metric, but data\.validation is 0/);
  // a train/ metric needs none
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('metric: val/elbo, mode: max', 'metric: train/loss, mode: min'));
  const ok = elbo(['validate', file]);
  assert.equal(ok.status, 0, ok.stderr);
  // a search's metric may also be a test metric the evaluators write, but not an unknown one
  const search = (metric: string) => {
    fs.writeFileSync(
      file,
      `base: small.yaml\nset: {data.max_train: 100, train.epochs: 1}\nsweep:\n  search:\n    kind: optuna\n    trials: 2\n    metric: ${metric}\n    space:\n      model.latent: {int: [2, 4]}\n`,
    );
    return elbo(['validate', file]);
  };
  assert.equal(search('test/elbo').status, 0);
  const bad = search('test/bogus');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /sweep\.yaml:7:\d+: .*search\.metric 'test\/bogus' is not written by model 'vae'/);
});
