import * as fs from 'fs';
import * as path from 'path';
import type { Caught } from '../errors';

/**
 * A small client for the MLflow tracking server's REST API 2.0 (and its artifact proxy,
 * `mlflow-artifacts`), written against Node's fetch. Every call is one HTTP request with a
 * deadline; retries and back-off belong to the caller (the spool replay), which knows
 * whether repeating a request is safe.
 *
 * Credentials come from the environment only, as MLflow's own clients read them:
 * MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD (HTTP Basic; they win when both are
 * set) or MLFLOW_TRACKING_TOKEN (Bearer). They are sent in the Authorization header and
 * appear in nothing else: not in messages, URLs, the spool or anything logged.
 */

/** MLflow's own batch limits (mlflow/utils/validation.py). */
export const MLFLOW_LIMITS = {
  paramsTagsPerBatch: 100,
  metricsPerBatch: 1000,
  entitiesPerBatch: 1000,
  /** Bytes of one log-batch request. */
  batchRequestBytes: 1_000_000,
  paramValueLength: 6000,
  tagValueLength: 8000,
  keyLength: 250,
};

export interface MlflowMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  /** MLflow 3: the point also belongs to this logged model (its metrics in the Models tab). */
  model_id?: string;
}

export interface MlflowRunInfo {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: string;
}

export interface MlflowRun {
  info: MlflowRunInfo;
  data: {
    metrics?: MlflowMetric[];
    params?: { key: string; value: string }[];
    tags?: { key: string; value: string }[];
  };
  inputs?: { dataset_inputs?: MlflowDatasetInput[] };
  outputs?: MlflowRunOutputs;
}

export interface MlflowRunOutputs {
  model_outputs?: { model_id: string; step?: number | string }[];
}

/** A data set as a run input (MLflow's Dataset with its input tags, e.g. mlflow.data.context). */
export interface MlflowDatasetInput {
  tags: { key: string; value: string }[];
  dataset: { name: string; digest: string; source_type: string; source: string; schema?: string; profile?: string };
}

export interface MlflowLoggedModel {
  info: {
    model_id: string;
    experiment_id: string;
    name: string;
    artifact_uri: string;
    status?: string;
    source_run_id?: string;
    model_type?: string;
    tags?: { key: string; value: string }[];
  };
  data?: { params?: { key: string; value: string }[]; metrics?: (MlflowMetric & { model_id?: string })[] };
}

export interface MlflowExperiment {
  experiment_id: string;
  name: string;
  lifecycle_stage: string;
  artifact_location?: string;
}

/** A failed call. `transient` errors (network, timeout, 5xx, 429) are worth retrying. */
export class MlflowError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly errorCode: string | null,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'MlflowError';
  }
  /** 401/403: the server refused the credentials. */
  get unauthorized(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

import { redactUri, isHttpUri, hasCredentials } from '../util/uri';

export { redactUri, isHttpUri, hasCredentials };

/** The Authorization header MLflow's Python client would send for this environment. */
export function authHeader(env: NodeJS.ProcessEnv = process.env): string | null {
  const user = env.MLFLOW_TRACKING_USERNAME;
  const pass = env.MLFLOW_TRACKING_PASSWORD;
  if (user && pass) return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
  if (env.MLFLOW_TRACKING_TOKEN) return `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
  return null;
}

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.json': 'application/json',
  '.jsonl': 'application/jsonl',
  '.yaml': 'text/yaml',
  '.yml': 'text/yaml',
  '.txt': 'text/plain',
  '.html': 'text/html',
  '.svg': 'image/svg+xml',
  '.bin': 'application/octet-stream',
};

export interface MlflowClientOptions {
  /** Per request, milliseconds. Uploads get at least 1 s more per MB. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Aborts every request in flight (a run that must end now). */
  signal?: AbortSignal;
  userAgent?: string;
}

export class MlflowClient {
  readonly baseUrl: string;
  /** The URI without credentials or query: what messages and files show. */
  readonly shownUri: string;
  private readonly auth: string | null;

  constructor(
    trackingUri: string,
    private readonly o: MlflowClientOptions,
  ) {
    this.baseUrl = trackingUri.replace(/\/+$/, '');
    this.shownUri = redactUri(trackingUri);
    this.auth = authHeader(o.env ?? process.env);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { 'User-Agent': this.o.userAgent ?? 'elbo', ...extra };
    if (this.auth) h.Authorization = this.auth;
    return h;
  }

  /**
   * One request; parses MLflow's JSON errors into MlflowError. T is the answer as MLflow's REST
   * API documents it (its JSON, {} when empty; the bytes with `raw`), which is not checked here.
   */
  async request<T = unknown>(
    method: string,
    apiPath: string,
    opts: {
      query?: Record<string, string | number | undefined>;
      json?: unknown;
      // over an ArrayBuffer of its own, as a file read gives (fetch sends none over a SharedArrayBuffer)
      body?: Buffer<ArrayBuffer>;
      contentType?: string;
      timeoutMs?: number;
      raw?: boolean;
    } = {},
  ): Promise<T> {
    let url = this.baseUrl + apiPath;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) url += (url.includes('?') ? '&' : '?') + s;
    }
    const headers = this.headers(
      opts.json !== undefined ? { 'Content-Type': 'application/json' } : opts.contentType ? { 'Content-Type': opts.contentType } : {},
    );
    const timeoutMs = opts.timeoutMs ?? this.o.timeoutMs;
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (this.o.signal) signals.push(this.o.signal);
    const what = `${method} ${apiPath.replace(/^\/api\/2\.0\//, '')}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.json !== undefined ? JSON.stringify(opts.json) : opts.body,
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      const cause =
        (e as Caught)?.name === 'TimeoutError'
          ? `no answer within ${(timeoutMs / 1000).toFixed(1)} s`
          : (e as Caught)?.name === 'AbortError'
            ? 'aborted'
            : networkReason(e);
      throw new MlflowError(`MLflow at ${this.shownUri}: ${what}: ${cause}`, null, null, true);
    }
    let text: string;
    let buf: Buffer | undefined;
    try {
      if (opts.raw && res.ok) buf = Buffer.from(await res.arrayBuffer());
      text = buf ? '' : await res.text();
    } catch (e) {
      throw new MlflowError(`MLflow at ${this.shownUri}: ${what}: reading the answer failed: ${networkReason(e)}`, res.status, null, true);
    }
    if (!res.ok) {
      let code: string | null = null;
      let msg = text.slice(0, 300);
      try {
        const j = JSON.parse(text);
        code = j.error_code ?? null;
        msg = j.message ?? msg;
      } catch {
        /* not JSON (a proxy's HTML page, say) */
      }
      const transient = res.status >= 500 || res.status === 429 || res.status === 408;
      throw new MlflowError(
        `MLflow at ${this.shownUri}: ${what}: HTTP ${res.status}${code ? ` ${code}` : ''}: ${oneLine(msg)}`,
        res.status,
        code,
        transient,
      );
    }
    if (buf) return buf as T;
    if (!text) return {} as T;
    try {
      return JSON.parse(text);
    } catch {
      throw new MlflowError(
        `MLflow at ${this.shownUri}: ${what}: the answer is not JSON (is this an MLflow tracking server?)`,
        res.status,
        null,
        false,
      );
    }
  }

  // ---- experiments -------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<MlflowExperiment | null> {
    try {
      const r = await this.request<{ experiment?: MlflowExperiment }>('GET', '/api/2.0/mlflow/experiments/get-by-name', {
        query: { experiment_name: name },
      });
      return r.experiment ?? null;
    } catch (e) {
      if (e instanceof MlflowError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw e;
    }
  }

  async getExperiment(experimentId: string): Promise<MlflowExperiment> {
    const r = await this.request<{ experiment: MlflowExperiment }>('GET', '/api/2.0/mlflow/experiments/get', {
      query: { experiment_id: experimentId },
    });
    return r.experiment;
  }

  async createExperiment(name: string): Promise<string> {
    const r = await this.request<{ experiment_id: string }>('POST', '/api/2.0/mlflow/experiments/create', { json: { name } });
    return r.experiment_id;
  }

  // ---- runs ----------------------------------------------------------------------------

  async createRun(body: {
    experiment_id: string;
    run_name?: string;
    start_time: number;
    user_id?: string;
    tags: { key: string; value: string }[];
  }): Promise<MlflowRunInfo> {
    const r = await this.request<{ run: MlflowRun }>('POST', '/api/2.0/mlflow/runs/create', { json: body });
    return r.run.info;
  }

  async getRun(runId: string): Promise<MlflowRun> {
    const r = await this.request<{ run: MlflowRun }>('GET', '/api/2.0/mlflow/runs/get', { query: { run_id: runId } });
    return r.run;
  }

  /** Runs of the experiment whose tag `key` is `value` (all lifecycle stages). */
  async searchRunsByTag(experimentId: string, key: string, value: string): Promise<MlflowRun[]> {
    const r = await this.request<{ runs?: MlflowRun[] }>('POST', '/api/2.0/mlflow/runs/search', {
      json: {
        experiment_ids: [experimentId],
        filter: `tags.\`${key}\` = '${value.replace(/'/g, "\\'")}'`,
        run_view_type: 'ALL',
        max_results: 10,
      },
    });
    return r.runs ?? [];
  }

  async updateRun(runId: string, status: string, endTime?: number): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/update', {
      json: { run_id: runId, status, ...(endTime !== undefined ? { end_time: endTime } : {}) },
    });
  }

  async logBatch(
    runId: string,
    batch: { metrics?: MlflowMetric[]; params?: { key: string; value: string }[]; tags?: { key: string; value: string }[] },
  ): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {
      json: {
        run_id: runId,
        metrics: (batch.metrics ?? []).map((m) => ({ ...m, value: jsonNumber(m.value) })),
        params: batch.params ?? [],
        tags: batch.tags ?? [],
      },
    });
  }

  /** Every point of one metric (follows page tokens). */
  async metricHistory(runId: string, key: string): Promise<MlflowMetric[]> {
    const out: MlflowMetric[] = [];
    let token: string | undefined;
    for (;;) {
      // (proto3 JSON: a double JSON cannot carry, and an int64, may come as a string)
      const r = await this.request<{
        metrics?: { key: string; value: number | string; timestamp: number | string; step?: number | string }[];
        next_page_token?: string;
      }>('GET', '/api/2.0/mlflow/metrics/get-history', {
        query: { run_id: runId, metric_key: key, max_results: 25000, page_token: token },
      });
      for (const m of r.metrics ?? [])
        out.push({ key: m.key, value: Number(m.value), timestamp: Number(m.timestamp), step: Number(m.step ?? 0) });
      token = r.next_page_token || undefined;
      if (!token) return out;
    }
  }

  /** A run's data sets (MLflow's "Datasets used"); the server keeps one per name and digest. */
  async logInputs(runId: string, datasets: MlflowDatasetInput[]): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/log-inputs', { json: { run_id: runId, datasets } });
  }

  /** The run's outputs: MLflow 3 lists a run with a model output as a training run. */
  async logOutputs(runId: string, models: { model_id: string; step: number }[]): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/outputs', { json: { run_id: runId, models } });
  }

  // ---- logged models (MLflow 3) --------------------------------------------------------

  async createLoggedModel(body: {
    experiment_id: string;
    name: string;
    model_type?: string;
    source_run_id: string;
    params: { key: string; value: string }[];
    tags: { key: string; value: string }[];
  }): Promise<MlflowLoggedModel> {
    const r = await this.request<{ model: MlflowLoggedModel }>('POST', '/api/2.0/mlflow/logged-models', { json: body });
    return r.model;
  }

  async getLoggedModel(modelId: string): Promise<MlflowLoggedModel> {
    const r = await this.request<{ model: MlflowLoggedModel }>('GET', `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`);
    return r.model;
  }

  /** READY once its files are uploaded (UPLOAD_FAILED otherwise). */
  async finalizeLoggedModel(modelId: string, status: 'LOGGED_MODEL_READY' | 'LOGGED_MODEL_UPLOAD_FAILED'): Promise<void> {
    await this.request('PATCH', `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`, { json: { model_id: modelId, status } });
  }

  /** Logged models of the experiment whose tag `key` is `value`. */
  async searchLoggedModelsByTag(experimentId: string, key: string, value: string): Promise<MlflowLoggedModel[]> {
    const r = await this.request<{ models?: MlflowLoggedModel[] }>('POST', '/api/2.0/mlflow/logged-models/search', {
      json: { experiment_ids: [experimentId], filter: `tags.\`${key}\` = '${value.replace(/'/g, "\\'")}'`, max_results: 10 },
    });
    return r.models ?? [];
  }

  // ---- artifacts through the server's proxy (mlflow-artifacts.ts writes the other locations) --

  /** The artifact-proxy path of a run's artifact root, or null when the server does not proxy it. */
  static proxiedRoot(artifactUri: string): string | null {
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(artifactUri);
    return m ? m[1].replace(/\/+$/, '') : null;
  }

  private artifactUrlPath(root: string, artifactPath: string): string {
    const segs = [...root.split('/'), ...artifactPath.split('/')].filter((s) => s && s !== '.');
    return '/api/2.0/mlflow-artifacts/artifacts/' + segs.map(encodeURIComponent).join('/');
  }

  async uploadArtifact(artifactUri: string, localFile: string, artifactPath: string): Promise<void> {
    const root = MlflowClient.proxiedRoot(artifactUri);
    if (root === null) throw new MlflowError(`artifact location ${artifactUri} is not proxied`, null, null, false);
    const body = fs.readFileSync(localFile);
    const timeoutMs = this.o.timeoutMs + Math.ceil(body.length / 1e6) * 1000;
    await this.request('PUT', this.artifactUrlPath(root, artifactPath), {
      body,
      contentType: MIME[path.extname(localFile).toLowerCase()] ?? 'application/octet-stream',
      timeoutMs,
    });
  }

  async downloadArtifact(artifactUri: string, artifactPath: string): Promise<Buffer> {
    const root = MlflowClient.proxiedRoot(artifactUri);
    if (root === null) throw new MlflowError(`artifact location ${artifactUri} is not proxied`, null, null, false);
    return this.request<Buffer>('GET', this.artifactUrlPath(root, artifactPath), { raw: true });
  }

  /** Files under `dir` of a run's artifacts (recursively), with sizes. */
  async listArtifacts(runId: string, dir = ''): Promise<{ path: string; file_size?: number }[]> {
    const r = await this.request<{ files?: { path: string; is_dir?: boolean; file_size?: number | string }[] }>(
      'GET',
      '/api/2.0/mlflow/artifacts/list',
      { query: { run_id: runId, path: dir || undefined } },
    );
    const out: { path: string; file_size?: number }[] = [];
    for (const f of r.files ?? []) {
      if (f.is_dir) out.push(...(await this.listArtifacts(runId, f.path)));
      else out.push({ path: f.path, file_size: f.file_size !== undefined ? Number(f.file_size) : undefined });
    }
    return out;
  }
}

/** proto3 JSON: doubles that JSON cannot carry are strings. */
function jsonNumber(v: number): number | string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function networkReason(e: unknown): string {
  const err = e as Caught & { cause?: Caught };
  const c = err?.cause;
  const code = c?.code ?? err?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (is the server running?)';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  return oneLine(String(c?.message ?? err?.message ?? e));
}
