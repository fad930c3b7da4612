import * as fs from 'fs';
import * as path from 'path';
import { MlflowClient, MlflowError, MlflowMetric, MLFLOW_LIMITS } from './mlflow-client';
import type { Spool, SpoolEvent } from './spool';

export interface FlushResult {
  /** Events delivered by this flush. */
  sent: number;
  /** Events still pending. */
  pending: number;
  /** Events the server refused for good during this flush (see state.skipped). */
  skipped: number;
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
 */
export class Replayer {
  uncertainBelow: number;

  constructor(
    private readonly spool: Spool,
    private readonly client: MlflowClient,
    private readonly o: ReplayOptions,
  ) {
    this.uncertainBelow = o.uncertainBelow;
  }

  /** Send what is pending, retrying transient failures `retries` times with doubling back-off. */
  async flush(retries = this.o.retries): Promise<FlushResult> {
    let sent = 0;
    let skipped = 0;
    for (let attempt = 0; ; attempt++) {
      const before = this.spool.state.acked;
      const skippedBefore = this.spool.state.skipped.length;
      try {
        await this.drain();
        sent += this.spool.state.acked - before;
        skipped += this.spool.state.skipped.length - skippedBefore;
        return { sent: sent - skipped, pending: this.spool.pending().length, skipped };
      } catch (e: any) {
        sent += this.spool.state.acked - before;
        skipped += this.spool.state.skipped.length - skippedBefore;
        // whatever was in flight may have arrived: check before sending it again
        this.uncertainBelow = Math.max(this.uncertainBelow, this.spool.nextSeq);
        const transient = e instanceof MlflowError && e.transient;
        if (!transient || attempt >= retries) {
          return { sent: sent - skipped, pending: this.spool.pending().length, skipped, error: e instanceof MlflowError ? e.message : `internal error: ${e?.message ?? e}` };
        }
        await sleep(this.o.backoffMs * 2 ** attempt, this.o.signal);
        // transient, so an MlflowError: the run ended while the server was away
        if (this.o.signal?.aborted) return { sent: sent - skipped, pending: this.spool.pending().length, skipped, error: (e as MlflowError).message };
      }
    }
  }

  private async drain(): Promise<void> {
    const histories = new Map<string, Set<string>>();
    for (;;) {
      const pending = this.spool.pending();
      if (!pending.length) return;
      const e = pending[0];
      if (e.type === 'create') {
        await this.ensureRun(e);
        this.spool.ack(e.seq);
        continue;
      }
      const runId = this.spool.state.run_id;
      if (!runId) throw new MlflowError(`the spool in ${this.spool.dir} does not start with the run's creation; it is damaged`, null, 'SPOOL_DAMAGED', false);
      try {
        switch (e.type) {
          case 'params':
            for (let i = 0; i < e.params.length; i += MLFLOW_LIMITS.paramsTagsPerBatch) {
              const chunk = e.params.slice(i, i + MLFLOW_LIMITS.paramsTagsPerBatch).map(([key, value]) => ({ key, value }));
              await this.client.logBatch(runId, { params: chunk });
            }
            this.spool.ack(e.seq);
            break;
          case 'tags': {
            const tags = Object.entries(e.tags).map(([key, value]) => ({ key, value }));
            for (let i = 0; i < tags.length; i += MLFLOW_LIMITS.paramsTagsPerBatch) {
              await this.client.logBatch(runId, { tags: tags.slice(i, i + MLFLOW_LIMITS.paramsTagsPerBatch) });
            }
            this.spool.ack(e.seq);
            break;
          }
          case 'metrics': {
            // consecutive metric events go out together, up to MLflow's batch limit
            const group: SpoolEvent[] = [];
            let n = 0;
            for (const p of pending) {
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
            this.spool.ack(group[group.length - 1].seq);
            break;
          }
          case 'artifact': {
            const file = path.join(this.spool.runDir, e.file);
            if (!fs.existsSync(file)) {
              this.skip(e, `${e.file} no longer exists in the run directory`);
              break;
            }
            if (!this.spool.state.artifact_uri) this.spool.state.artifact_uri = (await this.client.getRun(runId)).info.artifact_uri;
            await this.client.uploadArtifact(this.spool.state.artifact_uri, file, e.path);
            this.spool.ack(e.seq);
            break;
          }
          case 'status':
            await this.client.updateRun(runId, e.status, e.end_time);
            this.spool.ack(e.seq);
            break;
          case 'inputs':
            // the server keeps one input per data set name and digest: a replay adds nothing
            await this.client.logInputs(runId, e.datasets);
            this.spool.ack(e.seq);
            break;
          case 'model':
            await this.sendModel(runId, e);
            this.spool.ack(e.seq);
            break;
          case 'outputs':
            await this.linkOutputs(runId, e.models);
            this.spool.ack(e.seq);
            break;
          default:
            this.skip(e, `unknown event type '${(e as any).type}'`);
        }
      } catch (err) {
        // the server refused this event for good (a changed param value, a bad key, no
        // artifact proxy): keep going with the rest, and say so
        if (err instanceof MlflowError && !err.transient && !err.unauthorized && refusedForGood(err)) {
          this.skip(e, err.message);
          continue;
        }
        throw err;
      }
    }
  }

  private skip(e: SpoolEvent, error: string): void {
    this.spool.skip(e, error);
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
   * is created (tag elbo.model_uid) and its id kept in state.json, uploads overwrite, READY
   * stays READY, the run's output is added only when missing, and the server keeps one
   * model metric per (run, key, step, time).
   */
  private async sendModel(runId: string, e: Extract<SpoolEvent, { type: 'model' }>): Promise<void> {
    const st = this.spool.state;
    const experimentId = st.experiment_id!;
    let m = st.models?.[e.uid];
    if (!m) {
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
      m = { model_id: info.model_id, artifact_uri: info.artifact_uri };
      st.models = { ...st.models, [e.uid]: m };
      this.spool.saveState();
    }
    for (const f of e.files) {
      const file = path.join(this.spool.runDir, f.file);
      if (fs.existsSync(file)) await this.client.uploadArtifact(m.artifact_uri, file, f.path);
      else this.o.warn?.(`${f.file} no longer exists in the run directory; the logged model ${m.model_id} lacks it`);
    }
    await this.client.finalizeLoggedModel(m.model_id, 'LOGGED_MODEL_READY');
    await this.linkOutputs(runId, [{ model_id: m.model_id, step: e.step }]);
    const points = e.metrics.map((p) => ({ ...p, model_id: m!.model_id }));
    for (let i = 0; i < points.length; i += MLFLOW_LIMITS.metricsPerBatch) await this.client.logBatch(runId, { metrics: points.slice(i, i + MLFLOW_LIMITS.metricsPerBatch) });
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
    const found = (await this.client.searchRunsByTag(st.experiment_id, 'elbo.run_uid', e.uid)).filter((r) => r.info.lifecycle_stage !== 'deleted');
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
  if (e.errorCode === 'ARTIFACTS_NOT_PROXIED' || e.errorCode === 'INVALID_PARAMETER_VALUE' || e.errorCode === 'BAD_REQUEST') return true;
  return e.status === 400;
}
