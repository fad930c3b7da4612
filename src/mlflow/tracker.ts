import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { stringify as stringifyYaml } from 'yaml';
import { definePlugin, Type, withOptionDefaults, type OptionsOf } from '../registry/define';
import { UserError } from '../errors';
import { isMapping } from '../util/mapping';
import { readJsonFile, readStoredConfig, parseStoredConfig, type StoredConfig } from '../track/run-store';
import { MlflowClient, MlflowMetric, MlflowDatasetInput, MLFLOW_LIMITS, hasCredentials, isHttpUri, redactUri } from './client';
import { Replayer, FlushResult, deferredWarning } from './replay';
import { Spool, SpoolEventBody, SPOOL_DIR } from './spool';
import type { PluginOptions, RunRecord, Tracker } from '../contracts';

/**
 * MLflow as a second tracker (the local run store stays the system of record).
 *
 * Spool first: every event (the run's creation, params, metrics, artifacts, its end) is
 * appended to RUN_DIR/mlflow/spool.jsonl and only then sent, in the background, so a slow
 * or absent server never slows or fails training. What the server has not acknowledged stays
 * in the spool; `elbo sync RUN_DIR` sends it later, exactly once (see mlflow-replay.ts).
 */
const mlflowOptions = {
  tracking_uri: Type.Optional(
    Type.String({
      description:
        'MLflow tracking server, http(s)://host:port (default: --tracking-uri, then MLFLOW_TRACKING_URI). Credentials come from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD, never from here',
    }),
  ),
  experiment_name: Type.Optional(
    Type.String({
      minLength: 1,
      description: "MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, then the config's experiment); created when missing",
    }),
  ),
  run_name: Type.Optional(Type.String({ minLength: 1, description: 'MLflow run name (default: the local run id)' })),
  parent_run_id: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Nest the run under this MLflow run (tag mlflow.parentRunId), e.g. a sweep; default: ELBO_MLFLOW_PARENT_RUN_ID',
    }),
  ),
  timeout_s: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Deadline of one HTTP request (uploads get 1 s more per MB)' }),
  retries: Type.Integer({
    minimum: 0,
    default: 3,
    description: 'Retries of a failed send (network, timeout, HTTP 5xx) before the events wait in the spool',
  }),
  backoff_s: Type.Number({ minimum: 0, default: 1, description: 'First wait between retries; doubles each retry' }),
  finish_timeout_s: Type.Number({
    minimum: 0,
    default: 30,
    description: 'How long the end of a run waits for MLflow to catch up; the rest waits for elbo sync',
  }),
  log_steps: Type.Boolean({
    default: false,
    description: 'Also log the running training losses every train.log_every steps (keys train_step/*)',
  }),
  upload_checkpoint: Type.Boolean({ default: true, description: 'Upload the final checkpoint as artifacts checkpoints/epoch-NNNN/*' }),
  log_model: Type.Boolean({
    default: true,
    description:
      "A finished run logs its model (the evaluated checkpoint, config.yaml and an MLmodel file) as an MLflow 3 logged model, the run's output: MLflow lists the run as a training run",
  }),
  system_metrics: Type.Boolean({
    default: false,
    description: 'Also log CPU and memory use every system_metrics_interval_s (keys system/*, as MLflow names them)',
  }),
  system_metrics_interval_s: Type.Number({ minimum: 0.1, default: 10, description: 'Seconds between two system-metrics samples' }),
  max_param_length: Type.Integer({
    minimum: 100,
    maximum: MLFLOW_LIMITS.paramValueLength,
    default: MLFLOW_LIMITS.paramValueLength,
    description: 'Longest param value the server takes; longer values are cut and listed in tag elbo.params_truncated',
  }),
};
export type MlflowTrackerOptions = OptionsOf<typeof mlflowOptions>;

/** Check a tracking URI given by the user: an http(s) server, no credentials in it. */
export function checkTrackingUri(uri: string, where: string): string {
  if (hasCredentials(uri)) {
    throw new UserError(
      'the tracking URI must not carry credentials; set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD',
      where,
    );
  }
  if (!isHttpUri(uri)) {
    throw new UserError(`tracking URI '${redactUri(uri)}' is not an MLflow tracking server: give http://host:port or https://...`, where);
  }
  // a query string or fragment (?token=...) would be stored with the run (run.json, mlflow/state.json)
  if (/[?#]/.test(uri)) {
    throw new UserError(
      `the tracking URI must not carry a query string or fragment (${redactUri(uri)}?…); credentials go in MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD`,
      where,
    );
  }
  return uri.replace(/\/+$/, '');
}

/**
 * Trackers that the command line, the environment or the run directory turn on beyond the
 * config's `tracking:` list: an `mlflow` tracker when --tracking-uri or MLFLOW_TRACKING_URI
 * is given, or when a resumed run was tracked in MLflow. (They are not written into the
 * resolved config: where a run is tracked does not change what it computes.)
 */
export function mlflowTrackersFor(
  tracking: PluginOptions[],
  o: { trackingUri?: string; resumeDir?: string; env?: NodeJS.ProcessEnv },
): { trackers: PluginOptions[]; warnings: string[] } {
  const env = o.env ?? process.env;
  const named = tracking.filter((t) => t.kind === 'mlflow');
  if (named.length > 1) throw new UserError('name the mlflow tracker once (one MLflow run per elbo run)', 'tracking');
  if (named.length) {
    // fail before the run starts when there is no server to name
    if (o.trackingUri) checkTrackingUri(o.trackingUri, '--tracking-uri');
    else if (withOptionDefaults(mlflowTrackerPlugin, named[0]).tracking_uri)
      checkTrackingUri(withOptionDefaults(mlflowTrackerPlugin, named[0]).tracking_uri!, 'tracking: mlflow tracking_uri');
    else if (!(o.resumeDir && Spool.exists(o.resumeDir)) && !env.MLFLOW_TRACKING_URI) {
      throw new UserError(
        'the mlflow tracker needs a server: set tracking_uri, pass --tracking-uri URI, or set MLFLOW_TRACKING_URI',
        'tracking',
      );
    }
    return { trackers: [], warnings: [] };
  }
  if (o.trackingUri) {
    checkTrackingUri(o.trackingUri, '--tracking-uri');
    return { trackers: [{ kind: 'mlflow' }], warnings: [] };
  }
  if (o.resumeDir && Spool.exists(o.resumeDir)) return { trackers: [{ kind: 'mlflow' }], warnings: [] };
  const fromEnv = env.MLFLOW_TRACKING_URI;
  if (fromEnv) {
    if (!isHttpUri(fromEnv)) {
      return {
        trackers: [],
        warnings: [
          `MLFLOW_TRACKING_URI=${redactUri(fromEnv)} is not an http(s) tracking server; MLflow tracking stays off (the local run store has everything)`,
        ],
      };
    }
    checkTrackingUri(fromEnv, 'MLFLOW_TRACKING_URI');
    return { trackers: [{ kind: 'mlflow' }], warnings: [] };
  }
  return { trackers: [], warnings: [] };
}

// ---- what a run sends ---------------------------------------------------------------------

/** The resolved config as MLflow params: dotted keys, within MLflow's length limits. */
export function configParams(
  config: unknown,
  maxValue = MLFLOW_LIMITS.paramValueLength,
): { params: [string, string][]; tags: Record<string, string> } {
  const flat: [string, string][] = [];
  const walk = (v: unknown, key: string) => {
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== 'object')) flat.push([key, JSON.stringify(v)]);
      else v.forEach((x, i) => walk(x, `${key}.${i}`));
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      if (!entries.length && key) flat.push([key, '{}']);
      for (const [k, x] of entries) walk(x, key ? `${key}.${k}` : k);
    } else if (key) {
      flat.push([key, v === null || v === undefined ? 'null' : String(v)]);
    }
  };
  walk(config, '');
  const truncated: string[] = [];
  const renamed: Record<string, string> = {};
  const params = flat.map(([k, v]): [string, string] => {
    let key = mlflowKey(k);
    if (key.length > MLFLOW_LIMITS.keyLength) {
      key = `${k.slice(0, MLFLOW_LIMITS.keyLength - 9)}~${crypto.createHash('sha256').update(k).digest('hex').slice(0, 8)}`;
      renamed[key] = k;
    }
    if (v.length > maxValue) {
      truncated.push(key);
      return [key, v.slice(0, maxValue)];
    }
    return [key, v];
  });
  const tags: Record<string, string> = {};
  if (truncated.length)
    tags['elbo.params_truncated'] = capTag(
      `${truncated.join(', ')} (cut to ${maxValue} characters; the full values are in the config.yaml artifact)`,
    );
  if (Object.keys(renamed).length) tags['elbo.params_renamed'] = capTag(JSON.stringify(renamed));
  return { params, tags };
}

export function capTag(v: string): string {
  return v.length <= MLFLOW_LIMITS.tagValueLength ? v : v.slice(0, MLFLOW_LIMITS.tagValueLength - 1) + '…';
}

export function userName(): string {
  const env = process.env;
  const u = env.LOGNAME || env.USER || env.LNAME || env.USERNAME;
  if (u) return u;
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** mlflow.note.content: what ran, in a sentence or two (Markdown). */
function note(record: RunRecord, config: StoredConfig | null, runDir: string): string {
  const m = config?.model ?? {};
  const lines = [
    `**${m.kind ?? 'model'}**${m.latent ? ` (latent ${m.latent}${m.prior?.kind ? `, ${m.prior.kind} prior` : ''})` : ''} on **${record.data.name}** ` +
      `(${record.data.train} train / ${record.data.val} val / ${record.data.test} test), ${record.epochs_planned} epochs` +
      `${config?.train?.batch_size ? ` of batch ${config.train.batch_size}` : ''}, seed ${record.seed}, backend ${record.backend.name}.`,
  ];
  if (record.status !== 'RUNNING') {
    const shown = Object.entries(record.metrics)
      .filter(([k]) => k.startsWith('test/'))
      .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    lines.push(
      `${record.status} after ${record.epochs_completed}/${record.epochs_planned} epochs${record.duration_s !== null ? ` in ${record.duration_s.toFixed(1)} s` : ''}` +
        `${shown.length ? `: ${shown.join(', ')}` : ''}.${record.error ? ` ${record.error}` : ''}`,
    );
  }
  if (record.note) lines.push(record.note);
  lines.push(`Local run: \`${runDir}\` (config sha256 ${record.config_sha256.slice(0, 12)}).`);
  return capTag(lines.join('\n\n'));
}

function runTags(
  record: RunRecord,
  config: StoredConfig | null,
  runDir: string,
  o: MlflowTrackerOptions,
  runName: string,
): Record<string, string> {
  const fp = record.fingerprint;
  const tags: Record<string, string> = {
    'mlflow.runName': runName,
    'mlflow.source.name': record.config_file,
    'mlflow.source.type': 'LOCAL',
    'mlflow.user': userName(),
    'mlflow.note.content': note(record, config, runDir),
    'elbo.run_id': record.run_id,
    'elbo.run_dir': runDir,
    'elbo.experiment': record.experiment,
    'elbo.seed': String(record.seed),
    'elbo.backend': `${record.backend.name}${record.backend.version ? ` ${record.backend.version}` : ''}`,
    'elbo.config_sha256': record.config_sha256,
    'elbo.epochs_planned': String(record.epochs_planned),
    'elbo.data_sha256': record.data.sha256,
    'elbo.data': record.data.name,
    'elbo.version': fp.elbo_version,
    'elbo.node_version': fp.node_version,
  };
  // the user's --tag K=V, as they are (elbo.* and mlflow.* are refused when parsed)
  for (const [k, v] of Object.entries(record.tags ?? {})) tags[k] = capTag(v);
  if (record.note) tags['elbo.note'] = capTag(record.note);
  if (record.sweep) {
    // (elbo.sweep is the parent run's tag: a cell names its sweep in elbo.sweep_cell_of)
    tags['elbo.sweep_cell_of'] = capTag(record.sweep.name);
    tags['elbo.sweep_cell'] = capTag(record.sweep.label);
  }
  if (fp.git.commit) tags['mlflow.source.git.commit'] = fp.git.commit;
  if (fp.git.branch) tags['mlflow.source.git.branch'] = fp.git.branch;
  if (fp.git.remote) tags['mlflow.source.git.repoURL'] = fp.git.remote;
  if (fp.git.dirty !== null) tags['elbo.git_dirty'] = String(fp.git.dirty);
  const parent = o.parent_run_id ?? process.env.ELBO_MLFLOW_PARENT_RUN_ID;
  if (parent) tags['mlflow.parentRunId'] = parent;
  if (config?.backend && config.backend !== record.backend.name) tags['elbo.backend_requested'] = String(config.backend);
  return tags;
}

/** MLflow's limit on a dataset digest (mlflow/utils/validation.py). */
const DATASET_DIGEST_LENGTH = 36;

/**
 * The run's data set as an MLflow run input: name, digest (its sha256, cut to the 36
 * characters MLflow stores; the profile has it whole), source and the split sizes.
 */
export function datasetInput(record: RunRecord): MlflowDatasetInput {
  const d = record.data;
  return {
    tags: [{ key: 'mlflow.data.context', value: 'training' }],
    dataset: {
      name: d.name,
      digest: d.sha256.slice(0, DATASET_DIGEST_LENGTH),
      source_type: 'local',
      source: JSON.stringify({ uri: d.source }),
      profile: JSON.stringify({ sha256: d.sha256, train: d.train, val: d.val, test: d.test }),
    },
  };
}

/** The run's name in MLflow: the tracker's run_name, a sweep cell's label, or the local run id. */
function mlflowRunName(o: MlflowTrackerOptions, record: RunRecord): string {
  return o.run_name ?? (process.env.ELBO_MLFLOW_RUN_NAME || record.run_id);
}

/** The events that open a run: its creation and its params. */
function startEvents(
  record: RunRecord,
  configYaml: string,
  runDir: string,
  o: MlflowTrackerOptions,
  experimentName: string,
): SpoolEventBody[] {
  const config = parseStoredConfig(configYaml);
  const runName = mlflowRunName(o, record);
  // params say what ran: the backend the run used, not the config's `auto`
  const { params, tags: paramTags } = configParams(config && { ...config, backend: record.backend.name }, o.max_param_length);
  return [
    {
      type: 'create',
      uid: crypto.randomUUID(),
      experiment_name: experimentName,
      run_name: runName,
      start_time: Date.parse(record.start_time),
      user: userName(),
      tags: { ...runTags(record, config, runDir, o, runName), ...paramTags },
    },
    { type: 'params', params },
    { type: 'inputs', datasets: [datasetInput(record)] },
  ];
}

/**
 * A name MLflow accepts for a metric or param: letters, digits, `_ - . / : space`, and not a
 * path that normalises to something else (`a//b`, `/a`, `a/../b`). Other characters become `_`.
 */
export function mlflowKey(k: string): string {
  const segs = k
    .replace(/[^\p{L}\p{N}_/.\- :]/gu, '_')
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => (s === '..' ? '__' : s));
  return segs.join('/') || '_';
}

/** A metrics.jsonl line (or a logMetrics call) as MLflow metric points. */
function metricPoints(metrics: Record<string, number>, step: number, timestamp: number): MlflowMetric[] {
  return Object.entries(metrics)
    .filter(([, v]) => typeof v === 'number')
    .map(([key, value]) => ({ key: mlflowKey(key), value, step, timestamp }));
}

/** The files of the run directory that a run's end uploads (relative paths, which are also the artifact paths). */
function runFiles(runDir: string, uploadCheckpoint: boolean): string[] {
  const files = ['config.yaml', 'run.json', 'metrics.jsonl'].filter((f) => fs.existsSync(path.join(runDir, f)));
  const art = path.join(runDir, 'artifacts');
  if (fs.existsSync(art))
    for (const f of fs.readdirSync(art).sort()) if (fs.statSync(path.join(art, f)).isFile()) files.push(`artifacts/${f}`);
  if (uploadCheckpoint) {
    const root = path.join(runDir, 'checkpoints');
    const last = fs.existsSync(root)
      ? fs
          .readdirSync(root)
          .filter((n) => /^epoch-\d+$/.test(n) && fs.existsSync(path.join(root, n, 'manifest.json')))
          .sort()
          .at(-1)
      : undefined;
    if (last) for (const f of fs.readdirSync(path.join(root, last)).sort()) files.push(`checkpoints/${last}/${f}`);
  }
  return files;
}

/** The events that close a run: updated summary tags, the run's files, its status and end time. */
function finishEvents(
  record: RunRecord,
  configYaml: string | null,
  runDir: string,
  o: MlflowTrackerOptions,
  already: Set<string>,
): SpoolEventBody[] {
  const config = configYaml ? parseStoredConfig(configYaml) : null;
  const out: SpoolEventBody[] = [
    {
      type: 'tags',
      tags: {
        'mlflow.note.content': note(record, config, runDir),
        'elbo.status': record.status,
        'elbo.epochs_completed': String(record.epochs_completed),
      },
    },
  ];
  for (const f of runFiles(runDir, o.upload_checkpoint)) {
    // PNGs already sent by logArtifact are not sent twice; files that change (run.json, metrics.jsonl) are
    if (!already.has(f)) out.push({ type: 'artifact', file: f, path: f });
  }
  if (o.log_model && record.status === 'FINISHED') {
    const model = modelEvent(record, config, runDir);
    if (model) out.push(model);
  }
  const end = record.end_time ? Date.parse(record.end_time) : Date.now();
  // MLflow has no PAUSED: a paused run ends KILLED there (elbo.status says PAUSED; a resume reopens it)
  if (record.status !== 'RUNNING')
    out.push({ type: 'status', status: record.status === 'PAUSED' ? 'KILLED' : record.status, end_time: end });
  return out;
}

/**
 * The finished run's model as an MLflow 3 logged model: the checkpoint its test metrics were
 * measured on, its config and an MLmodel file (written into the spool folder), with the test
 * metrics of metrics.jsonl (same steps and times, so the run's history gains no point).
 */
function modelEvent(record: RunRecord, config: StoredConfig | null, runDir: string): SpoolEventBody | null {
  const epoch = record.evaluated_on?.epoch ?? record.epochs_completed;
  const ckpt = `checkpoints/epoch-${String(epoch).padStart(4, '0')}`;
  if (!fs.existsSync(path.join(runDir, ckpt, 'manifest.json'))) return null;
  const kind = String(config?.model?.kind ?? 'model');
  const mlmodel = `${SPOOL_DIR}/MLmodel`;
  fs.writeFileSync(
    path.join(runDir, mlmodel),
    stringifyYaml({
      // paths inside the logged model's artifacts: the checkpoint's files are uploaded to checkpoint/
      flavors: {
        elbo: {
          elbo_version: record.fingerprint.elbo_version,
          model: kind,
          checkpoint: 'checkpoint',
          source_checkpoint: ckpt,
          config: 'config.yaml',
          backend: record.backend.name,
          data: record.data.name,
        },
      },
      utc_time_created: new Date().toISOString().replace('T', ' ').replace('Z', ''),
    }),
  );
  const files = [
    { file: mlmodel, path: 'MLmodel' },
    { file: 'config.yaml', path: 'config.yaml' },
    ...fs
      .readdirSync(path.join(runDir, ckpt))
      .sort()
      .map((f) => ({ file: `${ckpt}/${f}`, path: `checkpoint/${f}` })),
  ];
  // the last logged point of each test metric
  const last = new Map<string, MlflowMetric>();
  for (const line of readMetricLines(runDir)) {
    const { step, timestamp, ...m } = line;
    for (const p of metricPoints(m, step, timestamp)) if (p.key.startsWith('test/')) last.set(p.key, p);
  }
  const m = config?.model ?? {};
  const params: [string, string][] = [['kind', kind]];
  if (m.latent !== undefined) params.push(['latent', String(m.latent)]);
  if (m.prior?.kind) params.push(['prior', String(m.prior.kind)]);
  params.push(['data', record.data.name], ['seed', String(record.seed)], ['epoch', String(epoch)]);
  return {
    type: 'model',
    uid: crypto.randomUUID(),
    // named by experiment and model kind (MLflow lists every logged model of an experiment by name)
    name: `${record.experiment}-${kind}`,
    model_type: kind,
    step: epoch,
    files,
    params,
    tags: { 'elbo.run_id': record.run_id, 'elbo.checkpoint': ckpt, 'elbo.config_sha256': record.config_sha256 },
    metrics: [...last.values()],
  };
}

export function experimentNameFor(
  o: Pick<MlflowTrackerOptions, 'experiment_name'>,
  fallback: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  return o.experiment_name ?? (env.MLFLOW_EXPERIMENT_NAME || fallback);
}

// ---- the tracker ---------------------------------------------------------------------------

export class MlflowTracker implements Tracker {
  name = 'mlflow';
  private readonly spool: Spool;
  private readonly client: MlflowClient;
  private readonly replayer: Replayer;
  private readonly abort = new AbortController();
  private readonly warn: (m: string) => void;
  private flushing: Promise<void> | null = null;
  private again = false;
  private behind = false;
  private retryAt = 0;
  private lockedBy: { pid: number; host: string } | null = null;
  private configYaml: string | null = null;
  private readonly uploaded = new Set<string>();
  private sampler: NodeJS.Timeout | null = null;

  constructor(
    private readonly o: MlflowTrackerOptions,
    private readonly runDir: string,
    trackingUri: string,
    experimentFallback: string,
    warn: (m: string) => void,
  ) {
    this.warn = (m) => warn(m);
    this.spool = Spool.open(runDir, {
      tracking_uri: trackingUri,
      experiment_name: experimentNameFor(o, experimentFallback),
      options: { timeout_s: o.timeout_s, retries: o.retries, backoff_s: o.backoff_s },
    });
    if (this.spool.state.tracking_uri !== trackingUri) {
      // a resumed run pointed at another server: that server gets the whole spool
      this.spool.resetRemote(trackingUri);
    }
    this.client = new MlflowClient(trackingUri, {
      timeoutMs: o.timeout_s * 1000,
      signal: this.abort.signal,
      userAgent: `elbo/${safeVersion()}`,
    });
    // events written by an earlier process (a resumed run) may have reached the server already
    this.replayer = new Replayer(this.spool, this.client, {
      retries: o.retries,
      backoffMs: o.backoff_s * 1000,
      uncertainBelow: this.spool.nextSeq,
      warn: this.warn,
      signal: this.abort.signal,
    });
    this.lockedBy = this.spool.lock();
    if (this.lockedBy) {
      this.warn(
        `MLflow: ${path.join(runDir, SPOOL_DIR)} is being sent by process ${this.lockedBy.pid} on ${this.lockedBy.host}; this run only spools its events (send them later with: elbo sync ${runDir})`,
      );
    }
  }

  async start(record: RunRecord, configYaml: string): Promise<void> {
    this.configYaml = configYaml;
    if (this.o.system_metrics) this.startSystemMetrics();
    if (this.spool.has('create')) {
      // a resumed run: the same MLflow run goes on
      this.spool.append(
        {
          type: 'tags',
          tags: {
            'elbo.resumes': String(record.resumes.length),
            'elbo.status': 'RUNNING',
            // --resume --set train.epochs=N: the param train.epochs keeps its first value (MLflow's params never change)
            'elbo.epochs_planned': String(record.epochs_planned),
            'elbo.config_sha256': record.config_sha256,
          },
        },
        { type: 'status', status: 'RUNNING' },
      );
    } else {
      this.spool.append(...startEvents(record, configYaml, this.runDir, this.o, this.spool.state.experiment_name));
      if (record.resumes.length) {
        // MLflow turned on for a resumed run: the epochs before it come from metrics.jsonl
        for (const line of readMetricLines(this.runDir)) {
          const { step, timestamp, ...m } = line;
          this.spool.append({ type: 'metrics', metrics: metricPoints(m, step, timestamp) });
        }
      }
    }
    this.kick();
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestamp: number): Promise<void> {
    const points = metricPoints(metrics, step, timestamp);
    if (points.length) this.spool.append({ type: 'metrics', metrics: points });
    this.kick();
  }

  logStepMetrics(metrics: Record<string, number>, step: number, timestamp: number): void {
    if (!this.o.log_steps) return;
    const renamed = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k.replace(/^train\//, 'train_step/'), v]));
    this.spool.append({ type: 'metrics', metrics: metricPoints(renamed, step, timestamp) });
    this.kick();
  }

  async logArtifact(localPath: string, artifactPath: string): Promise<void> {
    const rel = path.relative(this.runDir, path.resolve(localPath)).split(path.sep).join('/');
    if (rel.startsWith('..') || this.uploaded.has(rel)) return;
    this.uploaded.add(rel);
    this.spool.append({ type: 'artifact', file: rel, path: rel.startsWith('artifacts/') ? rel : `artifacts/${artifactPath}` });
    this.kick();
  }

  /**
   * System metrics every system_metrics_interval_s, spooled like every other point: CPU use of
   * the machine since the last sample, and its memory (MLflow's own keys, system/*). Steps
   * count samples; a resumed run goes on after the last one it logged.
   */
  private startSystemMetrics(): void {
    let step = this.spool
      .all()
      .reduce(
        (n, e) => (e.type === 'metrics' && e.metrics.some((m) => m.key.startsWith('system/')) ? Math.max(n, e.metrics[0].step + 1) : n),
        0,
      );
    let last = cpuTimes();
    this.sampler = setInterval(() => {
      const now = cpuTimes();
      const total = now.total - last.total;
      const busy = total - (now.idle - last.idle);
      last = now;
      const used = os.totalmem() - os.freemem();
      const metrics = {
        'system/cpu_utilization_percentage': total > 0 ? Math.round((1000 * busy) / total) / 10 : 0,
        'system/system_memory_usage_megabytes': Math.round(used / 1048576),
        'system/system_memory_usage_percentage': Math.round((1000 * used) / os.totalmem()) / 10,
      };
      this.spool.append({ type: 'metrics', metrics: metricPoints(metrics, step++, Date.now()) });
      this.kick();
    }, this.o.system_metrics_interval_s * 1000);
    this.sampler.unref();
  }

  async finish(record: RunRecord): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
    this.spool.append(...finishEvents(record, this.configYaml, this.runDir, this.o, this.uploaded));
    if (this.lockedBy) return;
    // one last flush, bounded: a run never waits longer than finish_timeout_s for MLflow
    const deadline = this.o.finish_timeout_s * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), deadline)));
    const done = (async () => {
      if (this.flushing) await this.flushing;
      this.retryAt = 0;
      this.kick(this.behind ? 0 : undefined);
      if (this.flushing) await this.flushing;
      return 'done' as const;
    })();
    const how = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (how === 'timeout') this.abort.abort();
    const queued = this.spool.queued().length;
    if (queued) {
      this.warn(
        `MLflow is behind: ${queued} event${queued === 1 ? '' : 's'} of this run are not on ${this.client.shownUri} yet; they are kept in ${this.spool.file}; send them with: elbo sync ${this.runDir}`,
      );
    }
    // artifacts whose location this machine cannot write: said once, at the end
    const waiting = deferredWarning(this.spool);
    if (waiting) this.warn(waiting);
    this.spool.unlock();
  }

  /** Flush in the background (training never waits for MLflow). */
  private kick(retries?: number): void {
    if (this.lockedBy || this.abort.signal.aborted) return;
    if (this.flushing) {
      this.again = true;
      return;
    }
    if (Date.now() < this.retryAt) return;
    this.flushing = this.loop(retries).finally(() => (this.flushing = null));
  }

  private async loop(retries?: number): Promise<void> {
    do {
      this.again = false;
      const r: FlushResult = await this.replayer.flush(retries ?? (this.behind ? 0 : this.o.retries));
      if (r.error) {
        if (!this.behind) {
          this.warn(
            `MLflow is behind: ${r.error}; training goes on, events are kept in ${this.spool.file} and sent when the server answers (or by: elbo sync ${this.runDir})`,
          );
        }
        this.behind = true;
        // while the server is away, try again now and then, not at every event
        this.retryAt = Date.now() + Math.max(1000, this.o.backoff_s * 1000 * 2 ** this.o.retries);
        return;
      }
      if (this.behind) {
        this.behind = false;
        this.warn(`MLflow caught up: ${r.sent} spooled event${r.sent === 1 ? '' : 's'} sent to ${this.client.shownUri}`);
      }
    } while (this.again);
  }
}

/** The machine's CPU time so far, in ms: all of it, and idle. */
function cpuTimes(): { total: number; idle: number } {
  let total = 0;
  let idle = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
    idle += t.idle;
  }
  return { total, idle };
}

function safeVersion(): string {
  try {
    return require(path.resolve(__dirname, '..', '..', '..', 'package.json')).version;
  } catch {
    return '0';
  }
}

function readMetricLines(runDir: string): ({ step: number; timestamp: number } & Record<string, number>)[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((m) => typeof m.step === 'number' && typeof m.timestamp === 'number');
}

export const mlflowTrackerPlugin = definePlugin({
  kind: 'tracker',
  name: 'mlflow',
  description:
    'An MLflow tracking server (REST API): params, per-epoch metrics, tags, artifacts; spooled in RUN_DIR/mlflow/ first, `elbo sync` sends what the server missed',
  options: mlflowOptions,
  create(o, ctx) {
    const runDir = ctx.runDir;
    if (!runDir) throw new Error('the mlflow tracker needs the run directory (ctx.runDir)');
    const flag = ctx.trackingUri;
    const env = process.env;
    const stored = Spool.exists(runDir) ? Spool.open(runDir).state.tracking_uri : undefined;
    let uri: string;
    if (flag) uri = checkTrackingUri(flag, '--tracking-uri');
    else if (o.tracking_uri) uri = checkTrackingUri(o.tracking_uri, 'tracking: mlflow tracking_uri');
    else if (stored) uri = stored;
    else if (env.MLFLOW_TRACKING_URI) uri = checkTrackingUri(env.MLFLOW_TRACKING_URI, 'MLFLOW_TRACKING_URI');
    else
      throw new UserError(
        'the mlflow tracker needs a server: set tracking_uri, pass --tracking-uri URI, or set MLFLOW_TRACKING_URI',
        'tracking',
      );
    const warn = ctx.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
    return new MlflowTracker(o, runDir, uri, ctx.experiment, warn);
  },
});

// ---- elbo sync -----------------------------------------------------------------------------

export interface SyncReport {
  runDir: string;
  status: 'synced' | 'up-to-date' | 'busy' | 'failed';
  trackingUri: string | null;
  experiment: string | null;
  mlflowRunId: string | null;
  sent: number;
  pending: number;
  skipped: number;
  /** Events that wait for an artifact location this machine cannot write (part of pending). */
  deferred: number;
  imported?: boolean;
  /** Why sending stopped (server away, refused credentials, deleted experiment). */
  error?: string;
  /** Where and why files wait, and what to do (deferred events); status is then 'failed'. */
  waiting?: string;
}

/**
 * Send what a run's spool holds and the server lacks. A run directory without a spool (a
 * run made with MLflow off) is imported when a tracking URI is given: its spool is written
 * from run.json, config.yaml, metrics.jsonl and its files, with the original timestamps.
 */
export async function syncRun(
  runDir: string,
  o: { trackingUri?: string; env?: NodeJS.ProcessEnv; warn?: (m: string) => void; timeoutS?: number } = {},
): Promise<SyncReport> {
  const dir = path.resolve(runDir);
  const env = o.env ?? process.env;
  // a sweep directory has a spool (its parent run) and no run.json
  if (!fs.existsSync(path.join(dir, 'run.json')) && !Spool.exists(dir))
    throw new UserError('not a run directory (no run.json); give runs/<experiment>/<runId>', runDir);
  let imported = false;
  if (!Spool.exists(dir)) {
    const uri = o.trackingUri ?? env.MLFLOW_TRACKING_URI;
    if (!uri)
      throw new UserError(
        'this run was not tracked in MLflow (no mlflow/ folder); to send it, give --tracking-uri URI or set MLFLOW_TRACKING_URI',
        runDir,
      );
    importRun(dir, checkTrackingUri(uri, o.trackingUri ? '--tracking-uri' : 'MLFLOW_TRACKING_URI'));
    imported = true;
  }
  const spool = Spool.open(dir);
  if (o.trackingUri) {
    const uri = checkTrackingUri(o.trackingUri, '--tracking-uri');
    if (uri !== spool.state.tracking_uri) spool.resetRemote(uri);
  }
  const opts = spool.state.options;
  const client = new MlflowClient(spool.state.tracking_uri, {
    timeoutMs: (o.timeoutS ?? opts.timeout_s) * 1000,
    env,
    userAgent: `elbo/${safeVersion()}`,
  });
  const base = { runDir: dir, trackingUri: client.shownUri, experiment: spool.state.experiment_name, ...(imported ? { imported } : {}) };
  const holder = spool.lock();
  if (holder) {
    return {
      ...base,
      status: 'busy',
      mlflowRunId: spool.state.run_id ?? null,
      sent: 0,
      pending: spool.pending().length,
      skipped: 0,
      deferred: spool.state.deferred?.length ?? 0,
      error: `being sent by process ${holder.pid} on ${holder.host}`,
    };
  }
  try {
    if (!spool.pending().length)
      return { ...base, status: 'up-to-date', mlflowRunId: spool.state.run_id ?? null, sent: 0, pending: 0, skipped: 0, deferred: 0 };
    // another process sent these events before: whatever may have arrived is checked first;
    // files that waited for their artifact location are tried again
    const replayer = new Replayer(spool, client, {
      retries: opts.retries,
      backoffMs: opts.backoff_s * 1000,
      uncertainBelow: Infinity,
      warn: o.warn,
      retryDeferred: true,
    });
    const r = await replayer.flush();
    const waiting = deferredWarning(spool);
    return {
      ...base,
      status: r.error || waiting ? 'failed' : 'synced',
      mlflowRunId: spool.state.run_id ?? null,
      sent: r.sent,
      pending: r.pending,
      skipped: r.skipped,
      deferred: r.deferred,
      ...(r.error ? { error: r.error } : {}),
      ...(waiting ? { waiting } : {}),
    };
  } finally {
    spool.unlock();
  }
}

/** Write the spool of a run that was made with MLflow off, from what its directory holds. */
function importRun(runDir: string, trackingUri: string): void {
  const record = readJsonFile<RunRecord>(path.join(runDir, 'run.json'), 'run.json');
  const config = readStoredConfig(runDir);
  const configYaml = fs.readFileSync(path.join(runDir, 'config.yaml'), 'utf8');
  const trackers: unknown[] = Array.isArray(config.tracking) ? config.tracking : [];
  const fromConfig = trackers.find((t): t is PluginOptions => isMapping(t) && t.kind === 'mlflow') ?? {};
  const o = withOptionDefaults<MlflowTrackerOptions>(mlflowTrackerPlugin, { ...fromConfig, kind: 'mlflow', tracking_uri: trackingUri });
  const spool = Spool.open(runDir, {
    tracking_uri: trackingUri,
    experiment_name: experimentNameFor(o, record.experiment),
    options: { timeout_s: o.timeout_s, retries: o.retries, backoff_s: o.backoff_s },
  });
  spool.append(...startEvents(record, configYaml, runDir, o, spool.state.experiment_name));
  for (const line of readMetricLines(runDir)) {
    const { step, timestamp, ...m } = line;
    spool.append({ type: 'metrics', metrics: metricPoints(m, step, timestamp) });
  }
  spool.append(...finishEvents(record, configYaml, runDir, o, new Set()));
}

/** Run directories under a runs root whose MLflow spool has events the server lacks. */
export function runsWithSpool(runsRoot: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(runsRoot)) return out;
  for (const exp of fs.readdirSync(runsRoot).sort()) {
    const expDir = path.join(runsRoot, exp);
    if (!fs.statSync(expDir).isDirectory()) continue;
    for (const run of fs.readdirSync(expDir).sort()) {
      const dir = path.join(expDir, run);
      if (Spool.exists(dir) && Spool.open(dir).pending().length) out.push(dir);
    }
  }
  return out;
}
