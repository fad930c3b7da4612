/**
 * The exported page (web/index.html + web/elbo-page.js, copied by `elbo export --format
 * tfjs`) in a real headless Chromium: it loads the models with the tf.min.js shipped next to
 * it, samples, reconstructs and interpolates, and every image it decodes equals elbo's own
 * forward pass of the trained run to float tolerance.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { selectBackend } from '../src/runtime/backend';
import { maxAbsDiff } from '../src/export/tfjs';
import { serveStatic } from '../src/util/static-server';
import { Chromium } from './chromium';
import { tmpDir, smallConfig } from './helpers';
import { trainAndExport, elboOwn, type PrintedCard } from './tfjs-export-helpers';

let browser: Chromium;

before(async () => {
  await selectBackend('auto'); // ELBO_BACKEND picks it in the test runs
  browser = await Chromium.launch();
});
after(async () => {
  await browser?.close();
});

/** What the page writes with ?dump (web/elbo-page.js): every number it computed. */
interface PageDump {
  backend: string;
  samples: { seed: number; n: number; z: number[]; x: number[] };
  reconstructions: { n: number; x: number[]; ys: number[] | null; xhat: number[] };
  interpolation: { a: number; b: number; steps: number; z: number[]; ys: number[] | null; x: number[] };
}

/**
 * Open the export's page in Chromium with every number it computed dumped, and check: no
 * console errors, only the export's own files requested, the card shown, and samples,
 * reconstructions and interpolation equal to elbo's own forward passes.
 */
async function checkPage(runDir: string, exportDir: string, card: PrintedCard, dir: string): Promise<PageDump> {
  const server = await serveStatic(exportDir);
  let page;
  try {
    page = await browser.render(`${server.url}index.html?dump`, {
      waitFor: "document.body.dataset.state === 'ready' || document.body.dataset.state === 'error'",
      timeoutMs: 60_000,
    });
  } finally {
    await server.close();
  }
  const shot = path.join(dir, 'page.png');
  fs.writeFileSync(shot, page.screenshotPng);
  console.log(`# screenshot: ${shot}`);
  assert.deepEqual(page.consoleErrors, [], 'no console errors');
  assert.doesNotMatch(page.text, /error:/);
  assert.match(page.text, new RegExp(`TensorFlow.js ${card.tfjs_version.replace(/\./g, '\\.')} on \\w+`));
  assert.match(page.text, /Samples from the prior/);
  assert.match(page.text, new RegExp(card.data.sha256), 'the model card shows the data hash');
  // offline: every request goes to the export's own server
  const files = [
    'tf.min.js',
    'card.json',
    'images.bin',
    ...['encoder', 'decoder', ...(card.model.classes ? ['classifier'] : [])].flatMap((m) => [`${m}/model.json`, `${m}/weights.bin`]),
  ];
  for (const u of page.requests) assert.ok(u.startsWith(server.url), `request outside the export: ${u}`);
  for (const f of files) assert.ok(page.requests.includes(server.url + f), `the page loads ${f}`);
  const { width, height } = PNG.sync.read(page.screenshotPng);
  assert.ok(width >= 600 && height >= 400, `screenshot ${width}×${height}`);

  const line = page.text.split('\n').find((l) => l.startsWith('{"backend"'));
  assert.ok(line, 'the page dumped its numbers');
  const dump: PageDump = JSON.parse(line!);
  const K = card.model.latent;
  const D = card.model.dim;
  const images = new Float32Array(fs.readFileSync(path.join(exportDir, 'images.bin')).buffer.slice(0));
  // WebGL computes in its own precision; the cpu and wasm backends as elbo does
  const tol = dump.backend === 'webgl' ? 1e-4 : 1e-5;

  const s = dump.samples;
  assert.equal(s.z.length, s.n * K);
  const own = await elboOwn(runDir, Float32Array.from(s.z), s.n, images, card.images.count);
  const dSamples = maxAbsDiff(own.decode, s.x);
  assert.ok(dSamples < tol, `samples: max |Δ| ${dSamples} (${dump.backend})`);
  assert.ok(Math.max(...s.x) - Math.min(...s.x) > 0.1, 'the samples are images, not a constant');

  const r = dump.reconstructions;
  assert.deepEqual(r.x, Array.from(images.subarray(0, r.n * D)), 'the page shows the shipped test images');
  const dRecon = maxAbsDiff(own.reconstruct.subarray(0, r.n * D), r.xhat);
  assert.ok(dRecon < tol, `reconstructions: max |Δ| ${dRecon}`);

  // interpolation: its ends are the posterior means of test images a and b, every step decodes as elbo does
  const it = dump.interpolation;
  const ends = [...it.z.slice(0, K), ...it.z.slice((it.steps - 1) * K)];
  const ownEnds = [...own.encode.subarray(it.a * K, (it.a + 1) * K), ...own.encode.subarray(it.b * K, (it.b + 1) * K)];
  assert.ok(maxAbsDiff(ownEnds, ends) < tol, `interpolation ends: ${ends} vs ${ownEnds}`);
  const ownInterp = await elboOwn(runDir, Float32Array.from(it.z), it.steps, images, card.images.count, it.ys ?? undefined);
  const dInterp = maxAbsDiff(ownInterp.decode, it.x);
  assert.ok(dInterp < tol, `interpolation: max |Δ| ${dInterp}`);
  console.log(
    `# ${card.model.kind} (${card.model.prior.kind}) page on ${dump.backend}: max |Δ| samples ${dSamples}, reconstructions ${dRecon}, interpolation ${dInterp}`,
  );
  return dump;
}

test("export tfjs: a VAE's page samples, reconstructs and interpolates in headless Chromium, and its images equal elbo's decode", async () => {
  const dir = tmpDir('elbo-export-browser-');
  const { runDir, exportDir, card } = trainAndExport(smallConfig(dir));
  await checkPage(runDir, exportDir, card, dir);
});

test("export tfjs: an M2's page decodes each class as elbo does in headless Chromium", async () => {
  const dir = tmpDir('elbo-export-browser-');
  const { runDir, exportDir, card } = trainAndExport(smallConfig(dir), [
    '--set',
    'model={kind: m2, latent: 3, encoder: {kind: mlp, hidden: [16]}, decoder: {kind: mlp, hidden: [16]}, classifier: {kind: mlp, hidden: [16]}}',
    '--set',
    'eval=[{kind: elbo}]',
  ]);
  assert.equal(card.model.classes, 4);
  await checkPage(runDir, exportDir, card, dir);
});

test("export tfjs: a VSC's page (spike-and-slab prior, mean γ ⊙ μ) draws sparse prior samples and decodes as elbo does in headless Chromium", async () => {
  const dir = tmpDir('elbo-export-browser-');
  const { runDir, exportDir, card } = trainAndExport(smallConfig(dir), [
    '--set',
    'model.prior={kind: spike-slab, alpha: 0.5}',
    '--set',
    'eval=[{kind: elbo}]',
  ]);
  const dump = await checkPage(runDir, exportDir, card, dir);
  // z_k = 0 with probability 1 − alpha: 64 draws, about half exactly 0
  const zeros = dump.samples.z.filter((v: number) => v === 0).length / dump.samples.z.length;
  assert.ok(zeros > 0.25 && zeros < 0.75, `fraction of zeros ${zeros}`);
});
