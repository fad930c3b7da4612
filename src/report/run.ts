import * as fs from 'fs';
import * as path from 'path';
import { readJsonFile, readStoredConfig, type StoredConfig } from '../track/run-store';
import { formatPublished } from '../config/metrics';
import { curvePoints, curvesSpec } from '../plot/figures';
import { writeFigure } from '../plot/render';
import { elboVersion } from '../runtime/fingerprint';
import { esc, table, facts, figure, num, verdictBadge, page } from './html';
import type { RunRecord } from '../contracts';

/**
 * report.html of a run (RUN_DIR/artifacts/report.html): one self-contained page, written at
 * the end of a run and by `elbo report`. A sweep's report is src/sweep/report.ts.
 */

/** The lines of a run's metrics.jsonl (none when it has none; a line cut by a hard stop is left out). */
export function readMetricLines(runDir: string): Record<string, number>[] {
  const file = path.join(runDir, 'metrics.jsonl');
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .flatMap((l) => {
          try {
            return [JSON.parse(l)];
          } catch {
            return []; // a line cut by a hard stop
          }
        })
    : [];
}

/** The learning curves of a run, from metrics.jsonl: artifacts/curves.png and .svg (null when no epoch finished). */
export async function writeCurves(runDir: string, record?: RunRecord): Promise<string | null> {
  const rec = record ?? readJsonFile<RunRecord>(path.join(runDir, 'run.json'), 'run.json');
  const points = curvePoints(readMetricLines(runDir));
  if (!points.length) return null;
  const test = Object.fromEntries(
    Object.entries(rec.metrics ?? {})
      .filter(([k]) => k.startsWith('test/'))
      .map(([k, v]) => [k.slice(5), v]),
  );
  const epochs = new Set(points.map((p) => p.epoch)).size;
  const cfg = runConfig(runDir);
  const out = path.join(runDir, 'artifacts', 'curves.png');
  await writeFigure(
    out,
    curvesSpec(
      `Learning curves: ${rec.experiment} ${rec.run_id}`,
      `${modelName(cfg)} on ${rec.data?.name ?? '?'}, seed ${rec.seed}, ${epochs} epoch${epochs === 1 ? '' : 's'} (${rec.status}); dashed: the final test value${swaNote(cfg)}`,
      points,
      test,
    ),
  );
  return out;
}

/** The run's resolved config (config.yaml), or null where it cannot be read: a report draws without it. */
function runConfig(runDir: string): StoredConfig | null {
  try {
    return readStoredConfig(runDir);
  } catch {
    return null;
  }
}

function modelName(cfg: StoredConfig | null): string {
  return String(cfg?.model?.kind ?? 'model');
}

/** train.swa: validation measures the average from its first epoch on (a step in the curves). */
function swaNote(cfg: StoredConfig | null): string {
  const from = cfg?.train?.swa?.from_epoch;
  return typeof from === 'number' ? `; validation from epoch ${from}: the weight average (train.swa)` : '';
}

/** Figures of a run in this order, then any other PNG of artifacts/ by name. */
const FIGURE_ORDER = [
  'curves.png',
  'latent-pca.png',
  'sparsity.png',
  'reconstructions.png',
  'samples.png',
  'class-samples.png',
  'augment.png',
];

function runBody(runDir: string, rec: RunRecord, configYaml: string): string {
  const art = path.join(runDir, 'artifacts');
  const pngs = fs.existsSync(art) ? fs.readdirSync(art).filter((f) => f.endsWith('.png')) : [];
  pngs.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const duration = rec.duration_s !== null && rec.duration_s !== undefined ? `${rec.duration_s.toFixed(1)} s` : '–';
  const d = rec.data;
  const summary: [string, string][] = [
    ['status', `<span class="status ${esc(rec.status)}">${esc(rec.status)}</span>${rec.error ? ` ${esc(rec.error)}` : ''}`],
    ['experiment', esc(rec.experiment)],
    ['run', esc(rec.run_id)],
    ['model', esc(modelName(runConfig(runDir)))],
    ['data', d ? `${esc(d.name)}: ${d.train} train / ${d.val} validation / ${d.test} test (sha256 ${esc(d.sha256.slice(0, 16))}…)` : '–'],
    ['seed', esc(rec.seed)],
    ['epochs', `${rec.epochs_completed} of ${rec.epochs_planned} (${rec.global_step} steps)`],
    ['test metrics from', rec.evaluated_on ? `the ${rec.evaluated_on.checkpoint} checkpoint, epoch ${rec.evaluated_on.epoch}` : '–'],
    ...(rec.selected
      ? ([
          ['selected by', `${esc(rec.selected.metric)} (${rec.selected.mode}): ${num(rec.selected.value)} at epoch ${rec.selected.epoch}`],
        ] as [string, string][])
      : []),
    ['backend', esc(`${rec.backend.name} (${rec.backend.package ?? ''} ${rec.backend.version ?? ''})`)],
    ['started', esc(rec.start_time)],
    ['duration', duration],
    [
      'config',
      `${esc(rec.config_file)} (sha256 ${esc(rec.config_sha256.slice(0, 16))}…)${rec.config_bases?.length ? `, extending ${esc(rec.config_bases.join(', '))}` : ''}`,
    ],
    ...(rec.note ? ([['note', esc(rec.note)]] as [string, string][]) : []),
    ...(rec.tags && Object.keys(rec.tags).length
      ? ([
          [
            'tags',
            esc(
              Object.entries(rec.tags)
                .map(([k, v]) => `${k}=${v}`)
                .join(', '),
            ),
          ],
        ] as [string, string][])
      : []),
    ...Object.entries(rec.depends_on ?? {}).map(
      ([role, dep]) => [`built on (${role})`, esc(`${dep.run_dir} (${dep.run_id})`)] as [string, string],
    ),
  ];
  const published = rec.published?.length
    ? table(
        ['metric', 'measured', 'published', 'verdict', 'source'],
        rec.published.map((p) => [
          esc(p.metric),
          `<span class="n">${num(p.measured)}</span>`,
          esc(formatPublished(p)),
          verdictBadge(p.verdict),
          esc(p.source),
        ]),
        'published',
      )
    : '<p class="sub">The config has no published numbers to compare with.</p>';
  const metricRows = Object.entries(rec.metrics ?? {})
    .filter(([k]) => /^(test|val)\//.test(k))
    .sort(([a], [b]) => (a.startsWith('test/') === b.startsWith('test/') ? a.localeCompare(b) : a.startsWith('test/') ? -1 : 1))
    .map(([k, v]) => [esc(k), num(v)]);
  const fp = rec.fingerprint;
  const fingerprint: [string, string][] = fp
    ? [
        ['elbo', esc(fp.elbo_version)],
        ['node', esc(fp.node_version)],
        ['platform', esc(`${fp.platform}, ${fp.cpu} × ${fp.cpus}`)],
        ['host', esc(fp.hostname)],
        ['git', fp.git?.commit ? esc(`${fp.git.commit}${fp.git.dirty ? ' (uncommitted changes)' : ''}`) : 'not a git checkout'],
        ['command', esc(`elbo ${(fp.argv ?? []).join(' ')}`)],
        [
          'packages',
          esc(
            Object.entries(fp.packages ?? {})
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
          ),
        ],
      ]
    : [];
  return [
    `<h1>Run ${esc(rec.experiment)} / ${esc(rec.run_id)} <span class="status ${esc(rec.status)}">${esc(rec.status)}</span></h1>`,
    `<p class="sub">${esc(runDir)}</p>`,
    facts(summary),
    '<h2>Measured against published</h2>',
    published,
    '<h2>Final metrics</h2>',
    metricRows.length ? table(['metric', 'value'], metricRows, 'metrics') : '<p class="sub">No test or validation metrics.</p>',
    '<h2>Figures</h2>',
    pngs.length
      ? pngs.map((f) => figure(path.join(art, f), `artifacts/${f} (SVG beside it)`)).join('\n')
      : '<p class="sub">No figures.</p>',
    '<h2>Config</h2>',
    `<pre>${esc(configYaml)}</pre>`,
    '<h2>Fingerprint</h2>',
    facts(fingerprint),
  ].join('\n');
}

function rank(f: string): number {
  const i = FIGURE_ORDER.indexOf(f);
  return i < 0 ? FIGURE_ORDER.length : i;
}

export function footer(): string {
  return `Written by elbo ${esc(elboVersion())} on ${esc(new Date().toISOString())}.`;
}

/** Write RUN_DIR/artifacts/report.html (the learning curves first, when missing). Returns its path. */
export async function writeRunReport(runDir: string, opts: { record?: RunRecord; curves?: boolean } = {}): Promise<string> {
  const dir = path.resolve(runDir);
  const rec = opts.record ?? readJsonFile<RunRecord>(path.join(dir, 'run.json'), 'run.json');
  if (opts.curves !== false) await writeCurves(dir, rec);
  const configFile = path.join(dir, 'config.yaml');
  const configYaml = fs.existsSync(configFile) ? fs.readFileSync(configFile, 'utf8') : '(config.yaml is missing)';
  const out = path.join(dir, 'artifacts', 'report.html');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, page(`elbo run ${rec.experiment}/${rec.run_id}`, runBody(dir, rec, configYaml), footer()));
  return out;
}
