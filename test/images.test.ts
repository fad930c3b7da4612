import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as jpeg from 'jpeg-js';
import { runExperiment } from '../src/experiment';
import { tmpDir, smallConfig, elbo, lastJson, epochLines, type RunOutput } from './helpers';
import { Rng } from '../src/runtime/rng';

test('conv networks train, and auto never picks wasm for them (no Conv2DBackpropFilter there)', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const conv = [
    'model.encoder={kind: conv, channels: [4, 8], kernel: 3}',
    'model.decoder={kind: conv, channels: [4, 8], kernel: 3, residual: true}',
  ];
  const r = await runExperiment({
    config: cfg,
    runsDir: path.join(dir, 'runs'),
    overrides: [...conv, 'train.epochs=4', 'eval=[{kind: elbo}]'],
    progress: false,
  });
  assert.equal(r.status, 'FINISHED', r.error);
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  assert.notEqual(rec.backend.name, 'wasm');
  const lines = epochLines(r.runDir);
  assert.ok(lines[3]['val/elbo'] > lines[0]['val/elbo'], `val/elbo ${lines[0]['val/elbo']} → ${lines[3]['val/elbo']}`);
  const refused = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--backend', 'wasm', ...conv.flatMap((s) => ['--set', s])]);
  assert.equal(refused.status, 1);
  assert.match(
    refused.stderr,
    /--backend: backend 'wasm' cannot train this config: network 'conv' trains only on tensorflow, cpu; use tensorflow or cpu/,
  );
});

/** CIFAR-10 binary batches in the real format: label byte + 1024 R + 1024 G + 1024 B. */
function writeCifar(dir: string, perFile: number): void {
  const rng = new Rng(5);
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  for (const f of files) {
    const b = Buffer.alloc(perFile * 3073);
    for (let r = 0; r < perFile; r++) {
      b[r * 3073] = r % 10;
      for (let p = 0; p < 3072; p++) b[r * 3073 + 1 + p] = rng.int(256);
    }
    fs.writeFileSync(path.join(dir, f), b);
  }
}

test('cifar10: reads the binary batches as 32×32×3 HWC in [0,1]; G-VAE with conv networks runs on it', () => {
  const dir = tmpDir();
  writeCifar(dir, 20);
  // red plane first in the file: pixel (0,0) red = byte 1 of the first record
  const raw = fs.readFileSync(path.join(dir, 'data_batch_1.bin'));
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(
    cfg,
    `data: {kind: cifar10, path: ., validation: 10}
model:
  kind: gvae
  latent: 8
  encoder: {kind: conv, channels: [4, 8]}
  decoder: {kind: conv, channels: [4, 8]}
loss: {c1: 0.0025, c2: 1, alpha: 20}
train: {epochs: 1, batch_size: 20}
eval: [{kind: elbo}, {kind: reconstructions, n: 4}, {kind: augment, per_class: 1}]
`,
  );
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<RunOutput>(r.stdout);
  assert.match(r.stderr, /\(90 train \/ 10 val \/ 20 test\)/);
  assert.ok(out.metrics['test/augment_class_kept'] >= 0);
  assert.ok(fs.statSync(path.join(out.runDir, 'artifacts', 'augment.png')).size > 0);
  assert.equal(raw[0], 0);
  // a file of the wrong size says what is wrong
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), Buffer.alloc(100));
  const bad = elbo(['validate', cfg]);
  assert.equal(bad.status, 0, 'validation does not read data');
  const badRun = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs')]);
  assert.match(badRun.stderr, /test_batch\.bin: not a CIFAR-10 binary batch: 100 bytes is not a multiple of 3073/);
  const missing = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--set', 'data.path=nowhere']);
  assert.match(missing.stderr, /nowhere: CIFAR-10 directory not found; download the "CIFAR-10 binary version"/);
});

test('celeba: JPEGs + attribute and partition files give 4 classes (Male × Smiling)', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'img_align_celeba'));
  const n = 12;
  const names = Array.from({ length: n }, (_, i) => `${String(i + 1).padStart(6, '0')}.jpg`);
  names.forEach((f, i) => {
    const w = 178;
    const h = 218;
    const data = Buffer.alloc(w * h * 4, 255);
    for (let p = 0; p < w * h; p++) data[p * 4] = (i * 20) % 256;
    fs.writeFileSync(path.join(dir, 'img_align_celeba', f), jpeg.encode({ data, width: w, height: h }, 90).data);
  });
  const attrs = ['5_o_Clock_Shadow', 'Male', 'Smiling'];
  fs.writeFileSync(
    path.join(dir, 'list_attr_celeba.txt'),
    `${n}\n${attrs.join(' ')}\n` + names.map((f, i) => `${f} -1 ${i % 2 ? 1 : -1} ${i % 4 >= 2 ? 1 : -1}`).join('\n') + '\n',
  );
  fs.writeFileSync(path.join(dir, 'list_eval_partition.txt'), names.map((f, i) => `${f} ${i < 8 ? 0 : 2}`).join('\n') + '\n');
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(
    cfg,
    `data: {kind: celeba, path: ., size: 16, validation: 0}
model: {kind: gvae, latent: 4, encoder: {kind: conv, channels: [4, 8]}, decoder: {kind: conv, channels: [4, 8]}}
loss: {alpha: 1}
train: {epochs: 1, batch_size: 4}
eval: [{kind: elbo}]
`,
  );
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /\(8 train \/ 0 val \/ 4 test\)/);
  assert.match(r.stderr, /classes in train: 0:2 \(25\.0%\) 1:2 \(25\.0%\) 2:2 \(25\.0%\) 3:2 \(25\.0%\)/);
  const bad = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--set', 'data.attributes=[Smilling]']);
  assert.match(bad.stderr, /data\.attributes: attribute 'Smilling' is not in list_attr_celeba\.txt; did you mean 'Smiling'/);
});
