import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { runExperiment } from '../src/experiment';
import { createRegistry } from '../src/builtins';
import { classifier, classifierModelPlugin, type ClassifierOptions } from '../src/models/classifier';
import { loadConfig } from '../src/config/load';
import { UserError } from '../src/errors';
import { Rng } from '../src/runtime/rng';
import { setTf } from '../src/runtime/tf';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { tmpDir, smallConfig, elbo, ROOT, epochLines } from './helpers';
import type { PluginOptions, Model, ModelContext, DataSet } from '../src/contracts';

const CLASSIFIER = ['model={kind: classifier, network: {kind: mlp, hidden: [32]}}', 'eval=[{kind: accuracy}]'];

/** The classifier with a spy on the labels its training steps see. */
function spyRegistry(seen: number[]) {
  const registry = createRegistry();
  registry.register(
    {
      ...classifierModelPlugin,
      name: 'spy-classifier',
      create: (o: ClassifierOptions, ctx: ModelContext) => {
        const m: Model = classifierModelPlugin.create({ ...o, kind: 'classifier' }, ctx);
        const terms = m.terms.bind(m);
        // training steps pass the labels on the device (batch.labels); evaluation does not
        m.terms = (batch, w, rng, p) => {
          if (batch.labels) seen.push(...Array.from(batch.y ?? []));
          return terms(batch, w, rng, p);
        };
        return m;
      },
    },
    'test',
  );
  return registry;
}

test('classifier: trains on the labelled rows only (an epoch is a pass over them), its loss falls, val/ and test/ accuracy', async () => {
  const dir = tmpDir();
  const seen: number[] = [];
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    progress: false,
    registry: spyRegistry(seen),
    // 350 training rows, 20 of them labelled (5 per class), batches of 5
    overrides: [
      'model={kind: spy-classifier, network: {kind: mlp, hidden: [32]}}',
      'eval=[{kind: accuracy}]',
      'data.labelled=20',
      'train.batch_size=5',
      'train.epochs=6',
      'train.optimizer.lr=0.01',
    ],
  });
  assert.equal(r.status, 'FINISHED', r.error);
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  assert.equal(rec.global_step, 6 * 4, 'an epoch is 20 labelled rows / 5 = 4 steps, not a pass over all 350 rows');
  assert.ok(seen.length > 0 && seen.every((y) => y >= 0), 'every training row has its label (no unlabelled row, y = -1, is fed)');
  const lines = epochLines(r.runDir);
  assert.equal(lines.length, 6);
  assert.ok(lines[5]['train/loss'] < 0.5 * lines[0]['train/loss'], `train/loss ${lines[0]['train/loss']} → ${lines[5]['train/loss']}`);
  for (const k of ['train/class', 'train/accuracy', 'val/class', 'val/accuracy']) assert.ok(Number.isFinite(lines[5][k]), k);
  assert.ok(lines[5]['val/accuracy'] > 0.5, `val/accuracy ${lines[5]['val/accuracy']} (4 classes, easy data)`);
  assert.ok(r.metrics['test/accuracy'] > 0.5 && Math.abs(r.metrics['test/error_pct'] - 100 * (1 - r.metrics['test/accuracy'])) < 1e-9);
});

test('classifier: without data.labelled it trains on every training row', async () => {
  const dir = tmpDir();
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    progress: false,
    overrides: [...CLASSIFIER, 'train.epochs=1', 'train.batch_size=50'],
  });
  assert.equal(r.status, 'FINISHED', r.error);
  assert.equal(JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8')).global_step, 7, '350 rows / 50');
});

test('classifier: evaluators that need a latent space are refused when the config is validated; its latent methods say why', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const registry = createRegistry();
  assert.throws(
    () => loadConfig(cfg, [CLASSIFIER[0], 'eval=[{kind: accuracy}, {kind: reconstructions}, {kind: latent-classifier}]'], registry),
    (e: unknown) =>
      e instanceof UserError &&
      /reconstructions evaluator needs a model with a latent space.*model 'classifier' has none/.test(e.message) &&
      /latent-classifier evaluator needs a model with a latent space/.test(e.message) &&
      !/accuracy evaluator/.test(e.message),
  );
  // the config's default eval (elbo, reconstructions) is refused too, before any training
  const runs = path.join(dir, 'runs');
  await assert.rejects(
    runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: [CLASSIFIER[0], 'eval=[{kind: samples}]'] }),
    /samples evaluator needs a model with a latent space/,
  );
  assert.ok(!fs.existsSync(runs), 'nothing ran');
  const v = elbo(['validate', cfg, '--set', CLASSIFIER[0], '--set', 'eval=[{kind: latent-pca}]']);
  assert.equal(v.status, 1);
  assert.match(v.stderr, /^--set eval=\[\{kind: latent-pca\}\]: the latent-pca evaluator needs a model with a latent space/m);
  // a model without a classifier is refused by the accuracy evaluator the same way
  assert.throws(
    () => loadConfig(cfg, ['eval=[{kind: accuracy}]'], registry),
    /accuracy evaluator needs a model that classifies.*model 'vae'/,
  );
});

test('classifier: the latent-space methods throw a clear error', async () => {
  await tf.setBackend('cpu');
  setTf(tf);
  const data: DataSet = {
    name: 'tiny',
    shape: [4],
    dim: 4,
    classes: 2,
    binarize: 'none',
    labelled: null,
    sha256: '',
    source: 'generated',
    val: null,
    train: { x: new Float32Array(8), y: Int32Array.from([0, 1]), n: 2 },
    test: { x: new Float32Array(8), y: Int32Array.from([0, 1]), n: 2 },
  };
  const registry = createRegistry();
  const m: Model = classifier(
    { kind: 'classifier', network: { kind: 'mlp', hidden: [3], activation: 'relu' } },
    { tf, registry, rng: new Rng(1), baseDir: '.', data: data },
  );
  assert.equal(m.latent, 0);
  assert.equal(m.trainsOn, 'labelled');
  assert.throws(
    () => m.encodeMean(tf.zeros([1, 4])),
    (e: unknown) => e instanceof UserError && /classifier model has no latent space/.test(e.message),
  );
  assert.throws(() => m.decode(tf.zeros([1, 1])), /no latent space/);
  assert.equal(m.logImportanceWeights, undefined);
  assert.deepEqual(m.classify!(tf.zeros([3, 4])).shape, [3, 2]);
});

test('configs/mnist/supervised-baseline.yaml: MLP 784-500-10 on the 100 labels, validated', () => {
  const { config } = loadConfig(path.join(ROOT, 'configs/mnist/supervised-baseline.yaml'), [], createRegistry());
  assert.equal(config.model.kind, 'classifier');
  assert.deepEqual((config.model.network as PluginOptions).hidden, [500]);
  assert.equal(config.data.kind, 'mnist');
  assert.equal(config.data.labelled, 100);
  assert.equal(config.data.validation, 10000, "Kingma's split: the same labelled rows as M1, M2 and M1+M2 for a seed");
  assert.deepEqual(
    config.eval.map((e) => e.kind),
    ['accuracy'],
  );
  const v = elbo(['validate', 'configs/mnist/supervised-baseline.yaml']);
  assert.equal(v.status, 0, v.stderr);
});
