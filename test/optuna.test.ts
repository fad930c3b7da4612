import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, ROOT, type CompareOutput, type SweepOutput } from './helpers';
import { OPTUNA_VERSION, type Trial } from '../src/sweep/optuna';
import type { CellResult } from '../src/sweep/state';
import type { ComparisonRow } from '../src/sweep/compare';

/**
 * A sweep's Bayesian search through Optuna's command line (src/sweep/optuna.ts), with a
 * real Optuna from PyPI (.venv-optuna, installed by the sweep itself the first time).
 */

function searchSweep(space: string, extra = ''): { dir: string; file: string } {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/eval:[\s\S]*$/, 'eval:\n  - kind: elbo\n'));
  const file = path.join(dir, 'sweep.yaml');
  fs.writeFileSync(
    file,
    `base: small.yaml\nset: {data.max_train: 100, train.epochs: 1}\n${extra}sweep:\n  search:\n    kind: optuna\n    trials: 2\n    startup_trials: 1\n    seed: 4\n    storage: study.db\n    space:\n${space}`,
  );
  return { dir, file };
}

test('search: optuna asks each cell its values and is told its val/elbo; a rerun asks nothing new; the SLURM array has one task per trial', async () => {
  const { dir, file } = searchSweep(
    '      train.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n      model.encoder.hidden: {choice: [[16], [32]]}\n',
  );
  const runs = path.join(dir, 'runs');
  // cell 1 alone first, as a SLURM array task runs it (elbo sweep --cell 1): it asks for the first trial
  const one = elbo(['sweep', file, '--runs-dir', runs, '--cell', '1', '--json']);
  assert.equal(one.status, 0, one.stderr);
  assert.deepEqual(
    lastJson<SweepOutput>(one.stdout).cells.map((c: CellResult) => [c.index, c.status]),
    [[1, 'FINISHED']],
  );
  const r = elbo(['sweep', file, '--runs-dir', runs, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  assert.deepEqual(
    out.cells.map((c: CellResult) => c.status),
    ['FINISHED', 'CACHED'],
  );
  const trials = JSON.parse(fs.readFileSync(path.join(out.dir, 'trials.json'), 'utf8'));
  // Optuna numbers trials as they are asked: cell 1's first, then cell 0's
  assert.deepEqual(
    [0, 1].map((i) => trials[i].number),
    [1, 0],
  );
  for (const [i, c] of out.cells.entries()) {
    const t = trials[i];
    assert.equal(t.told, 'complete');
    const lr = t.params['train.optimizer.lr'];
    assert.ok(lr >= 1e-4 && lr <= 1e-2, String(lr));
    assert.ok([16, 32].includes(t.params['model.encoder.hidden'][0]), 'a choice of lists comes back as a list');
    // the cell ran what was proposed
    const config = fs.readFileSync(path.join(c.runDir!, 'config.yaml'), 'utf8');
    assert.match(config, new RegExp(`lr: ${String(lr).replace('.', '\\.')}\\b`));
    assert.match(c.label, /^train\.optimizer\.lr=\S+ model\.encoder\.hidden=\[(16|32)\]$/);
  }
  assert.equal(new Set(Object.values<Trial>(trials).map((t) => t.params['train.optimizer.lr'])).size, 2, 'two different proposals');
  // what Optuna was told: each trial's val/elbo, read back from its own storage
  const py = path.join(ROOT, '.venv-optuna', 'bin', 'python');
  const told = spawnSync(
    py,
    [
      '-c',
      `import optuna, json; s = optuna.load_study(study_name='sweep', storage='sqlite:///${path.join(out.dir, 'study.db')}'); print(json.dumps([[t.number, t.state.name, t.value] for t in s.trials]))`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(told.status, 0, told.stderr);
  assert.deepEqual(
    JSON.parse(told.stdout),
    [1, 0].map((i, n) => [n, 'COMPLETE', out.cells[i].metrics['val/elbo']]),
  );

  // compare ranks the trials by the metric they were told, best first
  const cmp = elbo(['compare', out.dir, '--json']);
  assert.equal(cmp.status, 0, cmp.stderr);
  const ranked = lastJson<CompareOutput>(cmp.stdout).rows.map((row: ComparisonRow) => row.stats['val/elbo'].mean);
  assert.deepEqual(
    ranked,
    out.cells.map((c: CellResult) => c.metrics['val/elbo']).sort((a: number, b: number) => b - a),
  );

  // a rerun: every cell finished, no trial asked or told again
  const again = elbo(['sweep', file, '--runs-dir', runs, '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(
    lastJson<SweepOutput>(again.stdout).cells.map((c: CellResult) => c.status),
    ['CACHED', 'CACHED'],
  );
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out.dir, 'trials.json'), 'utf8')), trials);

  // under SLURM: one array task per trial, each asking for its own (elbo sweep --cell i)
  const emit = elbo(['sweep', file, '--emit', 'slurm', '--runs-dir', path.join(dir, 'slurm')]);
  assert.equal(emit.status, 0, emit.stderr);
  assert.match(fs.readFileSync(emit.stdout.trim(), 'utf8'), /^#SBATCH --array=0-1$/m);
});

test('search: a value that makes a bad config is refused before anything runs; optuna that cannot be installed is one clear line', async () => {
  // the ends of the space are checked with the cells
  const { dir, file } = searchSweep('      model.latent: {int: [0, 4]}\n');
  const bad = elbo(['sweep', file, '--dry-run']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /the search: space model\.latent=0: model\.latent must be >= 1/);
  // no other axis beside the search
  fs.writeFileSync(
    file,
    fs.readFileSync(file, 'utf8').replace('{int: [0, 4]}', '{int: [1, 4]}').replace('sweep:\n', 'sweep:\n  seeds: [0, 1]\n'),
  );
  const axes = elbo(['validate', file]);
  assert.equal(axes.status, 1);
  assert.match(axes.stderr, /sweep\.yaml:\d+:\d+: search proposes every swept value: put the keys of seeds into search\.space/);
  // no optuna, and none to be had: no Python to make its venv with
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('  seeds: [0, 1]\n', ''));
  const venv = path.join(dir, 'no-venv');
  const r = elbo(['sweep', file, '--runs-dir', path.join(dir, 'runs')], {
    env: { ELBO_OPTUNA_VENV: venv, PYTHON: path.join(dir, 'no-python') },
  });
  assert.equal(r.status, 1);
  // what it tried, then the error: one line, no stack trace
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(lines.slice(0, -1), [`installing optuna==${OPTUNA_VERSION} into ${venv} (first time only)`], r.stderr);
  assert.match(
    lines.at(-1)!,
    new RegExp(
      `^${dir}/sweep\\.yaml: sweep\\.search: optuna is not installed and could not be installed \\(.*no-python -m venv .* failed \\(spawnSync .*ENOENT\\)\\); install it by hand: python3 -m venv ${venv} && ${venv}/bin/pip install optuna==${OPTUNA_VERSION}$`,
    ),
  );
});
