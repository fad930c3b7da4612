import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir, smallConfig, elbo, lastJson, type SweepOutput } from './helpers';
import { Progress, formatEpochLine, wrapText } from '../src/track/progress';
import { compare, toShortTable, toTable, tableMetric, fitTable, PUBLISHED, type ComparedRun } from '../src/sweep/compare';
import { Spool } from '../src/mlflow/spool';
import { writeSweepReport } from '../src/sweep/report';
import type { CellResult } from '../src/sweep/state';
import type { RunRecord } from '../src/contracts';

/** What `elbo run` printed for 10 classes, and an epoch of a semi-supervised run (147 columns and more). */
const HISTOGRAM =
  'classes in train: 0:4932 (9.9%) 1:5678 (11.4%) 2:4968 (9.9%) 3:5101 (10.2%) 4:4859 (9.7%) 5:4506 (9.0%) 6:4951 (9.9%) 7:5175 (10.4%) 8:4842 (9.7%) 9:4988 (10.0%)';
const HEADER =
  'run 20261130-172119-b3d931: m2 on mnist (50000 train / 10000 val / 10000 test), backend tensorflow (tfjs-node 4.22.0), seed 1';
const EPOCH = {
  'train/loss': 123.4567,
  'train/recon': 98.76543,
  'train/kl': 24.69123,
  'train/class': 0.123456,
  'train/elbo': -123.4567,
  'train/grad_norm': 5.231,
  'train/samples_per_sec': 12345.6,
  'train/epoch_time_s': 4.2,
  'val/recon': 97.1,
  'val/kl': 24.1,
  'val/elbo': -121.2,
  'val/accuracy': 0.9123,
};

/** A fake stderr: a terminal of `columns` (undefined: one that does not say), or a pipe. */
function stream(tty: boolean, columns?: number) {
  const s = { isTTY: tty, columns, out: '', write: (t: string) => ((s.out += t), true) };
  return s;
}

/** `f` with CI unset (a CI log is never a terminal to Progress). */
function offCi<T>(f: () => T): T {
  const ci = process.env.CI;
  delete process.env.CI;
  try {
    return f();
  } finally {
    if (ci !== undefined) process.env.CI = ci;
  }
}

const lines = (out: string) =>
  out
    .replace(/\r\x1b\[K/g, '')
    .split('\n')
    .filter(Boolean);

test('the epoch line fits the terminal, keeping the epoch, the loss, the ELBO, the accuracy and the time; whole off a terminal', () => {
  const full = formatEpochLine(3, 100, EPOCH, 12.34);
  assert.equal(
    full,
    'epoch 3/100 train/loss 123.5 train/recon 98.77 train/kl 24.69 train/class 0.1235 train/elbo -123.5 train/grad_norm 5.231 val/recon 97.10 val/kl 24.10 val/elbo -121.2 val/accuracy 0.9123 | 12346 samples/s | 12.3s',
  );
  assert.ok(full.length > 147);
  for (const cols of [120, 100, 80, 72, 60, 56, 50, 40]) {
    const line = formatEpochLine(3, 100, EPOCH, 12.34, cols);
    assert.ok(line.length <= cols - 1, `${cols}: ${line} (${line.length})`);
    assert.match(line, /^ep(och)? 3\/100 /, `${cols}: epoch`);
    assert.match(line, /123\.5/, `${cols}: loss`);
    if (cols >= 50) assert.match(line, /v(al)?\/elbo -121\.2/, `${cols}: elbo`);
    if (cols >= 56) assert.match(line, /v(al)?\/acc(uracy)? 0\.9123/, `${cols}: accuracy`);
    assert.match(line, /\| 12\.3s$/, `${cols}: time`);
  }
  // on a terminal train/ goes first, then samples/s, then the other terms (from the last)
  assert.equal(
    formatEpochLine(3, 100, EPOCH, 12.34, 110),
    'epoch 3/100 loss 123.5 recon 98.77 kl 24.69 class 0.1235 elbo -123.5 val/elbo -121.2 val/acc 0.9123 | 12.3s',
  );
  assert.equal(formatEpochLine(3, 100, EPOCH, 12.34, 80), 'epoch 3/100 loss 123.5 recon 98.77 val/elbo -121.2 val/acc 0.9123 | 12.3s');
  // narrower: val/ as v/; the accuracy, then the ELBO go last
  assert.equal(formatEpochLine(3, 100, EPOCH, 12.34, 64), 'epoch 3/100 loss 123.5 val/elbo -121.2 val/acc 0.9123 | 12.3s');
  assert.equal(formatEpochLine(3, 100, EPOCH, 12.34, 56), 'ep 3/100 loss 123.5 v/elbo -121.2 v/acc 0.9123 | 12.3s');
  assert.equal(formatEpochLine(3, 100, EPOCH, 12.34, 40), 'ep 3/100 loss 123.5 | 12.3s');
  // a VAE's line (169 columns) at 80
  const vae = {
    'train/loss': 44.37,
    'train/recon': 43.75,
    'train/kl': 0.6204,
    'train/elbo': -44.37,
    'train/grad_norm': 5.231,
    'val/recon': 43.09,
    'val/kl': 0.4384,
    'val/elbo': -43.52,
    'train/samples_per_sec': 668,
  };
  assert.equal(formatEpochLine(1, 100, vae, 0.5, 80), 'epoch 1/100 loss 44.37 recon 43.75 kl 0.6204 elbo -44.37 val/elbo -43.52 | 0.5s');
  // no validation split: the train ELBO
  const noVal = Object.fromEntries(Object.entries(EPOCH).filter(([k]) => !k.startsWith('val/')));
  assert.match(formatEpochLine(3, 100, noVal, 1, 60), /^epoch 3\/100 loss 123\.5 .*elbo -123\.5/);
  // a line that fits is left whole
  assert.equal(formatEpochLine(1, 2, { 'train/loss': 1.5 }, 0.5, 80), 'epoch 1/2 train/loss 1.500 | 0 samples/s | 0.5s');
});

test('the header and the class histogram wrap at the terminal width, under their label; whole off a terminal or with --verbose', () => {
  assert.ok(HISTOGRAM.length > 150 && HEADER.length > 100);
  const hist = wrapText(HISTOGRAM, 79).split('\n');
  assert.ok(hist.length > 1 && hist.every((l) => l.length <= 79), hist.join('\n'));
  assert.equal(hist.join(' ').replace(/ +/g, ' '), HISTOGRAM, 'nothing dropped');
  // a class's count and share stay together, continuation lines under the counts
  for (const l of hist.slice(1)) assert.match(l, /^ {18}\d:\d+ \(\d+\.\d%\)/);
  const head = wrapText(HEADER, 79).split('\n');
  assert.deepEqual(head, [
    'run 20261130-172119-b3d931: m2 on mnist (50000 train / 10000 val / 10000 test),',
    '  backend tensorflow (tfjs-node 4.22.0), seed 1',
  ]);

  offCi(() => {
    // a terminal: every line at most 79 wide; the first shortened epoch line says how to see all
    for (const columns of [80, undefined]) {
      const s = stream(true, columns);
      // a fake terminal: Progress reads isTTY, columns and write
      const p = new Progress(s as never);
      p.message(HEADER);
      p.message(HISTOGRAM);
      p.epochDone(1, 100, EPOCH, 12.3);
      p.epochDone(2, 100, EPOCH, 12.3);
      const out = lines(s.out);
      assert.ok(
        out.every((l) => l.length <= 79),
        out.join('\n'),
      );
      assert.equal(out.filter((l) => /^epoch \d\/100/.test(l)).length, 2);
      assert.equal(out.filter((l) => /--verbose/.test(l)).length, 1, 'said once');
    }
    // a pipe, and a terminal under --verbose: whole lines
    for (const [s, verbose] of [
      [stream(false, 80), false],
      [stream(true, 80), true],
    ] as const) {
      const p = new Progress(s as never, true, { verbose });
      p.message(HEADER);
      p.message(HISTOGRAM);
      p.epochDone(1, 100, EPOCH, 12.3);
      assert.deepEqual(lines(s.out), [HEADER, HISTOGRAM, formatEpochLine(1, 100, EPOCH, 12.3)]);
    }
  });
});

test('elbo run: full-width lines when stderr is not a terminal', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--set', 'train.epochs=1', '--set', 'eval=[{kind: elbo}]']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /^epoch 1\/1 train\/loss \S+ train\/recon \S+ train\/kl \S+ train\/elbo \S+ train\/grad_norm \S+ val\/recon \S+ val\/kl \S+ val\/elbo \S+ \| \d+ samples\/s \| [\d.]+s$/m,
  );
  assert.ok(
    r.stderr.split('\n').some((l) => l.length > 80),
    'nothing shortened',
  );
});

/** Runs of a two-setting sweep with two seeds and published numbers for one metric. */
function sweepRuns(): ComparedRun[] {
  const published = [{ metric: 'test/elbo', value: -85, pm: 1, mode: 'max' as const, source: 'Kingma and Welling 2014, Figure 2' }];
  const runs: ComparedRun[] = [];
  for (const prior of ['gaussian', 'vamp(components=500, pseudo_init=data)'])
    for (const seed of [0, 1]) {
      const m: Record<string, number> = {};
      for (const k of [
        'test/elbo',
        'test/kl',
        'test/recon',
        'test/log_likelihood_k5000',
        'test/active_units',
        'val/elbo',
        'val/kl',
        'val/recon',
        'train/loss',
      ])
        m[k] = -80 - seed - k.length / 10;
      runs.push({
        dir: `/r/${prior}-${seed}`,
        status: 'FINISHED',
        seed,
        params: { 'model.latent': '32', 'model.prior': prior, 'model.encoder': 'mlp(hidden=[500, 500])' },
        metrics: m,
        epochs: 10,
        published,
      });
    }
  return runs;
}

test('compare: the table fits 80 columns (the swept keys, n, one metric, published and verdict), long values wrap; --wide prints every column', () => {
  const runs = sweepRuns();
  const keys = ['model.prior'];
  const metrics = Object.keys(runs[0].metrics).sort();
  const rows = compare(runs, keys, metrics);
  const wide = toTable(rows, keys, metrics);
  assert.ok(Math.max(...wide.split('\n').map((l) => l.length)) > 171, 'every column is wide');
  const short = toShortTable(rows, keys, metrics, tableMetric(metrics));
  const out = short.trimEnd().split('\n');
  assert.ok(
    out.every((l) => l.length <= 79),
    short,
  );
  assert.match(out[0], /^model\.prior\s+n\s+test\/elbo\s+published\s+verdict$/);
  assert.match(short, /^gaussian\s+2\s+-81\.400 ± 0\.707\s+-85 ± 1\s+better$/m);
  // the plugin block is whole, across lines
  assert.match(short, /^vamp\(components=500,/m);
  assert.ok(short.replace(/\s+/g, '').includes('vamp(components=500,pseudo_init=data)'));
  assert.match(
    short.replace(/\n/g, ' '),
    /8 more metrics \(test\/active_units, test\/kl, .*\): --metric NAME shows another, --wide every column/,
  );
  // --metric published: each row's own published metric (models that publish different ones)
  const mixed = compare(
    runs.map((r) =>
      r.params['model.prior'] === 'gaussian'
        ? r
        : { ...r, published: [{ metric: 'test/kl', value: 20, mode: 'min' as const, source: 'another paper' }] },
    ),
    keys,
    metrics,
  );
  const own = toShortTable(mixed, keys, metrics, tableMetric(metrics, PUBLISHED)).trimEnd().split('\n');
  assert.ok(
    own.every((l) => l.length <= 79),
    own.join('\n'),
  );
  assert.match(own[0], /^model\.prior\s+n\s+metric\s+measured\s+published\s+verdict$/);
  assert.match(own[2], /^gaussian\s+2\s+test\/elbo\s+-81\.400 ± 0\.707\s+-85 ± 1\s+better$/);
  // vamp's test/kl: −80 − seed − 0.7 over seeds 0 and 1 against 20, lower is better
  assert.ok(
    own.some((l) => /^\S.*\s+2\s+test\/kl\s+-81\.200 ± 0\.707\s+20\s+better$/.test(l)),
    own.join('\n'),
  );
  assert.match(own.join(' '), /measured: each row's published metric: mean ± std over the n seeds\. \d+ more metrics/);
  assert.ok(!/more metrics \([^)]*test\/kl[,)]/.test(own.join(' ')), 'test/kl is shown');
  // --metric: the table shows that one; a sweep that ranks by a metric shows that one first
  assert.match(toShortTable(rows, keys, metrics, tableMetric(metrics, 'test/kl')).split('\n')[0], /^model\.prior\s+n\s+test\/kl$/);
  assert.equal(tableMetric(metrics, undefined, { metric: 'val/elbo' }), 'val/elbo');
  // more swept keys than fit as columns: each row's setting on the lines under its numbers
  const many = runs.map((r, i) => ({
    ...r,
    params: {
      ...r.params,
      ...Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => [`model.${k}`, `value-${k}-${Math.floor(i / 2)}-${'x'.repeat(12)}`])),
    },
  }));
  const manyKeys = ['model.a', 'model.b', 'model.c', 'model.d', 'model.e', 'model.f', 'model.prior'];
  const stacked = toShortTable(compare(many, manyKeys, metrics), manyKeys, metrics, 'test/elbo').split('\n');
  assert.ok(
    stacked.every((l) => l.length <= 79),
    stacked.join('\n'),
  );
  assert.match(stacked[0], /^n\s+test\/elbo\s+published\s+verdict$/);
  assert.match(stacked[2], /^2\s+-81\.400 ± 0\.707\s+-85 ± 1\s+better$/);
  assert.match(stacked[3], /^ {2}model\.a=value-a-0-x+; model\.b=/);
  // an ablation (most rows share most values): each row's setting is what it changes
  const shared = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => [`model.${k}`, `shared-${k}-${'x'.repeat(12)}`]));
  const ablation = ([{}, { 'model.c': 'changed' }, { 'model.d': 'changed' }] as Record<string, string>[]).flatMap((change, row) =>
    runs.slice(0, 2).map((r) => ({ ...r, dir: `${r.dir}-${row}`, params: { ...r.params, ...shared, ...change } })),
  );
  const changes = toShortTable(compare(ablation, manyKeys, metrics), manyKeys, metrics, 'test/elbo').split('\n');
  assert.deepEqual(
    changes.filter((l) => /^ {2}(the commonest|model\.\w=changed)/.test(l)),
    ['  the commonest setting', '  model.c=changed', '  model.d=changed'],
    changes.join('\n'),
  );
  // what they leave out is said once, under the header
  assert.match(
    changes.slice(2).join('\n'),
    /^ {2}every row has, unless it says otherwise: model\.a=shared-a-x+;[^]*model\.prior=gaussian\n\n2 /,
  );
  assert.ok(
    changes.every((l) => l.length <= 79),
    changes.join('\n'),
  );
  // a table whose columns are too wide for 80 characters wraps its widest cells
  const fitted = fitTable(['a', 'b'], [['x'.repeat(60), 'one two three four five six seven eight nine ten eleven']], 80)
    .trimEnd()
    .split('\n');
  assert.ok(fitted.length > 3 && fitted.every((l) => l.length <= 79), fitted.join('\n'));
});

test('elbo compare: 80 columns by default, every column with --wide', () => {
  const dir = tmpDir();
  const dirs = sweepRuns().map((r, i) => {
    const d = path.join(dir, `run-${i}`);
    fs.mkdirSync(d);
    fs.writeFileSync(
      path.join(d, 'run.json'),
      JSON.stringify({ status: 'FINISHED', seed: r.seed, metrics: r.metrics, epochs_completed: 10 }),
    );
    fs.writeFileSync(
      path.join(d, 'config.yaml'),
      `seed: ${r.seed}\nmodel: {kind: vae, latent: 32, prior: ${JSON.stringify(r.params['model.prior'])}}\npublished: ${JSON.stringify(r.published)}\n`,
    );
    return d;
  });
  const args = ['compare', ...dirs, '--csv', path.join(dir, 'c.csv'), '--plot', path.join(dir, 'p.png')];
  const short = elbo(args, { cwd: dir });
  assert.equal(short.status, 0, short.stderr);
  assert.ok(
    short.stdout.split('\n').every((l) => l.length <= 79),
    short.stdout,
  );
  // the model blocks, one kind, differ in their prior only: that option is the column
  assert.match(short.stdout, /^model\.prior\s+n\s+test\/elbo\s+published\s+verdict$/m);
  assert.match(short.stdout, /^gaussian\s+2\s+/m);
  // stderr: what was written, one line each within 80 columns, no plotting library's warnings
  assert.match(short.stderr, /^wrote .*p\.png and \.svg: test\/elbo against model\.prior, \d series( \(|:\n {2})/m);
  assert.ok(
    short.stderr
      .trim()
      .split('\n')
      .every((l) => l.length <= 80 && !/WARN/.test(l)),
    short.stderr,
  );
  const wide = elbo([...args, '--wide']);
  assert.equal(wide.status, 0, wide.stderr);
  assert.match(
    wide.stdout,
    /^model\.prior\s+seeds\s+test\/active_units\s+test\/elbo\s+test\/kl\s+.*val\/recon\s+test\/elbo published\s+verdict$/m,
  );
  assert.ok(wide.stdout.split('\n').some((l) => l.length > 80));
  const bad = elbo([...args, '--metric', 'test/elbow']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--metric: no metric 'test\/elbow'.*test\/elbo/);
});

/** Two runs of one SDGM setting, seeds 0 and 1, 4 epochs of curves each; seed 1 still trains (no test metrics yet). */
function sdgmSeedRuns(dir: string, samples?: number): string[] {
  // seed 1 still trains: validation curves, no test metrics yet
  return [0, 1].map((seed) => {
    const d = path.join(dir, 'mnist-sdgm', `run-${seed}${samples ? `-s${samples}` : ''}`);
    fs.mkdirSync(d, { recursive: true });
    const metrics = seed === 0 ? { 'test/accuracy': 0.97, 'test/elbo': -90, 'train/loss': 70 } : { 'train/loss': 71 };
    fs.writeFileSync(
      path.join(d, 'run.json'),
      JSON.stringify({ status: seed === 0 ? 'FINISHED' : 'RUNNING', seed, metrics, epochs_completed: 4 }),
    );
    fs.writeFileSync(
      path.join(d, 'config.yaml'),
      `seed: ${seed}\nmodel: {kind: sdgm, latent: 100${samples ? `, aux_samples: ${samples}` : ''}}\ntrain: {select: {metric: val/accuracy, mode: max}}\n`,
    );
    const lines = [1, 2, 3, 4].slice(0, samples && seed ? 3 : 4).map((epoch) =>
      JSON.stringify({
        epoch,
        'train/loss': 90 - 5 * epoch - seed,
        'val/elbo': -100 + epoch,
        'val/accuracy': 0.8 + 0.03 * epoch + 0.01 * seed + 0.001 * (samples ?? 0),
      }),
    );
    fs.writeFileSync(path.join(d, 'metrics.jsonl'), lines.join('\n') + '\n');
    return d;
  });
}

test("elbo compare overlays the runs' learning curves (one setting's seeds: a colour per seed) and says how many runs have a metric", () => {
  const dir = tmpDir();
  const dirs = sdgmSeedRuns(dir);
  const curves = path.join(dir, 'seeds.png');
  const r = elbo(['compare', ...dirs, '--metric', 'test/accuracy', '--curves', curves], { cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  // one run of two has test/accuracy: no "± 0.000" as if both had the same number
  assert.match(r.stdout, /^2\s+0\.970 \(1 of 2\)$/m);
  assert.match(r.stderr, /^wrote seeds\.png and \.svg: learning curves, 3 panels$/m);
  assert.ok(fs.statSync(curves).size > 1000);
  const svg = fs.readFileSync(curves.replace(/\.png$/, '.svg'), 'utf8');
  for (const text of [
    'Learning curves of mnist-sdgm',
    '2 runs, one setting, a colour per seed',
    'seed=0',
    'seed=1',
    'val/accuracy',
    'train/loss',
  ])
    assert.ok(svg.includes(text), text);
  // the validation curve of --metric leads
  assert.ok(svg.indexOf('val/accuracy') < svg.indexOf('train/loss'));
  // without --curves: curves.png beside the CSV, whose folder is made as the figures' are
  const plain = elbo(['compare', ...dirs, '--csv', path.join(dir, 'out', 'c.csv')], { cwd: dir });
  assert.equal(plain.status, 0, plain.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'out', 'c.csv')));
  const plainSvg = fs.readFileSync(path.join(dir, 'out', 'curves.svg'), 'utf8');
  // no --metric: the curve every run selects its checkpoint by (train.select) leads, not the ELBO's
  assert.ok(plainSvg.indexOf('val/accuracy') < plainSvg.indexOf('val/elbo'));
});

test('a sweep cell run records its setting; runs list and show say it; the sweep report overlays the curves, plots each test metric by setting and links the MLflow runs', async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const r = elbo([
    'sweep',
    cfg,
    '--grid',
    'model.latent=2,3',
    '--set',
    'train.epochs=2',
    '--set',
    'eval=[{kind: elbo}]',
    '--runs-dir',
    runs,
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<SweepOutput>(r.stdout);
  assert.deepEqual(
    out.cells.map((c: CellResult) => c.status),
    ['FINISHED', 'FINISHED'],
  );
  const rec = JSON.parse(fs.readFileSync(path.join(out.cells[1].runDir!, 'run.json'), 'utf8'));
  assert.deepEqual(rec.sweep, { name: path.basename(out.dir), dir: out.dir, cell: 1, label: 'model.latent=3', short: 'latent=3' });

  const list = elbo(['runs', 'list', '--runs-dir', runs]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^run\s+experiment: setting\s+status\s+epochs\s+test\/elbo$/m);
  assert.match(list.stdout, new RegExp(`^${rec.run_id}  small: latent=3\\s+FINISHED  2/2\\s+-\\d`, 'm'));
  assert.ok(
    list.stdout.split('\n').every((l) => l.length <= 80),
    list.stdout,
  );
  const json = JSON.parse(elbo(['runs', 'list', '--runs-dir', runs, '--json']).stdout);
  assert.deepEqual(json.map((x: Pick<RunRecord, 'sweep'>) => x.sweep?.short).sort(), ['latent=2', 'latent=3']);
  const show = elbo(['runs', 'show', rec.run_id, '--runs-dir', runs]);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, new RegExp(`^setting     model\\.latent=3 \\(cell 1 of sweep ${path.basename(out.dir)},`, 'm'));
  // a run of an older sweep (no sweep in its run.json): found by the sweep directory it lies in
  delete rec.sweep;
  fs.writeFileSync(path.join(out.cells[1].runDir!, 'run.json'), JSON.stringify(rec));
  assert.match(elbo(['runs', 'show', out.cells[1].runDir!]).stdout, /^setting {5}model\.latent=3 \(cell 1 of sweep/m);
  assert.match(elbo(['runs', 'list', '--runs-dir', runs]).stdout, /small: latent=3/);

  // the report: written at the sweep's end with both new figures, each in the page
  const html = () => fs.readFileSync(path.join(out.dir, 'report.html'), 'utf8');
  for (const f of ['curves.png', 'curves.svg', 'test-metrics.png', 'test-metrics.svg']) assert.ok(fs.existsSync(path.join(out.dir, f)), f);
  assert.match(
    html(),
    /<figure><img src="data:image\/png;base64,[^"]+" width="\d+" alt="curves\.png [^"]*"><figcaption>curves\.png \(SVG beside it\): every run&#39;s learning curves/,
  );
  assert.match(html(), /alt="test-metrics\.png [^"]*"><figcaption>test-metrics\.png \(SVG beside it\): each test metric by setting/);
  const curves = fs.readFileSync(path.join(out.dir, 'curves.svg'), 'utf8');
  for (const t of ['train/loss', 'val/elbo', 'latent=2', 'latent=3']) assert.ok(curves.includes(t), `curves: ${t}`);
  const tested = fs.readFileSync(path.join(out.dir, 'test-metrics.svg'), 'utf8');
  for (const t of ['test/elbo', 'test/kl', 'latent=2', 'latent=3']) assert.ok(tested.includes(t), `test metrics: ${t}`);
  assert.doesNotMatch(html(), /MLflow/, 'no MLflow column when nothing is tracked');

  // tracked in MLflow: a link to each cell's run page, and to the sweep's parent run
  const spool = (d: string, runId: string) => {
    const s = Spool.open(d, {
      tracking_uri: 'http://mlflow.example:5000',
      experiment_name: 'small',
      options: { timeout_s: 1, retries: 0, backoff_s: 0 },
    });
    s.state.experiment_id = '7';
    s.state.run_id = runId;
    s.saveState();
  };
  spool(out.cells[0].runDir!, 'abc123');
  spool(out.dir, 'parent42');
  await writeSweepReport(out.dir);
  assert.match(html(), /<a href="http:\/\/mlflow\.example:5000\/#\/experiments\/7\/runs\/abc123">abc123<\/a>/);
  assert.match(html(), /MLflow: the sweep's run <a href="http:\/\/mlflow\.example:5000\/#\/experiments\/7\/runs\/parent42">/);
});

test('elbo compare --at: the lead curve at the epochs asked, a row per epoch and a column per run (a sweep: per setting, the mean over seeds), the difference of two; in --json too; bad epochs in one line', () => {
  const dir = tmpDir();
  const dirs = sdgmSeedRuns(dir);
  const args = ['compare', ...dirs, '--csv', path.join(dir, 'c.csv'), '--at', '1-2,4,7'];
  const r = elbo(args, { cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  // no --metric: the curve the runs select by (val/accuracy); epoch 7 not reached
  const table = r.stdout.slice(r.stdout.indexOf('val/accuracy by epoch'));
  assert.deepEqual(
    table
      .trim()
      .split('\n')
      .map((l) => l.split(/ {2,}/)),
    [
      ['val/accuracy by epoch'],
      ['epoch', 'seed 0', 'seed 1', 'second − first'],
      ['-----', '------', '------', '--------------'],
      ['1', '0.8300', '0.8400', '+0.0100'],
      ['2', '0.8600', '0.8700', '+0.0100'],
      ['4', '0.9200', '0.9300', '+0.0100'],
      ['7', '–', '–', '–'],
    ],
  );
  const json = elbo([...args, '--json', '--metric', 'train/loss'], { cwd: dir });
  assert.equal(json.status, 0, json.stderr);
  const at = JSON.parse(json.stdout).at;
  assert.equal(at.metric, 'train/loss');
  assert.deepEqual(at.epochs, [1, 2, 4, 7]);
  assert.deepEqual(
    at.runs.map((x: { label: string; values: (number | null)[] }) => [x.label, x.values]),
    [
      ['seed 0', [85, 80, 70, null]],
      ['seed 1', [84, 79, 69, null]],
    ],
  );
  // a sweep (two settings of two seeds): a column per setting, the mean over its seeds
  // that reached the epoch (seed 1 stopped after epoch 3); --wide: a column per run
  const sweep = tmpDir();
  const four = [...sdgmSeedRuns(sweep, 1), ...sdgmSeedRuns(sweep, 5)];
  const means = elbo(['compare', ...four, '--csv', path.join(sweep, 'c.csv'), '--at', '1,4'], { cwd: sweep });
  assert.equal(means.status, 0, means.stderr);
  const rows = means.stdout
    .slice(means.stdout.indexOf('val/accuracy by epoch'))
    .trim()
    .split('\n')
    .map((l) => l.split(/ {2,}/));
  assert.deepEqual(rows[0], ['val/accuracy by epoch, the mean over each setting’s runs']);
  assert.deepEqual(rows.slice(-2), [
    ['1', '0.8360', '0.8400', '+0.0040'],
    ['4', '0.9210 (1 of 2)', '0.9250 (1 of 2)', '+0.0040'],
  ]);
  const perRun = elbo(['compare', ...four, '--csv', path.join(sweep, 'c.csv'), '--at', '1,4', '--wide', '--json'], { cwd: sweep });
  assert.deepEqual(
    JSON.parse(perRun.stdout).at.runs.map((x: { label: string }) => x.label),
    [1, 5].flatMap((n) => [0, 1].map((seed) => `aux_samples=${n}, seed ${seed}`)),
  );
  const grouped = JSON.parse(
    elbo(['compare', ...four, '--csv', path.join(sweep, 'c.csv'), '--at', '4', '--json'], { cwd: sweep }).stdout,
  ).at;
  assert.deepEqual(
    grouped.settings.map((x: { label: string; runs: number; reached: number[]; dirs: string[] }) => [x.label, x.runs, x.reached, x.dirs]),
    [
      ['aux_samples=1', 2, [1], four.slice(0, 2)],
      ['aux_samples=5', 2, [1], four.slice(2)],
    ],
  );
  for (const [extra, message] of [
    [['--at', '0'], /^--at: '0' is not an epoch \(from 1\) or a range of them: e\.g\. --at 1-10,20,30$/],
    [['--at', '5-2'], /^--at: '5-2' is not an epoch/],
    [['--at', '9-10'], /^--at: no run has reached epoch 9 \(the furthest: 4\)$/],
    [['--at', '1', '--metric', 'train/los'], /^--metric: no metric 'train\/los'.*train\/loss/],
  ] as const) {
    const bad = elbo([...args.slice(0, -2), ...extra], { cwd: dir });
    assert.equal(bad.status, 1, bad.stdout);
    assert.match(bad.stderr.trim(), message);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  }
});
