import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadSweep, expand } from '../src/sweep/spec';
import { reproduce } from '../src/sweep/reproduce';
import { collectRuns, sweptKeys, comparedMetrics, compare } from '../src/sweep/compare';
import { writeIdx } from '../src/data/idx';
import { spawnSync } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, type AuditOutput, type DryRunOutput, type RunOutput, type SweepOutput } from './helpers';
import { cellLine } from '../src/cli/runs';
import { distinctLabels, type CellResult } from '../src/sweep/state';
import { lastWords } from '../src/sweep/runner';

function sweepFile(dir: string, body: string): string {
  smallConfig(dir, 'eval: [{kind: elbo}]\n'.replace(/^/, '')); // writes small.yaml and the data
  const cfg = path.join(dir, 'small.yaml');
  // the helper's config ends with an eval list; replace it by a cheaper one
  fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/eval:[\s\S]*$/, 'eval:\n  - kind: elbo\n'));
  const file = path.join(dir, 'sweep.yaml');
  fs.writeFileSync(file, `base: small.yaml\nset:\n  train.epochs: 1\n${body}`);
  return file;
}

test('expansion: grid × zip × random × seeds, in a fixed order; random draws are seeded', () => {
  const dir = tmpDir();
  const file = sweepFile(
    dir,
    `sweep:
  grid:
    model.latent: [2, 4]
  zip:
    - {train.optimizer.lr: [0.001, 0.01], train.batch_size: [50, 25]}
  random:
    trials: 3
    seed: 5
    space:
      loss.c1: {uniform: [0.5, 2]}
      model.encoder.hidden: {choice: [[16], [32]]}
  seeds: [0, 1]
`,
  );
  const cells = expand(loadSweep(file));
  assert.equal(cells.length, 2 * 2 * 3 * 2);
  assert.deepEqual(
    cells.map((c) => c.index),
    cells.map((_, i) => i),
  );
  assert.deepEqual(cells[0].overrides['train.batch_size'], 50);
  assert.equal(cells[0].overrides['train.optimizer.lr'], 0.001);
  assert.equal(
    cells.filter((c) => c.overrides['train.optimizer.lr'] === 0.01).every((c) => c.overrides['train.batch_size'] === 25),
    true,
    'zip keys move together',
  );
  assert.deepEqual([cells[0].seed, cells[1].seed], [0, 1]);
  const c1 = cells.map((c) => c.overrides['loss.c1'] as number);
  assert.ok(c1.every((v) => v >= 0.5 && v <= 2));
  assert.deepEqual(expand(loadSweep(file)), cells, 'the same draws every time');
  const v = elbo(['validate', file]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /sweep of 24 cells/);
});

test('a sweep validates every cell first; problems name the cell and where', () => {
  const dir = tmpDir();
  const file = sweepFile(dir, 'sweep:\n  grid:\n    model.latent: [2, -1]\n    model.latnt: [3]\n');
  const r = elbo(['validate', file]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--set model\.latent=-1: cell 1 \(model\.latent=-1 model\.latnt=3\): model\.latent must be >= 1/);
  assert.match(r.stderr, /--set model\.latnt=3: every cell: unknown key 'latnt' in model; did you mean 'latent'/);
  const bad = sweepFile(dir, 'sweep:\n  grid: {model.latent: 2}\n');
  assert.match(elbo(['validate', bad]).stderr, /sweep\.yaml:5:24: sweep\.grid\.model\.latent must be a list/);
});

test('sweep runs cells in parallel, resumes without redoing finished cells, compares and audits', () => {
  const dir = tmpDir();
  const file = sweepFile(dir, 'sweep:\n  grid:\n    model.latent: [2, 4]\n  seeds: [0, 1]\n');
  const runs = path.join(dir, 'runs');
  const r = elbo(['sweep', file, '--parallel', '2', '--runs-dir', runs, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  assert.equal(out.cells.length, 4);
  assert.ok(out.cells.every((c: CellResult) => c.status === 'FINISHED' && c.runDir));
  const sweepDir = out.dir;
  const runDirs = () => fs.readdirSync(path.join(sweepDir, 'runs', 'small'));
  assert.equal(runDirs().length, 4);

  // rerun: nothing is redone; a failed cell is resumed, never a finished one overwritten
  const victim = out.cells[1].runDir!;
  const rec = JSON.parse(fs.readFileSync(path.join(victim, 'run.json'), 'utf8'));
  fs.writeFileSync(path.join(victim, 'run.json'), JSON.stringify({ ...rec, status: 'KILLED' }));
  const again = elbo(['sweep', file, '--runs-dir', runs, '--json']);
  assert.equal(again.status, 0, again.stderr);
  const cells = lastJson<SweepOutput>(again.stdout).cells;
  assert.deepEqual(
    cells.map((c: CellResult) => c.status),
    ['CACHED', 'FINISHED', 'CACHED', 'CACHED'],
  );
  assert.equal(cells[1].runDir, victim);
  assert.equal(runDirs().length, 4);
  assert.match(again.stderr, /cell 1 \(model\.latent=2 seed=1\): resuming/);

  // compare: mean ± std over the two seeds, CSV and PNG
  const cmp = elbo(['compare', sweepDir, '--metric', 'test/elbo', '--by', 'model.latent', '--wide']);
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stdout, /^model\.latent\s+seeds\s+test\/elbo/m);
  assert.match(cmp.stdout, /^2\s+0,1\s+-?\d+\.\d+ ± \d+\.\d+/m);
  const csv = fs.readFileSync(path.join(sweepDir, 'compare.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.match(csv[0], /^model\.latent,runs,seeds,.*test\/elbo mean,test\/elbo std/);
  assert.equal(fs.readFileSync(path.join(sweepDir, 'compare-test_elbo.png')).subarray(1, 4).toString(), 'PNG');

  // audit: every cell reproduces bit-exactly
  const audit = elbo(['audit', sweepDir, '--json']);
  assert.equal(audit.status, 0, audit.stdout + audit.stderr);
  const summary = lastJson<AuditOutput>(audit.stdout);
  assert.equal(summary.passed, 4);
  assert.ok(summary.cells.every((c: { max_abs_diff: number }) => c.max_abs_diff === 0));
});

/** A cell as sweep --json and sweep.json give it (what these tests read). */
type Cell = { index: number; status: string };

test('--cell takes a list as SLURM arrays do (3,4,6-7): those cells run in turn, the others stay pending; bad lists get one line', () => {
  const dir = tmpDir();
  const file = sweepFile(dir, 'sweep:\n  grid:\n    model.latent: [2, 3, 4, 5]\n');
  const runs = path.join(dir, 'runs');
  const dry = elbo(['sweep', file, '--runs-dir', runs, '--cell', '3,0-1', '--dry-run', '--json']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.deepEqual(
    lastJson<DryRunOutput>(dry.stdout).cells.map((c) => c.index),
    [0, 1, 3],
  );
  const r = elbo(['sweep', file, '--runs-dir', runs, '--cell', '3,1', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  assert.deepEqual(
    out.cells.map((c: Cell) => [c.index, c.status]),
    [
      [1, 'FINISHED'],
      [3, 'FINISHED'],
    ],
  );
  // one at a time, so each run's progress is shown (epoch lines on stderr)
  assert.equal((r.stderr.match(/^epoch 1\/1 /gm) ?? []).length, 2, r.stderr);
  const state = JSON.parse(fs.readFileSync(path.join(out.dir, 'sweep.json'), 'utf8'));
  assert.deepEqual(
    state.cells.map((c: Cell) => c.status),
    ['PENDING', 'FINISHED', 'PENDING', 'FINISHED'],
  );
  assert.ok(!fs.existsSync(path.join(out.dir, 'report.html')), 'a part of the sweep writes no report');
  // compare before any cell has finished says where the cells are (here: the two runs killed)
  const early = path.join(dir, 'early');
  fs.mkdirSync(early);
  state.cells = state.cells.map((c: Cell) => (c.status === 'FINISHED' ? { ...c, status: 'KILLED' } : c));
  fs.writeFileSync(path.join(early, 'sweep.json'), JSON.stringify(state));
  const none = elbo(['compare', early]);
  assert.equal(none.status, 1, none.stdout);
  assert.equal(none.stderr.trim(), `${early}: no cell has a finished run yet (2 not started, 2 killed): nothing to compare`);
  for (const [arg, re] of [
    ['1,x', /^--cell 1,x: 'x' is not a cell index or range; give e\.g\. 3, or 3,4,6-7$/],
    ['3-1', /^--cell 3-1: the range 3-1 runs backwards; give 1-3$/],
    ['2,4-5', /^--cell 2,4,5: the sweep has cells 0\.\.3 \(not 4, 5\)$/],
  ] as const) {
    const bad = elbo(['sweep', file, '--runs-dir', runs, '--cell', arg]);
    assert.equal(bad.status, 1, bad.stdout);
    assert.match(bad.stderr.trim(), re);
  }
});

test('a cell without a finished run is one line within 80 columns: a long label cut, the reason whole', () => {
  const label = Array.from({ length: 12 }, (_, i) => `model.key${i}=value${i}`).join(' ');
  const line = cellLine(4, label, 'running (process 2031 on vm)');
  assert.ok(line.length <= 80, line);
  assert.match(line, /^ {2}cell 4 \(model\.key0=value0 model\.key1=.*…\): running \(process 2031 on vm\)$/);
  assert.equal(cellLine(4, 'model.latent=5', 'never started'), '  cell 4 (model.latent=5): never started');
  // a long reason keeps the label's first 24 characters, and itself whole
  const why = 'killed: the process that ran it (12345 on a-long-host-name) is gone; rerun the sweep to resume it';
  assert.equal(cellLine(5, label, why), `  cell 5 (${label.slice(0, 23)}…): ${why}`);
});

test('distinctLabels: an ablation zip reads as what each cell changes; a grid keeps whole labels', () => {
  const cell = (index: number, axes: Record<string, unknown>, seed?: number) => ({
    index,
    label: [
      ...Object.entries(axes).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`),
      ...(seed === undefined ? [] : [`seed=${seed}`]),
    ].join(' '),
    axes,
    config_sha256: String(index),
    status: 'PENDING' as const,
    runDir: null,
    metrics: {},
    seconds: 0,
  });
  // an ablation sweeps many keys (ABLATION_KEYS); a sweep of a few keeps its labels whole
  const base = { 'train.batch_size': 100, 'train.clip': { norm: 1e9 }, 'train.weight_decay': 0, k4: 4, k5: 5, k6: 6 };
  const zip = [
    cell(0, { ...base, 'train.batch_size': 200 }),
    cell(1, base),
    cell(2, { ...base, 'train.clip': { norm: 5, value: 1 } }),
    cell(3, { ...base, 'train.weight_decay': 2e-5 }, 1),
  ];
  assert.deepEqual(
    [...distinctLabels(zip).values()],
    ['train.batch_size=200', 'the commonest setting', 'train.clip={"norm":5,"value":1}', 'train.weight_decay=0.00002 seed=1'],
  );
  const grid = [cell(0, { a: 1, b: 1 }, 0), cell(1, { a: 1, b: 2 }, 0), cell(2, { a: 2, b: 1 }, 0), cell(3, { a: 2, b: 2 }, 0)];
  // a grid of a few keys run in part (one base config in most rows) keeps them too
  const partial = [
    cell(0, { base: 'nn', n: 100 }),
    cell(1, { base: 'nn', n: 600 }),
    cell(2, { base: 'nn', n: 1000 }),
    cell(3, { base: 'm2', n: 100 }),
  ];
  assert.deepEqual(
    [...distinctLabels(partial).values()],
    partial.map((c) => c.label),
  );
  assert.deepEqual(
    [...distinctLabels(grid).values()],
    grid.map((c) => c.label),
  );
});

test('the emitted SLURM script: resources from the sweep file and --slurm, forwarded flags quoted for bash, task i runs cell i, a changed sweep is refused', () => {
  const dir = tmpDir('elbo sweep $HOME ');
  const file = sweepFile(
    dir,
    'slurm: {mem: 2G, partition: short, sbatch: [--exclusive]}\nsweep:\n  grid:\n    model.latent: [2, 4, 8]\n  seeds: [0, 1]\n',
  );
  const runs = path.join(dir, 'runs');
  const note = `it's $HOME and \`id\` "quoted"`;
  const r = elbo([
    'sweep',
    file,
    '--emit',
    'slurm',
    '--parallel',
    '2',
    '--runs-dir',
    runs,
    '--slurm',
    'time=4:00:00',
    '--slurm',
    'gpus=1',
    '--slurm',
    'mem=3G',
    '--backend',
    'cpu',
    '--tracking-uri',
    'http://127.0.0.1:9/',
    '--tag',
    'who=$USER',
    '--note',
    note,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const script = fs.readFileSync(r.stdout.trim(), 'utf8');
  const sbatch = script.split('\n').filter((l) => l.startsWith('#SBATCH'));
  for (const line of [
    '--array=0-5%2',
    '--mem=3G',
    '--partition=short',
    '--time=4:00:00',
    '--gpus=1',
    '--cpus-per-task=2',
    '--exclusive',
    '--requeue',
    '--open-mode=append',
    '--signal=B:USR1@180',
  ])
    assert.ok(sbatch.includes(`#SBATCH ${line}`), `${line} in\n${sbatch.join('\n')}`);
  assert.ok(sbatch.includes(`#SBATCH --output="${path.join(runs, 'sweeps', 'sweep', 'slurm-%A_%a.out')}"`));
  assert.doesNotMatch(script, /^cd /m, 'no cd to the emit-time directory');
  // the srun line as bash reads it, for task i: the words elbo gets
  const srun = /^srun (.*) &$/m.exec(script)![1];
  const hash = /^cells_sha256=([0-9a-f]{64})$/m.exec(script)![1];
  const words = (i: number) => {
    const b = spawnSync(
      'bash',
      ['-c', `cells_sha256=${hash}; SLURM_ARRAY_TASK_ID=${i}; SLURM_CPUS_PER_TASK=2; set -- ${srun}; printf '%s\\0' "$@"`],
      { encoding: 'utf8' },
    );
    assert.equal(b.status, 0, b.stderr);
    return b.stdout.split('\0').slice(0, -1);
  };
  const w = words(3);
  assert.deepEqual(w.slice(0, 2), ['--ntasks=1', '--cpus-per-task=2']);
  assert.deepEqual(w.slice(4), [
    'sweep',
    file,
    '--cell',
    '3',
    '--runs-dir',
    runs,
    '--cells-sha256',
    hash,
    '--backend',
    'cpu',
    '--tracking-uri',
    'http://127.0.0.1:9/',
    '--tag',
    'who=$USER',
    '--note',
    note,
  ]);
  const cells = expand(loadSweep(file));
  for (const i of [0, 5]) {
    const dry = elbo([
      ...words(i)
        .slice(4)
        .filter(
          (x, k, a) =>
            !['--backend', '--tracking-uri', '--tag', '--note'].includes(x) &&
            !['--backend', '--tracking-uri', '--tag', '--note'].includes(a[k - 1]),
        ),
      '--dry-run',
      '--json',
    ]);
    assert.equal(dry.status, 0, dry.stderr);
    const shown = lastJson<DryRunOutput>(dry.stdout).cells;
    assert.deepEqual([shown.length, shown[0].index, shown[0].overrides, shown[0].seed], [1, i, cells[i].overrides, cells[i].seed]);
  }
  // the sweep file edited after emission: the tasks refuse to run, saying what to do
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('[2, 4, 8]', '[2, 4, 8, 16]'));
  const stale = elbo([...words(0).slice(4, 12), '--dry-run']);
  assert.equal(stale.status, 1);
  assert.match(
    stale.stderr,
    /^--cells-sha256 [0-9a-f]{12}…: the sweep's cells changed since this job script was emitted \(the sweep file or a base config was edited; now 8 cells, hash [0-9a-f]{12}…\): emit the script again \(elbo sweep .*sweep\.yaml --emit slurm\) and submit that one$/m,
  );
  // bad SLURM options: one line naming the flag or the sweep file
  const bad = (args: string[], re: RegExp) => {
    const x = elbo(['sweep', file, '--emit', 'slurm', ...args]);
    assert.equal(x.status, 1, x.stdout);
    assert.match(x.stderr, re);
  };
  bad(
    ['--slurm', 'partiton=short', '--runs-dir', runs],
    /^--slurm partiton=short: unknown SLURM option 'partiton'; did you mean 'partition'\?/m,
  );
  bad(['--slurm', 'time=soon', '--runs-dir', runs], /^--slurm time=soon: slurm\.time must match pattern/m);
  bad(['--slurm', 'partition=a b', '--runs-dir', runs], /^--slurm partition=a b: slurm\.partition must match pattern/m);
  bad(
    ['--runs-dir', path.join(dir, '100%')],
    /^--runs-dir .*100%: a runs directory whose path has a double quote, a % or a line break cannot be given to sbatch; use another one$/m,
  );
  const local = elbo(['sweep', file, '--slurm', 'mem=2G', '--dry-run']);
  assert.match(local.stderr, /^--slurm mem=2G: --slurm sets what an emitted SLURM script asks for: give it with --emit slurm$/m);
});

test('reproduce: a finished run passes bit-exactly; edited metrics and changed data fail, naming the cause', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const first = lastJson<RunOutput>(
    elbo(['run', cfg, '--runs-dir', runs, '--json', '--set', 'train.epochs=1', '--set', 'eval=[{kind: elbo}]']).stdout,
  );
  const ok = await reproduce(first.runDir, { progress: false });
  assert.equal(ok.passed, true, ok.causes.join('; '));
  assert.ok(ok.metrics.length >= 5 && ok.metrics.every((m) => m.diff === 0));
  assert.ok(fs.existsSync(path.join(ok.rerun!, 'artifacts', 'reproduce-report.md')));
  // the CLI agrees, with exit 0
  const cli = elbo(['reproduce', first.runDir, '--quiet']);
  assert.equal(cli.status, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, /result: PASSED \(exact match required\)/);

  // a hand-edited record
  const runJson = path.join(first.runDir, 'run.json');
  const rec = JSON.parse(fs.readFileSync(runJson, 'utf8'));
  assert.deepEqual(rec.evaluated_on, { checkpoint: 'last', epoch: 1 });
  fs.writeFileSync(
    runJson,
    JSON.stringify({
      ...rec,
      metrics: { ...rec.metrics, 'test/elbo': rec.metrics['test/elbo'] + 1 },
      evaluated_on: { checkpoint: 'best', epoch: 3 },
    }),
  );
  const edited = await reproduce(first.runDir, { progress: false });
  assert.equal(edited.passed, false);
  assert.ok(
    edited.causes.includes(
      "the recorded test metrics were measured on the best checkpoint (epoch 3), the rerun's on the last checkpoint (epoch 1)",
    ),
    edited.causes.join('; '),
  );
  assert.ok(
    edited.causes.some((c) => /^test\/elbo: recorded .*, reproduced/.test(c)),
    edited.causes.join('; '),
  );
  assert.ok(edited.causes.some((c) => /run\.json says test\/elbo = .* but metrics\.jsonl logged .*: the record was edited/.test(c)));
  fs.writeFileSync(runJson, JSON.stringify(rec));

  // changed data: one pixel of the training images
  const img = path.join(dir, 'train-images-idx3-ubyte');
  const buf = fs.readFileSync(img);
  buf[100] = (buf[100] + 128) % 256;
  fs.writeFileSync(img, buf);
  const changed = elbo(['reproduce', first.runDir, '--quiet']);
  assert.equal(changed.status, 1);
  assert.match(changed.stdout, /result: FAILED/);
  assert.match(changed.stdout, /the data changed since the run: sha256 [0-9a-f]{12}… → [0-9a-f]{12}…/);
  assert.match(changed.stdout, /data\.sha256: /);
  void writeIdx;
});

test('compare: runs on one M1 are one row whether the config nested its block or named its run', () => {
  const dir = tmpDir();
  const block = (epochs: number) => ({ model: { kind: 'm1', latent: 50 }, train: { epochs }, loss: { c1: 1 }, eval: [] });
  // the M1 runs: config.yaml as elbo writes it (the block's keys, and the run's own)
  const m1Run = (id: string, epochs: number) => {
    const d = path.join(dir, 'm1', id);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(
      path.join(d, 'config.yaml'),
      JSON.stringify({ experiment: 'x-m1', seed: 0, data: { kind: 'mnist' }, ...block(epochs) }),
    );
    return d;
  };
  const make = (name: string, seed: number, m1: Record<string, unknown>, depDir: string, metric: number) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    const dep = { run_id: path.basename(depDir), run_dir: depDir, config_sha256: 'x', how: 'm1_run' in m1 ? 'given' : 'trained' };
    const rec = { status: 'FINISHED', seed, metrics: { 'test/error_pct': metric }, depends_on: { m1: dep } };
    fs.writeFileSync(path.join(d, 'run.json'), JSON.stringify(rec));
    const model = { kind: 'm1m2', latent: 50, encoder: { kind: 'mlp', hidden: [500] }, ...m1 };
    fs.writeFileSync(path.join(d, 'config.yaml'), JSON.stringify({ seed, model }));
    return d;
  };
  const a = m1Run('A', 300);
  const runs = [
    make('trained', 0, { m1: block(300) }, a, 3), // its M1 trained first from the block
    make('named', 1, { m1_run: a }, a, 4), // the same M1, named as a run
    make('own', 2, { m1: block(300) }, m1Run('B', 300), 5), // another seed's own M1 from the same block
    make('other', 0, { m1: block(100) }, m1Run('C', 100), 9), // another block
  ];
  const { runs: compared } = collectRuns(runs);
  const keys = sweptKeys(compared);
  assert.deepEqual(keys, ['model.m1.train.epochs']);
  const rows = compare(compared, keys, ['test/error_pct']);
  assert.deepEqual(
    rows.map((r) => [r.key['model.m1.train.epochs'], r.seeds, r.stats['test/error_pct'].mean]),
    [
      ['300', [0, 1, 2], 4],
      ['100', [0], 9],
    ],
  );
});

test('compare: published columns and a verdict per row (within, better, worse)', () => {
  const dir = tmpDir();
  const published = [
    { metric: 'test/error_pct', value: 11.97, pm: 1.71, mode: 'min', source: 'Kingma et al. 2014, Table 1' },
    // no pm: within means within the std over seeds
    { metric: 'test/accuracy', value: 0.9, mode: 'max', source: 'a tutorial' },
    // the entry's mode, not the name, decides
    { metric: 'test/pca_explained_1', value: 0.5, mode: 'min', source: 'made up' },
  ];
  const runDirs: string[] = [];
  const make = (latent: number, seed: number, metrics: Record<string, number>) => {
    const d = path.join(dir, `run-${latent}-${seed}`);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'run.json'), JSON.stringify({ status: 'FINISHED', seed, metrics }));
    fs.writeFileSync(
      path.join(d, 'config.yaml'),
      `seed: ${seed}\nmodel: {kind: m2, latent: ${latent}}\npublished: ${JSON.stringify(published)}\n`,
    );
    runDirs.push(d);
  };
  make(2, 0, { 'test/error_pct': 10, 'test/accuracy': 0.85, 'test/pca_explained_1': 0.4 }); // mean 11 ± 1.41: within; 0.88 ± 0.042: within
  make(2, 1, { 'test/error_pct': 12, 'test/accuracy': 0.91, 'test/pca_explained_1': 0.4 });
  make(4, 0, { 'test/error_pct': 5, 'test/accuracy': 0.95, 'test/pca_explained_1': 0.6 }); // better, better, worse
  make(8, 0, { 'test/error_pct': 20, 'test/accuracy': 0.88 }); // worse, worse (one run: std 0), missing
  const { runs } = collectRuns(runDirs);
  const keys = sweptKeys(runs);
  // published is not a swept key; the model blocks, one kind, differ in their latent size only
  assert.deepEqual(keys, ['model.latent']);
  const rows = compare(runs, keys, comparedMetrics(runs));
  const verdicts = rows.map((r) => ['test/error_pct', 'test/accuracy', 'test/pca_explained_1'].map((m) => r.published[m].verdict));
  assert.deepEqual(verdicts, [
    ['within', 'within', 'better'],
    ['better', 'better', 'worse'],
    ['worse', 'worse', 'missing'],
  ]);

  const csvFile = path.join(dir, 'compare.csv');
  const r = elbo(['compare', ...runDirs, '--csv', csvFile, '--plot', path.join(dir, 'plot.png'), '--wide']);
  assert.equal(r.status, 0, r.stderr);
  const [head, ...lines] = r.stdout.trim().split('\n');
  assert.match(
    head,
    /test\/error_pct published\s+verdict\s+test\/accuracy published\s+verdict\s+test\/pca_explained_1 published\s+verdict$/,
  );
  assert.match(lines[1], /^2\s+0,1\s+.*11\.97 ± 1\.71\s+within\s+0\.9\s+within\s+0\.5\s+better$/);
  assert.match(lines[3], /^8\s+0\s+.*11\.97 ± 1\.71\s+worse\s+0\.9\s+worse\s+0\.5\s+missing$/);
  const csv = fs.readFileSync(csvFile, 'utf8').trim().split('\n');
  assert.match(
    csv[0],
    /,test\/error_pct published,test\/error_pct published pm,test\/error_pct mode,test\/error_pct verdict,test\/error_pct source,/,
  );
  assert.match(csv[2], /,11\.97,1\.71,min,better,"Kingma et al\. 2014, Table 1",0\.9,,max,better,a tutorial,/);
});

test('a sweep of a config from the command line: --grid, --seeds and --set make the cells, --tag and --note reach every run, and the same command finds them again', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const args = [
    'sweep',
    cfg,
    '--grid',
    'model.latent=2,4',
    '--seeds',
    '3',
    '--set',
    'train.epochs=1',
    '--set',
    'eval=[{kind: elbo}]',
    '--runs-dir',
    runs,
  ];
  const dry = elbo([...args, '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(
    dry.stdout,
    /^2 cells → .*sweeps\/small-[0-9a-f]{8}\n {2}cell 0: model\.latent=2 seed=3\n {2}cell 1: model\.latent=4 seed=3\n$/,
  );
  const r = elbo([...args, '--tag', 'purpose=multirun', '--note', 'from flags', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  assert.deepEqual(
    out.cells.map((c: CellResult) => c.status),
    ['FINISHED', 'FINISHED'],
  );
  const rec = JSON.parse(fs.readFileSync(path.join(out.cells[1].runDir!, 'run.json'), 'utf8'));
  assert.deepEqual([rec.seed, rec.epochs_planned, rec.tags, rec.note], [3, 1, { purpose: 'multirun' }, 'from flags']);
  // the sweep file it wrote is an ordinary sweep file: elbo validate and --emit slurm take it
  const written = path.join(out.dir, 'sweep.yaml');
  assert.match(
    fs.readFileSync(written, 'utf8'),
    /^# made by: elbo sweep .*small\.yaml --grid model\.latent=2,4 --seeds 3 --set train\.epochs=1/,
  );
  assert.equal(elbo(['validate', written]).status, 0);
  const again = elbo([...args, '--json']);
  assert.deepEqual(
    lastJson<SweepOutput>(again.stdout).cells.map((c: CellResult) => c.status),
    ['CACHED', 'CACHED'],
  );
  // mistakes name the flag
  const bad = (extra: string[], re: RegExp) => {
    const x = elbo(['sweep', cfg, ...extra, '--runs-dir', runs, '--dry-run']);
    assert.equal(x.status, 1, x.stdout);
    assert.match(x.stderr, re);
  };
  bad(['--grid', 'model.latent'], /^--grid model\.latent: expected key\.path=value,value,\.\.\. \(e\.g\. model\.latent=8,32\)$/m);
  bad(['--grid', 'model.latent=2', '--seeds', 'a,b'], /^--seeds a,b: seeds are integers >= 0/m);
  bad(['--grid', 'model.latnt=2,4'], /^--set model\.latnt=2: cell 0 .*unknown key 'latnt' in model; did you mean 'latent'/m);
  bad([], /small\.yaml: a config is swept over --grid KEY=V1,V2 \(repeatable\) and\/or --seeds 0,1; or give a sweep file$/m);
});

test('a cell that ended without a result says why in its last words, not its progress lines', () => {
  const stderr = [
    'run 20261207-005058-b25104: m1 on mnist (50000 train / 10000 val / 10000 test), backend tensorflow, device cpu, seed 1',
    'train step (100×784): one TensorFlow graph of 226 kernels, traced and checked in 0.75 s',
    'epoch 1/300 train/loss 199.1 train/recon 194.0 | 6649 samples/s | 8.2s',
    'SIGTERM: stopping after the current step',
    'epoch 2/300 train/loss 150.2 train/recon 140.0 | 6455 samples/s | 8.3s',
    'model.m1: the M1 run RUNS/mnist-m1m2-m1/20261207-005058-b25104 ended KILLED (interrupted in epoch 2; resume with: elbo run --resume RUNS/…)',
    '',
  ].join('\n');
  assert.equal(
    lastWords(stderr),
    'SIGTERM: stopping after the current step | model.m1: the M1 run RUNS/mnist-m1m2-m1/20261207-005058-b25104 ended KILLED (interrupted in epoch 2; resume with: elbo run --resume RUNS/…)',
  );
  assert.equal(lastWords('epoch 1/3 train/loss 1\n'), '');
});

test("the progress lines of real runs are all known to a cell's last words: a run that ends well leaves none", () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const run = (...args: string[]) => {
    const r = elbo(['run', ...args, '--runs-dir', runs, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(lastWords(r.stderr), '', r.stderr);
    return lastJson<RunOutput>(r.stdout);
  };
  const sets = (...v: string[]) => v.flatMap((o) => ['--set', o]);
  const semi = ['data.labelled=20', 'train.labelled_per_batch=10'];
  const small = '{kind: mlp, hidden: [8]}';
  // a semi-supervised run (class histograms, steps of several batch shapes, evaluators with lines
  // of their own), paused after its first epoch and resumed
  const m2 = `model={kind: m2, latent: 3, encoder: ${small}, decoder: ${small}, classifier: ${small}}`;
  const evals = 'eval=[{kind: elbo}, {kind: accuracy}, {kind: latent-classifier, classifier: knn, k: 1}, {kind: reconstructions, n: 4}]';
  const paused = run(cfg, ...sets(m2, ...semi, 'train.epochs=2', evals), '--pause-at', '1');
  run('--resume', paused.runDir);
  // M1+M2 that trains its nested M1 first (the M1's own progress, and what M1+M2 says of it)
  const m1 = `m1: {model: {kind: vae, latent: 4, encoder: ${small}, decoder: ${small}}, train: {epochs: 1}}`;
  run(
    cfg,
    ...sets(
      `model={kind: m1m2, ${m1}, latent: 3, encoder: ${small}, decoder: ${small}, classifier: ${small}}`,
      ...semi,
      'train.epochs=1',
      'eval=[{kind: accuracy}]',
    ),
  );
});
