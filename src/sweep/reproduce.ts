import * as fs from 'fs';
import * as path from 'path';
import { runExperiment } from '../experiment';
import { RunStore } from '../track/run-store';
import { UserError, type Caught } from '../errors';
import { Spool } from '../mlflow/spool';
import { syncRun } from '../mlflow/tracker';
import { RunRecord } from '../contracts';

/** Metrics that measure the machine, not the model: never compared. */
const TIMING = /samples_per_sec|time_s$|_seconds$/;

export interface ReproReport {
  original: string;
  rerun: string | null;
  passed: boolean;
  /** Relative tolerance applied (null: exact, the default on the same backend). */
  tolerance: number | null;
  metrics: { name: string; recorded: number | null; reproduced: number | null; diff: number | null; ok: boolean }[];
  fingerprint: { field: string; recorded: unknown; reproduced: unknown }[];
  causes: string[];
}

function fingerprintFields(r: RunRecord): Record<string, unknown> {
  const f: Record<string, unknown> = {
    elbo_version: r.fingerprint.elbo_version,
    'git.commit': r.fingerprint.git.commit,
    'git.dirty': r.fingerprint.git.dirty,
    backend: `${r.backend.name} ${r.backend.version}${r.backend.tensorflow ? ` (TF ${r.backend.tensorflow})` : ''}`,
    node_version: r.fingerprint.node_version,
    platform: r.fingerprint.platform,
    'data.sha256': r.data.sha256,
    config_sha256: r.config_sha256,
  };
  for (const [k, v] of Object.entries(r.fingerprint.packages)) f[`packages.${k}`] = v;
  return f;
}

/** The last value of each metric in metrics.jsonl, to catch a run.json edited by hand. */
function loggedMetrics(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    for (const [k, v] of Object.entries(JSON.parse(line))) if (typeof v === 'number' && k.includes('/')) out[k] = v;
  }
  return out;
}

/**
 * metrics.jsonl must hold one line per epoch 1..epochs: a missing line (a run killed between
 * its checkpoint and its metrics, by an elbo that did not recover it) or a doubled one is a
 * record that cannot be trusted.
 */
export function epochLineProblems(store: RunStore, epochs: number): string[] {
  let lines: Record<string, number>[];
  try {
    lines = store.readMetrics();
  } catch (e) {
    return [`metrics.jsonl is damaged: ${String((e as Caught)?.message ?? e).split('\n')[0]}`];
  }
  const count = new Map<number, number>();
  for (const l of lines) if (typeof l.epoch === 'number') count.set(l.epoch, (count.get(l.epoch) ?? 0) + 1);
  const missing = Array.from({ length: epochs }, (_, i) => i + 1).filter((e) => !count.has(e));
  const doubled = [...count].filter(([, n]) => n > 1).map(([e]) => e);
  const out: string[] = [];
  if (missing.length) out.push(`metrics.jsonl has no line for epoch ${missing.join(', ')} of ${epochs}: the record is incomplete`);
  if (doubled.length) out.push(`metrics.jsonl has epoch ${doubled.join(', ')} more than once: the record is inconsistent`);
  return out;
}

/**
 * Rerun a finished run from its record (resolved config, seed, data paths) and compare:
 * every final metric old vs new, and every fingerprint field that differs. Passes only
 * when the metrics match: exactly on the same backend, else within `tolerance`
 * (relative). The report is written into the new run (artifacts/reproduce-report.*).
 */
export async function reproduce(
  runDir: string,
  o: { tolerance?: number; runsDir?: string; progress?: boolean; backend?: string; trackingUri?: string; warn?: (m: string) => void },
): Promise<ReproReport> {
  const store = RunStore.open(runDir);
  const old = store.readRecord();
  if (old.status !== 'FINISHED') throw new UserError(`run ${old.run_id} is ${old.status}; only a finished run can be reproduced`, runDir);
  const result = await runExperiment({
    config: store.file('config.yaml'),
    baseDir: old.config_dir,
    // by default the rerun is one more run of the same experiment, beside the original
    runsDir: o.runsDir ?? path.dirname(path.dirname(store.dir)),
    backend: o.backend ?? old.backend.name,
    progress: o.progress,
    trackingUri: o.trackingUri,
  });
  const fresh = RunStore.open(result.runDir).readRecord();
  const causes: string[] = [];
  if (result.status !== 'FINISHED') causes.push(`the rerun ended ${result.status}: ${result.error ?? ''}`.trim());

  const sameBackend = fresh.backend.name === old.backend.name && fresh.backend.version === old.backend.version;
  const tolerance = o.tolerance ?? (sameBackend ? null : 1e-4);
  const names = [...new Set([...Object.keys(old.metrics), ...Object.keys(fresh.metrics)])].filter((k) => !TIMING.test(k)).sort();
  const metrics = names.map((name) => {
    const a = old.metrics[name] ?? null;
    const b = fresh.metrics[name] ?? null;
    const diff = a !== null && b !== null ? b - a : null;
    const ok = a !== null && b !== null && (tolerance === null ? a === b : Math.abs(b - a) <= tolerance * Math.max(Math.abs(a), 1e-12));
    return { name, recorded: a, reproduced: b, diff, ok };
  });
  for (const m of metrics.filter((x) => !x.ok)) {
    causes.push(
      m.recorded === null
        ? `${m.name} was not recorded`
        : m.reproduced === null
          ? `${m.name} was not reproduced`
          : `${m.name}: recorded ${m.recorded}, reproduced ${m.reproduced}`,
    );
  }
  // train.select: the test metrics must come from the same checkpoint
  const evaluated = (r: RunRecord) =>
    r.evaluated_on ? `the ${r.evaluated_on.checkpoint} checkpoint (epoch ${r.evaluated_on.epoch})` : 'nothing';
  if (result.status === 'FINISHED' && old.evaluated_on && evaluated(old) !== evaluated(fresh)) {
    causes.push(`the recorded test metrics were measured on ${evaluated(old)}, the rerun's on ${evaluated(fresh)}`);
  }
  causes.push(...epochLineProblems(store, old.epochs_completed));
  const logged = loggedMetrics(store.dir);
  for (const [k, v] of Object.entries(old.metrics)) {
    if (k in logged && logged[k] !== v && !TIMING.test(k))
      causes.push(`run.json says ${k} = ${v} but metrics.jsonl logged ${logged[k]}: the record was edited`);
  }
  const fa = fingerprintFields(old);
  const fb = fingerprintFields(fresh);
  const fingerprint = [...new Set([...Object.keys(fa), ...Object.keys(fb)])]
    .filter((k) => JSON.stringify(fa[k]) !== JSON.stringify(fb[k]))
    .map((field) => ({ field, recorded: fa[field] ?? null, reproduced: fb[field] ?? null }));
  for (const f of fingerprint) {
    if (f.field === 'data.sha256')
      causes.push(`the data changed since the run: sha256 ${String(f.recorded).slice(0, 12)}… → ${String(f.reproduced).slice(0, 12)}…`);
    if (f.field === 'config_sha256') causes.push('the resolved config differs from the recorded one');
  }
  const report: ReproReport = {
    original: store.dir,
    rerun: result.runDir,
    passed: causes.length === 0,
    tolerance,
    metrics,
    fingerprint,
    causes,
  };
  const rerun = RunStore.open(result.runDir);
  fs.writeFileSync(rerun.artifact('reproduce-report.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(rerun.artifact('reproduce-report.md'), reportText(report));
  await logReport(store.dir, rerun.dir, report, o.warn ?? ((m) => process.stderr.write(`warning: ${m}\n`)));
  return report;
}

/**
 * A rerun tracked in MLflow gets the report too: its two files as artifacts and tags that say
 * what it reproduced and whether it passed, spooled and sent like the run's own events.
 */
async function logReport(originalDir: string, rerunDir: string, report: ReproReport, warn: (m: string) => void): Promise<void> {
  if (!Spool.exists(rerunDir)) return;
  const original = RunStore.open(originalDir).readRecord();
  const originalMlflow = Spool.exists(originalDir)
    ? Spool.open(originalDir).state.run_id
    : /^mlflow-([0-9a-f]{32})$/.exec(path.basename(originalDir))?.[1];
  const tags: Record<string, string> = {
    'elbo.reproduces': original.run_id,
    'elbo.reproduce.passed': String(report.passed),
    ...(originalMlflow ? { 'elbo.reproduces.mlflow_run_id': originalMlflow } : {}),
  };
  Spool.open(rerunDir).append(
    { type: 'tags', tags },
    ...['reproduce-report.json', 'reproduce-report.md'].map((f) => ({
      type: 'artifact' as const,
      file: `artifacts/${f}`,
      path: `artifacts/${f}`,
    })),
  );
  const r = await syncRun(rerunDir, { warn });
  if (r.status !== 'synced' && r.status !== 'up-to-date')
    warn(`MLflow does not have the reproduction report yet (${r.error ?? r.status}); send it with: elbo sync ${rerunDir}`);
}

export function reportText(r: ReproReport): string {
  const lines = [
    `reproduction of ${r.original}`,
    `rerun: ${r.rerun}`,
    `result: ${r.passed ? 'PASSED' : 'FAILED'} (${r.tolerance === null ? 'exact match required' : `relative tolerance ${r.tolerance}`})`,
    '',
    'metric                            recorded            reproduced          difference',
    ...r.metrics.map(
      (m) => `${m.ok ? ' ' : '✗'} ${m.name.padEnd(32)} ${String(m.recorded).padEnd(19)} ${String(m.reproduced).padEnd(19)} ${m.diff ?? ''}`,
    ),
    '',
    r.fingerprint.length ? 'fingerprint fields that differ:' : 'fingerprint: identical',
    ...r.fingerprint.map((f) => `  ${f.field}: ${JSON.stringify(f.recorded)} → ${JSON.stringify(f.reproduced)}`),
  ];
  if (r.causes.length) lines.push('', 'causes:', ...r.causes.map((c) => `  - ${c}`));
  return lines.join('\n') + '\n';
}

/**
 * An MLflow run's record (its run.json, config.yaml and metrics.jsonl artifacts, as elbo
 * uploads them) copied into `dest` as a run directory that `reproduce` can read.
 */
export async function fetchMlflowRun(runId: string, trackingUri: string, dest: string): Promise<string> {
  const { MlflowClient, MlflowError } = await import('../mlflow/client');
  const { ArtifactStore } = await import('../mlflow/artifacts');
  const client = new MlflowClient(trackingUri, { timeoutMs: 30_000 });
  // the proxy, or a shared file system's path (a server without the proxy)
  const artifacts = new ArtifactStore(client, async () => null);
  let info;
  try {
    info = (await client.getRun(runId)).info;
  } catch (e) {
    throw new UserError(
      e instanceof MlflowError && e.status === 404
        ? `no MLflow run ${runId} on ${client.shownUri}`
        : `cannot read MLflow run ${runId}: ${(e as Error).message}`,
      runId,
    );
  }
  const dir = path.join(dest, `mlflow-${runId}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['run.json', 'config.yaml', 'metrics.jsonl']) {
    try {
      fs.writeFileSync(path.join(dir, f), await artifacts.get(info.artifact_uri, f));
    } catch (e) {
      if (f === 'metrics.jsonl') continue;
      throw new UserError(
        `MLflow run ${runId} has no ${f} artifact (was it logged by elbo? try elbo sync): ${(e as Error).message}`,
        runId,
      );
    }
  }
  return dir;
}
