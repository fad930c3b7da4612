import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, type EvaluateOutput, type RunOutput, type ShownRun } from './helpers';
import { runExperiment } from '../src/experiment';
import { evaluateCheckpoint, snapshotCheckpoint } from '../src/run/evaluate-checkpoint';
import { selectBackend } from '../src/runtime/backend';

test.before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
});

// `elbo evaluate RUN_DIR`: a stored run's test metrics at a checkpoint (src/run/evaluate-checkpoint.ts)

const SELECT = `  select: { metric: val/elbo, mode: max }\n`;

/** small.yaml with train.select (its train block is the last key before eval). */
function selectingConfig(dir: string): string {
  const file = smallConfig(dir);
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('  batch_size: 50\n', `  batch_size: 50\n${SELECT}`));
  return file;
}

function runDirOf(out: string): string {
  return lastJson<RunOutput>(out).runDir;
}

test('elbo evaluate: a FINISHED run at the checkpoint it was tested on gives its recorded test metrics exactly, and leaves run.json as it was', async () => {
  const dir = tmpDir();
  const r = elbo(['run', selectingConfig(dir), '--runs-dir', path.join(dir, 'runs'), '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = runDirOf(r.stdout);
  const before = fs.readFileSync(path.join(runDir, 'run.json'), 'utf8');
  const record = JSON.parse(before);
  assert.equal(record.status, 'FINISHED');
  assert.equal(record.evaluated_on.checkpoint, 'best');
  const e = elbo(['evaluate', runDir, '--json', '--quiet']);
  assert.equal(e.status, 0, e.stderr);
  const got = lastJson<EvaluateOutput>(e.stdout);
  assert.equal(got.checkpoint, 'best');
  assert.equal(got.epoch, record.evaluated_on.epoch);
  assert.equal(got.run_status, 'FINISHED');
  const recorded = Object.fromEntries(Object.entries(record.metrics).filter(([k]) => k.startsWith('test/')));
  assert.ok(Object.keys(recorded).length >= 3, JSON.stringify(recorded));
  assert.deepEqual(got.metrics, recorded);
  assert.equal(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'), before, 'run.json unchanged');
  const written = JSON.parse(
    fs.readFileSync(path.join(runDir, 'evaluations', `best-epoch-${String(got.epoch).padStart(4, '0')}`, 'metrics.json'), 'utf8'),
  );
  assert.deepEqual(written.metrics, recorded);
  // the evaluators' artifacts go beside it, not over the run's own
  assert.ok(
    fs.readdirSync(path.join(runDir, 'evaluations', `best-epoch-${String(got.epoch).padStart(4, '0')}`)).some((f) => f.endsWith('.png')),
  );
  // the text form names the run, the checkpoint and the metrics
  const t = elbo(['evaluate', runDir, '--checkpoint', 'last', '--quiet']);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /FINISHED after 3 epochs\nlast checkpoint: epoch 3\n/);
  assert.ok(
    t.stdout
      .split('\n')
      .slice(0, -2)
      .every((l) => l.length <= 80),
    t.stdout,
  );
  assert.match(t.stdout, /test\/elbo\s+-\d+\.\d{4}/);
});

test('elbo evaluate: a paused run is evaluated at its last epoch and stays resumable to the end', async () => {
  const dir = tmpDir();
  const r = elbo(['run', smallConfig(dir), '--runs-dir', path.join(dir, 'runs'), '--pause-at', '2', '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = runDirOf(r.stdout);
  assert.equal(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, 'PAUSED');
  const e = elbo(['evaluate', runDir, '--json', '--quiet']);
  assert.equal(e.status, 0, e.stderr);
  const got = lastJson<EvaluateOutput>(e.stdout);
  assert.equal(got.checkpoint, 'last', 'no train.select: the last checkpoint');
  assert.equal(got.epoch, 2);
  assert.equal(got.run_status, 'PAUSED');
  assert.ok(
    Number.isFinite(got.metrics['test/elbo']) && Number.isFinite(got.metrics['test/log_likelihood_k8']),
    JSON.stringify(got.metrics),
  );
  assert.ok(fs.existsSync(path.join(runDir, 'evaluations', 'last-epoch-0002', 'metrics.json')));
  // elbo runs show lists it (text and --json)
  const shown = elbo(['runs', 'show', runDir]);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /evaluation {2}the last checkpoint, epoch 2 of 2 \(PAUSED\): test\/elbo -\d+\.\d{4}/);
  assert.deepEqual(lastJson<ShownRun>(elbo(['runs', 'show', runDir, '--json']).stdout).evaluations[0].metrics, got.metrics);
  const resumed = elbo(['run', '--resume', runDir, '--json', '--quiet']);
  assert.equal(resumed.status, 0, resumed.stderr);
  const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(record.status, 'FINISHED');
  assert.equal(record.epochs_completed, 3);
  // one more epoch: the test numbers differ from the paused evaluation's
  assert.notEqual(record.metrics['test/elbo'], got.metrics['test/elbo']);
});

test('elbo evaluate: one line and exit 1 for a path that is no run, --checkpoint best without train.select, and a run another evaluation holds', async () => {
  const dir = tmpDir();
  const none = elbo(['evaluate', path.join(dir, 'nothing')]);
  assert.equal(none.status, 1);
  assert.match(none.stderr.trim(), /nothing.*not a run directory/);
  assert.equal(none.stderr.trim().split('\n').length, 1, none.stderr);

  const r = elbo(['run', smallConfig(dir), '--runs-dir', path.join(dir, 'runs'), '--set', 'train.epochs=1', '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = runDirOf(r.stdout);
  const best = elbo(['evaluate', runDir, '--checkpoint', 'best']);
  assert.equal(best.status, 1);
  assert.match(best.stderr.trim(), /--checkpoint.*no train\.select.*--checkpoint last/);
  assert.equal(best.stderr.trim().split('\n').length, 1, best.stderr);
  assert.ok(!fs.existsSync(path.join(runDir, 'evaluations')), 'nothing left behind');

  // a live process holds the run's evaluation lock, as an elbo evaluate under way does
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    fs.mkdirSync(path.join(runDir, 'evaluations'));
    fs.writeFileSync(path.join(runDir, 'evaluations', '.lock'), JSON.stringify({ pid: holder.pid, host: os.hostname() }));
    const busy = elbo(['evaluate', runDir, '--checkpoint', 'last']);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr.trim(), new RegExp(`another elbo evaluate \\(process ${holder.pid} .*wait for it to end`));
    assert.equal(busy.stderr.trim().split('\n').length, 1, busy.stderr);
    assert.deepEqual(fs.readdirSync(path.join(runDir, 'evaluations')), ['.lock'], 'nothing evaluated');
  } finally {
    holder.kill();
  }
});

test('elbo evaluate: a run that a live process trains is evaluated on a copy of its checkpoint, as when it is stopped', async () => {
  const dir = tmpDir();
  const r = elbo(['run', selectingConfig(dir), '--runs-dir', path.join(dir, 'runs'), '--pause-at', '2', '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = runDirOf(r.stdout);
  const stopped = elbo(['evaluate', runDir, '--json', '--quiet']);
  assert.equal(stopped.status, 0, stopped.stderr);
  const want = lastJson<EvaluateOutput>(stopped.stdout);
  fs.rmSync(path.join(runDir, 'evaluations'), { recursive: true });
  // a live process holds the run's lock and its record says RUNNING, as while it trains
  const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  fs.writeFileSync(path.join(runDir, 'run.json'), JSON.stringify({ ...record, status: 'RUNNING' }, null, 2) + '\n');
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const lock = JSON.stringify({ pid: holder.pid, host: os.hostname() });
    fs.writeFileSync(path.join(runDir, 'lock'), lock);
    const live = elbo(['evaluate', runDir, '--json']);
    assert.equal(live.status, 0, live.stderr);
    assert.match(
      live.stderr,
      new RegExp(
        `the run trains \\(process ${holder.pid} .*a copy of its best checkpoint is evaluated\nevaluating .*: best checkpoint, epoch ${want.epoch} of 2`,
      ),
    );
    const got = lastJson<EvaluateOutput>(live.stdout);
    assert.equal(got.run_status, 'RUNNING');
    assert.equal(got.epoch, want.epoch);
    assert.deepEqual(got.metrics, want.metrics);
    // the run's lock is the trainer's still; the copy and the evaluation's lock are gone
    assert.equal(fs.readFileSync(path.join(runDir, 'lock'), 'utf8'), lock);
    assert.deepEqual(fs.readdirSync(path.join(runDir, 'evaluations')), [path.basename(got.dir)]);
  } finally {
    holder.kill();
  }
});

test('snapshotCheckpoint: a checkpoint removed or cut short while it is copied is copied again from what the record names then', () => {
  const dir = tmpDir();
  const write = (name: string, floats: number, bytes = 4 * floats) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(
      path.join(d, 'manifest.json'),
      JSON.stringify({ epoch: 1, tensors: [{ name: 'w', shape: [floats], offset: 0, length: floats }] }),
    );
    fs.writeFileSync(path.join(d, 'weights.bin'), Buffer.alloc(bytes, name.length));
    return d;
  };
  const gone = path.join(dir, 'gone'); // removed before it was read
  const short = write('short', 6, 12); // its weights cut short
  const whole = write('wholeone', 5);
  const names = [gone, short, whole];
  let calls = 0;
  const into = path.join(dir, 'copy');
  const got = snapshotCheckpoint(() => ({ which: 'best', epoch: ++calls, checkpointDir: names[calls - 1] }), into);
  assert.equal(calls, 3);
  assert.deepEqual(got, { which: 'best', epoch: 3, checkpointDir: into });
  assert.deepEqual(fs.readFileSync(path.join(into, 'weights.bin')), Buffer.alloc(20, 'wholeone'.length));
  // a checkpoint that stays missing: one line that says so, after the attempts
  assert.throws(
    () => snapshotCheckpoint(() => ({ which: 'last', epoch: 7, checkpointDir: gone }), into, 3),
    /could not copy the last checkpoint \(epoch 7\) of the training run: .*ENOENT.*; try again/,
  );
});

test('evaluateCheckpoint: a model built on another run (M1+M2 on its nested M1) finds that run in the store and gives the recorded test metrics', async () => {
  const dir = tmpDir();
  const m1 =
    '{model: {kind: vae, latent: 6, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}}, train: {epochs: 1, batch_size: 50}}';
  const overrides = [
    `model={kind: m1m2, m1: ${m1}, min_std: 0.01, latent: 3, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}, alpha_expression: "0.1*N_total/N_labelled"}`,
    'data.max_train=200',
    'data.labelled=20',
    'train.labelled_per_batch=10',
    'train.epochs=2',
    'train.select={metric: val/accuracy, mode: max}',
    'eval=[{kind: accuracy}]',
  ];
  const r = await runExperiment({ config: smallConfig(dir), runsDir: path.join(dir, 'runs'), progress: false, overrides });
  assert.equal(r.status, 'FINISHED', r.error);
  const e = await evaluateCheckpoint(r.runDir);
  assert.equal(e.checkpoint, 'best');
  assert.deepEqual(e.metrics, { 'test/accuracy': r.metrics['test/accuracy'], 'test/error_pct': r.metrics['test/error_pct'] });
  // the grey test images: the same M1 (found by the run's own config, whose data block the
  // M1's sha256 covers), the features computed from other inputs
  const m1Runs = () => fs.readdirSync(path.join(dir, 'runs', 'small-m1'));
  const before = m1Runs();
  const grey = await evaluateCheckpoint(r.runDir, { overrides: ['data.binarize=training'] });
  assert.deepEqual(Object.keys(grey.metrics).sort(), ['test/accuracy', 'test/error_pct']);
  assert.notDeepEqual(grey.metrics, e.metrics);
  assert.deepEqual(m1Runs(), before, 'no other M1');
});

test('elbo evaluate --set: other evaluators and labels on a stored model, beside the run own evaluation; anything else of the run refused', async () => {
  const dir = tmpDir();
  const r = elbo(['run', smallConfig(dir), '--runs-dir', path.join(dir, 'runs'), '--set', 'train.epochs=1', '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = runDirOf(r.stdout);
  const before = fs.readFileSync(path.join(runDir, 'run.json'), 'utf8');
  const own = lastJson<EvaluateOutput>(elbo(['evaluate', runDir, '--checkpoint', 'last', '--json', '--quiet']).stdout);
  assert.ok(!('test/latent_classifier_error' in own.metrics));

  const set = ['--set', 'data.labelled=20', '--set', 'eval=[{kind: latent-classifier, classifier: knn, k: 1}]'];
  const e = elbo(['evaluate', runDir, '--checkpoint', 'last', ...set, '--json', '--quiet']);
  assert.equal(e.status, 0, e.stderr);
  const got = lastJson<EvaluateOutput>(e.stdout);
  assert.deepEqual(Object.keys(got.metrics).sort(), [
    'test/latent_classifier_accuracy',
    'test/latent_classifier_error',
    'test/latent_classifier_labelled',
  ]);
  assert.equal(got.metrics['test/latent_classifier_labelled'], 20);
  assert.ok(got.metrics['test/latent_classifier_error'] >= 0 && got.metrics['test/latent_classifier_error'] <= 100);
  assert.deepEqual(got.overrides, ['data.labelled=20', 'eval=[{kind: latent-classifier, classifier: knn, k: 1}]']);
  assert.match(path.basename(got.dir), /^last-epoch-0001-set-[0-9a-f]{8}$/);
  // the run's own evaluation stays as it was, and the run too
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(own.dir, 'metrics.json'), 'utf8')).metrics, own.metrics);
  assert.equal(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'), before);
  // the same --set again measures the same numbers (the evaluators' streams of the run seed)
  assert.deepEqual(
    lastJson<EvaluateOutput>(elbo(['evaluate', runDir, '--checkpoint', 'last', ...set, '--json', '--quiet']).stdout).metrics,
    got.metrics,
  );
  const shown = elbo(['runs', 'show', runDir]);
  assert.match(shown.stdout, /epoch 1 of 1 \(FINISHED\) with --set\s+data\.labelled=20/);

  const bad = elbo(['evaluate', runDir, '--set', 'model.latent=3']);
  assert.equal(bad.status, 1);
  assert.match(
    bad.stderr.trim(),
    /^--set model\.latent=3: elbo evaluate changes only what is measured: eval, published, data\.labelled .* and data\.binarize/,
  );
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});
