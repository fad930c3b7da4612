import type * as tfc from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { Rng } from '../runtime/rng';
import { classHistogram } from '../data/splits';
import { trainLoop, LoopEnd } from '../train/loop';
import { saveCheckpoint } from '../track/checkpoint';
import type { Progress } from '../track/progress';
import { faultPoint } from '../util/fault';
import type { RunParts } from './build';
import { modelVariables } from '../models/model';
import { WeightAverage } from '../train/average';
import type { RunRecorder } from './record';
import type { StartPoint } from './resume';
import { type DataSet, type ExperimentConfig, Selected } from '../contracts';

/**
 * The variables a checkpoint holds, by name: the model's (`model/...`) and, in `all`, the
 * optimizer's (`optimizer/...`) and train.swa's averages (`average/model/...`) too.
 */
export interface TrainingState {
  model: Map<string, tfc.Variable>;
  all: Map<string, tfc.Variable>;
  /** train.swa: the running average of the model's variables (absent without it). */
  average?: WeightAverage;
}

export function trainingState(parts: Pick<RunParts, 'model' | 'optimizer'>, swa?: { tf: typeof tfc; from_epoch: number }): TrainingState {
  const model = new Map<string, tfc.Variable>();
  for (const [k, v] of modelVariables(parts.model)) model.set(`model/${k}`, v);
  const all = new Map<string, tfc.Variable>(model);
  for (const [k, v] of parts.optimizer.state) all.set(`optimizer/${k}`, v);
  const average = swa ? new WeightAverage(swa.tf, model, swa.from_epoch) : undefined;
  if (average) for (const [k, v] of average.checkpointVars()) all.set(k, v);
  return { model, all, ...(average ? { average } : {}) };
}

/**
 * Step 2 of a run, train: the seeded training loop from `start`, and after every epoch
 * (in this order, so that whichever checkpoint a resume starts from, what it names exists)
 * the best parameters under train.select, the epoch checkpoint, pruning, then the metrics
 * line to every tracker and run.json. Stops between steps once `stopping()` says so.
 * Resolves with how the loop ended and the selected epoch (null without train.select).
 */
export async function trainRun(
  parts: RunParts,
  o: {
    tf: typeof tfc;
    data: DataSet;
    rng: Rng;
    train: ExperimentConfig['train'];
    state: TrainingState;
    start: StartPoint;
    recorder: RunRecorder;
    progress: Progress;
    stopping(): boolean;
    onEpoch?(epoch: number, metrics: Record<string, number>, tf: typeof tfc): void;
  },
): Promise<{ end: LoopEnd; best: Selected | null }> {
  const { tf, train, recorder, progress } = o;
  const { store, record } = recorder;
  const select = train.select;
  let best = o.start.best;
  const end = await trainLoop(
    tf,
    parts.model,
    o.data,
    parts.optimizer,
    parts.weights,
    o.rng.fork('train'),
    {
      epochs: train.epochs,
      batchSize: train.batch_size,
      logEvery: train.log_every,
      stepsPerEpoch: train.steps_per_epoch,
      labelledPerBatch: train.labelled_per_batch,
      labelledDraw: train.labelled_draw,
      evaluationWeights: parts.evaluationWeights,
      gradients: { clip: train.clip, weightDecay: train.weight_decay },
      average: o.state.average,
      startEpoch: o.start.epoch,
      startStep: o.start.step,
      compile: train.compile,
      draws: train.draws,
      state: train.step_state,
    },
    {
      interrupted: o.stopping,
      onStepMode: (m) => {
        progress.message(
          m.mode === 'graph'
            ? `train step (${m.batch}): one TensorFlow graph of ${m.kernels} kernels, traced and checked in ${m.seconds!.toFixed(2)} s`
            : `train step (${m.batch}): kernel by kernel: ${m.reason}`,
        );
        record.step_modes = [...(record.step_modes ?? []).filter((s) => s.batch !== m.batch), m];
      },
      onEpoch: async (epoch, step, metrics) => {
        // the best parameters first, then the epoch checkpoint that names them, then pruning:
        // whichever checkpoint a resume starts from, the best one it names exists
        if (select) {
          const value = metrics[select.metric];
          if (value === undefined) {
            const have = Object.keys(metrics).filter((k) => k.startsWith('val/'));
            throw new UserError(
              `'${select.metric}' is not among the metrics of epoch ${epoch}${have.length ? ` (${have.join(', ')})` : ' (no val/ metrics: is data.validation 0?)'}`,
              'train.select.metric',
            );
          }
          if (!best || (select.mode === 'max' ? value > best.value : value < best.value)) {
            best = { metric: select.metric, mode: select.mode, epoch, value };
            // the parameters that were validated: train.swa's average once it has begun
            saveCheckpoint(store.bestDir(epoch), epoch, step, o.state.average?.evaluated(epoch) ?? o.state.model);
          }
        }
        const now = Date.now(); // one timestamp for every tracker, and in the checkpoint
        saveCheckpoint(store.checkpointDir(epoch), epoch, step, o.state.all, {
          ...(best ? { selected: best } : {}),
          ...(o.state.average?.active(epoch) ? { evaluated: 'average' as const } : {}),
          metrics: { step, timestamp: now, epoch, ...metrics },
        });
        await faultPoint('checkpoint', epoch, o.stopping);
        store.pruneCheckpoints(train.checkpoint_keep);
        if (best) store.pruneBest(best.epoch);
        record.selected = best ?? undefined;
        record.epochs_completed = epoch;
        record.global_step = step;
        record.metrics = { ...record.metrics, ...metrics };
        await recorder.logMetrics({ epoch, ...metrics }, step, now);
        store.writeRecord(record);
        o.onEpoch?.(epoch, metrics, tf);
      },
    },
    recorder.stepProgress(progress),
  );
  return { end, best };
}

/** The class distribution, printed before training (a 90%-one-class set should be noticed). */
export function describeClasses(data: DataSet): string[] {
  if (!data.train.y || !data.classes) return [];
  const fmt = (h: number[]) => {
    const total = h.reduce((a, b) => a + b, 0);
    return h.map((c, i) => `${i}:${c} (${((100 * c) / Math.max(total, 1)).toFixed(1)}%)`).join(' ');
  };
  const lines = [`classes in train: ${fmt(classHistogram(data.train.y, data.classes))}`];
  if (data.labelled)
    lines.push(`labelled subset (${data.labelled.length}): ${fmt(classHistogram(data.train.y, data.classes, data.labelled))}`);
  // a class the model never sees in training cannot be learnt: say so before it trains
  const train = classHistogram(data.train.y, data.classes);
  for (const [name, split] of [
    ['validation', data.val],
    ['test', data.test],
  ] as const) {
    if (!split?.y) continue;
    const h = classHistogram(split.y, data.classes);
    const unseen = h.flatMap((c, i) => (c > 0 && train[i] === 0 ? [`${i} (${c} rows)`] : []));
    if (unseen.length)
      lines.push(
        `warning: class${unseen.length > 1 ? 'es' : ''} ${unseen.join(', ')} of the ${name} split never occur${unseen.length > 1 ? '' : 's'} in the training split: no model can learn ${unseen.length > 1 ? 'them' : 'it'}; check the labels or the split`,
      );
  }
  return lines;
}
