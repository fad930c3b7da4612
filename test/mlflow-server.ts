/**
 * Test setup for the MLflow tests: a real `mlflow server`.
 *
 * - MLflow (pinned) is installed from PyPI into ROOT/.venv-mlflow the first time (about a
 *   minute) and reused afterwards; a marker file records the version.
 * - A server is started on 127.0.0.1 on a free port with a fresh SQLite store and
 *   --serve-artifacts (or, with `artifactRoot`, as on a cluster: --default-artifact-root
 *   DIR --no-serve-artifacts, the clients writing DIR themselves), in its own process group,
 *   and waited for on /health; stop() and kill() end the whole group (uvicorn runs in a
 *   child process).
 * - FaultProxy sits between elbo and the server to see what is sent (headers, bodies) and to
 *   break things on purpose: HTTP 503, no answer, an answer lost after the server acted on
 *   the request, or nothing listening at all.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as http from 'http';
import * as net from 'net';
import { spawn, ChildProcess } from 'child_process';
import { ROOT } from './helpers';
import { killGroup, trackGroup } from './processes';
import { ensureVenvTool } from '../src/util/venv';
import type { Caught } from '../src/errors';
import type {
  MlflowDatasetInput,
  MlflowExperiment,
  MlflowLoggedModel,
  MlflowMetric,
  MlflowRun,
  MlflowRunOutputs,
} from '../src/mlflow/client';

/** A run as the REST API returns it, with the parts elbo's runs all have (data, the data set input, the model outputs) present. */
export type ServerRun = MlflowRun & {
  data: Required<MlflowRun['data']>;
  inputs: { dataset_inputs: MlflowDatasetInput[] };
  outputs: Required<MlflowRunOutputs>;
};

/** A logged model as the REST API returns it, with its params and metrics. */
export type ServerModel = MlflowLoggedModel & { data: Required<NonNullable<MlflowLoggedModel['data']>> };

export const MLFLOW_VERSION = '3.17.2';
export const VENV = path.join(ROOT, '.venv-mlflow');

export function mlflowBin(): string {
  return path.join(VENV, 'bin', 'mlflow');
}

/** Install mlflow==MLFLOW_VERSION into .venv-mlflow unless it is there already. */
export async function ensureMlflow(log: (m: string) => void = () => {}): Promise<{ installed: boolean; seconds: number }> {
  return ensureVenvTool({ venv: VENV, pkg: 'mlflow', version: MLFLOW_VERSION, bin: 'mlflow', log });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export class MlflowServer {
  private proc: ChildProcess | null = null;
  /** Seconds from spawn to the first 200 on /health, per start. */
  readonly startSeconds: number[] = [];

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** Without the artifact proxy: the artifact root the clients write themselves. */
    readonly artifactRoot?: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * A fresh server: new SQLite store and artifact folder in `dir`; with `artifactRoot`, no
   * artifact proxy: runs get artifact locations under that directory.
   */
  static async start(dir: string, o: { artifactRoot?: string } = {}): Promise<MlflowServer> {
    const s = new MlflowServer(dir, await freePort(), o.artifactRoot);
    await s.launch();
    return s;
  }

  private artifactArgs(): string[] {
    if (this.artifactRoot) return ['--default-artifact-root', this.artifactRoot, '--no-serve-artifacts'];
    return ['--artifacts-destination', path.join(this.dir, 'artifacts'), '--serve-artifacts'];
  }

  private async launch(): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    const t0 = Date.now();
    const proc = spawn(
      mlflowBin(),
      [
        'server',
        '--host',
        '127.0.0.1',
        '--port',
        String(this.port),
        '--backend-store-uri',
        `sqlite:///${path.join(this.dir, 'mlflow.db')}`,
        ...this.artifactArgs(),
        '--workers',
        '1',
      ],
      // the job runner (huey workers for GenAI jobs) is not needed: fewer processes, faster start;
      // no telemetry (nothing outside can be reached from the tests anyway)
      {
        detached: true,
        stdio: ['ignore', log, log],
        env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' },
      },
    );
    fs.closeSync(log);
    this.proc = proc;
    trackGroup(proc);
    let exited: number | null | undefined;
    proc.on('exit', (code) => {
      exited = code;
    });
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (exited !== undefined) throw new Error(`mlflow server exited (${exited}) before answering; its log:\n${this.logTail()}`);
      try {
        const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`mlflow server did not answer /health within 180 s; its log:\n${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    this.startSeconds.push((Date.now() - t0) / 1000);
  }

  logTail(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8').slice(-3000);
    } catch {
      return '(no log)';
    }
  }

  /** End the whole process group: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) {
      if (p) killGroup(p, 'SIGKILL');
      return;
    }
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    killGroup(p, 'SIGTERM');
    const t = setTimeout(() => killGroup(p, 'SIGKILL'), graceMs);
    await gone;
    clearTimeout(t);
    // uvicorn's worker is in the same group; make sure nothing of it stays
    killGroup(p, 'SIGKILL');
    this.proc = null;
  }

  /** A crash: SIGKILL to the whole group, no clean shutdown. */
  async kill(): Promise<void> {
    await this.stop(0);
  }

  /** Start again on the same port with the same store. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }
}

// ---- reading back through the REST API --------------------------------------------------------

export async function api<T = unknown>(base: string, method: 'GET' | 'POST', apiPath: string, body?: Record<string, unknown>): Promise<T> {
  let url = `${base}/api/2.0/mlflow/${apiPath}`;
  const init: RequestInit = { method, headers: { 'Content-Type': 'application/json' } };
  if (method === 'GET' && body) url += '?' + new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
  else if (body) init.body = JSON.stringify(body);
  const r = await fetch(url, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${apiPath}: HTTP ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : ({} as T);
}

export async function runsOf(base: string, experimentName: string): Promise<ServerRun[]> {
  const exp = (await api<{ experiment: MlflowExperiment }>(base, 'GET', 'experiments/get-by-name', { experiment_name: experimentName }))
    .experiment;
  const r = await api<{ runs?: ServerRun[] }>(base, 'POST', 'runs/search', { experiment_ids: [exp.experiment_id], max_results: 100 });
  return r.runs ?? [];
}

export async function history(base: string, runId: string, key: string): Promise<{ step: number; timestamp: number; value: number }[]> {
  const r = await api<{ metrics?: MlflowMetric[] }>(base, 'GET', 'metrics/get-history', { run_id: runId, metric_key: key });
  return (r.metrics ?? []).map((m) => ({ step: Number(m.step ?? 0), timestamp: Number(m.timestamp), value: Number(m.value) }));
}

export async function artifactList(base: string, runId: string, dir = ''): Promise<string[]> {
  const r = await api<{ files?: { path: string; is_dir: boolean }[] }>(
    base,
    'GET',
    'artifacts/list',
    dir ? { run_id: runId, path: dir } : { run_id: runId },
  );
  const out: string[] = [];
  for (const f of r.files ?? []) {
    if (f.is_dir) out.push(...(await artifactList(base, runId, f.path)));
    else out.push(f.path);
  }
  return out.sort();
}

/**
 * A run's artifacts and its logged models as MLflow's own Python client reads them (its
 * get_run, get_logged_model and download_artifacts, from the proxy or the shared directory):
 * the files are downloaded under `dest`.
 */
export interface PythonReadBack {
  artifact_uri: string;
  /** Where the run's files were downloaded. */
  run_dir: string;
  run_files: string[];
  models: {
    model_id: string;
    status: string;
    source_run_id: string;
    step: number;
    artifact_location: string;
    dir: string;
    files: string[];
  }[];
}

export function readBackWithPython(base: string, runId: string, dest: string): Promise<PythonReadBack> {
  // not spawnSync: a blocked event loop would keep HTTP connections the server has closed meanwhile
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(VENV, 'bin', 'python'), [path.join(ROOT, 'test', 'mlflow-readback.py'), base, runId, dest], {
      env: { ...process.env, MLFLOW_TRACKING_URI: base, MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`mlflow-readback.py failed (exit ${code}):\n${out.slice(-3000)}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!));
    });
  });
}

export async function artifactBytes(base: string, artifactUri: string, p: string): Promise<Buffer> {
  const root = artifactUri.replace(/^mlflow-artifacts:\/*/, '');
  const r = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/${p}`);
  if (!r.ok) throw new Error(`download ${p}: HTTP ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

// ---- a proxy that breaks things on purpose ------------------------------------------------------

export type Fault = 'pass' | '503' | 'hang' | 'lose';
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  fault: Fault;
}

export class FaultProxy {
  readonly requests: SeenRequest[] = [];
  /** Decides what happens to each request (default: forwarded). */
  fault: (req: { method: string; url: string; body: Buffer }) => Fault = () => 'pass';
  private server: http.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly target: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(target: string, port?: number): Promise<FaultProxy> {
    const p = new FaultProxy(target, port ?? (await freePort()));
    await p.listen();
    return p;
  }

  /** Accept connections again (after down()). */
  async listen(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.server = server;
  }

  /** Nothing listens any more: connections are refused, as when the server is down. */
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const fault = this.fault({ method: req.method ?? 'GET', url: req.url ?? '/', body });
      this.requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, fault });
      if (fault === 'hang') return; // never answers; the client's deadline ends it
      if (fault === '503') {
        res.writeHead(503, { 'Content-Type': 'text/plain' }).end('overloaded');
        return;
      }
      try {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers))
          if (typeof v === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding'].includes(k)) headers[k] = v;
        const r = await fetch(this.target + req.url, {
          method: req.method,
          headers,
          body: ['GET', 'HEAD'].includes(req.method ?? 'GET') ? undefined : body,
        });
        const out = Buffer.from(await r.arrayBuffer());
        if (fault === 'lose') {
          // the server did it; the client never hears so
          res.writeHead(502, { 'Content-Type': 'text/plain' }).end('bad gateway');
          return;
        }
        res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') ?? 'application/octet-stream' }).end(out);
      } catch (e) {
        res.writeHead(502, { 'Content-Type': 'text/plain' }).end(String((e as Caught)?.message ?? e));
      }
    });
  }

  async close(): Promise<void> {
    await this.down();
  }
}
