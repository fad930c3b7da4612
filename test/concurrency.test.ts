import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, BIN, ROOT } from './helpers';

/**
 * One process at a time per run and per sweep cell: a second `--resume` of a live run is
 * refused, two `elbo sweep` of one file share the cells instead of training each twice,
 * and the cell of a sweep killed with -9 stops (KILLED) and is resumed by the next sweep.
 * The runs hold still where the test wants them with ELBO_FAULT=...:pause.
 */

function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; stderr: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    assert.equal(lastJson(third.stdout).status, 'FINISHED');
  } finally {
    first.child.kill('SIGKILL');
  }
});

test('two sweeps of one file share its cells; a sweep killed with -9 stops its cell, and the next sweep resumes it', async () => {
  const dir = tmpDir();
  smallConfig(dir);
  const sweepFile = path.join(dir, 'sweep.yaml');
  fs.writeFileSync(sweepFile, 'base: small.yaml\nset: {data.max_train: 100, train.epochs: 2}\nsweep:\n  seeds: [1, 2]\n');
  const runsDir = path.join(dir, 'runs');
  const store = path.join(runsDir, 'sweeps', 'sweep', 'runs');
  // sweep A: its first cell holds still in epoch 1
  const a = start(['sweep', sweepFile, '--runs-dir', runsDir], { ELBO_FAULT: 'step@1:pause' });
  try {
    await until('sweep A to start its first cell', () => runDirs(store).some((d) => fs.existsSync(path.join(d, 'run.json')) && fs.existsSync(path.join(d, 'lock'))));
    // sweep B at the same time: leaves cell 0 to A, runs cell 1
    const b = elbo(['sweep', sweepFile, '--runs-dir', runsDir, '--json']);
    assert.equal(b.status, 1, b.stderr);
    const cells = lastJson(b.stdout).cells;
    assert.equal(cells[0].status, 'BUSY');
    assert.match(cells[0].error, new RegExp(`being run by process ${a.child.pid}`));
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
    const after = lastJson(c.stdout).cells;
    assert.deepEqual(after.map((x: any) => x.status), ['FINISHED', 'CACHED']);
    assert.equal(after[0].runDir, cell0);
    assert.equal(runDirs(store).length, 2);
    const index = JSON.parse(fs.readFileSync(path.join(runsDir, 'sweeps', 'sweep', 'sweep.json'), 'utf8'));
    assert.deepEqual(index.cells.map((x: any) => x.status), ['FINISHED', 'CACHED']);
  } finally {
    a.child.kill('SIGKILL');
  }
});
