import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/runtime/backend';
import { getTf } from '../src/runtime/tf';
import { spikeSlabPrior } from '../src/priors/spike-slab';
import { maxAbsDiff, withClasses } from '../src/export/tfjs';
import { serveStatic } from '../src/util/static-server';
import { Rng } from '../src/runtime/rng';
import { spawn } from 'child_process';
import { tmpDir, smallConfig, elbo, lastJson, BIN, type RunOutput } from './helpers';
import { trainAndExport, trainAndExportConv, elboOwn } from './tfjs-export-helpers';
import type { CheckpointManifest } from '../src/track/checkpoint';

test.before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
});

/**
 * Load the export over HTTP with tfjs in Node, as a browser would (tf.loadLayersModel on
 * model.json), and run its decoder on prior draws and its encoder + decoder on the shipped
 * test images: both equal elbo's own decode and reconstruct of the trained run.
 */
async function checkInNode(runDir: string, exportDir: string): Promise<{ decode: number; reconstruct: number }> {
  const server = await serveStatic(exportDir);
  try {
    const card = JSON.parse(fs.readFileSync(path.join(exportDir, 'card.json'), 'utf8'));
    // the JavaScript tfjs of the union package: on elbo's backend when they share an engine, else cpu
    if (tf.engine() !== getTf().engine()) await tf.setBackend('cpu');
    const encoder = await tf.loadLayersModel(server.url + card.files.encoder);
    const decoder = await tf.loadLayersModel(server.url + card.files.decoder);
    // class-conditional models (M2): q(y|x) picks the class the encoder and decoder read
    const C = card.model.classes ?? 0;
    const classifier = C ? await tf.loadLayersModel(server.url + card.files.classifier) : null;
    const images = new Float32Array(await (await fetch(server.url + card.files.images)).arrayBuffer());
    const n = card.images.count;
    const K = card.model.latent;
    const D = card.model.dim;
    assert.equal(images.length, n * D);
    const run = (m: tf.LayersModel, values: Float32Array, rows: number) =>
      tf.tidy(() => (m.predict(tf.tensor2d(values, [rows, values.length / rows])) as tf.Tensor).dataSync() as Float32Array);
    const z = Float32Array.from(new Rng(3).normals(5 * K));
    const own = await elboOwn(runDir, z, 5, images, n);
    const decoded = run(
      decoder,
      withClasses(
        z,
        5,
        [0, 1, 2, 3, 4].map((i) => (C ? i % C : 0)),
        C,
      ),
      5,
    );
    let ys = new Array<number>(n).fill(0);
    if (classifier) {
      const q = run(classifier, images, n);
      ys = ys.map((_, i) => Array.from(q.subarray(i * C, (i + 1) * C)).reduce((best, v, c, row) => (v > row[best] ? c : best), 0));
      assert.ok(new Set(ys).size > 1, `q(y|x) picks more than one class: ${ys}`);
    }
    const means = run(encoder, withClasses(images, n, ys, C), n);
    const reconstructed = run(decoder, withClasses(means, n, ys, C), n);
    const d = {
      decode: maxAbsDiff(own.decode, decoded),
      reconstruct: maxAbsDiff(own.reconstruct, reconstructed),
      encode: maxAbsDiff(own.encode, means),
    };
    // float tolerance: the same kernels give 0; another backend (native) rounds differently
    assert.ok(d.decode < 1e-5 && d.reconstruct < 1e-5 && d.encode < 1e-4, `exported vs elbo: ${JSON.stringify(d)}`);
    // the images are not constant: a broken network that outputs 0.5 everywhere would not pass
    assert.ok(Math.max(...own.decode) - Math.min(...own.decode) > 0.1, 'decoded images vary');
    [encoder, decoder, classifier].forEach((m) => m?.dispose());
    return d;
  } finally {
    await server.close();
  }
}

/** An exported model directory as tf.io.fromMemory takes it. */
async function readExport(dir: string): Promise<tf.io.ModelArtifacts> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(dir, 'weights.bin'));
  return {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest[0].weights,
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
  };
}

test("export tfjs: an MLP VAE (tanh encoder, leaky-ReLU decoder) loads in Node with tf.loadLayersModel and decodes as elbo does, with the selected epoch's parameters; the card carries config, data hash, metrics and published numbers", async () => {
  const dir = tmpDir('elbo-export-');
  const { runDir, exportDir, card } = trainAndExport(
    smallConfig(dir, 'published:\n  - { metric: test/elbo, value: -40, source: "made up for the test" }\n'),
    // train.select with mode min keeps the worst val/elbo (an early epoch): the export must take those parameters
    [
      '--set',
      'model.encoder.activation=tanh',
      '--set',
      'model.decoder.activation=leakyrelu',
      '--set',
      'train.select={metric: val/elbo, mode: min}',
    ],
  );
  const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(card.format, 'elbo-tfjs');
  assert.equal(card.run.run_id, record.run_id);
  assert.equal(card.run.config_sha256, record.config_sha256);
  assert.equal(card.data.sha256, record.data.sha256);
  assert.deepEqual(card.data.shape, [8, 8, 1]);
  assert.deepEqual(card.metrics, record.metrics);
  assert.equal(card.published.length, 1);
  assert.equal(card.published[0].value, -40);
  assert.equal(card.published[0].measured, record.metrics['test/elbo']);
  assert.equal(card.config.model.decoder.activation, 'leakyrelu');
  assert.deepEqual(card.model.prior, { kind: 'normal' });
  assert.equal(card.model.output, 'sigmoid');
  assert.equal(card.images.count, 16);
  assert.equal(card.images.labels!.length, 16);
  for (const f of [
    'index.html',
    'elbo-page.js',
    'tf.min.js',
    'config.yaml',
    'encoder/model.json',
    'encoder/weights.bin',
    'decoder/weights.bin',
  ]) {
    assert.ok(fs.existsSync(path.join(exportDir, f)), `${f} in the export`);
  }
  // the page brings the same tfjs version that wrote the models
  assert.ok(
    fs.readFileSync(path.join(exportDir, 'tf.min.js'), 'utf8').includes(`"${tf.version.tfjs}"`),
    `tf.min.js is tfjs ${tf.version.tfjs}`,
  );
  assert.equal(card.tfjs_version, tf.version.tfjs);
  // the parameters the test metrics were measured on: the selected epoch's, not the last
  assert.deepEqual(card.run.evaluated_on, record.evaluated_on);
  assert.equal(record.evaluated_on.checkpoint, 'best');
  assert.ok(record.evaluated_on.epoch < record.epochs_completed, `selected epoch ${record.evaluated_on.epoch}`);
  const kernel = (dir: string) => {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const t = m.tensors.find((t: CheckpointManifest['tensors'][number]) => t.name === 'model/decoder/dense0/w');
    return new Float32Array(fs.readFileSync(path.join(dir, 'weights.bin')).buffer.slice(0)).slice(t.offset, t.offset + t.length);
  };
  const decoderModel = await tf.loadLayersModel(tf.io.fromMemory(await readExport(path.join(exportDir, 'decoder'))));
  const exported = decoderModel.getLayer('dense0').getWeights()[0].dataSync();
  const ckpt = path.join(runDir, 'checkpoints');
  assert.deepEqual(Array.from(exported), Array.from(kernel(path.join(ckpt, 'best', `epoch-000${record.evaluated_on.epoch}`))));
  assert.notDeepEqual(Array.from(exported), Array.from(kernel(path.join(ckpt, `epoch-000${record.epochs_completed}`))));
  decoderModel.dispose();
  const d = await checkInNode(runDir, exportDir);
  assert.ok(card.check.decode_max_abs_diff < 1e-5, `checked at export: ${JSON.stringify(card.check)}`);
  console.log(`# mlp export: max |Δ| decode ${d.decode}, reconstruct ${d.reconstruct}`);
});

test('export tfjs: a conv VAE with residual blocks (Gaussian likelihood) decodes in Node as elbo does', async () => {
  const dir = tmpDir('elbo-export-');
  const { runDir, exportDir, card } = trainAndExportConv(dir);
  assert.equal(card.model.output, 'identity');
  const topology = JSON.parse(fs.readFileSync(path.join(exportDir, 'decoder', 'model.json'), 'utf8')).modelTopology;
  const classes = topology.config.layers.map((l: { class_name: string }) => l.class_name);
  assert.ok(classes.includes('Conv2DTranspose') && classes.includes('Add'), `decoder layers: ${classes.join(', ')}`);
  const d = await checkInNode(runDir, exportDir);
  console.log(`# conv export: max |Δ| decode ${d.decode}, reconstruct ${d.reconstruct}`);
});

test('export tfjs: M2 (class-conditional decoder, Gaussian likelihood with learned variance) exports its classifier too and decodes in Node as elbo does', async () => {
  const dir = tmpDir('elbo-export-');
  const { runDir, exportDir, card } = trainAndExport(smallConfig(dir), [
    '--set',
    'model={kind: m2, latent: 3, likelihood: gaussian_learned, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}}',
    '--set',
    'eval=[{kind: elbo}, {kind: accuracy}]',
  ]);
  assert.equal(card.model.classes, 4);
  assert.equal(card.model.output, 'gaussian-mean');
  assert.equal(card.files.classifier, 'classifier/model.json');
  const d = await checkInNode(runDir, exportDir);
  console.log(`# m2 export: max |Δ| decode ${d.decode}, reconstruct ${d.reconstruct}`);
});

test("export: a model without an encoder–decoder pair, an unfinished run, a bad flag and spike-slab's mean selected are refused with the reason", () => {
  const dir = tmpDir('elbo-export-');
  const config = smallConfig(dir);
  const run = elbo([
    'run',
    config,
    '--runs-dir',
    path.join(dir, 'runs'),
    '--json',
    '-q',
    '--set',
    'model={kind: classifier, network: {kind: mlp, hidden: [8]}}',
    '--set',
    'train.epochs=1',
    '--set',
    'eval=[{kind: accuracy}]',
  ]);
  assert.equal(run.status, 0, run.stderr);
  const runDir = lastJson<RunOutput>(run.stdout).runDir;
  const r = elbo(['export', runDir, '--format', 'tfjs']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /model 'classifier' has no encoder x → z and decoder z → x to export/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  // a run that did not finish
  const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  fs.writeFileSync(path.join(runDir, 'run.json'), JSON.stringify({ ...record, status: 'FAILED' }));
  const u = elbo(['export', runDir]);
  assert.equal(u.status, 1);
  assert.match(u.stderr, /is FAILED, not FINISHED/);
  const missing = elbo(['export', path.join(dir, 'nowhere')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^RUN: not a run directory nor a directory of runs/);
  const images = elbo(['export', runDir, '--images', '0']);
  assert.equal(images.status, 1);
  assert.equal(images.stderr.trim(), '--images: must be a whole number ≥ 1 (got 0)');
  const format = elbo(['export', runDir, '--format', 'onnx']);
  assert.equal(format.status, 2);
  assert.match(format.stderr, /--format/);
  // a spike-and-slab prior whose mean is a threshold says why it has no exported form
  const constant = () => 1;
  const selected = spikeSlabPrior(
    getTf(),
    { kind: 'spike-slab', alpha: 0.5, c: 50, warmup: 1, mean: 'selected', logvar_min: -30, logvar_max: 20 },
    { c: constant, warmup: constant },
  );
  assert.match(String(selected.exported), /mean 'selected'.*threshold.*mean: expected or slab/);
});

test('elbo serve serves a directory on 127.0.0.1, refuses paths outside it, and stops on Ctrl-C', async () => {
  const dir = tmpDir('elbo-serve-');
  fs.mkdirSync(path.join(dir, 'site'));
  fs.writeFileSync(path.join(dir, 'site', 'index.html'), '<p>hi</p>');
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'no');
  const s = await serveStatic(path.join(dir, 'site'));
  try {
    const index = await fetch(s.url);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(await index.text(), '<p>hi</p>');
    // a path that climbs out stays inside (normalised), so it is not found
    const out = await fetch(s.url + '..%2fsecret.txt');
    assert.equal(out.status, 404);
    assert.notEqual(await out.text(), 'no');
    assert.equal((await fetch(s.url + 'nothing.js')).status, 404);
  } finally {
    await s.close();
  }
  // the command: prints its address, serves, and exits 0 on SIGINT
  const proc = spawn(process.execPath, [BIN, 'serve', path.join(dir, 'site'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout.on('data', (d) => {
        out += d;
        const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]);
      });
      proc.once('exit', (code) => reject(new Error(`elbo serve exited ${code}: ${out}`)));
    });
    assert.equal(await (await fetch(url)).text(), '<p>hi</p>');
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGINT');
    assert.equal(await exited, 0);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
});
