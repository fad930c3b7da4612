import { test } from 'node:test';
import type { M1Block } from '../src/models/m1m2';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { runExperiment } from '../src/experiment';
import { createRegistry } from '../src/builtins';
import { loadConfig } from '../src/config/load';
import { UserError } from '../src/errors';
import { tmpDir, smallConfig, ROOT, elbo } from './helpers';

/** M1+M2 with a nested, tiny M1 (a VAE, 1 epoch on 200 rows). */
function nested(m1Epochs: number, extra: string[] = []): string[] {
  return [
    `model={kind: m1m2, m1: {model: {kind: vae, latent: 6, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}}, train: {epochs: ${m1Epochs}, batch_size: 50}}, min_std: 0.01, latent: 3, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}, alpha_expression: "0.1*N_total/N_labelled"}`,
    'data.max_train=200',
    'data.labelled=20',
    'train.labelled_per_batch=10',
    'train.epochs=1',
    'eval=[{kind: accuracy}]',
    ...extra,
  ];
}

const record = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
/** The M1 run directories in the store (lock files aside). */
const m1Runs = (runs: string) =>
  fs.existsSync(path.join(runs, 'small-m1'))
    ? fs
        .readdirSync(path.join(runs, 'small-m1'))
        .filter((n) => fs.existsSync(path.join(runs, 'small-m1', n, 'run.json')))
        .sort()
    : [];

test('m1m2 with a nested M1: trained first as its own run, reused by config hash, retrained when the M1 block changes', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const run = (overrides: string[]) => runExperiment({ config: cfg, runsDir: runs, progress: false, overrides });

  // 1. no M1 yet: it is trained first, as runs/small-m1/<id>, and recorded
  const a = await run(nested(1));
  assert.equal(a.status, 'FINISHED', a.error);
  assert.ok(a.metrics['test/accuracy'] >= 0 && a.metrics['test/accuracy'] <= 1);
  assert.equal(m1Runs(runs).length, 1);
  const depA = record(a.runDir).depends_on.m1;
  assert.equal(depA.how, 'trained');
  assert.equal(path.dirname(depA.run_dir), path.join(runs, 'small-m1'));
  assert.equal(depA.run_id, m1Runs(runs)[0]);
  const m1Rec = record(depA.run_dir);
  assert.equal(m1Rec.status, 'FINISHED');
  assert.equal(m1Rec.config_sha256, depA.config_sha256);
  assert.equal(m1Rec.seed, 1, "the outer run's seed");
  const m1Cfg = parse(fs.readFileSync(path.join(depA.run_dir, 'config.yaml'), 'utf8'));
  assert.equal(m1Cfg.model.kind, 'vae');
  assert.equal(m1Cfg.train.epochs, 1);
  assert.equal(m1Cfg.data.max_train, 200);
  assert.equal(m1Cfg.data.labelled, undefined, 'M1 reads no labels: its config leaves data.labelled out');

  // 2. the same M1 block (and another N, with the validation images as unlabelled rows, which
  // the M1 leaves out as it leaves out the labels): reused, nothing trained, no new M1 run
  const b = await run(nested(1, ['data.labelled=40', 'data.validation_as_unlabelled=true']));
  assert.equal(b.status, 'FINISHED', b.error);
  const depB = record(b.runDir).depends_on.m1;
  assert.equal(depB.how, 'reused');
  assert.equal(depB.run_id, depA.run_id);
  assert.equal(record(b.runDir).data.train, 250, '200 rows (max_train) and the 50 validation images');
  assert.deepEqual(m1Runs(runs), [depA.run_id]);
  assert.equal(record(depA.run_dir).end_time, m1Rec.end_time, 'the M1 run is untouched');
  const shown = elbo(['runs', 'show', b.runDir]);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(
    shown.stdout.replace(/\n\s+/g, ' '),
    new RegExp(`^uses m1 +run ${depA.run_id} \\(reused\\), \\S*small-m1/${depA.run_id}$`, 'm'),
  );

  // 3. a changed M1 block (or seed) means another M1: trained anew
  const c = await run(nested(2));
  assert.equal(c.status, 'FINISHED', c.error);
  const depC = record(c.runDir).depends_on.m1;
  assert.equal(depC.how, 'trained');
  assert.notEqual(depC.run_id, depA.run_id);
  assert.notEqual(depC.config_sha256, depA.config_sha256);
  assert.equal(m1Runs(runs).length, 2);
  const d = await runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: nested(1), seed: 4 });
  assert.equal(record(d.runDir).depends_on.m1.how, 'trained');
  assert.equal(m1Runs(runs).length, 3);

  // 4. an M1 that did not finish is resumed, not started again
  const m1C = record(depC.run_dir);
  fs.writeFileSync(path.join(depC.run_dir, 'run.json'), JSON.stringify({ ...m1C, status: 'KILLED' }));
  const e = await run(nested(2));
  assert.equal(e.status, 'FINISHED', e.error);
  const depE = record(e.runDir).depends_on.m1;
  assert.equal(depE.how, 'resumed');
  assert.equal(depE.run_id, depC.run_id);
  assert.equal(record(depC.run_dir).status, 'FINISHED');
  assert.equal(m1Runs(runs).length, 3);
  assert.ok(!fs.readdirSync(path.join(runs, 'small-m1')).some((n) => n.startsWith('.lock')), 'locks are released');

  // 5. the same M1+M2 with the finished M1 named by m1_run still works, recorded as given
  const f = await run([
    ...nested(1).slice(1),
    `model={kind: m1m2, m1_run: ${JSON.stringify(depA.run_dir)}, min_std: 0.01, latent: 3, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}}`,
  ]);
  assert.equal(f.status, 'FINISHED', f.error);
  assert.deepEqual(record(f.runDir).depends_on.m1, { ...depA, how: 'given' });
});

test('m1m2: a nested M1 block is validated with the config; m1 and m1_run together are refused', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const registry = createRegistry();
  assert.throws(
    () => loadConfig(cfg, [...nested(1), 'model.m1.train.epoch=3'], registry),
    /unknown key 'epoch' in model\.m1\.train; did you mean 'epochs'/,
  );
  assert.throws(() => loadConfig(cfg, [...nested(1), 'model.m1.model.kind=vea'], registry), /unknown model 'vea'/);
  // both, or neither, is refused when the config is validated, before anything trains
  assert.throws(
    () => loadConfig(cfg, [...nested(1), 'model.m1_run=somewhere'], registry),
    /--set model\.m1_run=somewhere: give the M1 either as model\.m1/,
  );
  assert.throws(
    () => loadConfig(path.join(ROOT, 'configs/mnist/m1m2.yaml'), ['~model.m1'], registry),
    /--set ~model\.m1: m1m2 needs an M1/,
  );
  const { config } = loadConfig(cfg, nested(1), registry);
  const m1Block = config.model.m1 as M1Block;
  assert.equal(m1Block.train.batch_size, 50);
  assert.equal(m1Block.train.log_every, 25, "the M1's train block gets the top-level train defaults");
  assert.deepEqual(m1Block.eval, []);
  const runs = path.join(dir, 'runs');
  await assert.rejects(
    runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: [...nested(1), 'model.m1_run=somewhere'] }),
    (e: unknown) => e instanceof UserError && /either as model\.m1 .* or as model\.m1_run/.test(e.message),
  );
  await assert.rejects(
    runExperiment({ config: cfg, runsDir: runs, progress: false, overrides: [...nested(1), 'model.m1.model={kind: m2}'] }),
    (e: unknown) => e instanceof UserError && e.where === 'model.m1.model' && /must be an m1 or vae model.*not 'm2'/.test(e.message),
  );
  assert.deepEqual(
    fs.existsSync(path.join(runs, 'small-m1')) ? fs.readdirSync(path.join(runs, 'small-m1')) : [],
    [],
    'nothing was trained',
  );
});

test('configs/mnist/m1m2.yaml describes its M1 as configs/mnist/m1.yaml trains it', () => {
  const registry = createRegistry();
  const { config } = loadConfig(path.join(ROOT, 'configs/mnist/m1m2.yaml'), [], registry);
  const { config: m1 } = loadConfig(path.join(ROOT, 'configs/mnist/m1.yaml'), [], registry);
  assert.equal(config.model.m1_run, undefined);
  assert.deepEqual((config.model.m1 as M1Block).model, m1.model);
  assert.deepEqual((config.model.m1 as M1Block).train, m1.train);
  assert.deepEqual(config.data, m1.data, 'the same data (and labelled subset)');
});
