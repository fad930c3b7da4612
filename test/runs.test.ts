/**
 * `elbo runs list|show` over a real run store: three small runs made here (one stopped
 * after its first epoch, one with tags), read back through the CLI.
 */
import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { tmpDir, smallConfig, elbo, lastJson, type ListedRunRow, type ShownRun } from './helpers';
import { runExperiment } from '../src/experiment';
import type { RunRecord } from '../src/contracts';

let runs: string;
const made: { runDir: string; status: string }[] = [];

before(async () => {
  const dir = tmpDir('elbo-runs-');
  const cfg = smallConfig(dir);
  runs = path.join(dir, 'runs');
  const quick = { config: cfg, runsDir: runs, progress: false };
  made.push(
    await runExperiment({
      ...quick,
      overrides: ['train.epochs=1', 'eval=[{kind: elbo}]'],
      tags: { purpose: 'baseline', ticket: '42' },
      note: 'the reference',
    }),
  );
  let epochs = 0;
  made.push(
    await runExperiment({
      ...quick,
      overrides: ['train.epochs=2', 'eval=[{kind: elbo}]'],
      onEpoch: () => void epochs++,
      shouldStop: () => epochs >= 1,
    }),
  );
  made.push(
    await runExperiment({ ...quick, overrides: ['train.epochs=1', 'eval=[{kind: elbo}]', 'experiment=other'], tags: { purpose: 'probe' } }),
  );
});

const lines = (s: string) => s.trimEnd().split('\n');

test('elbo runs list: every run with status, epochs and test/elbo in 80 columns; filters by experiment, status and tag', () => {
  const all = elbo(['runs', 'list', '--runs-dir', runs]);
  assert.equal(all.status, 0, all.stderr);
  const out = lines(all.stdout);
  for (const l of out) assert.ok(l.length <= 80, `${l.length} columns: ${l}`);
  assert.match(out[0], /^run\s+experiment\s+status\s+epochs\s+test\/elbo$/);
  assert.equal(out.length, 1 + 3 + 1);
  const ids = made.map((m) => path.basename(m.runDir));
  const records = made.map((m) => JSON.parse(fs.readFileSync(path.join(m.runDir, 'run.json'), 'utf8')));
  assert.match(out[1], new RegExp(`^${ids[0]}\\s+small\\s+FINISHED\\s+1/1\\s+${records[0].metrics['test/elbo'].toFixed(4)}$`));
  assert.match(out[2], new RegExp(`^${ids[1]}\\s+small\\s+KILLED\\s+1/2\\s+-$`));
  assert.match(out[3], new RegExp(`^${ids[2]}\\s+other\\s+FINISHED\\s+1/1\\s+-?\\d+\\.\\d{4}$`));
  assert.equal(out[4], '3 runs; details: elbo runs show RUN_ID');
  // `elbo runs` alone is `elbo runs list`, its flags honoured (it printed the topic's help)
  const bare = elbo(['runs', '--runs-dir', runs, '--experiment', 'small']);
  assert.equal(bare.status, 0, bare.stderr);
  assert.deepEqual(lines(bare.stdout), [out[0], out[1], out[2], '2 runs; details: elbo runs show RUN_ID']);

  const ids_ = (args: string[]) =>
    lastJson<ListedRunRow[]>(elbo(['runs', 'list', '--runs-dir', runs, '--json', ...args]).stdout).map(
      (r: Pick<RunRecord, 'run_id'>) => r.run_id,
    );
  assert.deepEqual(ids_(['--experiment', 'small']), ids.slice(0, 2));
  assert.deepEqual(ids_(['--status', 'killed']), [ids[1]]);
  assert.deepEqual(ids_(['--tag', 'purpose=baseline']), [ids[0]]);
  assert.deepEqual(ids_(['--tag', 'purpose']), [ids[0], ids[2]]);
  assert.deepEqual(ids_(['--tag', 'purpose', '--tag', 'ticket=42']), [ids[0]]);
  assert.deepEqual(ids_(['--experiment', 'small', '--status', 'finished', '-n', '1']), [ids[0]]);
  assert.equal(elbo(['runs', 'list', '--runs-dir', runs, '--tag', 'purpose=none']).stdout, 'no runs match\n');

  // bad filters: one line saying where and what to do
  const bad: [string[], string][] = [
    [
      ['--status', 'finishd'],
      "--status: no status 'finishd'; did you mean 'FINISHED'? (allowed: RUNNING, FINISHED, FAILED, KILLED, PAUSED)",
    ],
    [['--experiment', 'smal'], `--experiment: no experiment 'smal' in ${runs}; did you mean 'small'? (allowed: other, small)`],
  ];
  for (const [args, msg] of bad) {
    const r = elbo(['runs', 'list', '--runs-dir', runs, ...args]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, msg + '\n');
  }
  const none = elbo(['runs', 'list', '--runs-dir', path.join(runs, 'nowhere')]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /nowhere: no run store here; give the runs directory with --runs-dir\n$/);
});

test('elbo runs show: a run by id, id end or directory; what ran, how it ended, its metrics', () => {
  const [first, killed] = made;
  const id = path.basename(first.runDir);
  const rec = JSON.parse(fs.readFileSync(path.join(first.runDir, 'run.json'), 'utf8'));
  for (const given of [id, id.slice(-6), first.runDir]) {
    const r = elbo(['runs', 'show', given, '--runs-dir', runs]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^run {9}${id} \\(small\\)\\nstatus {6}FINISHED\\nepochs {6}1/1, `));
    assert.match(r.stdout, /\ntag purpose {1}baseline\ntag ticket {2}42\nnote {8}the reference\n/);
    assert.match(r.stdout, new RegExp(`\\n  test/elbo +${rec.metrics['test/elbo'].toFixed(4)}\\n`));
    assert.match(r.stdout, new RegExp(`\\nbackend {5}${rec.backend.name}`));
  }
  // a run whose process is gone reads KILLED, with how to go on
  const k = elbo(['runs', 'show', path.basename(killed.runDir), '--runs-dir', runs]);
  assert.match(k.stdout, /\nstatus {6}KILLED: interrupted in epoch 2; resume with: elbo run --resume\n {12}\S+\n/);
  const j = lastJson<ShownRun>(elbo(['runs', 'show', path.basename(killed.runDir), '--runs-dir', runs, '--json']).stdout);
  assert.equal(j.status, 'KILLED');
  assert.equal(j.epochs_completed, 1);
  // a run that trains (its lock held by a live process, here this test's): the best epoch so far and its pace
  const live = path.join(tmpDir('elbo-runs-live-'), 'small', '20261207-050532-51a0ea');
  fs.cpSync(killed.runDir, live, { recursive: true });
  const liveRec = JSON.parse(fs.readFileSync(path.join(live, 'run.json'), 'utf8'));
  const selected = { metric: 'val/accuracy', mode: 'max', epoch: 4, value: 0.945 };
  fs.writeFileSync(
    path.join(live, 'run.json'),
    JSON.stringify({
      ...liveRec,
      status: 'RUNNING',
      error: null,
      end_time: null,
      duration_s: null,
      epochs_completed: 5,
      epochs_planned: 150,
      selected,
    }),
  );
  fs.writeFileSync(path.join(live, 'lock'), JSON.stringify({ pid: process.pid, host: os.hostname() }));
  // epochs 1-2 before a stop, 3-5 after a resume 10 minutes later: 50, 50 and 60 s an epoch
  const ends = [0, 50, 650, 700, 760];
  fs.writeFileSync(
    path.join(live, 'metrics.jsonl'),
    ends.map((t, i) => JSON.stringify({ epoch: i + 1, timestamp: 1.8e12 + t * 1000, 'val/accuracy': 0.9 })).join('\n') + '\n',
  );
  const l = elbo(['runs', 'show', live]);
  assert.equal(l.status, 0, l.stderr);
  assert.match(
    l.stdout,
    /\nstatus {6}RUNNING\nepochs {6}5\/150, .*\nbest so far val\/accuracy 0\.9450 at epoch 4 \(train\.select, max\)\n/,
  );
  // the resume's 600 s is no epoch's: the (lower) median of 50, 600, 50, 60
  assert.match(l.stdout, /\npace {8}50 s an epoch \(median of the last 10\); 145 to go, about 2:00:50\n/);
  assert.deepEqual(lastJson<ShownRun>(elbo(['runs', 'show', live, '--json']).stdout).pace, { epoch_s: 50, left_s: 7250 });
  // a finished run names the epoch its test metrics are read at; no pace
  const done = elbo(['runs', 'show', first.runDir]).stdout;
  assert.doesNotMatch(done, /\npace /);
  const missing = elbo(['runs', 'show', '20990101-000000-abcdef', '--runs-dir', runs]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^20990101-000000-abcdef: no run with this id or directory in .*runs(; did you mean '[^']+'\?)?\n$/);
});
