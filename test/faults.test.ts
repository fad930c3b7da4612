import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir, smallConfig, elbo, lastJson, untimed, type RunOutput } from './helpers';
import { reproduce } from '../src/sweep/reproduce';
import { spawnSync } from 'child_process';

/**
 * Fault injection (ELBO_FAULT, src/util/fault.ts): hard and soft stops at exact points of a
 * tiny run, each resumed. Whatever the stop, the record says KILLED (or, after kill -9, is
 * recovered as KILLED when resumed), the resumed run reaches the uninterrupted run's metrics
 * exactly, and metrics.jsonl holds every epoch once.
 */

const SETS = ['--set', 'data.max_train=100', '--set', 'train.epochs=3', '--seed', '4'];

function runDirOf(runs: string): string {
  const exp = path.join(runs, 'small');
  const ids = fs.readdirSync(exp);
  assert.equal(ids.length, 1, ids.join(', '));
  return path.join(exp, ids[0]);
}

function epochLines(dir: string): number[] {
  return fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => 'epoch' in l)
    .map((l) => l.epoch);
}

const MATRIX: { fault: string; signal?: string; exit?: number; status: 'RUNNING' | 'KILLED' }[] = [
  { fault: 'step@2:kill', signal: 'SIGKILL', status: 'RUNNING' }, // kill -9 mid-epoch
  { fault: 'checkpoint@2:kill', signal: 'SIGKILL', status: 'RUNNING' }, // between the checkpoint and its metrics line
  { fault: 'eval@1:kill', signal: 'SIGKILL', status: 'RUNNING' }, // during evaluation
  { fault: 'step@2:term', exit: 130, status: 'KILLED' },
  { fault: 'checkpoint@2:term', exit: 130, status: 'KILLED' },
  { fault: 'eval@2:term', exit: 130, status: 'KILLED' }, // during the last evaluator: not FINISHED
  { fault: 'step@2:int2', exit: 130, status: 'KILLED' }, // Ctrl-C twice, 10 ms apart
];

test(`fault matrix (${MATRIX.length} stops): KILLED or recovered as such, resumed to the uninterrupted metrics exactly, every epoch logged once`, () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const ref = elbo(['run', cfg, '--runs-dir', path.join(dir, 'ref'), '--json', '-q', ...SETS]);
  assert.equal(ref.status, 0, ref.stderr);
  const want = untimed(lastJson<RunOutput>(ref.stdout).metrics);
  assert.ok(Object.keys(want).some((k) => k.startsWith('test/')));
  for (const m of MATRIX) {
    const runs = path.join(dir, m.fault.replace(/\W/g, '-'));
    const r = elbo(['run', cfg, '--runs-dir', runs, '--json', '-q', ...SETS], { env: { ELBO_FAULT: m.fault } });
    if (m.signal) assert.equal(r.signal, m.signal, `${m.fault}: ${r.stderr}`);
    else assert.equal(r.status, m.exit, `${m.fault}: ${r.stderr}`);
    const runDir = runDirOf(runs);
    const rec = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    assert.equal(rec.status, m.status, m.fault);
    if (m.fault.startsWith('eval@2:term')) assert.match(rec.error, /interrupted during evaluation/);
    if (m.fault.endsWith('int2')) assert.match(rec.error, /interrupted twice/);

    const resumed = elbo(['run', '--resume', runDir, '--json', '-q']);
    assert.equal(resumed.status, 0, `${m.fault}: ${resumed.stderr}`);
    const out = lastJson<RunOutput>(resumed.stdout);
    assert.equal(out.status, 'FINISHED');
    assert.deepEqual(untimed(out.metrics), want, `${m.fault}: the resumed run's metrics differ from the uninterrupted run's`);
    assert.deepEqual(epochLines(runDir), [1, 2, 3], `${m.fault}: metrics.jsonl epochs`);
    const after = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    assert.equal(after.resumes.length, 1);
    assert.equal(after.resumes[0].previous_status, 'KILLED', m.fault);
    if (m.status === 'RUNNING') assert.match(after.resumes[0].recovered, /process was gone/);
    assert.ok(!fs.existsSync(path.join(runDir, 'lock')), 'the run lock is released at the end');
  }
});

test('reproduce notices a metrics.jsonl that lost an epoch line; a damaged run.json is a located error, not a usage error', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const r = elbo(['run', cfg, '--runs-dir', runs, '--json', '-q', '--set', 'data.max_train=100', '--set', 'train.epochs=2']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = lastJson<RunOutput>(r.stdout).runDir;
  const file = path.join(runDir, 'metrics.jsonl');
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  fs.writeFileSync(file, lines.filter((l) => JSON.parse(l).epoch !== 2).join('\n') + '\n');
  const report = await reproduce(runDir, { progress: false, runsDir: path.join(dir, 'rerun') });
  assert.equal(report.passed, false);
  assert.ok(
    report.causes.some((c) => /metrics\.jsonl has no line for epoch 2 of 2/.test(c)),
    report.causes.join('; '),
  );

  // a damaged or missing config.yaml: compare names the file, exit 1 (the run store's one reader)
  const configFile = path.join(runDir, 'config.yaml');
  const configText = fs.readFileSync(configFile, 'utf8');
  for (const [text, why] of [
    ['model: [oops', /config\.yaml: config\.yaml is damaged: \S/],
    ['- a list', /config\.yaml: config\.yaml is damaged: not a mapping of settings/],
    [null, /config\.yaml: config\.yaml not found: not a complete run directory/],
  ] as const) {
    if (text === null) fs.rmSync(configFile);
    else fs.writeFileSync(configFile, text);
    const c = elbo(['compare', runDir], { cwd: dir });
    assert.equal(c.status, 1, c.stderr);
    assert.match(c.stderr, why);
    assert.doesNotMatch(c.stderr, /internal error|\n\s+at /);
  }
  fs.writeFileSync(configFile, configText);

  // a damaged run.json: resume and compare say which file, exit 1 (not 2, a usage error)
  fs.writeFileSync(path.join(runDir, 'run.json'), '{"status": "KILLED", oops');
  const resume = elbo(['run', '--resume', runDir]);
  assert.equal(resume.status, 1, resume.stderr);
  assert.match(
    resume.stderr,
    /run\.json: run\.json is damaged \(not valid JSON: .*\); restore it from a backup, or move this run directory away/,
  );
  assert.doesNotMatch(resume.stderr, /see 'elbo run --help'|internal error/);
  const compare = elbo(['compare', runDir], { cwd: dir });
  assert.equal(compare.status, 1, compare.stderr);
  assert.match(compare.stderr, /run\.json: run\.json is damaged/);
});

/** Mount a tmpfs of `size` (read-only with ro) at a fresh directory; root only (the test setup runs as root). */
function smallDisk(size: string, ro = false): { dir: string; unmount: () => void } | null {
  if (process.getuid?.() !== 0) return null;
  const dir = tmpDir();
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${ro ? ',ro' : ''}`, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount a tmpfs (root): ${m.stderr}`);
  return { dir, unmount: () => spawnSync('umount', [dir]) };
}
const asRoot = process.getuid?.() === 0 ? {} : { skip: 'mounting a small tmpfs needs root (CI and the test setup run as root)' };

test(
  'a full disk and a read-only run store: one line naming the path and what to do, exit 1, FAILED where the record can be written, no temporary files left',
  asRoot,
  () => {
    const dir = tmpDir();
    const cfg = smallConfig(dir);
    const full = smallDisk('160k')!;
    try {
      const r = elbo([
        'run',
        cfg,
        '--runs-dir',
        path.join(full.dir, 'runs'),
        '--json',
        ...SETS,
        '--set',
        'model.encoder.hidden=[64]',
        '--set',
        'model.decoder.hidden=[64]',
      ]);
      assert.equal(r.status, 1, r.stderr);
      const line = r.stderr.trim().split('\n').at(-1)!;
      assert.match(
        line,
        /: cannot (write|open|mkdir): no space left on the device: free some space, or write elsewhere \(runs: --runs-dir on another disk\)$/,
      );
      assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
      const out = lastJson<RunOutput>(r.stdout);
      assert.equal(out.status, 'FAILED');
      const rec = JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8'));
      assert.equal(rec.status, 'FAILED');
      assert.match(rec.error, /no space left on the device/);
      const leftovers = fs
        .readdirSync(out.runDir, { recursive: true })
        .map(String)
        .filter((f) => /\.tmp/.test(f));
      assert.deepEqual(leftovers, [], 'no temporary file survives');
    } finally {
      full.unmount();
    }
    const ro = smallDisk('1m', true)!;
    try {
      const r = elbo(['run', cfg, '--runs-dir', path.join(ro.dir, 'runs'), ...SETS]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), `${ro.dir}: cannot mkdir: the file system is read-only: write elsewhere (runs: --runs-dir DIR)`);
    } finally {
      ro.unmount();
    }
  },
);

test('temporary files a killed process left in a run directory are gone after its resume', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const r = elbo(['run', cfg, '--runs-dir', runs, ...SETS], { env: { ELBO_FAULT: 'step@2:term' } });
  assert.equal(r.status, 130, r.stderr);
  const run = runDirOf(runs);
  fs.writeFileSync(path.join(run, 'run.json.tmp-otherhost-123'), '{"half":');
  fs.mkdirSync(path.join(run, 'checkpoints', 'epoch-0002.tmp'));
  const resumed = elbo(['run', '--resume', run]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.ok(!fs.existsSync(path.join(run, 'run.json.tmp-otherhost-123')));
  assert.ok(!fs.existsSync(path.join(run, 'checkpoints', 'epoch-0002.tmp')));
});
