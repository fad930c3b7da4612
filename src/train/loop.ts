import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import type { Progress } from '../track/progress';
import { evaluateTerms } from '../eval/elbo';
import { makeTrainStep } from './step';
import type { GradientOptions } from './gradients';
import { DEFAULT_DRAWS } from '../config/schema';
import { DeviceSums } from '../eval/device-sums';
import { faultPoint } from '../util/fault';
import { drawsEveryBatch } from '../data/splits';
import type { WeightAverage } from './average';
import type { Model, WeightValues, DataSet, Optimizer, Schedule, TrainProgress, StepMode } from '../contracts';
import { termMeans } from '../models/model';

export interface LoopOptions {
  epochs: number;
  batchSize: number;
  logEvery: number;
  stepsPerEpoch?: number;
  /** Labelled rows appended to every batch, cycled through the labelled set (0: none). */
  labelledPerBatch: number;
  /**
   * How those labelled rows are drawn: 'cycle' (default) goes through the labelled set in a
   * fresh order each epoch; 'replacement' draws each row independently and uniformly.
   */
  labelledDraw?: 'cycle' | 'replacement';
  /** The weights validation computes the terms with (RunParts.evaluationWeights), at the epoch's last step. */
  evaluationWeights: (at: TrainProgress) => Record<string, number>;
  /** train.clip and train.weight_decay (src/train/gradients.ts); the step logs grad_norm. */
  gradients?: GradientOptions;
  /** train.swa: the average that is folded in after each epoch and validated in place of the raw parameters. */
  average?: WeightAverage;
  /** First epoch to run (0-based): > 0 when resuming from a checkpoint. */
  startEpoch: number;
  startStep: number;
  /** train.compile: run the step as one TensorFlow graph where possible. */
  compile?: 'auto' | 'off' | 'xla';
  /** train.draws: where the step's random draws (and dynamic binarisation's) are made (StepOptions.draws). */
  draws?: 'host' | 'graph';
  /** train.step_state: where a compiled step keeps the state between steps (StepOptions.state). */
  state?: 'session' | 'fed';
}

export interface LoopHooks {
  /** After each epoch: metrics line, checkpoint. */
  onEpoch(epoch: number, globalStep: number, metrics: Record<string, number>): Promise<void> | void;
  /** Polled between steps: true once the user asked to stop (Ctrl-C). */
  interrupted(): boolean;
  /** Told once per batch shape how the training step runs. */
  onStepMode?(m: StepMode): void;
}

export type LoopEnd =
  | { status: 'finished'; epochs: number; step: number }
  | { status: 'interrupted'; epochs: number; step: number }
  | { status: 'diverged'; epochs: number; step: number; message: string };

/** A minibatch of training rows, binarised afresh from `rng` when given (the step binarises otherwise). */
function gatherBatch(data: DataSet, idx: Int32Array, rng: Rng | null): Float32Array {
  const { dim } = data;
  const src = data.train.x;
  const out = new Float32Array(idx.length * dim);
  for (let i = 0; i < idx.length; i++) out.set(src.subarray(idx[i] * dim, (idx[i] + 1) * dim), i * dim);
  if (rng) rng.bernoulli(out, out);
  return out;
}

/** Labels of the batch rows; -1 where the label is not known (semi-supervised data). */
function gatherLabels(data: DataSet, idx: Int32Array, known: Uint8Array | null): Int32Array | null {
  const y = data.train.y;
  if (!y) return null;
  return Int32Array.from(idx, (j) => (!known || known[j] ? y[j] : -1));
}

/**
 * The training rows of every step of one epoch, from the epoch's stream: step s takes rows
 * s·B … (s+1)·B − 1 of a permutation of the n rows of the pass (mapped through `pool` when
 * the pass is over the labelled rows only), then `extra` rows of the labelled set: cycled
 * through a fresh permutation of it ('cycle', so every label comes equally often), or each
 * drawn uniformly with replacement ('replacement'). Streams: `shuffle` and `labelled`.
 */
export function epochBatches(
  epochRng: Rng,
  n: number,
  batchSize: number,
  pool: Int32Array | null,
  labelled: Int32Array | null,
  extra: number,
  draw: 'cycle' | 'replacement',
): (s: number) => Int32Array {
  const perm = epochRng.fork('shuffle').permutation(n);
  const labelledRng = labelled && extra > 0 ? epochRng.fork('labelled') : null;
  const L = labelled ? labelled.length : 0;
  const order = labelledRng && draw === 'cycle' ? labelledRng.permutation(L) : null;
  return (s) => {
    let idx = perm.subarray(s * batchSize, Math.min(n, (s + 1) * batchSize));
    if (pool) idx = Int32Array.from(idx, (i) => pool[i]);
    if (!labelledRng) return idx;
    // (with replacement, steps must be asked for in order: each takes the stream's next draws)
    const add = order
      ? Int32Array.from({ length: extra }, (_, i) => labelled![order[(s * extra + i) % L]])
      : Int32Array.from({ length: extra }, () => labelled![Math.min(L - 1, Math.floor(labelledRng.uniform() * L))]);
    const both = new Int32Array(idx.length + extra);
    both.set(idx);
    both.set(add, idx.length);
    return both;
  };
}

/**
 * Why train.labelled_per_batch does nothing in this run, or null: a data set without a labelled
 * subset (data.labelled; every row is labelled), or a model that trains on its labelled rows
 * alone. A warning, not an error: configs keep it for when data.labelled is set.
 */
export function idleLabelledPerBatch(model: Model, data: DataSet, modelKind: string, labelledPerBatch: number): string | null {
  if (labelledPerBatch <= 0) return null;
  const { pool, mixes } = labelledRole(model, data);
  if (mixes) return null;
  return pool
    ? `train.labelled_per_batch (${labelledPerBatch}) does nothing here: model '${modelKind}' trains on its ${pool.length} labelled rows alone`
    : `train.labelled_per_batch (${labelledPerBatch}) does nothing here: ${data.name} keeps every label (no data.labelled: N), so there are no unlabelled rows to mix them with`;
}

/**
 * A note when train.batch_size exceeds the rows an epoch passes over: every epoch is then one
 * step on all of them (full-batch training), which a researcher may mean, or not (null otherwise).
 */
export function wholeDataBatch(model: Model, data: DataSet, batchSize: number): string | null {
  const { pool, n } = labelledRole(model, data);
  if (batchSize <= n) return null;
  const rows = pool ? `the ${n} labelled rows` : `the ${n} training rows`;
  return `train.batch_size (${batchSize}) is larger than ${rows} an epoch passes over: every epoch is one step on all of them (full-batch); lower it for minibatches`;
}

/**
 * What the labelled subset is to the epoch: `pool`, the rows it passes over when the model
 * learns from labels alone (else null: every training row); `mixes`, whether labelled rows
 * can be added to every batch (a labelled subset, and unlabelled rows to mix them with); `n`,
 * how many rows the epoch passes over.
 */
function labelledRole(model: Model, data: DataSet): { pool: DataSet['labelled']; mixes: boolean; n: number } {
  const pool = model.trainsOn === 'labelled' && data.labelled ? data.labelled : null;
  return { pool, mixes: !pool && !!data.labelled, n: pool ? pool.length : data.train.n };
}

/**
 * The rows an epoch passes over: every training row, or only the labelled ones (`pool`) for
 * a model that learns from labels alone (then there is nothing to cycle in besides); `extra`
 * labelled rows appended to every batch; `known`: which training rows have their label.
 */
function epochRows(model: Model, data: DataSet, o: LoopOptions) {
  const known = data.labelled ? new Uint8Array(data.train.n) : null;
  if (known) for (const i of data.labelled!) known[i] = 1;
  const { pool, mixes, n } = labelledRole(model, data);
  const extra = mixes ? o.labelledPerBatch : 0;
  const stepsPerEpoch = Math.min(Math.ceil(n / o.batchSize), o.stepsPerEpoch ?? Infinity);
  return { known, pool, n, extra, stepsPerEpoch };
}

/** A running mean that is not finite at a read-back: the loop's end, with the cause (a loss weight that is not a number, from a schedule plugin, rather than the learning rate). */
function divergedInEpoch(means: Record<string, number>, w: WeightValues, epoch: number, globalStep: number): LoopEnd | null {
  const bad = Object.entries(means).find(([, v]) => !Number.isFinite(v));
  if (!bad) return null;
  const weight = Object.entries(w).find(([, v]) => !Number.isFinite(v));
  return {
    status: 'diverged',
    epochs: epoch,
    step: globalStep,
    message: weight
      ? `training stopped: the loss weight ${weight[0]} is ${weight[1]} in epoch ${epoch + 1} (step ${globalStep}), so ${bad[0]} became ${bad[1]}; loss.${weight[0]} (its schedule) must give finite numbers (the last good checkpoint is kept)`
      : `training diverged: ${bad[0]} became ${bad[1]} in epoch ${epoch + 1} by step ${globalStep}; lower train.optimizer.lr, check the data range, or try another seed (the last good checkpoint is kept)`,
  };
}

/**
 * An epoch's metrics: the training means and speed, the loss weights that trained (the
 * schedules' values, or the model's own: m2's alpha_expression), a scheduled learning rate
 * as its last step used it, and the validation terms.
 */
function epochMetrics(
  tf: typeof tfc,
  model: Model,
  data: DataSet,
  optimizer: Optimizer,
  o: LoopOptions,
  end: {
    means: Record<string, number>;
    seen: number;
    seconds: number;
    w: WeightValues;
    lastAt: TrainProgress | null;
    epoch: number;
    step: number;
    rng: Rng;
  },
): Record<string, number> {
  const { epoch, lastAt } = end;
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(end.means)) metrics[`train/${k}`] = v;
  metrics['train/samples_per_sec'] = end.seen / Math.max(end.seconds, 1e-9);
  metrics['train/epoch_time_s'] = end.seconds;
  for (const [n, v] of Object.entries({ ...end.w, ...(model.fixedWeights ?? {}) })) metrics[`weight/${n}`] = v;
  if (lastAt) for (const [n, v] of Object.entries(optimizer.scheduled?.(lastAt) ?? {})) metrics[`optimizer/${n}`] = v;
  if (data.val) {
    const validate = () =>
      evaluateTerms(
        tf,
        model,
        data.val!,
        data.dim,
        1000,
        end.rng.fork('validation'),
        o.evaluationWeights(lastAt ?? { epoch, step: end.step, fraction: (epoch + 1) / o.epochs }),
        o.compile,
      );
    // train.swa: once averaging has begun, validation measures the average
    const val = o.average ? o.average.with(epoch + 1, validate) : validate();
    for (const [k, v] of Object.entries(val)) metrics[`val/${k}`] = v;
  }
  return metrics;
}

/**
 * The seeded training loop. Every epoch draws from its own stream, forked from the run
 * seed by epoch number, so a run resumed at an epoch boundary replays exactly the draws
 * an uninterrupted run makes. Loss values stay on the device and are read back once
 * every `logEvery` steps (progress, NaN/Inf check) and at the end of the epoch.
 */
export async function trainLoop(
  tf: typeof tfc,
  model: Model,
  data: DataSet,
  optimizer: Optimizer,
  weights: Record<string, Schedule>,
  rng: Rng,
  o: LoopOptions,
  hooks: LoopHooks,
  progress: Progress,
): Promise<LoopEnd> {
  // dynamic binarisation: in JavaScript with the host draws, in the step with the graph's
  const binarizeInStep = drawsEveryBatch(data.binarize) && (o.draws ?? DEFAULT_DRAWS) === 'graph';
  const binarizeOnHost = drawsEveryBatch(data.binarize) && !binarizeInStep;
  const step = makeTrainStep(tf, model, optimizer, {
    compile: o.compile,
    onMode: hooks.onStepMode,
    draws: o.draws,
    binarize: binarizeInStep,
    gradients: o.gradients,
    state: o.state,
  });
  try {
    const { known, pool, n, extra, stepsPerEpoch } = epochRows(model, data, o);
    let globalStep = o.startStep;

    for (let epoch = o.startEpoch; epoch < o.epochs; epoch++) {
      const epochRng = rng.fork(`epoch-${epoch}`);
      const rowsOf = epochBatches(epochRng, n, o.batchSize, pool, extra ? data.labelled! : null, extra, o.labelledDraw ?? 'cycle');
      const noiseRng = epochRng.fork('noise');
      const binRng = epochRng.fork('binarize');
      const sums = new DeviceSums(tf);
      let seen = 0;
      const t0 = Date.now();
      let w: WeightValues = {};
      let lastAt: TrainProgress | null = null;

      for (let s = 0; s < stepsPerEpoch; s++) {
        // let signal handlers (Ctrl-C) run between steps
        await new Promise((r) => setImmediate(r));
        if (hooks.interrupted()) return { status: 'interrupted', epochs: epoch, step: globalStep };
        const idx = rowsOf(s);
        // schedules (loss weights, spike-slab sharpness) see the fractional epoch every step
        const progressInfo = {
          epoch,
          step: globalStep,
          fraction: (epoch + s / stepsPerEpoch) / o.epochs,
          epochFloat: epoch + s / stepsPerEpoch,
        };
        const at = progressInfo;
        lastAt = at;
        w = Object.fromEntries(Object.entries(weights).map(([n, s]) => [n, s(at)]));
        const xData = gatherBatch(data, idx, binarizeOnHost ? binRng : null);
        const labels = gatherLabels(data, idx, known);
        const x = tf.tensor2d(xData, [idx.length, data.dim]);
        const terms = step(x, labels, w, noiseRng, progressInfo);
        x.dispose();
        // running sums stay on the device: no read-back between log intervals
        sums.add(terms, idx.length);
        Object.values(terms).forEach((t) => t.dispose());
        seen += idx.length;
        globalStep++;
        if (s === 0) await faultPoint('step', epoch + 1, hooks.interrupted);

        const last = s === stepsPerEpoch - 1;
        if ((s + 1) % o.logEvery === 0 || last) {
          const means = termMeans(model, sums.means(seen));
          const diverged = divergedInEpoch(means, w, epoch, globalStep);
          if (diverged) {
            sums.dispose();
            return diverged;
          }
          const elapsed = (Date.now() - t0) / 1000;
          const rate = seen / Math.max(elapsed, 1e-9);
          const remainingSamples = (stepsPerEpoch - s - 1) * o.batchSize + (o.epochs - epoch - 1) * stepsPerEpoch * o.batchSize;
          progress.update({
            epoch: epoch + 1,
            epochs: o.epochs,
            step: s + 1,
            steps: stepsPerEpoch,
            terms: means,
            samplesPerSec: rate,
            etaSec: remainingSamples / rate,
          });
        }
      }
      // the compiled step's state, kept in its TensorFlow session, back into the variables
      // that validation and the checkpoint read
      step.sync();
      const trainSeconds = (Date.now() - t0) / 1000;
      const means = termMeans(model, sums.means(seen));
      sums.dispose();
      o.average?.update(epoch + 1); // train.swa: the epoch's parameters into the average
      const metrics = epochMetrics(tf, model, data, optimizer, o, {
        means,
        seen,
        seconds: trainSeconds,
        w,
        lastAt,
        epoch,
        step: globalStep,
        rng: epochRng,
      });
      const bad = Object.entries(metrics).find(([, v]) => !Number.isFinite(v));
      if (bad) {
        return {
          status: 'diverged',
          epochs: epoch,
          step: globalStep,
          message: `training diverged: ${bad[0]} is ${bad[1]} after epoch ${epoch + 1}; lower train.optimizer.lr, check the data range, or try another seed (the last good checkpoint is kept)`,
        };
      }
      await hooks.onEpoch(epoch + 1, globalStep, metrics);
      progress.epochDone(epoch + 1, o.epochs, metrics, (Date.now() - t0) / 1000);
    }
    return { status: 'finished', epochs: o.epochs, step: globalStep };
  } finally {
    step.dispose();
  }
}
