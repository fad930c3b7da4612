import * as fs from 'fs';
import * as path from 'path';
import type { MlflowMetric, MlflowDatasetInput } from './client';
import { takeLock, releaseLock, type LockHolder } from '../util/lock';
import { writeFileAtomic } from '../util/write-atomic';

/**
 * The MLflow spool of one run: RUN_DIR/mlflow/
 *
 *   spool.jsonl   every event for MLflow, appended (one JSON line each, numbered by `seq`)
 *                 before anything is sent; never rewritten, so it can be replayed in full
 *   state.json    where the events go (tracking URI without credentials, experiment) and how
 *                 far the server has them: events with seq < `acked` were delivered, except
 *                 those listed in `deferred` (artifacts whose location this machine cannot
 *                 write yet; `elbo sync` tries them again); written to a temporary name and
 *                 renamed
 *   lock          {pid, host} of the process that sends this run's events (the run, or sync)
 *
 * "Spool first": the training process appends, then flushes in the background; whatever
 * the server did not acknowledge stays pending for the next flush or for `elbo sync`.
 */

export type SpoolEventBody =
  | {
      type: 'create';
      /** Unique per local run; the MLflow run carries it as tag elbo.run_uid so a replay finds it. */
      uid: string;
      experiment_name: string;
      run_name: string;
      start_time: number;
      user: string;
      tags: Record<string, string>;
    }
  | { type: 'params'; params: [string, string][] }
  | { type: 'tags'; tags: Record<string, string> }
  | { type: 'metrics'; metrics: MlflowMetric[] }
  /** Upload RUN_DIR/`file` (its contents when sent) to artifact path `path`. */
  | { type: 'artifact'; file: string; path: string }
  | { type: 'status'; status: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED'; end_time?: number }
  /** Logged models (of other runs: a sweep's cells) as outputs of this run (its training runs' models). */
  | { type: 'outputs'; models: { model_id: string; step: number }[] }
  /** The run's data sets (runs/log-inputs). */
  | { type: 'inputs'; datasets: MlflowDatasetInput[] }
  /**
   * An MLflow 3 logged model, the run's output at `step`: created (tag elbo.model_uid, so a
   * replay finds it), RUN_DIR/`file`s uploaded to its artifact `path`s, marked READY, linked
   * as the run's output, and `metrics` (points the run already logged) attached to it.
   */
  | {
      type: 'model';
      uid: string;
      name: string;
      model_type: string;
      step: number;
      files: { file: string; path: string }[];
      params: [string, string][];
      tags: Record<string, string>;
      metrics: MlflowMetric[];
    };

export type SpoolEvent = SpoolEventBody & { seq: number; time: number };

export interface SpoolState {
  version: 1;
  /** Without credentials or query string. */
  tracking_uri: string;
  experiment_name: string;
  /** The tracker's network options, so `elbo sync` behaves like the run did. */
  options: { timeout_s: number; retries: number; backoff_s: number };
  experiment_id?: string;
  run_id?: string;
  artifact_uri?: string;
  /** Events with seq < acked are on the server, except the deferred ones. */
  acked: number;
  /**
   * Artifact and model events whose artifact location this machine could not write (a shared
   * file system not mounted here, a store elbo does not write): the rest of the run went on
   * without them; `elbo sync` sends them once the location is reachable.
   */
  deferred?: DeferredEvent[];
  /** Events the server refused for good (a changed param value, say): not retried. */
  skipped: { seq: number; type: string; error: string }[];
  /** Logged models created so far, by the uid of their event (a replay goes on from there). */
  models?: Record<string, { model_id: string; artifact_uri: string; /** the run's output, with its metrics */ linked?: boolean }>;
}

export interface DeferredEvent {
  seq: number;
  type: string;
  /** The artifact location elbo could not write, and why (one line). */
  location: string;
  error: string;
  /** What makes it reachable; null: a store elbo does not write (s3://, ...). */
  fix: string | null;
}

export const SPOOL_DIR = 'mlflow';

export class Spool {
  readonly dir: string;
  state: SpoolState;
  private events: SpoolEvent[];

  private constructor(
    readonly runDir: string,
    state: SpoolState,
    events: SpoolEvent[],
  ) {
    this.dir = path.join(runDir, SPOOL_DIR);
    this.state = state;
    this.events = events;
  }

  static exists(runDir: string): boolean {
    return fs.existsSync(path.join(runDir, SPOOL_DIR, 'state.json'));
  }

  /** Open the run's spool, creating it with `init` when there is none. */
  static open(runDir: string, init?: Omit<SpoolState, 'version' | 'acked' | 'skipped'>): Spool {
    const dir = path.join(runDir, SPOOL_DIR);
    const stateFile = path.join(dir, 'state.json');
    let state: SpoolState;
    if (fs.existsSync(stateFile)) {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    } else {
      if (!init) throw new Error(`${runDir} has no MLflow spool (${SPOOL_DIR}/state.json)`);
      fs.mkdirSync(dir, { recursive: true });
      state = { version: 1, ...init, acked: 0, skipped: [] };
    }
    const spool = new Spool(runDir, state, readEvents(path.join(dir, 'spool.jsonl')));
    if (!fs.existsSync(stateFile)) spool.saveState();
    return spool;
  }

  get file(): string {
    return path.join(this.dir, 'spool.jsonl');
  }

  get nextSeq(): number {
    return this.events.length ? this.events[this.events.length - 1].seq + 1 : 0;
  }

  all(): readonly SpoolEvent[] {
    return this.events;
  }

  /** Events the server does not have yet, oldest first: the deferred ones, then the queue. */
  pending(): SpoolEvent[] {
    return [...this.deferredEvents(), ...this.queued()];
  }

  /** Events not sent yet in their turn (not the deferred ones), oldest first. */
  queued(): SpoolEvent[] {
    const acked = this.state.acked;
    // seq grows line by line, so the queued events are a suffix
    let i = this.events.length;
    while (i > 0 && this.events[i - 1].seq >= acked) i--;
    return this.events.slice(i);
  }

  /** Deferred events, oldest first (see SpoolState.deferred). */
  deferredEvents(): SpoolEvent[] {
    const seqs = new Set((this.state.deferred ?? []).map((d) => d.seq));
    return seqs.size ? this.events.filter((e) => seqs.has(e.seq)) : [];
  }

  has(type: SpoolEvent['type']): boolean {
    return this.events.some((e) => e.type === type);
  }

  /** Append events (one line each) before anything is sent. */
  append(...bodies: SpoolEventBody[]): SpoolEvent[] {
    let seq = this.nextSeq;
    const now = Date.now();
    const added = bodies.map((b) => ({ seq: seq++, time: now, ...b }) as SpoolEvent);
    if (!added.length) return added;
    fs.appendFileSync(this.file, added.map((e) => JSON.stringify(e) + '\n').join(''));
    this.events.push(...added);
    return added;
  }

  /** The server has every event up to and including `seq`. */
  ack(seq: number): void {
    if (seq + 1 > this.state.acked) {
      this.state.acked = seq + 1;
      this.saveState();
    }
  }

  skip(e: SpoolEvent, error: string): void {
    this.state.skipped.push({ seq: e.seq, type: e.type, error });
    if (this.state.deferred?.some((d) => d.seq === e.seq)) this.undefer(e.seq);
    this.ack(e.seq);
  }

  /** The event waits for its artifact location (the queue goes on without it). */
  defer(e: SpoolEvent, why: Pick<DeferredEvent, 'location' | 'error' | 'fix'>): void {
    const rest = (this.state.deferred ?? []).filter((d) => d.seq !== e.seq);
    this.state.deferred = [...rest, { seq: e.seq, type: e.type, ...why }].sort((a, b) => a.seq - b.seq);
    if (e.seq + 1 > this.state.acked) this.state.acked = e.seq + 1;
    this.saveState();
  }

  /** A deferred event has been delivered. */
  undefer(seq: number): void {
    const rest = (this.state.deferred ?? []).filter((d) => d.seq !== seq);
    this.state.deferred = rest.length ? rest : undefined;
    this.saveState();
  }

  saveState(): void {
    const file = path.join(this.dir, 'state.json');
    writeFileAtomic(file, JSON.stringify(this.state, null, 2) + '\n');
  }

  /** Forget the remote side (another server): every event is pending again. */
  resetRemote(trackingUri: string): void {
    this.state = {
      ...this.state,
      tracking_uri: trackingUri,
      experiment_id: undefined,
      run_id: undefined,
      artifact_uri: undefined,
      acked: 0,
      skipped: [],
      deferred: undefined,
      models: undefined,
    };
    this.saveState();
  }

  // ---- lock ------------------------------------------------------------------------------

  /**
   * Take the lock; returns null when taken, or who holds it. A lock left by a process that
   * is gone (same host, pid not alive) is taken over.
   */
  lock(): LockHolder | null {
    return takeLock(path.join(this.dir, 'lock'));
  }

  unlock(): void {
    releaseLock(path.join(this.dir, 'lock'));
  }
}

/**
 * Parse spool.jsonl. A last line cut short by a crash is dropped, and the file is cut back
 * to its last complete line so that the next append starts on a line of its own.
 */
function readEvents(file: string): SpoolEvent[] {
  if (!fs.existsSync(file)) return [];
  let text = fs.readFileSync(file, 'utf8');
  if (text && !text.endsWith('\n')) {
    const cut = text.lastIndexOf('\n') + 1;
    fs.truncateSync(file, Buffer.byteLength(text.slice(0, cut)));
    text = text.slice(0, cut);
  }
  const out: SpoolEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line);
      if (typeof e.seq === 'number' && e.seq > (out.length ? out[out.length - 1].seq : -1)) out.push(e);
    } catch {
      /* a damaged line: skipped (its events are lost to MLflow, not to the local store) */
    }
  }
  return out;
}
