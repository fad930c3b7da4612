import * as fs from 'fs';
import * as path from 'path';
import { MlflowClient, MlflowError, MlflowMetric, MLFLOW_LIMITS } from './client';
import { ArtifactStore, ArtifactsUnreachable, unreachableRemedy } from './artifacts';
import type { Spool, SpoolEvent, SpoolState } from './spool';
import type { Caught } from '../errors';

export interface FlushResult {
  /** Events delivered by this flush. */
  sent: number;
  /** Events still pending (the deferred ones included). */
  pending: number;
  /** Events the server refused for good during this flush (see state.skipped). */
  skipped: number;
  /** Events that wait for their artifact location (see state.deferred): the rest went on. */
  deferred: number;
  /** Why the flush stopped early (server away, refused credentials, deleted experiment). */
  error?: string;
}

export interface ReplayOptions {
  retries: number;
  backoffMs: number;
  /** Events with seq below this may already be on the server (an earlier attempt's answer was lost). */
  uncertainBelow: number;
  warn?: (message: string) => void;
  /** Aborts the back-off between retries (a run's tracker at its end); without it the waits keep the process alive. */
  signal?: AbortSignal;
  /** Try the deferred events (artifact locations this machine could not write) again first: elbo sync. */
  retryDeferred?: boolean;
}

/**
 * Wait between retries. It keeps the process alive (`elbo sync` must not exit in the middle of
 * its back-off, reporting nothing); with `signal` (a run's tracker) it ends early when the
 * signal aborts and does not hold a finishing process open.
 */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    if (signal) timer.unref();
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Sends a spool's pending events to MLflow, in order, acknowledging each once the server
 * has it. Replays are exactly-once in effect:
 *
 * - the run is found before it is created (tag elbo.run_uid), so a lost answer to
 *   runs/create never makes a second run;
 * - params and tags are idempotent on the server (an identical param value is accepted);
 * - metric points that may have reached the server already (any event sent before by an
 *   attempt whose answer was lost, or by another process) are checked against
 *   metrics/get-history and only the missing (key, step, timestamp) points are sent;
 * - artifact uploads and status updates overwrite.
 *
 * An artifact (or a logged model's files) whose location this machine cannot write is
 * deferred, not refused: the queue goes on, and a flush with `retryDeferred` (elbo sync)
 * tries it again.
 */
export class Replayer {
  uncertainBelow: number;
  private readonly artifacts: ArtifactStore;
  private experimentLocation: Promise<string | null> | null = null;
  private counts = { sent: 0, skipped: 0 };

  constructor(
    private readonly spool: Spool,
    private readonly client: MlflowClient,
    private readonly o: ReplayOptions,
  ) {
    this.uncertainBelow = o.uncertainBelow;
    this.artifacts = new ArtifactStore(client, () => {
      const id = this.spool.state.experiment_id;
      if (!id) return Promise.resolve(null);
      // asked once per process: where the experiment keeps its artifacts
      this.experimentLocation ??= this.client.getExperiment(id).then((x) => x.artifact_location ?? null);
      return this.experimentLocation.catch((e) => {
        this.experimentLocation = null;
        throw e;
      });
    });
  }

  /** Send what is pending, retrying transient failures `retries` times with doubling back-off. */
  async flush(retries = this.o.retries): Promise<FlushResult> {
    this.counts = { sent: 0, skipped: 0 };
    const result = (error?: string): FlushResult => ({
      ...this.counts,
      pending: this.spool.pending().length,
      deferred: this.spool.state.deferred?.length ?? 0,
      ...(error ? { error } : {}),
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await this.drain();
        return result();
      } catch (e) {
        // whatever was in flight may have arrived: check before sending it again
        this.uncertainBelow = Math.max(this.uncertainBelow, this.spool.nextSeq);
        const transient = e instanceof MlflowError && e.transient;
        if (!transient || attempt >= retries)
          return result(e instanceof MlflowError ? e.message : `internal error: ${(e as Caught)?.message ?? e}`);
        await sleep(this.o.backoffMs * 2 ** attempt, this.o.signal);
        // transient, so an MlflowError: the run ended while the server was away
        if (this.o.signal?.aborted) return result((e as MlflowError).message);
      }
    }
  }

  private async drain(): Promise<void> {
    if (this.o.retryDeferred) await this.retryDeferred();
    const histories = new Map<string, Set<string>>();
    for (;;) {
      const queued = this.spool.queued();
      if (!queued.length) return;
      const e = queued[0];
      if (e.type === 'create') {
        await this.ensureRun(e);
        this.spool.ack(e.seq);
        this.counts.sent++;
        continue;
      }
      try {
        const done = await this.send(this.runId(), e, queued, histories);
        if (done) {
          this.spool.ack(done.last);
          this.counts.sent += done.events;
        }
      } catch (err) {
        if (!this.setAside(e, err)) throw err;
      }
    }
  }

  /** Deferred events first, each once: still unreachable ones stay deferred. */
  private async retryDeferred(): Promise<void> {
    for (const e of this.spool.deferredEvents()) {
      try {
        if (await this.send(this.runId(), e, [e], new Map())) {
          this.spool.undefer(e.seq);
          this.counts.sent++;
        }
      } catch (err) {
        if (!this.setAside(e, err)) throw err;
      }
    }
  }

  /**
   * An event that cannot go now but must not stop the queue: deferred (its artifact location
   * is unreachable from here) or refused for good by the server (a changed param value, a bad
   * key). False: the error stops the flush (server away, credentials, deleted experiment).
   */
  private setAside(e: SpoolEvent, err: unknown): boolean {
    if (err instanceof ArtifactsUnreachable) {
      this.spool.defer(e, { location: err.location, error: err.message, fix: err.fix });
      return true;
    }
    if (err instanceof MlflowError && !err.transient && !err.unauthorized && refusedForGood(err)) {
      this.skip(e, err.message);
      return true;
    }
    return false;
  }

  private runId(): string {
    const runId = this.spool.state.run_id;
    if (!runId)
      throw new MlflowError(
        `the spool in ${this.spool.dir} does not start with the run's creation; it is damaged`,
        null,
        'SPOOL_DAMAGED',
        false,
      );
    return runId;
  }

  /**
   * Send one event (consecutive metric events of `queued` together). Returns the last seq
   * delivered and how many events that was, or null when the event was skipped.
   */
  private async send(
    runId: string,
    e: SpoolEvent,
    queued: SpoolEvent[],
    histories: Map<string, Set<string>>,
  ): Promise<{ last: number; events: number } | null> {
    const one = { last: e.seq, events: 1 };
    switch (e.type) {
      case 'params':
        for (let i = 0; i < e.params.length; i += MLFLOW_LIMITS.paramsTagsPerBatch) {
          const chunk = e.params.slice(i, i + MLFLOW_LIMITS.paramsTagsPerBatch).map(([key, value]) => ({ key, value }));
          await this.client.logBatch(runId, { params: chunk });
        }
        return one;
      case 'tags': {
        const tags = Object.entries(e.tags).map(([key, value]) => ({ key, value }));
        for (let i = 0; i < tags.length; i += MLFLOW_LIMITS.paramsTagsPerBatch) {
          await this.client.logBatch(runId, { tags: tags.slice(i, i + MLFLOW_LIMITS.paramsTagsPerBatch) });
        }
        return one;
      }
      case 'metrics':
        return this.sendMetrics(runId, queued, histories);
      case 'artifact': {
        const file = path.join(this.spool.runDir, e.file);
        if (!fs.existsSync(file)) {
          this.skip(e, `${e.file} no longer exists in the run directory`);
          return null;
        }
        if (!this.spool.state.artifact_uri) this.spool.state.artifact_uri = (await this.client.getRun(runId)).info.artifact_uri;
        await this.artifacts.put(this.spool.state.artifact_uri, file, e.path);
        return one;
      }
      case 'status':
        await this.client.updateRun(runId, e.status, e.end_time);
        return one;
      case 'inputs':
        // the server keeps one input per data set name and digest: a replay adds nothing
        await this.client.logInputs(runId, e.datasets);
        return one;
      case 'model':
        await this.sendModel(runId, e);
        return one;
      case 'outputs':
        await this.linkOutputs(runId, e.models);
        return one;
      default:
        // (a spool written by a newer elbo may hold types this one does not know)
        this.skip(e, `unknown event type '${(e as { type: unknown }).type}'`);
        return null;
    }
  }

  /** Consecutive metric events at the head of `queued`, together, up to MLflow's batch limit. */
  private async sendMetrics(
    runId: string,
    queued: SpoolEvent[],
    histories: Map<string, Set<string>>,
  ): Promise<{ last: number; events: number }> {
    const group: SpoolEvent[] = [];
    let n = 0;
    for (const p of queued) {
      if (p.type !== 'metrics') break;
      if (group.length && n + p.metrics.length > MLFLOW_LIMITS.metricsPerBatch) break;
      group.push(p);
      n += p.metrics.length;
    }
    let points = group.flatMap((g) => (g.type === 'metrics' ? g.metrics : []));
    if (group.some((g) => g.seq < this.uncertainBelow)) points = await this.missing(runId, points, histories);
    for (let i = 0; i < points.length; i += MLFLOW_LIMITS.metricsPerBatch) {
      const chunk = points.slice(i, i + MLFLOW_LIMITS.metricsPerBatch);
      await this.client.logBatch(runId, { metrics: chunk });
      for (const m of chunk) histories.get(m.key)?.add(pointId(m));
    }
    return { last: group[group.length - 1].seq, events: group.length };
  }

  private skip(e: SpoolEvent, error: string): void {
    this.spool.skip(e, error);
    this.counts.skipped++;
    this.o.warn?.(`MLflow refused a ${e.type} event (${error}); it is not retried (see ${path.join(this.spool.dir, 'state.json')})`);
  }

  /** Points of `points` that the server does not have (by key, step and timestamp). */
  private async missing(runId: string, points: MlflowMetric[], histories: Map<string, Set<string>>): Promise<MlflowMetric[]> {
    for (const key of new Set(points.map((p) => p.key))) {
      if (histories.has(key)) continue;
      const h = await this.client.metricHistory(runId, key);
      histories.set(key, new Set(h.map(pointId)));
    }
    const seen = new Set<string>();
    return points.filter((p) => {
      const id = `${p.key}\u0000${pointId(p)}`;
      if (histories.get(p.key)!.has(pointId(p)) || seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }

  /**
   * A logged model, step by step; each step is safe to repeat: the model is found before it
   * is created (tag elbo.model_uid) and its id kept in state.json, the run's output is added
   * only when missing, the server keeps one model metric per (run, key, step, time), uploads
   * overwrite, and READY stays READY. The model is the run's output before its files are
   * written, so a run whose files wait for their location is still a training run.
   */
  private async sendModel(runId: string, e: Extract<SpoolEvent, { type: 'model' }>): Promise<void> {
    const m = await this.ensureModel(runId, e);
    if (!m.linked) {
      await this.linkOutputs(runId, [{ model_id: m.model_id, step: e.step }]);
      const points = e.metrics.map((p) => ({ ...p, model_id: m.model_id }));
      for (let i = 0; i < points.length; i += MLFLOW_LIMITS.metricsPerBatch)
        await this.client.logBatch(runId, { metrics: points.slice(i, i + MLFLOW_LIMITS.metricsPerBatch) });
      m.linked = true;
      this.spool.saveState();
    }
    for (const f of e.files) {
      const file = path.join(this.spool.runDir, f.file);
      if (fs.existsSync(file)) await this.artifacts.put(m.artifact_uri, file, f.path);
      else this.o.warn?.(`${f.file} no longer exists in the run directory; the logged model ${m.model_id} lacks it`);
    }
    await this.client.finalizeLoggedModel(m.model_id, 'LOGGED_MODEL_READY');
  }

  /** The logged model of event `e`: the one made before (state.json, or found by its tag), or a new one. */
  private async ensureModel(runId: string, e: Extract<SpoolEvent, { type: 'model' }>): Promise<NonNullable<SpoolState['models']>[string]> {
    const st = this.spool.state;
    const known = st.models?.[e.uid];
    if (known) return known;
    const experimentId = st.experiment_id!;
    const found = e.seq < this.uncertainBelow ? await this.client.searchLoggedModelsByTag(experimentId, 'elbo.model_uid', e.uid) : [];
    const info =
      found[0]?.info ??
      (
        await this.client.createLoggedModel({
          experiment_id: experimentId,
          name: e.name,
          model_type: e.model_type,
          source_run_id: runId,
          params: e.params.map(([key, value]) => ({ key, value })),
          tags: Object.entries({ ...e.tags, 'elbo.model_uid': e.uid }).map(([key, value]) => ({ key, value })),
        })
      ).info;
    const m = { model_id: info.model_id, artifact_uri: info.artifact_uri };
    st.models = { ...st.models, [e.uid]: m };
    this.spool.saveState();
    return m;
  }

  /** Models as the run's outputs; the server adds an output each time it is told, so only the missing ones. */
  private async linkOutputs(runId: string, models: { model_id: string; step: number }[]): Promise<void> {
    const run = await this.client.getRun(runId);
    const have = new Set((run.outputs?.model_outputs ?? []).map((o) => o.model_id));
    const missing = models.filter((m) => !have.has(m.model_id));
    if (missing.length) await this.client.logOutputs(runId, missing);
  }

  /** Find the run a previous attempt created (tag elbo.run_uid), or create it. */
  private async ensureRun(e: Extract<SpoolEvent, { type: 'create' }>): Promise<void> {
    const st = this.spool.state;
    if (st.run_id) return;
    if (!st.experiment_id) {
      st.experiment_id = await getOrCreateExperiment(this.client, st.experiment_name || e.experiment_name);
      this.spool.saveState();
    }
    const found = (await this.client.searchRunsByTag(st.experiment_id, 'elbo.run_uid', e.uid)).filter(
      (r) => r.info.lifecycle_stage !== 'deleted',
    );
    let info = found[0]?.info;
    if (!info) {
      info = await this.client.createRun({
        experiment_id: st.experiment_id,
        run_name: e.run_name,
        start_time: e.start_time,
        user_id: e.user,
        tags: Object.entries({ ...e.tags, 'elbo.run_uid': e.uid }).map(([key, value]) => ({ key, value })),
      });
    }
    st.run_id = info.run_id;
    st.artifact_uri = info.artifact_uri;
    this.spool.saveState();
  }
}

/**
 * One line on the files that wait for their artifact location (see SpoolState.deferred): where,
 * why, how many, and what to do; null when none wait.
 */
export function deferredWarning(spool: Spool): string | null {
  const first = spool.state.deferred?.[0];
  if (!first) return null;
  const events = spool.deferredEvents();
  const files = events.reduce((n, e) => n + (e.type === 'model' ? e.files.length : 1), 0);
  const model = events.some((e) => e.type === 'model') ? ', the logged model stays PENDING until then' : '';
  return `MLflow: ${first.error}; ${files} file${files === 1 ? '' : 's'} wait in the spool (${spool.dir})${model}: ${unreachableRemedy(first.fix, spool.runDir)}`;
}

/**
 * The experiment's id, created when missing. Two processes creating it at once both end
 * with the same id (the loser of the race reads it back). A deleted experiment of that name
 * is not restored: that is the user's decision, so this is an error that says how.
 */
export async function getOrCreateExperiment(client: MlflowClient, name: string): Promise<string> {
  let exp = await client.getExperimentByName(name);
  if (!exp) {
    try {
      return await client.createExperiment(name);
    } catch (e) {
      if (!(e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
      exp = await client.getExperimentByName(name);
      if (!exp) throw e;
    }
  }
  if (exp.lifecycle_stage === 'deleted') {
    throw new MlflowError(
      `MLflow experiment '${name}' (id ${exp.experiment_id}) is deleted on ${client.shownUri}; restore it (MLflow UI, or: mlflow experiments restore --experiment-id ${exp.experiment_id}) or track to another experiment_name, then run elbo sync`,
      400,
      'EXPERIMENT_DELETED',
      false,
    );
  }
  return exp.experiment_id;
}

function pointId(m: MlflowMetric): string {
  return `${m.step}:${m.timestamp}`;
}

function refusedForGood(e: MlflowError): boolean {
  if (e.errorCode === 'EXPERIMENT_DELETED' || e.errorCode === 'SPOOL_DAMAGED') return false;
  // the MLflow run itself was deleted: every event would be refused; restoring it fixes that
  if (/'active' state/.test(e.message)) return false;
  if (e.errorCode === 'INVALID_PARAMETER_VALUE' || e.errorCode === 'BAD_REQUEST') return true;
  return e.status === 400;
}
