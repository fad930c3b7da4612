import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadSweep, expand, resolveCells, cellLabel, cellArgs, type Cell } from '../src/sweep/spec';
import type { CellResult } from '../src/sweep/state';
import { UserError } from '../src/errors';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { tmpDir, smallConfig, elbo, lastJson, ROOT, type DryRunOutput, type SweepOutput } from './helpers';

/** small.yaml (a VAE) and classifier.yaml (the same data, the classifier) in `dir`. */
function twoBases(dir: string): void {
  smallConfig(dir);
  const small = path.join(dir, 'small.yaml');
  fs.writeFileSync(small, fs.readFileSync(small, 'utf8').replace(/eval:[\s\S]*$/, 'eval:\n  - kind: elbo\n'));
  fs.writeFileSync(
    path.join(dir, 'classifier.yaml'),
    fs
      .readFileSync(small, 'utf8')
      .replace('experiment: small', 'experiment: small-classifier')
      .replace(/model:[\s\S]*?train:/, 'model:\n  kind: classifier\n  network: { kind: mlp, hidden: [16] }\ntrain:')
      .replace(/eval:[\s\S]*$/, 'eval:\n  - kind: accuracy\n'),
  );
}

test('the papers sweep: Kingma et al. Table 1 as 4 N × 4 models × 3 seeds = 48 validated cells', () => {
  const prev = process.cwd();
  process.chdir(ROOT);
  try {
    const spec = loadSweep('configs/papers/kingma2014-table1.yaml');
    const cells = resolveCells(spec);
    assert.equal(cells.length, 48);
    const count = new Map<string, number>();
    for (const { cell, loaded } of cells) {
      const key = `${loaded.config.model.kind} N=${loaded.config.data.labelled} seed=${loaded.config.seed}`;
      count.set(key, (count.get(key) ?? 0) + 1);
      assert.equal(loaded.config.data.kind, 'mnist');
      assert.equal(
        loaded.config.data.validation,
        10000,
        'the same training split (and so the same labelled rows per seed) for every model',
      );
      assert.ok(cell.base.startsWith(path.join(ROOT, 'configs', 'mnist')));
    }
    const kinds = ['classifier', 'm1', 'm2', 'm1m2'];
    for (const k of kinds)
      for (const n of [100, 600, 1000, 3000])
        for (const s of [0, 1, 2]) assert.equal(count.get(`${k} N=${n} seed=${s}`), 1, `${k} N=${n} seed=${s}`);
    // each cell aims at its own model's and N's published number; at N = 100 the cell is the
    // shipped config itself (the same resolved config, so the same runs)
    const published = (kind: string, n: number) =>
      cells.find(({ loaded }) => loaded.config.model.kind === kind && loaded.config.data.labelled === n)!.loaded.config.published!;
    assert.equal(published('m2', 600)[0].value, 4.94);
    assert.equal(published('m1m2', 3000)[0].value, 2.18);
    assert.equal(published('classifier', 1000)[0].value, 10.7);
    assert.equal(published('m1', 600)[0].metric, 'test/latent_classifier_error');
    for (const { cell, loaded } of cells)
      if (loaded.config.data.labelled === 100 && loaded.config.seed === 0)
        assert.equal(loaded.sha256, loadConfig(cell.base, [], createRegistry()).sha256, path.basename(cell.base));
    // the M1+M2 cells describe their M1 in the config (no m1_run to fill in)
    assert.ok(
      cells
        .filter(({ loaded }) => loaded.config.model.kind === 'm1m2')
        .every(({ loaded }) => loaded.config.model.m1 && !loaded.config.model.m1_run),
    );
  } finally {
    process.chdir(prev);
  }
  const dry = elbo(['sweep', 'configs/papers/kingma2014-table1.yaml', '--dry-run', '--json']);
  assert.equal(dry.status, 0, dry.stderr);
  const out = lastJson<DryRunOutput>(dry.stdout);
  assert.equal(out.cells.length, 48);
  assert.equal(new Set(out.cells.map((c: Cell) => path.basename(c.base))).size, 4);
  assert.deepEqual([...new Set(out.cells.map((c: Cell) => c.overrides['data.labelled']))], [100, 600, 1000, 3000]);
  const text = elbo(['sweep', 'configs/papers/kingma2014-table1.yaml', '--dry-run']);
  assert.match(text.stdout, /^48 cells/);
  assert.match(text.stdout, /cell 47: base=\.\.\/mnist\/m1m2\.yaml data\.labelled=3000 seed=2$/m);
});

test('a sweep over base configs: grid and zip axes, labels, and clear errors', () => {
  const dir = tmpDir();
  twoBases(dir);
  const file = path.join(dir, 'bases.yaml');
  fs.writeFileSync(
    file,
    'set: {train.epochs: 1}\nsweep:\n  grid:\n    base: [small.yaml, classifier.yaml]\n    train.batch_size: [25, 50]\n  seeds: [3]\n',
  );
  const spec = loadSweep(file);
  assert.equal(spec.base, null);
  const cells = expand(spec);
  assert.deepEqual(
    cells.map((c) => path.basename(c.base)),
    ['small.yaml', 'small.yaml', 'classifier.yaml', 'classifier.yaml'],
  );
  assert.ok(
    cells.every((c) => !('base' in c.overrides)),
    'base is not an override',
  );
  assert.equal(cellLabel(cells[2], spec), 'base=classifier.yaml train.batch_size=25 seed=3');
  const resolved = resolveCells(spec);
  assert.deepEqual(
    resolved.map((r) => r.loaded.config.model.kind),
    ['vae', 'vae', 'classifier', 'classifier'],
  );
  // zip: each base with overrides of its own
  fs.writeFileSync(file, 'sweep:\n  zip:\n    - {base: [small.yaml, classifier.yaml], train.epochs: [2, 5]}\n');
  assert.deepEqual(
    resolveCells(loadSweep(file)).map((r) => [r.loaded.config.model.kind, r.loaded.config.train.epochs]),
    [
      ['vae', 2],
      ['classifier', 5],
    ],
  );
  // a cell whose override does not fit its base names the cell
  fs.writeFileSync(file, 'sweep:\n  grid:\n    base: [small.yaml, classifier.yaml]\n    model.latent: [3]\n');
  assert.throws(
    () => resolveCells(loadSweep(file)),
    (e: unknown) =>
      e instanceof UserError && /cell 1 \(base=classifier\.yaml model\.latent=3\): unknown key 'latent' in model/.test(e.message),
  );
  // a base config that is not there
  fs.writeFileSync(file, 'sweep:\n  grid:\n    base: [small.yaml, nope.yaml]\n');
  assert.throws(() => resolveCells(loadSweep(file)), /cell 1 .*config file not found/);
  // base twice, as an override, or nowhere
  const bad = (body: string, re: RegExp) => {
    fs.writeFileSync(file, body);
    assert.throws(() => loadSweep(file), re);
  };
  bad(
    'base: small.yaml\nsweep:\n  grid:\n    base: [small.yaml, classifier.yaml]\n',
    /'base' is both the top-level base config and an axis/,
  );
  bad('base: small.yaml\nset: {base: classifier.yaml}\nsweep:\n  seeds: [0, 1]\n', /'base' is not an override/);
  bad('sweep:\n  seeds: [0, 1]\n', /missing the base config/);
  bad('sweep:\n  grid:\n    base: [small.yaml, 3]\n', /the 'base' axis lists config files/);
});

test('a sweep over base configs runs each cell from its own base, and a rerun skips them', () => {
  const dir = tmpDir();
  twoBases(dir);
  const file = path.join(dir, 'bases.yaml');
  fs.writeFileSync(file, 'name: bases\nset: {train.epochs: 1}\nsweep:\n  grid:\n    base: [small.yaml, classifier.yaml]\n');
  const runs = path.join(dir, 'runs');
  const r = elbo(['sweep', file, '--runs-dir', runs, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  assert.deepEqual(
    out.cells.map((c: CellResult) => c.status),
    ['FINISHED', 'FINISHED'],
  );
  assert.deepEqual(
    out.cells.map((c: CellResult) => path.basename(path.dirname(c.runDir!))),
    ['small', 'small-classifier'],
  );
  assert.ok(Number.isFinite(out.cells[0].metrics['test/elbo']));
  assert.ok(Number.isFinite(out.cells[1].metrics['test/accuracy']));
  const index = JSON.parse(fs.readFileSync(path.join(out.dir, 'sweep.json'), 'utf8'));
  assert.deepEqual(
    index.base.map((b: string) => path.basename(b)),
    ['small.yaml', 'classifier.yaml'],
  );
  // compare of the sweep: its rows keyed by what the sweep varies, the base config by name
  const cmp = elbo(['compare', out.dir, '--metric', 'test/accuracy']);
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stdout, /^base +n +test\/accuracy/);
  assert.match(cmp.stdout, /^small +1 +- *$/m);
  assert.match(cmp.stdout, /^classifier +1 +0\.\d{3}$/m);
  // the same runs given as run directories compare by their configs: the keys one base has
  // and the other lacks show as '-'; more than fit in 80 columns: each row's setting under its numbers
  const loose = elbo(['compare', out.cells[0].runDir!, out.cells[1].runDir!, '--metric', 'test/accuracy'], { cwd: dir });
  assert.equal(loose.status, 0, loose.stderr);
  assert.ok(
    loose.stdout.split('\n').every((l) => l.length <= 79),
    loose.stdout,
  );
  assert.match(loose.stdout, /^1 +0\.\d+\n {2}eval=\[\{"kind":"accuracy"/m);
  assert.match(loose.stdout, /^ {2}.*model\.kind=classifier; /m);
  assert.match(loose.stdout, /^ {2}.*model\.kind=vae; /m);
  const again = elbo(['sweep', file, '--runs-dir', runs, '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(
    lastJson<SweepOutput>(again.stdout).cells.map((c: CellResult) => c.status),
    ['CACHED', 'CACHED'],
  );
});

test("set: '~path' deletes a key of the base config in every cell (as --set ~path), from a sweep file and from elbo sweep --set", () => {
  const dir = tmpDir();
  smallConfig(dir);
  const file = path.join(dir, 'del.yaml');
  fs.writeFileSync(file, 'base: small.yaml\nset: {"~eval.1": null, train.epochs: 1}\nsweep:\n  grid:\n    model.latent: [2, 3]\n');
  const resolved = resolveCells(loadSweep(file));
  for (const r of resolved) {
    assert.deepEqual(
      r.loaded.config.eval.map((e) => e.kind),
      ['elbo', 'reconstructions'],
    );
    assert.deepEqual(cellArgs(r.cell).slice(0, 2), ['--set', '~eval.1']);
  }
  // a key the base lacks: one line naming the key; a bad path: located in the sweep file
  fs.writeFileSync(file, 'base: small.yaml\nset: {"~eval.7": null}\nsweep:\n  grid:\n    model.latent: [2, 3]\n');
  assert.throws(() => resolveCells(loadSweep(file)), /'eval\.7' is not in the config, so there is nothing to delete/);
  fs.writeFileSync(file, 'base: small.yaml\nset: {"~eval.-1": null}\nsweep:\n  grid:\n    model.latent: [2, 3]\n');
  assert.throws(() => loadSweep(file), /del\.yaml:2:7: .*not a list index/);
  // the command line's --set ~path goes into the sweep file it writes
  const r = elbo([
    'sweep',
    path.join(dir, 'small.yaml'),
    '--grid',
    'model.latent=2,3',
    '--set',
    '~eval.1',
    '--dry-run',
    '--runs-dir',
    path.join(dir, 'runs'),
  ]);
  assert.equal(r.status, 0, r.stderr);
  const made = fs.readdirSync(path.join(dir, 'runs', 'sweeps'));
  assert.match(fs.readFileSync(path.join(dir, 'runs', 'sweeps', made[0], 'sweep.yaml'), 'utf8'), /set:\n {2}~eval\.1: null\n/);
  const bad = elbo(['sweep', path.join(dir, 'small.yaml'), '--grid', 'model.latent=2,3', '--set', '~eval.1=3', '--dry-run']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^--set ~eval\.1=3: ~key\.path deletes the key and takes no value/);
});
