import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, BIN, ROOT, type RunOutput, type SweepOutput } from './helpers';
import { writeSweepIndex, writeCellRecord, type CellResult } from '../src/sweep/state';
import { takeLock, releaseLock } from '../src/util/lock';

/**
 * One process at a time per run and per sweep cell: a second `--resume` of a live run is
 * refused, two `elbo sweep` of one file share the cells instead of training each twice,
 * and the cell of a sweep killed with -9 stops (KILLED) and is resumed by the next sweep.
 * The runs hold still where the test wants them with ELBO_FAULT=...:pause.
 */

function start(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; stderr: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', () => {});
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stderr: () => err, done };
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function runDirs(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).flatMap((exp) => fs.readdirSync(path.join(root, exp)).map((id) => path.join(root, exp, id)));
}

/** `elbo sweep` of a small sweep over `seeds`, started with ELBO_FAULT=`fault` (its cells hold still there). */
function pausingSweep(seeds: string, fault: string) {
  const dir = tmpDir();
  smallConfig(dir);
  const sweepFile = path.join(dir, 'sweep.yaml');
  fs.writeFileSync(sweepFile, `base: small.yaml\nset: {data.max_train: 100, train.epochs: 2}\nsweep:\n  seeds: ${seeds}\n`);
  const runsDir = path.join(dir, 'runs');
  const a = start(['sweep', sweepFile, '--runs-dir', runsDir], { ELBO_FAULT: fault });
  return { a, sweepFile, runsDir, store: path.join(runsDir, 'sweeps', 'sweep', 'runs') };
}

const status = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')).status;

test('a second --resume of a live run is refused; once the first stops, resuming works', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const first = start(['run', cfg, '--runs-dir', runs, '-q', '--set', 'data.max_train=100'], { ELBO_FAULT: 'step@2:pause' });
  try {
    await until('the run to pause', () => /fault: paused at step@2/.test(first.stderr()));
    const [runDir] = runDirs(runs);
    const second = elbo(['run', '--resume', runDir]);
    assert.equal(second.status, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`: this run is in use by process ${first.child.pid} on .*; wait for it to end, or stop it`));
    assert.equal(status(runDir), 'RUNNING', 'the refused resume changed nothing');
    first.child.kill('SIGTERM');
    assert.equal(await first.done, 130);
    assert.equal(status(runDir), 'KILLED');
    const third = elbo(['run', '--resume', runDir, '--json', '-q']);
    assert.equal(third.status, 0, third.stderr);
    assert.equal(lastJson<RunOutput>(third.stdout).status, 'FINISHED');
  } finally {
    first.child.kill('SIGKILL');
  }
});

test('two sweeps of one file share its cells; a sweep killed with -9 stops its cell, and the next sweep resumes it', async () => {
  // sweep A: its first cell holds still in epoch 1
  const { a, sweepFile, runsDir, store } = pausingSweep('[1, 2]', 'step@1:pause');
  try {
    await until('sweep A to start its first cell', () =>
      runDirs(store).some((d) => fs.existsSync(path.join(d, 'run.json')) && fs.existsSync(path.join(d, 'lock'))),
    );
    // sweep B at the same time: leaves cell 0 to A, runs cell 1
    const b = elbo(['sweep', sweepFile, '--runs-dir', runsDir, '--json']);
    assert.equal(b.status, 1, b.stderr);
    const cells = lastJson<SweepOutput>(b.stdout).cells;
    assert.equal(cells[0].status, 'BUSY');
    assert.match(cells[0].error!, new RegExp(`being run by process ${a.child.pid}`));
    assert.equal(cells[1].status, 'FINISHED');
    assert.equal(runDirs(store).length, 2, 'no cell was trained twice');

    // kill -9 of sweep A: its cell notices, stops and records KILLED
    a.child.kill('SIGKILL');
    await a.done;
    const cell0 = runDirs(store).find((d) => status(d) !== 'FINISHED')!;
    await until('the orphaned cell to stop', () => status(cell0) === 'KILLED' && !fs.existsSync(path.join(cell0, 'lock')), 30_000);
    assert.match(JSON.parse(fs.readFileSync(path.join(cell0, 'run.json'), 'utf8')).error, /interrupted/);

    // the next sweep resumes that cell (the same run directory) and skips the finished one
    const c = elbo(['sweep', sweepFile, '--runs-dir', runsDir, '--json']);
    assert.equal(c.status, 0, c.stderr);
    const after = lastJson<SweepOutput>(c.stdout).cells;
    assert.deepEqual(
      after.map((x: CellResult) => x.status),
      ['FINISHED', 'CACHED'],
    );
    assert.equal(after[0].runDir, cell0);
    assert.equal(runDirs(store).length, 2);
    const index = JSON.parse(fs.readFileSync(path.join(runsDir, 'sweeps', 'sweep', 'sweep.json'), 'utf8'));
    assert.deepEqual(
      index.cells.map((x: CellResult) => x.status),
      ['FINISHED', 'CACHED'],
    );
  } finally {
    a.child.kill('SIGKILL');
  }
});

test('sweep state: records of cells written by several processes at once all land in sweep.json; compare says which cells are missing and why', async () => {
  const dir = tmpDir();
  const cells = [0, 1, 2, 3, 4, 5].map((i) => ({
    index: i,
    label: `model.latent=${i + 1}`,
    config_sha256: `${i}`.repeat(64),
    status: 'PENDING' as const,
    runDir: null,
    metrics: {},
    seconds: 0,
  }));
  const index = { name: 's', file: path.join(dir, 's.yaml'), base: path.join(dir, 'c.yaml'), cells_sha256: 'x'.repeat(64), cells };
  writeSweepIndex(dir, index);
  // cells 0-3: a run directory each, as compare reads them
  for (const i of [0, 1, 2, 3]) {
    const run = path.join(dir, 'runs', `r${i}`);
    fs.mkdirSync(run, { recursive: true });
    fs.writeFileSync(path.join(run, 'run.json'), JSON.stringify({ status: 'FINISHED', seed: 0, metrics: { 'test/elbo': -90 - i } }));
    fs.writeFileSync(path.join(run, 'config.yaml'), `seed: 0\nmodel: {kind: vae, latent: ${i + 1}}\n`);
  }
  // four processes (four SLURM tasks), each recording its cell 40 times and rebuilding sweep.json
  const state = path.join(ROOT, 'dist', 'src', 'sweep', 'state.js');
  const writer = (i: number) =>
    new Promise<number | null>((resolve) => {
      const code = `const s = require(${JSON.stringify(state)}); const index = ${JSON.stringify(index)};
        for (let k = 0; k < 40; k++) {
          const status = k === 39 ? 'FINISHED' : 'RUNNING';
          s.writeCellRecord(${JSON.stringify(dir)}, { ...index.cells[${i}], status, runDir: ${JSON.stringify(path.join(dir, 'runs', `r${i}`))}, metrics: { 'test/elbo': ${-90 - i} } });
          s.writeSweepIndex(${JSON.stringify(dir)}, index);
        }`;
      spawn(process.execPath, ['-e', code], { stdio: 'inherit' }).on('close', resolve);
    });
  assert.deepEqual(await Promise.all([0, 1, 2, 3].map(writer)), [0, 0, 0, 0]);
  const written = JSON.parse(fs.readFileSync(path.join(dir, 'sweep.json'), 'utf8'));
  assert.deepEqual(
    written.cells.map((c: CellResult) => c.status),
    ['FINISHED', 'FINISHED', 'FINISHED', 'FINISHED', 'PENDING', 'PENDING'],
  );
  // cell 5: RUNNING in a process that is gone (its lease is not held)
  writeCellRecord(dir, { ...cells[5], status: 'RUNNING' });
  const cmp = elbo(['compare', dir, '--wide']);
  assert.equal(cmp.status, 0, cmp.stderr);
  // the model blocks, one kind, differ in their latent size only: that is the column
  assert.match(cmp.stdout, /^model\.latent\s+seeds\s+test\/elbo\n-+\s+-+\s+-+\n1\s+0\s+-90\.000$/m);
  assert.match(
    cmp.stderr,
    new RegExp(
      `2 cells have no finished run \\(left out\\):\\n  cell 4 \\(model\\.latent=5\\): never started\\n  cell 5 \\(model\\.latent=6\\): killed: the process that ran it \\(${process.pid} on \\S+\\) is gone; rerun the sweep to resume it\\n`,
    ),
  );
});

test('a lease held on another host is respected while its heartbeat is fresh and taken over when stale; its holder keeps it fresh', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'cell.lock');
  const before = process.env.ELBO_LEASE_STALE_S;
  process.env.ELBO_LEASE_STALE_S = '0.4';
  try {
    fs.writeFileSync(file, JSON.stringify({ pid: 1, host: 'node-b' }));
    assert.deepEqual(takeLock(file), { pid: 1, host: 'node-b' }, "a fresh lease of another host is its holder's");
    const old = new Date(Date.now() - 5000);
    fs.utimesSync(file, old, old);
    assert.equal(takeLock(file), null, 'a stale one is taken over');
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
    // the holder's heartbeat (every stale/4 = 100 ms) keeps the lease fresh
    fs.utimesSync(file, old, old);
    await until('the heartbeat to renew the lease', () => fs.statSync(file).mtimeMs > old.getTime() + 4000, 10_000);
    releaseLock(file);
    assert.equal(fs.existsSync(file), false);
  } finally {
    if (before === undefined) delete process.env.ELBO_LEASE_STALE_S;
    else process.env.ELBO_LEASE_STALE_S = before;
  }
});

test('SIGTERM to a sweep stops its running cell (passed on), which records KILLED, and the sweep exits 130', async () => {
  const { a, runsDir, store } = pausingSweep('[1]', 'step@2:pause');
  try {
    // its run checkpointed epoch 1 (run.json says so) and holds still in epoch 2
    const epochs = (d: string) =>
      fs.existsSync(path.join(d, 'run.json')) ? JSON.parse(fs.readFileSync(path.join(d, 'run.json'), 'utf8')).epochs_completed : 0;
    await until('the cell to pause in epoch 2', () => runDirs(store).some((d) => epochs(d) === 1));
    a.child.kill('SIGTERM');
    assert.equal(await a.done, 130, a.stderr());
    assert.match(a.stderr(), /SIGTERM: stopping the running cell after its current step/);
    const [run] = runDirs(store);
    assert.equal(status(run), 'KILLED');
    const cell = JSON.parse(fs.readFileSync(path.join(runsDir, 'sweeps', 'sweep', 'cells', 'cell-0000.json'), 'utf8'));
    assert.deepEqual([cell.status, cell.runDir], ['KILLED', run]);
  } finally {
    a.child.kill('SIGKILL');
  }
});
