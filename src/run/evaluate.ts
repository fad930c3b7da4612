import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { Rng } from '../runtime/rng';
import { modelTerms } from '../config/metrics';
import { loadCheckpoint } from '../track/checkpoint';
import type { Progress } from '../track/progress';
import { faultPoint } from '../util/fault';
import type { RunParts } from './build';
import type { RunRecorder } from './record';
import type { TrainingState } from './train';
import { type DataSet, type ExperimentConfig, type CompileMode, Selected, type PluginRegistry } from '../contracts';

/**
 * Step 3 of a run, evaluate: every evaluator in turn on the test split with its own stream
 * of the run seed (`rng.fork('eval-<i>-<name>')`), the model's evaluation weights for those
 * that compute its terms (multipliers at 1, scheduled hyper-parameters at their end values). Stops between evaluators when `stopping()` says so (the metrics so far
 * are returned with `interrupted`). Warns when an evaluator writes metrics it does not declare.
 */
export async function evaluateRun(
  parts: Pick<RunParts, 'model' | 'evaluators' | 'evaluationWeights'>,
  o: {
    tf: typeof tfc;
    data: DataSet;
    rng: Rng;
    registry: PluginRegistry;
    config: Pick<ExperimentConfig, 'eval'>;
    modelTerms: string[] | null;
    compile?: CompileMode;
    artifact(name: string): string;
    log(message: string): void;
    warn(message: string): void;
    stopping(): boolean | Promise<boolean>;
    faultPoint?(index: number): Promise<void>;
  },
  /** Filled as the evaluators finish (a failing evaluator leaves the earlier ones' metrics here). */
  metrics: Record<string, number> = {},
): Promise<{ metrics: Record<string, number>; interrupted: boolean }> {
  // multipliers at 1, scheduled hyper-parameters at the end of their schedules
  const unit = parts.evaluationWeights({ epoch: 0, step: 0, fraction: 1 });
  for (const { name, index, ev } of parts.evaluators) {
    await o.faultPoint?.(index);
    if (await o.stopping()) return { metrics, interrupted: true };
    const t0 = Date.now();
    const out = await ev.run({
      tf: o.tf,
      model: parts.model,
      data: o.data,
      rng: o.rng.fork(`eval-${index}-${name}`),
      compile: o.compile,
      artifact: o.artifact,
      log: o.log,
      unitWeights: unit,
    });
    for (const [k, v] of Object.entries(out)) metrics[`test/${k}`] = v;
    // a plugin whose declared metrics miss what it wrote: published entries cannot be checked for those
    const names = o.registry.get('evaluator', name).metrics?.(o.config.eval[index], { modelTerms: o.modelTerms });
    const extraNames = names ? Object.keys(out).filter((k) => !names.includes(k)) : [];
    if (extraNames.length) o.warn(`evaluator ${name} wrote metrics it does not declare in metrics(): ${extraNames.join(', ')}`);
    o.log(
      `eval ${name}: ${
        Object.entries(out)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(', ') || 'done'
      } (${((Date.now() - t0) / 1000).toFixed(1)}s)`,
    );
  }
  // stopped during the last evaluator: the run did not finish (its test metrics are partial)
  return { metrics, interrupted: await o.stopping() };
}

/**
 * The test evaluation of a trained run: on the best epoch's parameters under train.select
 * (loaded from checkpoints/best/), else on the last epoch's, noted in the record as
 * `evaluated_on`; then evaluateRun with the run's artifacts directory, progress and
 * interruption. `metrics` is filled as the evaluators finish.
 */
export async function evaluateTest(
  parts: RunParts,
  o: {
    tf: typeof tfc;
    data: DataSet;
    rng: Rng;
    registry: PluginRegistry;
    config: ExperimentConfig;
    state: TrainingState;
    best: Selected | null;
    recorder: RunRecorder;
    progress: Progress;
    stopping(): boolean;
  },
  metrics: Record<string, number>,
): Promise<{ metrics: Record<string, number>; interrupted: boolean }> {
  const { tf, config, recorder, progress, best } = o;
  const { store, record } = recorder;
  if (config.train.select) {
    if (!best) throw new UserError('train.select: no epoch was selected', 'train.select');
    const dir = store.bestDir(best.epoch);
    if (!fs.existsSync(path.join(dir, 'manifest.json'))) throw new UserError(`the best checkpoint (epoch ${best.epoch}) is missing`, dir);
    loadCheckpoint(tf, dir, o.state.model);
    record.evaluated_on = { checkpoint: 'best', epoch: best.epoch, ...swaEpochs(o.state, best.epoch) };
    progress.message(
      `evaluating the best checkpoint: epoch ${best.epoch} of ${record.epochs_completed} (${best.metric} ${best.value.toFixed(4)}, ${best.mode})`,
    );
  } else {
    // train.swa: the last epoch's average, as validation measured it
    o.state.average?.install(record.epochs_completed);
    record.evaluated_on = { checkpoint: 'last', epoch: record.epochs_completed, ...swaEpochs(o.state, record.epochs_completed) };
  }
  return evaluateRun(
    parts,
    {
      tf,
      data: o.data,
      rng: o.rng,
      registry: o.registry,
      config,
      modelTerms: modelTerms(config, o.registry),
      compile: config.train.compile,
      artifact: (n) => store.artifact(n),
      log: (m) => progress.message(m),
      warn: recorder.warn,
      stopping: async () => {
        // let a signal that arrived while an evaluator computed reach its handler
        await new Promise((r) => setImmediate(r));
        return o.stopping();
      },
      faultPoint: (index) => faultPoint('eval', index, o.stopping),
    },
    metrics,
  );
}

/** train.swa: how many epochs' ends the average evaluated after `epoch` holds (nothing before it begins). */
function swaEpochs(state: TrainingState, epoch: number): { swa_epochs?: number } {
  const n = state.average?.count(epoch) ?? 0;
  return n > 0 ? { swa_epochs: n } : {};
}
