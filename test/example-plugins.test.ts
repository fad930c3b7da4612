import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { runExperiment } from '../src/experiment';
import { ROOT, tmpDir, elbo } from './helpers';

/**
 * The third-party plugins in plugins/ (a prior, a model with a new loss weight, a data set),
 * written from docs/plugins.md alone and loaded as a user's would be, trained together.
 */
function config(dir: string, l1: string): string {
  const file = path.join(dir, `c-${l1.replace(/\W/g, '')}.yaml`);
  const p = (n: string) => path.join(ROOT, 'plugins', n);
  fs.writeFileSync(
    file,
    `experiment: examples
seed: 3
plugins: [${p('laplace-prior')}, ${p('l1-vae')}, ${p('bars')}]
data: { kind: bars, train: 400, test: 100 }
model: { kind: l1-vae, latent: 4, prior: { kind: laplace, scale: 1 }, encoder: { kind: mlp, hidden: [32] }, decoder: { kind: mlp, hidden: [32] } }
loss: { l1_mu: ${l1} }
train: { epochs: 3, batch_size: 25, optimizer: { kind: adam, lr: 0.01 } }
eval:
  - kind: elbo
`,
  );
  return file;
}

test('the example prior, model and data set from plugins/ train together; the new weight is set, scheduled and logged by name', async () => {
  const dir = tmpDir();
  const runs = path.join(dir, 'runs');
  const ramp = await runExperiment({
    config: config(dir, '{kind: linear, from: 0, to: 1, start_epoch: 0, end_epoch: 3}'),
    runsDir: runs,
    progress: false,
  });
  assert.equal(ramp.status, 'FINISHED', ramp.error);
  const lines = fs
    .readFileSync(path.join(ramp.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l['train/loss'] !== undefined);
  assert.equal(lines.length, 3);
  // the model's own weight, a schedule like any other: its value at the last of the 16 steps of each epoch
  lines.forEach((l, e) =>
    assert.ok(Math.abs(l['weight/l1_mu'] - (e + 15 / 16) / 3) < 1e-9, `epoch ${e + 1}: weight/l1_mu ${l['weight/l1_mu']}`),
  );
  assert.ok(
    lines.every((l) => Number.isFinite(l['train/l1'])),
    'the model logs its own term',
  );
  // the third-party data set went through the run record
  const record = JSON.parse(fs.readFileSync(path.join(ramp.runDir, 'run.json'), 'utf8'));
  assert.equal(record.data.name, 'bars');
  assert.equal(record.data.train, 400);
  // training helps: the ELBO on the training rows rises over the epochs
  assert.ok(lines[2]['train/elbo'] > lines[0]['train/elbo'], lines.map((l) => l['train/elbo']).join(' → '));
  // the weight does what it says: a large l1_mu gives smaller posterior means than none
  const none = await runExperiment({ config: config(dir, '0'), runsDir: runs, progress: false });
  const strong = await runExperiment({ config: config(dir, '3'), runsDir: runs, progress: false });
  assert.ok(
    strong.metrics['test/l1'] < 0.5 * none.metrics['test/l1'],
    `mean |μ|: ${strong.metrics['test/l1']} with l1_mu 3, ${none.metrics['test/l1']} without`,
  );
  // the third-party prior in the built-in VAE: its density gives importance weights (iwae ≥ elbo on average)
  const vae = await runExperiment({
    config: config(dir, '0'),
    runsDir: runs,
    progress: false,
    overrides: ['model={kind: vae, latent: 4, prior: {kind: laplace}}', 'eval=[{kind: elbo}, {kind: iwae, k: 8}]'],
  });
  assert.equal(vae.status, 'FINISHED', vae.error);
  assert.ok(vae.metrics['test/log_likelihood_k8'] > vae.metrics['test/elbo'], JSON.stringify(vae.metrics));
});

test('the example plugins are listed and validated like built-ins', () => {
  const dir = tmpDir();
  const file = config(dir, '0.1');
  const list = elbo(['plugins', 'model', '--config', file]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /l1-vae\s+VAE with an L1 penalty/);
  const bad = elbo(['validate', file, '--set', 'data.noise=0.9']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /data\.noise must be <= 0\.5/);
});

test("docs/plugins.md's worked model example, as the page shows it, trains: built with ctx.latentParts, with a scheduled spike-slab prior", async () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'plugins.md'), 'utf8');
  const at = doc.indexOf('**model** (`plugins/l1-vae`)');
  assert.ok(at >= 0, 'docs/plugins.md has the model example');
  const block = /```js\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(block, 'the model example is a js block');
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'doc-model.js'), block[1]);
  const file = path.join(dir, 'doc.yaml');
  fs.writeFileSync(
    file,
    `experiment: doc-example
seed: 5
plugins: [./doc-model.js, ${path.join(ROOT, 'plugins', 'bars')}]
data: { kind: bars, train: 200, test: 50 }
model: { kind: l1-vae, latent: 4, prior: { kind: spike-slab, c: { kind: linear, from: 50, to: 200, end_epoch: 2 } }, encoder: { kind: mlp, hidden: [16] }, decoder: { kind: mlp, hidden: [16] } }
loss: { l1_mu: 0.1 }
train: { epochs: 2, batch_size: 25 }
eval: [{ kind: elbo }, { kind: reconstructions, n: 4 }]
`,
  );
  const r = await runExperiment({ config: file, runsDir: path.join(dir, 'runs'), progress: false });
  assert.equal(r.status, 'FINISHED', r.error);
  for (const k of ['train/l1', 'test/elbo', 'test/l1']) assert.ok(Number.isFinite(r.metrics[k]), `${k}: ${JSON.stringify(r.metrics)}`);
});
