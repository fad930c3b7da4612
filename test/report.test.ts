/**
 * Figures and report.html: a small run and a small sweep write their plots (PNG with the
 * SVG beside it, with titles, axes and legends) and report.html, which a real headless
 * Chromium opens from file://: the expected text is there, every image loaded, nothing
 * was fetched from the network, no console errors. The screenshots are kept in
 * .test-output/ (docs/runs.md's docs/report-screenshot.png is report-run-top.png).
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { PNG } from 'pngjs';
import { Chromium, type RenderedPage } from './chromium';
import { tmpDir, smallConfig, elbo, lastJson, ROOT, type SweepOutput } from './helpers';
import { curvePoints, curvesSpec, focusFrom, LR_TERM, wrap, sweepCurveMetrics } from '../src/plot/figures';
import { figureLabels, type ComparisonRow } from '../src/sweep/compare';
import type { VegaLiteSpec } from '../src/plot/render';

/** A learning-curve figure's spec, as far as its legend goes. */
type CurvesSpec = { concat: { layer: { encoding: { color: { scale: unknown } } }[] }[] };

const OUT = path.join(ROOT, '.test-output');
let browser: Chromium;

before(async () => {
  browser = await Chromium.launch();
});
after(async () => {
  await browser?.close();
});

/** Open a report in Chromium, keep its screenshot as .test-output/NAME, and check what every report must be. */
async function openReport(file: string, name: string): Promise<RenderedPage> {
  const page = await browser.render(pathToFileURL(file).href, { width: 1280 });
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, `${name}.png`), page.screenshotPng);
  // and its first screenful and a half, for docs/runs.md
  const full = PNG.sync.read(page.screenshotPng);
  const top = new PNG({ width: full.width, height: Math.min(full.height, 1500) });
  full.data.copy(top.data, 0, 0, top.width * top.height * 4);
  fs.writeFileSync(path.join(OUT, `${name}-top.png`), PNG.sync.write(top));
  assert.deepEqual(page.consoleErrors, [], 'no console errors');
  const external = page.requests.filter((u) => !u.startsWith('data:') && u !== pathToFileURL(file).href);
  assert.deepEqual(external, [], 'the page loads nothing but itself and its embedded images');
  const broken = page.images.filter((i) => !i.loaded || i.width < 100);
  assert.deepEqual(broken, [], 'every image loaded');
  assert.equal(full.width, 1280);
  return page;
}

/** The visible text of an SVG (its <text> elements), for checking titles, axes and legends. */
function svgText(file: string): string {
  return [...fs.readFileSync(file, 'utf8').matchAll(/<text[^>]*>([^<]*)<\/text>/g)]
    .map((m) => m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'))
    .join('\n');
}

const EVALS = '  - kind: latent-pca\n  - kind: sparsity\n  - kind: samples\n    n: 16\n';
const PUBLISHED = 'published:\n  - {metric: test/elbo, value: -30, pm: 1, source: "a paper, Table 2"}\n';

test('report: a run writes its curves, labelled figures and a report.html that Chromium renders whole', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir, EVALS + PUBLISHED);
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--set', 'train.epochs=2']);
  assert.equal(r.status, 0, r.stderr);
  const runDir = /^run finished: (.+)$/m.exec(r.stdout)![1];
  assert.match(r.stdout, /^report: .*artifacts\/report\.html$/m);
  const art = path.join(runDir, 'artifacts');

  // every figure: a PNG and the SVG beside it, with its words in the SVG
  const pngs = fs
    .readdirSync(art)
    .filter((f) => f.endsWith('.png'))
    .sort();
  assert.deepEqual(pngs, ['curves.png', 'latent-pca.png', 'reconstructions.png', 'samples.png', 'sparsity.png']);
  for (const f of pngs) {
    assert.equal(fs.readFileSync(path.join(art, f)).subarray(1, 4).toString(), 'PNG', f);
    assert.ok(fs.existsSync(path.join(art, f.replace(/\.png$/, '.svg'))), `${f}: the SVG beside it`);
  }
  const curves = svgText(path.join(art, 'curves.svg'));
  for (const w of ['Learning curves', 'train', 'validation', 'test (final)', 'loss', 'recon', 'kl', 'elbo', 'epoch'])
    assert.ok(curves.split('\n').includes(w) || curves.includes(w), `curves: ${w}`);
  const pca = svgText(path.join(art, 'latent-pca.svg'));
  assert.match(pca, /^class$/m, 'a class legend');
  for (const c of ['0', '1', '2', '3']) assert.match(pca, new RegExp(`^${c}$`, 'm'), `legend entry ${c}`);
  assert.match(pca, /PC 1 \(\d+\.\d % of the variance\)/);
  const sparsity = svgText(path.join(art, 'sparsity.svg'));
  assert.match(sparsity, /latent dimension/);
  assert.match(sparsity, /activation rate/);
  const recon = svgText(path.join(art, 'reconstructions.svg'));
  assert.match(recon, /^Reconstructions$/m);
  assert.equal((recon.match(/^original$/gm) ?? []).length, 1);
  assert.equal((recon.match(/^reconstruction$/gm) ?? []).length, 1);

  // the report, as a browser shows it
  const rec = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  const page = await openReport(path.join(art, 'report.html'), 'report-run');
  assert.equal(page.title, `elbo run small/${rec.run_id}`);
  for (const t of [
    'FINISHED',
    'Measured against published',
    'a paper, Table 2',
    '-30 ± 1',
    'Final metrics',
    'test/elbo',
    'test/pca_explained_1',
    'latent: 4',
    'Fingerprint',
    rec.fingerprint.node_version,
    rec.config_sha256.slice(0, 16),
  ]) {
    assert.ok(page.text.includes(t), `report text has ${t}`);
  }
  assert.match(page.text, /test\/elbo\s+-\d+\.\d{4}\s+-30 ± 1\s+worse/);
  assert.equal(page.images.length, pngs.length, 'one image per figure');

  // elbo report writes it again; a wrong directory is one line at the path
  const again = elbo(['report', runDir, '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(lastJson(again.stdout), { kind: 'run', file: path.join(art, 'report.html') });
  const bad = elbo(['report', dir]);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim(), `${dir}: neither a run directory (run.json) nor a sweep directory (sweep.json)`);
});

/** A directory with small.yaml for a sweep's base: one epoch, the ELBO evaluator only, a published number. */
function sweepBase(): string {
  const dir = tmpDir();
  const cfg = smallConfig(dir, PUBLISHED);
  fs.writeFileSync(
    cfg,
    fs
      .readFileSync(cfg, 'utf8')
      .replace(/eval:[\s\S]*?published:/, 'eval:\n  - kind: elbo\npublished:')
      .replace('epochs: 3', 'epochs: 1'),
  );
  return dir;
}

test('report: a sweep writes compare plots with legend, error bars and the published line, and a report.html Chromium renders', async () => {
  const dir = sweepBase();
  fs.writeFileSync(
    path.join(dir, 'sweep.yaml'),
    'name: s\nbase: small.yaml\nsweep:\n  grid:\n    model.latent: [2, 3]\n    train.batch_size: [25, 50]\n',
  );
  const r = elbo(['sweep', path.join(dir, 'sweep.yaml'), '--runs-dir', path.join(dir, 'runs'), '--parallel', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const sweepDir = lastJson<SweepOutput>(r.stdout).dir;
  assert.match(r.stderr, /^report: .*report\.html$/m);

  const plot = svgText(path.join(sweepDir, 'compare-test_elbo.svg'));
  assert.match(plot, /^test\/elbo against model\.latent$/m, 'title');
  assert.match(plot, /^model\.latent$/m, 'x axis');
  assert.match(plot, /^test\/elbo \(mean ± std over seeds\)$/m, 'y axis');
  assert.match(plot, /^train\.batch_size$/m, 'legend title');
  assert.match(plot, /^25$/m, 'legend entry');
  assert.match(plot, /^50$/m, 'legend entry');
  assert.match(plot, /^published -30 ± 1 \(a paper, Table 2\)$/m, 'the published reference line');
  assert.ok(fs.existsSync(path.join(sweepDir, 'compare-test_elbo.png')));
  assert.equal(fs.readFileSync(path.join(sweepDir, 'compare.csv'), 'utf8').trim().split('\n').length, 5);

  const page = await openReport(path.join(sweepDir, 'report.html'), 'report-sweep');
  assert.equal(page.title, 'elbo sweep s');
  for (const t of [
    'Cells',
    'Comparison (mean ± std over seeds)',
    'model.latent',
    'train.batch_size',
    'test/elbo published',
    '-30 ± 1 (a paper, Table 2)',
  ])
    assert.ok(page.text.includes(t), `report text has ${t}`);
  assert.equal((page.text.match(/FINISHED/g) ?? []).length, 4);
  // the compare plot, every run's curves overlaid, the test metrics by setting
  assert.equal(page.images.length, 3);
  // each cell links to its run's report
  const html = fs.readFileSync(path.join(sweepDir, 'report.html'), 'utf8');
  const links = [...html.matchAll(/href="([^"]+)"/g)].map((m) => decodeURI(m[1]));
  assert.equal(links.length, 4);
  for (const l of links) assert.ok(fs.existsSync(path.join(sweepDir, l)), l);
});

test("report: an ablation's cells, rows and figures are named by what each changes", async () => {
  const dir = sweepBase();
  // six keys, each cell changing three of them against the first
  fs.writeFileSync(
    path.join(dir, 'sweep.yaml'),
    [
      'name: ab',
      'base: small.yaml',
      'sweep:',
      '  zip:',
      '    - model.latent: [4, 2, 4]',
      '      train.batch_size: [50, 25, 50]',
      '      train.weight_decay: [0, 0.001, 0]',
      '      model.encoder.activation: [relu, relu, tanh]',
      '      train.epochs: [1, 1, 2]',
      '      data.validation: [50, 50, 40]',
      '',
    ].join('\n'),
  );
  const r = elbo(['sweep', path.join(dir, 'sweep.yaml'), '--runs-dir', path.join(dir, 'runs'), '--parallel', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const sweepDir = lastJson<SweepOutput>(r.stdout).dir;
  const page = await openReport(path.join(sweepDir, 'report.html'), 'report-ablation');
  const changes = ['latent=2, batch_size=25, weight_decay=0.001', 'validation=40, encoder.activation=tanh, epochs=2'];
  for (const t of [
    'setting (what it changes)',
    'the commonest setting',
    'model.latent=2 train.batch_size=25 train.weight_decay=0.001',
    'Every cell has, unless its setting says otherwise: model.latent=4; train.batch_size=50; train.weight_decay=0; model.encoder.activation=relu; train.epochs=1; data.validation=50',
    'Every setting has, unless it says otherwise: validation=50; encoder.activation=relu; latent=4; batch_size=50; epochs=1; weight_decay=0',
    ...changes,
  ])
    assert.ok(page.text.includes(t), `report text has ${t}`);
  // one column for the setting, not one per key; no plot against one key (each moves in one cell)
  const html = fs.readFileSync(path.join(sweepDir, 'report.html'), 'utf8');
  const head = /<table class="compare"><thead><tr>(.*?)<\/tr>/.exec(html)![1];
  assert.deepEqual([...head.matchAll(/<th>([^<]*)<\/th>/g)].map((m) => m[1]).slice(0, 3), [
    'setting (what it changes)',
    'seeds',
    'test/elbo',
  ]);
  assert.deepEqual(
    fs.readdirSync(sweepDir).filter((f) => f.startsWith('compare-')),
    [],
  );
  assert.equal(page.images.length, 2, 'the curves and the test metrics');
  for (const f of ['curves.svg', 'test-metrics.svg']) {
    const svg = svgText(path.join(sweepDir, f));
    for (const c of changes) assert.ok(svg.includes(c), `${f}: ${c}`);
    assert.ok(!svg.includes('model.latent=2'), `${f}: names without their section`);
  }
});

test('report: a run stopped by SIGTERM is recorded KILLED, then gets its curves and a report saying so', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--set', 'train.epochs=3'], { env: { ELBO_FAULT: 'step@2:term' } });
  assert.equal(r.status, 130, r.stderr);
  const runDir = path.dirname(path.dirname(/^report: (.+)$/m.exec(r.stdout)![1]));
  assert.equal(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, 'KILLED');
  assert.match(svgText(path.join(runDir, 'artifacts', 'curves.svg')), /1 epoch \(KILLED\)/);
  const page = await openReport(path.join(runDir, 'artifacts', 'report.html'), 'report-killed');
  assert.match(page.text, /KILLED interrupted in epoch 2; resume with: elbo run --resume /);
  assert.match(page.text, /1 of 3 \(\d+ steps\)/);
  assert.equal(page.images.length, 1, 'the learning curves');
});

test('figures: learning-curve points take every train/ and val/ term, not speed or timing', () => {
  const pts = curvePoints([
    {
      step: 5,
      epoch: 1,
      'train/loss': 3,
      'train/kl': 1,
      'train/samples_per_sec': 900,
      'train/epoch_time_s': 2,
      'val/elbo': -3,
      'weight/kl': 1,
    },
    { step: 9, 'test/elbo': -2 },
  ]);
  assert.deepEqual(
    pts.map((p) => `${p.split}:${p.term}=${p.value}`),
    ['train:loss=3', 'train:kl=1', 'validation:elbo=-3'],
  );
  assert.deepEqual(wrap('aaa bbb ccc ddd', 7), ['aaa bbb', 'ccc ddd']);
  // a learning rate that moves gets its panel; a constant one does not
  const lr = (v: number[]) =>
    curvePoints(v.map((x, i) => ({ epoch: i + 1, 'train/loss': 1, 'optimizer/lr': x }))).filter((p) => p.term === LR_TERM);
  assert.deepEqual(
    lr([1e-3, 5e-4]).map((p) => p.value),
    [1e-3, 5e-4],
  );
  assert.deepEqual(lr([1e-3, 1e-3]), []);
});

test('figures: the legend names only the splits drawn, in their fixed colours', () => {
  const legend = (spec: VegaLiteSpec) => (spec as CurvesSpec).concat[0].layer[0].encoding.color.scale;
  const trainOnly = curvesSpec('t', 's', [{ epoch: 1, term: 'loss', split: 'train', value: 1 }], { loss: 0.5 });
  assert.deepEqual(legend(trainOnly), { domain: ['train', 'test (final)'], range: ['#1f77b4', '#2ca02c'] });
  const both = curvesSpec('t', 's', [
    { epoch: 1, term: 'elbo', split: 'train', value: -2 },
    { epoch: 1, term: 'elbo', split: 'validation', value: -3 },
  ]);
  assert.deepEqual(legend(both), { domain: ['train', 'validation'], range: ['#1f77b4', '#ff7f0e'] });
});

test('figures: a long run whose first epochs are far off is drawn from about its 5th percent of epochs', () => {
  // an ELBO from -190 to -92 over 600 epochs, flat after the first ten: the panel starts at epoch 30
  const elbo = Array.from({ length: 600 }, (_, i) => ({ epoch: i + 1, value: i < 10 ? -190 + i * 9 : -100 + (8 * i) / 600 }));
  assert.equal(focusFrom(elbo), 30);
  assert.equal(focusFrom(elbo.slice(0, 15)), null, 'a short run: every epoch');
  // a curve that moves as much late as early: every epoch
  assert.equal(focusFrom(Array.from({ length: 100 }, (_, i) => ({ epoch: i + 1, value: i }))), null);
  // a test value far from the late curve widens the late range: every epoch
  assert.equal(focusFrom(elbo, -300), null);
});

test("figures: a sweep's curve panels lead with the ranked metric and keep the validation curves", () => {
  const terms = ['loss', 'recon', 'kl', 'labelled', 'class', 'entropy', 'accuracy', 'elbo'];
  const all = [...terms.map((t) => `train/${t}`), ...terms.filter((t) => t !== 'loss').map((t) => `val/${t}`), 'train/grad_norm'];
  const shown = sweepCurveMetrics(all, 'val/accuracy');
  assert.equal(shown.length, 12);
  assert.equal(shown[0], 'val/accuracy');
  // every validation curve and train/loss stay; train/ curves with a validation twin go first (from the end)
  for (const m of [...all.filter((m) => m.startsWith('val/')), 'train/loss', 'train/grad_norm']) assert.ok(shown.includes(m), m);
  assert.deepEqual(
    all.filter((m) => !shown.includes(m)),
    ['train/class', 'train/entropy', 'train/accuracy', 'train/elbo'],
  );
  // a few metrics: all of them, loss first, train before val
  assert.deepEqual(sweepCurveMetrics(['val/elbo', 'train/elbo', 'train/loss']), ['train/loss', 'train/elbo', 'val/elbo']);
});

test("figures: an ablation's settings are named by what they change, a grid's by every key", () => {
  const row = (key: Record<string, string>): ComparisonRow => ({
    key,
    runs: 1,
    seeds: [0],
    stats: {},
    stopped: 0,
    epochs: [],
    published: {},
  });
  const keys = [
    'train.clip.norm',
    'train.clip.value',
    'train.weight_decay',
    'model.class_loss',
    'model.encoder.norm',
    'model.decoder.norm',
  ];
  const base = {
    'train.clip.norm': '1e9',
    'train.clip.value': '-',
    'train.weight_decay': '0',
    'model.class_loss': 'sum',
    'model.encoder.norm': 'none',
    'model.decoder.norm': 'none',
  };
  const rows = [
    row(base),
    row({ ...base, 'train.clip.norm': '5', 'train.clip.value': '1' }),
    row({ ...base, 'train.weight_decay': '2e-5' }),
    row({ ...base, 'model.encoder.norm': 'batch', 'model.decoder.norm': 'batch' }),
  ];
  const names = figureLabels(keys, rows);
  assert.deepEqual(
    rows.map((r) => names.label(r.key)),
    ['the commonest setting', 'clip.norm=5, clip.value=1', 'weight_decay=2e-5', 'encoder.norm=batch, decoder.norm=batch'],
  );
  assert.equal(names.what, 'what it changes');
  assert.equal(names.ablation, true);
  // said once: the values every row keeps, without the keys most rows leave unset
  assert.equal(
    names.held,
    'every setting has, unless it says otherwise: clip.norm=1e9; weight_decay=0; class_loss=sum; encoder.norm=none; decoder.norm=none',
  );
  // a grid of two keys: every label whole, nothing held
  const grid = figureLabels(
    ['model.latent', 'train.batch_size'],
    [row({ 'model.latent': '2', 'train.batch_size': '25' }), row({ 'model.latent': '3', 'train.batch_size': '25' })],
  );
  assert.equal(grid.label({ 'model.latent': '2', 'train.batch_size': '25' }), 'latent=2, batch_size=25');
  assert.equal(grid.held, '');
  assert.equal(grid.ablation, false);
});
