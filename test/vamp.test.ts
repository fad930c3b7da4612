import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { getTf } from '../src/runtime/tf';
import { Rng } from '../src/runtime/rng';
import { createRegistry } from '../src/builtins';
import { loadConfig } from '../src/config/load';
import { runExperiment } from '../src/experiment';
import type { CheckpointManifest } from '../src/track/checkpoint';
import { ROOT, tmpDir, smallConfig, tinyDataSet } from './helpers';
import type { Network, Model } from '../src/contracts';

test("vamp prior: log p(z) is the mean of q(z|u_j) over the pseudo-inputs, through the model's own encoder", async () => {
  const tf = getTf();
  const registry = createRegistry();
  const K = 3;
  const J = 4;
  const D = 6;
  // a fixed linear encoder x → [μ, log σ²]
  const W = tf.tensor2d(new Rng(1).normals(D * 2 * K), [D, 2 * K]);
  const encoder: Network = { params: new Map(), apply: (x) => tf.matMul(x, W) };
  const prior = registry.create(
    'prior',
    { kind: 'vamp', components: J, init_mean: 0.5, init_std: 0.3 },
    { tf, registry, rng: new Rng(2), baseDir: '.', latent: K, inDim: D, encoder: () => encoder },
  );
  const u = prior.params!.get('pseudo_inputs')!;
  assert.deepEqual(u.shape, [J, D]);
  // by hand: log (1/J) Σ_j N(z; μ(u_j), σ²(u_j)), u clipped to [0, 1] as the data are
  const encU = tf.matMul(tf.clipByValue(u, 0, 1), W).arraySync() as number[][];
  const z = new Rng(3).normals(5 * K);
  const fast = prior.logPrior!(tf.tensor2d(z, [5, K])).dataSync();
  for (let b = 0; b < 5; b++) {
    const logs = encU.map((e) => {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const v = Math.exp(e[K + k]);
        s += -0.5 * ((z[b * K + k] - e[k]) ** 2 / v + e[K + k] + Math.log(2 * Math.PI));
      }
      return s;
    });
    const m = Math.max(...logs);
    const byHand = m + Math.log(logs.reduce((acc, l) => acc + Math.exp(l - m), 0) / J);
    assert.ok(Math.abs(fast[b] - byHand) < 1e-3 * Math.max(1, Math.abs(byHand)), `row ${b}: ${fast[b]} vs ${byHand}`);
  }
  // KL is estimated with the sampled z: log q(z|x) − log p(z); without z it says so
  const enc = tf.tensor2d(new Rng(6).normals(2 * 2 * K), [2, 2 * K]);
  const zs = prior.sample(enc, K, new Rng(7), { epoch: 0, step: 0, fraction: 0 });
  const kl = prior.kl(enc, K, { epoch: 0, step: 0, fraction: 0 }, zs).dataSync();
  const expected = tf.sub(prior.logPosterior!(zs, enc, K), prior.logPrior!(zs)).dataSync();
  assert.deepEqual(Array.from(kl), Array.from(expected));
  assert.throws(() => prior.kl(enc, K, { epoch: 0, step: 0, fraction: 0 }), /must pass it to prior\.kl/);
  assert.deepEqual(prior.sampleFromPrior(7, K, new Rng(5)).shape, [7, K]);
  // in a model, the pseudo-inputs are parameters (trained and checkpointed), and importance weights work
  const data = tinyDataSet({ shape: [D] });
  const model: Model = await registry.create(
    'model',
    {
      kind: 'vae',
      latent: K,
      prior: { kind: 'vamp', components: J },
      encoder: { kind: 'mlp', hidden: [5] },
      decoder: { kind: 'mlp', hidden: [5] },
    },
    { tf, registry, rng: new Rng(2), baseDir: '.', data },
  );
  assert.deepEqual(model.params.get('prior/pseudo_inputs')!.shape, [J, D]);
  const lw = model.logImportanceWeights!(tf.tensor2d(data.test.x.subarray(0, 2 * D), [2, D]), 3, new Rng(4));
  assert.ok((lw.dataSync() as Float32Array).every(Number.isFinite));
});

test('a VAE with the vamp prior trains from a config: its loss falls, its pseudo-inputs move, iwae evaluates it', async () => {
  const dir = tmpDir();
  const result = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    overrides: ['model.prior={kind: vamp, components: 10}', 'train.epochs=3'],
    progress: false,
  });
  assert.equal(result.status, 'FINISHED', result.error);
  const lines = fs
    .readFileSync(path.join(result.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const losses = lines.filter((l) => l['train/loss'] !== undefined).map((l) => l['train/loss']);
  assert.ok(losses.at(-1) < losses[0], `train/loss ${losses.join(' → ')}`);
  assert.ok(Number.isFinite(result.metrics['test/log_likelihood_k8']));
  // the bound holds on average: IWAE (k = 8) ≥ the ELBO
  assert.ok(result.metrics['test/log_likelihood_k8'] > result.metrics['test/elbo'], JSON.stringify(result.metrics));
  // the pseudo-inputs are checkpointed with the model, and training moves them
  const pseudo = (ck: string) => {
    const dir = path.join(result.runDir, 'checkpoints', ck);
    const manifest: CheckpointManifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const t = manifest.tensors.find((e) => e.name === 'model/prior/pseudo_inputs')!;
    const buf = fs.readFileSync(path.join(dir, 'weights.bin'));
    return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4).slice(t.offset, t.offset + t.length);
  };
  const [a, b] = fs
    .readdirSync(path.join(result.runDir, 'checkpoints'))
    .filter((d) => d.startsWith('epoch-'))
    .sort()
    .slice(-2);
  const [ua, ub] = [pseudo(a), pseudo(b)];
  assert.equal(ua.length, 10 * 64);
  assert.ok(
    ua.some((v, i) => Math.abs(v - ub[i]) > 1e-6),
    'the pseudo-inputs did not change between epochs',
  );
});

test('configs/mnist/vae-vamp.yaml is configs/mnist/vae.yaml with the vamp prior', () => {
  const registry = createRegistry();
  const { config } = loadConfig(path.join(ROOT, 'configs/mnist/vae-vamp.yaml'), [], registry);
  const { config: plain } = loadConfig(path.join(ROOT, 'configs/mnist/vae.yaml'), [], registry);
  assert.deepEqual((config.model.prior as { kind: string }).kind, 'vamp');
  assert.deepEqual({ ...config.model, prior: null }, { ...plain.model, prior: null });
  assert.deepEqual(config.train, plain.train);
  assert.deepEqual(config.data, plain.data);
});
