import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir, smallConfig, elbo, lastJson, type SweepOutput } from './helpers';
import { SlurmCluster } from './slurm-cluster';
import { readSweepState, type CellResult } from '../src/sweep/state';
import type { RunRecord } from '../src/contracts';

/**
 * Sweeps on a real single-node SLURM cluster (test/slurm-cluster.ts): the emitted array
 * script is submitted as a user would, and what the tasks leave in the run store is
 * checked against a local `elbo sweep` of the same file. The directory has a space in its
 * name (quoting). Runs hold still where a test wants them with ELBO_FAULT=step@2:pause,
 * in one task only (ELBO_FAULT_ONCE).
 */

let cluster: SlurmCluster;
let dir: string;
let sweepFile: string;
/** The local sweep's test and validation metrics, per cell. */
let reference: Record<string, number>[];

const compared = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => /^(test|val)\//.test(k)));

before(async () => {
  cluster = await SlurmCluster.start((m) => process.stderr.write(`slurm test setup: ${m}\n`));
  dir = tmpDir('elbo slurm ');
  smallConfig(dir);
  sweepFile = path.join(dir, 'sweep.yaml');
  fs.writeFileSync(
    sweepFile,
    'base: small.yaml\nset: {data.max_train: 100, train.epochs: 2, eval: [{kind: elbo}]}\nslurm: {cpus_per_task: 1, mem: 1G}\nsweep:\n  grid:\n    model.latent: [2, 4]\n',
  );
  const local = elbo(['sweep', sweepFile, '--runs-dir', path.join(dir, 'local'), '--parallel', '2', '--json']);
  assert.equal(local.status, 0, local.stderr);
  reference = lastJson<SweepOutput>(local.stdout).cells.map((c: CellResult) => compared(c.metrics));
  assert.ok(Number.isFinite(reference[0]['test/elbo']));
});

after(async () => {
  await cluster?.stop();
});

/** Emit the array script into its own runs directory. */
function emit(runs: string, ...flags: string[]): { script: string; sweep: string } {
  const r = elbo(['sweep', sweepFile, '--emit', 'slurm', '--runs-dir', path.join(dir, runs), ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return { script: r.stdout.trim(), sweep: path.join(dir, runs, 'sweeps', 'sweep') };
}

const taskLog = (sweep: string, job: string, task: number) => {
  const f = path.join(sweep, `slurm-${job}_${task}.out`);
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
};

/** Write sweep file NAME.yaml, emit its array into runs dir NAME, submit it and wait for every task: its sweep directory and task logs. */
async function submitSweep(name: string, text: string, tasks: number): Promise<{ sweep: string; job: string; logs: string[] }> {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, text);
  const r = elbo(['sweep', file, '--emit', 'slurm', '--runs-dir', path.join(dir, name)]);
  assert.equal(r.status, 0, r.stderr);
  const sweep = path.join(dir, name, 'sweeps', name);
  const job = cluster.sbatch(r.stdout.trim());
  await cluster.waitDone([job]);
  return { sweep, job, logs: Array.from({ length: tasks }, (_, i) => taskLog(sweep, job, i)) };
}

async function until(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n${cluster.logTail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every cell FINISHED (or CACHED) in its own run, with the local sweep's metrics. */
function assertLikeLocal(sweep: string, logs: string): void {
  const state = readSweepState(sweep);
  assert.deepEqual(
    state.cells.map((c) => (c.status === 'CACHED' ? 'FINISHED' : c.status)),
    ['FINISHED', 'FINISHED'],
    logs,
  );
  state.cells.forEach((c, i) => assert.deepEqual(compared(c.metrics), reference[i], `cell ${i}`));
  const runs = fs.readdirSync(path.join(sweep, 'runs', 'small'));
  assert.equal(runs.length, 2, 'one run per cell: none trained twice');
}

test('an emitted array runs every cell to the end with the metrics of a local sweep; each task logs its progress', async () => {
  const { script, sweep } = emit('a', '--tag', 'where=slurm');
  const job = cluster.sbatch(script);
  await cluster.waitDone([job]);
  const logs = [0, 1].map((i) => taskLog(sweep, job, i));
  assertLikeLocal(sweep, logs.join('\n'));
  for (const [i, log] of logs.entries()) {
    assert.match(log, new RegExp(`^elbo: task ${job}_${i} \\(job \\d+\\) on \\S+, attempt 1,`, 'm'));
    assert.match(log, /^epoch 1\/2 .*samples\/s/m, "the run's progress is in the task log");
    assert.match(log, /^epoch 2\/2 /m);
    assert.match(log, new RegExp(`^\\[1/1\\] cell ${i} \\(model\\.latent=${[2, 4][i]}\\): finished test/elbo`, 'm'));
    assert.match(log, /ended \(exit 0\)/);
  }
  const rec = JSON.parse(fs.readFileSync(path.join(readSweepState(sweep).cells[0].runDir!, 'run.json'), 'utf8'));
  assert.deepEqual(rec.tags, { where: 'slurm' }, '--tag is forwarded to the tasks');
  assert.match(readSweepState(sweep).cells[0].slurm_task!, new RegExp(`^${job}_0$`));
});

test('a task cancelled mid-run records KILLED; a second submission meanwhile runs no cell twice; resubmitting resumes the cell', async () => {
  const { script, sweep } = emit('b');
  const fault = { ELBO_FAULT: 'step@2:pause', ELBO_FAULT_ONCE: path.join(dir, 'fault-b') };
  const first = cluster.sbatch(script, fault);
  let paused = -1;
  await until('a task to pause in epoch 2', () => {
    paused = [0, 1].find((i) => /fault: paused at step@2/.test(taskLog(sweep, first, i))) ?? -1;
    return paused >= 0;
  });
  // the same script again while the first job runs: its tasks leave the cells to the first
  const second = cluster.sbatch(script);
  await cluster.waitDone([second]);
  const secondLogs = [0, 1].map((i) => taskLog(sweep, second, i)).join('\n');
  assert.match(secondLogs, new RegExp(`cell ${paused} \\(model\\.latent=\\d\\): being run by process \\d+ on \\S+; left to it`));
  assert.doesNotMatch(secondLogs, /: started$/m, 'the second submission started no cell');

  // scancel of the paused task: the cell stops, checkpointed, and is recorded KILLED
  assert.equal(cluster.cmd('scancel', [`${first}_${paused}`]).status, 0);
  await cluster.waitDone([first]);
  const cell = readSweepState(sweep).cells[paused];
  assert.equal(cell.status, 'KILLED', taskLog(sweep, first, paused));
  const runJson = () => JSON.parse(fs.readFileSync(path.join(cell.runDir!, 'run.json'), 'utf8'));
  assert.equal(runJson().status, 'KILLED');
  assert.equal(runJson().epochs_completed, 1);
  assert.match(taskLog(sweep, first, paused), /SIGTERM: stopping/);
  const compare = elbo(['compare', sweep]);
  assert.equal(compare.status, 0, compare.stderr);
  assert.match(
    compare.stderr,
    new RegExp(`1 cell has no finished run \\(left out\\):\\n  cell ${paused} \\(model\\.latent=\\d\\): killed`),
  );

  // resubmitted: the killed cell resumes in its run directory, the other is skipped
  const third = cluster.sbatch(script);
  await cluster.waitDone([third]);
  const thirdLogs = [0, 1].map((i) => taskLog(sweep, third, i));
  assertLikeLocal(sweep, thirdLogs.join('\n'));
  assert.match(thirdLogs[paused], /: resuming /);
  assert.match(thirdLogs[1 - paused], /already finished in .*, skipped/);
  assert.equal(readSweepState(sweep).cells[paused].runDir, cell.runDir);
  assert.equal(runJson().resumes.length, 1);
});

test('near the time limit a task stops its cell, requeues itself, and the next attempt resumes it', async () => {
  // time=1 (minute), signalled 55 s before: within seconds (SLURM checks time limits every 30 s)
  const { script, sweep } = emit('c', '--slurm', 'time=1', '--slurm', 'signal_before=55');
  const job = cluster.sbatch(script, { ELBO_FAULT: 'step@2:pause', ELBO_FAULT_ONCE: path.join(dir, 'fault-c') });
  await cluster.waitDone([job], 240_000);
  const logs = [0, 1].map((i) => taskLog(sweep, job, i));
  assertLikeLocal(sweep, logs.join('\n'));
  const paused = logs.findIndex((l) => /fault: paused at step@2/.test(l));
  assert.ok(paused >= 0, logs.join('\n'));
  const log = logs[paused];
  // one log for both attempts (--open-mode=append)
  assert.match(
    log,
    /attempt 1,[\s\S]*the time limit is near: stopping cell \d and requeueing the task[\s\S]*attempt 2,[\s\S]*: resuming [\s\S]*finished test\/elbo/,
  );
  const rec = JSON.parse(fs.readFileSync(path.join(readSweepState(sweep).cells[paused].runDir!, 'run.json'), 'utf8'));
  // (an attempt may meet the time limit again: each one resumes where the last stopped)
  assert.ok(
    rec.resumes.length >= 1 && rec.resumes.every((x: RunRecord['resumes'][number]) => x.previous_status === 'KILLED'),
    JSON.stringify(rec.resumes),
  );
  // each task requeued only itself, and only while its cell ran: no attempt found its cell finished
  assert.doesNotMatch(logs.join('\n'), /already finished in/);
});

test('a time-limit signal that comes as the cell has just finished requeues nothing: one attempt, no cell run twice', async () => {
  // the sweep holds still after its cell has ended (ELBO_FAULT sweep-end@0:pause) until the
  // time limit's signal stops the step: the race the job script must not lose
  const { script, sweep } = emit('race', '--slurm', 'time=1', '--slurm', 'signal_before=55');
  const job = cluster.sbatch(script, { ELBO_FAULT: 'sweep-end@0:pause', ELBO_FAULT_ONCE: path.join(dir, 'fault-race') });
  await cluster.waitDone([job], 240_000);
  const log = [0, 1].map((i) => taskLog(sweep, job, i)).find((l) => /fault: paused at sweep-end@0/.test(l)) ?? '';
  assertLikeLocal(sweep, log);
  // (under load the signal may stop an attempt's training first: that attempt is requeued, and the next one pauses)
  const last = log.slice(log.lastIndexOf('attempt '));
  assert.match(
    last,
    /\[1\/1\] cell \d \(model\.latent=\d\): finished[\s\S]*fault: paused at sweep-end@0[\s\S]*the time limit is near[\s\S]*the cell had ended: not requeued/,
    log,
  );
  assert.doesNotMatch(log, /already finished in/);
  assert.ok(!fs.readdirSync(path.join(sweep, 'tasks')).length, 'no unfinished-task file is left');
});

test('early stopping under SLURM: the array tasks share one rung table; the best of three cells goes on to max_epochs, resumed by whichever task recorded last; the others stop at the first rung', async () => {
  const { sweep, logs } = await submitSweep(
    'asha',
    'base: small.yaml\nset: {data.max_train: 100, eval: [{kind: elbo}]}\nslurm: {cpus_per_task: 1, mem: 1G}\nearly_stop: {kind: asha, grace_epochs: 1, reduction_factor: 3, max_epochs: 3}\nsweep:\n  grid:\n    train.optimizer.lr: [1.0e-7, 1.0e-3, 1.0e-2]\n',
    3,
  );
  // with η = 3 nobody goes on before all three have recorded epoch 1: then the best does
  const table = JSON.parse(fs.readFileSync(path.join(sweep, 'asha.json'), 'utf8'));
  const first = [0, 1, 2].map((i) => table.cells[i].values[0]);
  const best = first.indexOf(Math.max(...first));
  const state = readSweepState(sweep);
  assert.deepEqual(
    state.cells.map((c) => c.status),
    [0, 1, 2].map((i) => (i === best ? 'FINISHED' : 'STOPPED')),
    logs.join('\n'),
  );
  const rec = JSON.parse(fs.readFileSync(path.join(state.cells[best].runDir!, 'run.json'), 'utf8'));
  assert.equal(rec.epochs_completed, 3);
  assert.deepEqual(
    rec.resumes.map((x: RunRecord['resumes'][number]) => [x.from_epoch, x.previous_status]),
    [[1, 'PAUSED']],
  );
  assert.equal(fs.readdirSync(path.join(sweep, 'runs', 'small')).length, 3, 'one run per cell: the promoted cell resumed in its own');
  // the task that promoted it is the one whose own cell reached epoch 1 last
  const promoter = logs.findIndex((l) => new RegExp(`cell ${best} \\(.*\\): resuming `).test(l));
  assert.ok(promoter >= 0, logs.join('\n'));
  assert.match(
    logs[promoter],
    new RegExp(
      `cell ${promoter} \\(.*\\): paused at epoch 1 \\(rung 1 of 2\\)[\\s\\S]*cell ${best} \\(.*\\): promoted, among the top 1/3 at epoch 1`,
    ),
  );
  assert.ok(
    logs.every((l) => /ended \(exit 0\)/.test(l)),
    logs.join('\n'),
  );
});

test('a Bayesian search under SLURM: one array task per trial, each asks Optuna for its own under the lock and tells it its val/elbo', async () => {
  const { sweep, logs } = await submitSweep(
    'search',
    'base: small.yaml\nset: {data.max_train: 100, train.epochs: 1, eval: [{kind: elbo}]}\nslurm: {cpus_per_task: 1, mem: 1G}\nsweep:\n  search:\n    kind: optuna\n    trials: 2\n    startup_trials: 1\n    seed: 4\n    storage: study.db\n    space:\n      train.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n',
    2,
  );
  const state = readSweepState(sweep);
  assert.deepEqual(
    state.cells.map((c) => c.status),
    ['FINISHED', 'FINISHED'],
    logs.join('\n'),
  );
  const trials = JSON.parse(fs.readFileSync(path.join(sweep, 'trials.json'), 'utf8'));
  // two trials, each asked once (numbers 0 and 1 in whichever order the tasks asked), both told
  assert.deepEqual([0, 1].map((i) => trials[i].number).sort(), [0, 1]);
  assert.ok(
    [0, 1].every((i) => trials[i].told === 'complete'),
    JSON.stringify(trials),
  );
  assert.notEqual(trials[0].params['train.optimizer.lr'], trials[1].params['train.optimizer.lr']);
  for (const i of [0, 1]) {
    // the task ran what it was proposed
    const config = fs.readFileSync(path.join(state.cells[i].runDir!, 'config.yaml'), 'utf8');
    assert.match(config, new RegExp(`lr: ${String(trials[i].params['train.optimizer.lr']).replace('.', '\\.')}\\b`));
  }
  assert.ok(
    logs.every((l) => /ended \(exit 0\)/.test(l)),
    logs.join('\n'),
  );
});
