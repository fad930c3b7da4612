import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import type { LoadedConfig } from '../config/load';
import type { SweepSpec } from './spec';
import { MlflowClient, isHttpUri, redactUri } from '../mlflow/client';
import { Replayer, deferredWarning } from '../mlflow/replay';
import { Spool, SpoolEventBody } from '../mlflow/spool';
import { experimentNameFor, mlflowTrackerPlugin, checkTrackingUri, capTag, userName, mlflowKey } from '../mlflow/tracker';
import { MLFLOW_LIMITS } from '../mlflow/client';
import { gitState } from '../runtime/fingerprint';
import { withOptionDefaults } from '../registry/define';
import type { UserError } from '../errors';

export interface ParentRun {
  runId: string;
  trackingUri: string;
  /** Close the parent: its metrics, files (sweep.json, report, comparison) and status, then send. */
  finish(status: 'FINISHED' | 'FAILED' | 'KILLED', summary: SweepSummary): Promise<void>;
}

export interface SweepSummary {
  cells: number;
  finished: number;
  failed: number;
  /** Files of the sweep directory the parent carries (relative paths: also their artifact paths). */
  files: string[];
  /** The cells' run directories: their logged models become the parent's outputs. */
  runDirs: string[];
}

/** The logged models the runs' spools have created on the server (the cells' models), with their steps. */
function cellModels(runDirs: string[]): { model_id: string; step: number }[] {
  const out: { model_id: string; step: number }[] = [];
  for (const dir of runDirs) {
    if (!Spool.exists(dir)) continue;
    const spool = Spool.open(dir);
    for (const e of spool.all()) {
      const m = e.type === 'model' ? spool.state.models?.[e.uid] : undefined;
      if (m) out.push({ model_id: m.model_id, step: (e as Extract<typeof e, { type: 'model' }>).step });
    }
  }
  return out;
}

/** The swept axes as params: grid.KEY, zip.I.KEY, seeds, random.*, set.KEY, base (values as JSON). */
export function axesParams(spec: SweepSpec): [string, string][] {
  const out: [string, string][] = [];
  const put = (k: string, v: unknown) => {
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    out.push([mlflowKey(k).slice(0, MLFLOW_LIMITS.keyLength), value.slice(0, MLFLOW_LIMITS.paramValueLength)]);
  };
  if (spec.base) put('base', path.relative(path.dirname(spec.file), spec.base));
  for (const [k, v] of Object.entries(spec.set)) put(`set.${k}`, v);
  for (const [k, v] of Object.entries(spec.sweep.grid)) put(`grid.${k}`, v);
  spec.sweep.zip.forEach((group, i) => {
    for (const [k, v] of Object.entries(group)) put(`zip.${i}.${k}`, v);
  });
  if (spec.sweep.seeds) put('seeds', spec.sweep.seeds);
  if (spec.sweep.random) {
    put('random.trials', spec.sweep.random.trials);
    put('random.seed', spec.sweep.random.seed);
    for (const [k, v] of Object.entries(spec.sweep.random.space)) put(`random.${k}`, v);
  }
  return out;
}

/**
 * Append to the parent's spool and send it, under its lock: several processes share a sweep
 * (SLURM array tasks, a second `elbo sweep`), so each waits its turn (at most `timeoutS`),
 * reads the spool afresh, appends (`add`), sends, and lets go. Returns the spool as it is
 * then and why sending stopped, if it did.
 */
async function appendAndSend(
  dir: string,
  init: Parameters<typeof Spool.open>[1],
  client: MlflowClient,
  timeoutS: number,
  add: (spool: Spool) => void,
): Promise<{ spool: Spool; error?: string }> {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const holder = Spool.open(dir, init).lock();
    if (!holder) break;
    if (Date.now() > deadline)
      return { spool: Spool.open(dir, init), error: `the spool is held by process ${holder.pid} on ${holder.host}` };
    await new Promise((r) => setTimeout(r, 200));
  }
  const spool = Spool.open(dir, init);
  try {
    add(spool);
    const o = spool.state.options;
    // whatever another process sent may be on the server already: checked before sending again
    const r = await new Replayer(spool, client, { retries: o.retries, backoffMs: o.backoff_s * 1000, uncertainBelow: Infinity }).flush();
    return { spool, error: r.error };
  } finally {
    spool.unlock();
  }
}

/**
 * The MLflow run a sweep's cells nest under (their tag mlflow.parentRunId), when MLflow
 * is on for the sweep: --tracking-uri, an mlflow tracker in the base config, or
 * MLFLOW_TRACKING_URI. It is spooled like a run (SWEEP_DIR/mlflow/), so rerunning the sweep
 * nests the new cells under the same parent, and `elbo sync SWEEP_DIR` sends what a server
 * that was away missed. It carries the swept axes (params), the user's --tag and --note,
 * and at the end the cell counts, sweep.json, the sweep report and the comparison.
 */
export async function sweepParentRun(
  spec: SweepSpec,
  first: LoadedConfig,
  dir: string,
  cells: number,
  o: { trackingUri?: string; warn: (m: string) => void; env?: NodeJS.ProcessEnv; tags?: Record<string, string>; note?: string },
): Promise<ParentRun | null> {
  const env = o.env ?? process.env;
  const named = first.config.tracking.find((t) => t.kind === 'mlflow');
  const tracker = named ? withOptionDefaults(mlflowTrackerPlugin, named) : undefined;
  const given = o.trackingUri ?? tracker?.tracking_uri ?? env.MLFLOW_TRACKING_URI;
  if (!given || !isHttpUri(given)) return null;
  let uri: string;
  try {
    uri = checkTrackingUri(
      given,
      o.trackingUri ? '--tracking-uri' : tracker?.tracking_uri ? 'tracking: mlflow tracking_uri' : 'MLFLOW_TRACKING_URI',
    );
  } catch (e) {
    // a UserError says its line (with where), anything else its message
    const err = e as Partial<UserError> | null | undefined;
    o.warn(`${err?.line?.() ?? err?.message ?? e}; the sweep is not tracked in MLflow`);
    return null;
  }
  const opts = tracker ?? withOptionDefaults(mlflowTrackerPlugin, { kind: 'mlflow' });
  const client = new MlflowClient(uri, { timeoutMs: opts.timeout_s * 1000, env });
  const init = {
    tracking_uri: uri,
    experiment_name: experimentNameFor(opts, first.config.experiment, env),
    options: { timeout_s: opts.timeout_s, retries: opts.retries, backoff_s: opts.backoff_s },
  };
  const note = [
    `elbo sweep **${spec.name}**: ${cells} cells over ${spec.base ? path.basename(spec.base) : 'several base configs'}.`,
    ...(o.note ? [o.note] : []),
  ].join('\n\n');
  const userTags: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.tags ?? {})) userTags[k] = capTag(v);
  if (o.note) userTags['elbo.note'] = capTag(o.note);
  const { spool, error } = await appendAndSend(dir, init, client, Math.max(opts.timeout_s, 30), (spool) => {
    // another server than the one the parent was sent to: it gets the whole parent
    if (spool.state.tracking_uri !== uri) spool.resetRemote(uri);
    if (!spool.has('create')) {
      const git = gitState(path.dirname(spec.file));
      const tags: Record<string, string> = {
        'mlflow.runName': `sweep ${spec.name}`,
        'mlflow.source.name': spec.file,
        'mlflow.source.type': 'LOCAL',
        'mlflow.user': userName(),
        'mlflow.note.content': capTag(note),
        'elbo.sweep': spec.name,
        'elbo.sweep.cells': String(cells),
        'elbo.sweep_dir': dir,
        ...userTags,
      };
      if (git.commit) tags['mlflow.source.git.commit'] = git.commit;
      if (git.branch) tags['mlflow.source.git.branch'] = git.branch;
      if (git.remote) tags['mlflow.source.git.repoURL'] = git.remote;
      spool.append(
        {
          type: 'create',
          uid: crypto.randomUUID(),
          experiment_name: spool.state.experiment_name,
          run_name: `sweep ${spec.name}`,
          start_time: Date.now(),
          user: userName(),
          tags,
        },
        { type: 'params', params: axesParams(spec) },
      );
    } else {
      spool.append(
        { type: 'tags', tags: { 'mlflow.note.content': capTag(note), 'elbo.status': 'RUNNING', ...userTags } },
        { type: 'status', status: 'RUNNING' },
      );
    }
  });
  const runId = spool.state.run_id;
  if (!runId) {
    o.warn(
      `MLflow at ${redactUri(uri)} is not reachable for the sweep's parent run (${String(error).split('\n')[0]}); cells are tracked without nesting (send the parent later with: elbo sync ${dir})`,
    );
    return null;
  }
  if (error) o.warn(`MLflow is behind for the sweep's parent run: ${error}; send it later with: elbo sync ${dir}`);
  return {
    runId,
    trackingUri: uri,
    finish: async (status, summary) => {
      const now = Date.now();
      const models = cellModels(summary.runDirs);
      const events: SpoolEventBody[] = [
        {
          type: 'metrics',
          metrics: Object.entries({ 'sweep/cells': summary.cells, 'sweep/finished': summary.finished, 'sweep/failed': summary.failed }).map(
            ([key, value]) => ({ key, value, step: 0, timestamp: now }),
          ),
        },
        { type: 'tags', tags: { 'elbo.status': status } },
        // the cells' models as the parent's outputs: MLflow lists the sweep as a training run too
        ...(models.length ? [{ type: 'outputs' as const, models }] : []),
        ...summary.files
          .filter((f) => fs.existsSync(path.join(dir, f)))
          .map((f): SpoolEventBody => ({ type: 'artifact', file: f, path: f })),
        { type: 'status', status, end_time: now },
      ];
      const { spool: sent, error: err } = await appendAndSend(dir, init, client, opts.finish_timeout_s, (s) => s.append(...events));
      if (err) o.warn(`could not send the end of the sweep's MLflow parent run (${err}); send it with: elbo sync ${dir}`);
      const waiting = deferredWarning(sent);
      if (waiting) o.warn(waiting);
    },
  };
}
