import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { runExperiment } from '../src/experiment';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { tmpDir, smallConfig, elbo, lastJson, ROOT, type RunOutput } from './helpers';
import type { PluginOptions } from '../src/contracts';

test('the CNN judge config validates and trains on a limited MNIST set (conv classifier on real images)', () => {
  const { config } = loadConfig(path.join(ROOT, 'configs/mnist/cnn-judge.yaml'), [], createRegistry());
  assert.equal(config.model.kind, 'classifier');
  assert.equal((config.model.network as PluginOptions).kind, 'conv');
  assert.equal(config.data.kind, 'mnist');
  const dir = tmpDir();
  // a far smaller network and set than shipped: without the native backend, conv trains on
  // tfjs's cpu backend (about 15 images/s for the shipped size)
  const r = elbo(
    [
      'run',
      'configs/mnist/cnn-judge.yaml',
      '--runs-dir',
      dir,
      '--json',
      '--set',
      'data.max_train=400',
      '--set',
      'data.validation=100',
      '--set',
      'train.epochs=10',
      '--set',
      'train.batch_size=16',
      '--set',
      'model.network.channels=[4, 8]',
      '--set',
      'model.network.kernel=3',
    ],
    { cwd: ROOT },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<RunOutput>(r.stdout);
  assert.equal(out.status, 'FINISHED');
  assert.ok(out.metrics['test/accuracy'] > 0.5, `a CNN on 400 images should beat chance (0.1) by far: ${out.metrics['test/accuracy']}`);
  assert.ok(Number.isFinite(out.metrics['val/accuracy']));
});

test('augment with judge_run: class-kept rates per step i by an independent classifier, for the model and a compared VAE', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const base = ['data.binarize=none', 'model.likelihood=gaussian', 'loss.c1=0.01'];
  const judge = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: [
      'experiment=judge',
      'model={kind: classifier, network: {kind: mlp, hidden: [32]}}',
      // 40 epochs of 8 steps: 0.98 on both backends (10 gave 0.89-0.9x, at the threshold)
      'train.epochs=40',
      'eval=[{kind: accuracy}]',
      'data.binarize=none',
    ],
    progress: false,
  });
  assert.equal(judge.status, 'FINISHED', judge.error ?? undefined);
  assert.ok(judge.metrics['test/accuracy'] > 0.9, `judge accuracy ${judge.metrics['test/accuracy']}`);
  const vae = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: ['experiment=twin', ...base, 'train.epochs=2', 'eval=[{kind: elbo}]'],
    progress: false,
  });
  assert.equal(vae.status, 'FINISHED', vae.error ?? undefined);
  const augment = (extra: string) => `eval=[{kind: augment, per_class: 1, kept_per_class: 5, batch_size: 3${extra}}]`;
  // a stray run.json without config.yaml (not a run) sorts after the judge's run and is passed over
  fs.mkdirSync(path.join(runs, 'judge', 'zz-not-a-run'));
  fs.writeFileSync(path.join(runs, 'judge', 'zz-not-a-run', 'run.json'), '{}');
  const g = await runExperiment({
    config: cfg,
    runsDir: runs,
    // the judge as a directory of runs (its latest finished one), the twin as a run directory
    overrides: [
      'experiment=gvae',
      'model.kind=gvae',
      'loss.alpha=1',
      ...base,
      'train.epochs=6',
      augment(`, judge_run: ${path.join(runs, 'judge')}, compare_run: ${vae.runDir}`),
    ],
    progress: false,
  });
  assert.equal(g.status, 'FINISHED', g.error ?? undefined);
  const m = g.metrics;
  for (const name of ['augment_class', 'augment_judge', 'augment_compare_judge']) {
    assert.ok(m[`test/${name}_kept`] >= 0 && m[`test/${name}_kept`] <= 1, `${name}_kept: ${JSON.stringify(m)}`);
    for (let i = 0; i <= 6; i++) {
      const v = m[`test/${name}_i${i}_kept`];
      assert.ok(v >= 0 && v <= 1, `${name}_i${i}_kept = ${v}`);
      // 4 classes × 5 images, two columns (−i, +i) per step but one at i = 0: multiples of 1/40 or 1/20
      assert.ok(Math.abs(v * (i === 0 ? 20 : 40) - Math.round(v * (i === 0 ? 20 : 40))) < 1e-9, `${name}_i${i}_kept = ${v}`);
    }
  }
  // the judge recognises the decoded μ (i = 0) of the trained model better than chance (4 classes)
  assert.ok(m['test/augment_judge_i0_kept'] > 0.25, `judge on the decoded μ: ${JSON.stringify(m)}`);
  // the grid: 4 classes × 1 image, each with the twin's row beside
  assert.ok(fs.statSync(path.join(g.runDir, 'artifacts', 'augment.png')).size > 0);
  // the same run judged again gives the same rates (no randomness in augment)
  const again = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: ['experiment=gvae', 'model.kind=gvae', 'loss.alpha=1', ...base, 'train.epochs=6', augment(`, judge_run: ${judge.runDir}`)],
    progress: false,
  });
  for (let i = 0; i <= 6; i++) assert.equal(again.metrics[`test/augment_judge_i${i}_kept`], m[`test/augment_judge_i${i}_kept`]);

  // a missing judge fails before any training, saying what to do; a judge that does not classify is refused
  await assert.rejects(
    runExperiment({
      config: cfg,
      runsDir: runs,
      overrides: ['model.kind=gvae', ...base, augment(', judge_run: nowhere/at-all')],
      progress: false,
    }),
    /not a run directory nor a directory of runs .*train the judge first/,
  );
  const bad = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: ['experiment=bad', 'model.kind=gvae', ...base, 'train.epochs=1', augment(`, judge_run: ${vae.runDir}`)],
    progress: false,
  }).catch((e) => e);
  assert.match(String(bad?.message ?? bad?.error), /has no classifier/);
});
