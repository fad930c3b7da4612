import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import { nativeBackend, traceNative } from '../runtime/graph/trace';
import { DEFAULT_DRAWS } from '../config/schema';
import { transformGradients, type GradientOptions } from './gradients';
import { recordingRng, firstDifference, sameGraph, loadTrace, drawTensors, seedTensors, type LoadedTrace } from '../runtime/graph/compile';
import type { Model, LossWeights, Optimizer, TrainProgress, StepMode, WeightValues } from '../contracts';

export type StepFn = (x: tfc.Tensor2D, y: Int32Array | null, w: WeightValues, rng: Rng, progress: TrainProgress) => Record<string, tfc.Scalar>;

export type TrainStep = StepFn & {
  modes: StepMode[];
  /** Free the compiled graphs' sessions. */
  dispose(): void;
};

export interface StepOptions {
  /**
   * 'auto' (default): on the tensorflow backend, compile the step into one TensorFlow
   * graph when the trace shows that is exact; 'off': always run kernel by kernel.
   */
  compile?: 'auto' | 'off';
  /** Told once per batch shape how the step runs. */
  onMode?: (m: StepMode) => void;
  /**
   * Where the step's random draws come from (train.draws; DEFAULT_DRAWS). 'host': the model's
   * `rng` calls, in order, on the stream the step is given (it advances), in JavaScript, fed
   * to a compiled graph as inputs: compiled and eager steps draw the same numbers. 'graph':
   * each step draws from its own stream, `rng.fork('step-<progress.step>')` (`rng` does not
   * advance), a function of the step alone; a compiled graph makes the draws itself with
   * TensorFlow's counter-based generator seeded from that stream, an eager step in
   * JavaScript from it: the same distributions, not the same numbers.
   */
  draws?: 'host' | 'graph';
  /**
   * x holds grey values in [0, 1] and the step binarises it, a fresh Bernoulli draw per
   * value (dynamic binarisation), as the first of its draws.
   */
  binarize?: boolean;
  /**
   * Gradient clipping and weight decay between backpropagation and the update
   * (train.clip, train.weight_decay; src/train/gradients.ts). The step then also returns
   * `grad_norm`, the gradients' global norm before clipping.
   */
  gradients?: GradientOptions;
}

/** The step with the labels already on the device (a graph input when compiled). */
type CoreFn = (
  x: tfc.Tensor2D,
  y: Int32Array | null,
  labels: tfc.Tensor1D | null,
  inputs: Record<string, tfc.Tensor1D> | undefined,
  w: LossWeights,
  rng: Rng,
  progress: TrainProgress,
  /** The optimizer's scheduled hyper-parameters as fed scalars (compiled); absent: from `progress`. */
  opt?: Record<string, tfc.Scalar>,
) => Record<string, tfc.Scalar>;

/**
 * What every step uploads besides x: the labels as an int32 tensor and the model's
 * `stepInputs`, in a fixed order (graph inputs when the step is compiled).
 */
function uploads(tf: typeof tfc, model: Model, y: Int32Array | null, rows: number) {
  const labels = y ? tf.tensor1d(y, 'int32') : null;
  const arrays = model.stepInputs?.(y, rows);
  const inputs = arrays ? Object.fromEntries(Object.keys(arrays).sort().map((k) => [k, tf.tensor1d(arrays[k], 'int32')])) : undefined;
  const list = [...(labels ? [labels] : []), ...Object.values(inputs ?? {})];
  return { labels, inputs, list, dispose: () => list.forEach((t) => t.dispose()) };
}

/**
 * The numbers a compiled step feeds its graph as scalars, in a fixed order: the loss
 * weights, the prior's scheduled quantities and the optimizer's (a scheduled learning rate)
 * at `progress` (schedules move them every step). `weights` and `progress` hand the scalars
 * to the model, `opt` to the optimizer. While tracing
 * (`guard`), reading one as a JavaScript number would freeze it into the graph: that
 * throws, and the step stays eager.
 */
function stepScalars(tf: typeof tfc, model: Model, optimizer: Optimizer, w: WeightValues, progress: TrainProgress, guard: boolean) {
  const scalar = (v: number, what: string) => (guard ? guardedScalar(tf, v, what) : tf.scalar(v));
  // by name, in a fixed order: the graph's inputs are the same every step
  const weightNames = Object.keys(w).sort();
  const weights = weightNames.map((k) => scalar(w[k], `loss weight ${k}`));
  const values = model.scheduled?.(progress) ?? {};
  const names = Object.keys(values).sort();
  const scheduled = names.map((k) => scalar(values[k], `scheduled value ${k}`));
  const optValues = optimizer.scheduled?.(progress) ?? {};
  const optNames = Object.keys(optValues).sort();
  const opt = optNames.map((k) => scalar(optValues[k], `the optimizer's scheduled ${k}`));
  const list = [...weights, ...scheduled, ...opt];
  return {
    list,
    opt: Object.fromEntries(optNames.map((k, i) => [k, opt[i]])),
    // fed device scalars: the model uses them only as tf operands
    weights: Object.fromEntries(weightNames.map((k, i): [string, tfc.Scalar] => [k, weights[i]])),
    progress: names.length ? { ...progress, scheduled: Object.fromEntries(names.map((k, i) => [k, scheduled[i]])) } : progress,
    dispose: () => list.forEach((t) => t.dispose()),
  };
}

/** A compiled graph's inputs (before the random draws), in the order the trace saw them. */
const graphFeeds = (state: tfc.Variable[], x: tfc.Tensor2D, up: ReturnType<typeof uploads>, sc: ReturnType<typeof stepScalars>) => [
  ...state,
  x,
  ...up.list,
  ...sc.list,
];

/** Dynamic binarisation on the device: 1 where a uniform draw is below the grey value. */
function binarized(tf: typeof tfc, x: tfc.Tensor2D, rng: Rng): tfc.Tensor2D {
  return tf.cast(tf.less(tf.tensor2d(rng.uniforms(x.size), x.shape), x), 'float32') as tfc.Tensor2D;
}

/** One optimisation step, kernel by kernel: gradients of `loss`, then the optimizer's update. */
function eagerStep(tf: typeof tfc, model: Model, optimizer: Optimizer, binarize: boolean, gradients?: GradientOptions): CoreFn {
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const byTfName = new Map(vars.map((v, i) => [v.name, names[i]]));
  return (grey, y, labels, inputs, w, rng, progress, opt) => {
    let terms: Record<string, tfc.Scalar> = {};
    tf.tidy(() => {
      const x = binarize ? binarized(tf, grey, rng) : grey;
      const { grads } = training(model, () =>
        tf.variableGrads(() => {
          terms = model.terms({ x, y, labels, inputs }, w, rng, progress);
          Object.values(terms).forEach((t) => tf.keep(t));
          return terms.loss;
        }, vars),
      );
      const named: Record<string, tfc.Tensor> = {};
      for (const [k, g] of Object.entries(grads)) named[byTfName.get(k)!] = g;
      if (gradients) {
        const t = transformGradients(tf, named, model.params, gradients);
        terms = { ...terms, grad_norm: tf.keep(t.norm) };
        optimizer.apply(t.grads, opt ?? optimizer.scheduled?.(progress) ?? {});
      } else optimizer.apply(named, opt ?? optimizer.scheduled?.(progress) ?? {});
    });
    return terms;
  };
}

/**
 * `fn` with the model's phase in training (Model.phase): its networks use batch
 * statistics and update their buffers; restored afterwards, also when `fn` throws.
 */
function training<T>(model: Model, fn: () => T): T {
  const phase = model.phase;
  if (!phase) return fn();
  const was = phase.training;
  phase.training = true;
  try {
    return fn();
  } finally {
    phase.training = was;
  }
}

function guardedScalar(tf: typeof tfc, value: number, what: string): tfc.Scalar {
  const s = tf.scalar(value);
  Object.defineProperty(s, 'valueOf', {
    value: () => {
      throw new Error(`the model reads ${what} as a JavaScript number`);
    },
  });
  return s;
}

/** Progress at the start and at the end of training: a schedule that moves shows up as a difference. */
const START: TrainProgress = { epoch: 0, step: 0, fraction: 0, epochFloat: 0 };
const END: TrainProgress = { epoch: 1e6, step: 1e9, fraction: 1, epochFloat: 1e6 };

interface Compiled extends LoadedTrace {
  termNames: string[];
  kernels: number;
}

/**
 * Trace the step on the native backend and load it as one graph. The step is traced
 * twice from the same state: at the start of training with the batch's labels and at
 * the end of training with the labels reversed and fresh draws. The graph is used only
 * when both traces are the same graph, i.e. nothing the graph would freeze (labels,
 * schedules, random numbers) entered it as a constant, and when the graph reproduces
 * the eager step's loss terms and updates. Returns why not otherwise. State is left untouched and
 * `rng` is not advanced.
 */
function compile(tf: typeof tfc, model: Model, optimizer: Optimizer, eager: CoreFn, state: tfc.Variable[], x: tfc.Tensor2D, y: Int32Array | null, w: WeightValues, rng: Rng, inGraph: boolean): Compiled | string {
  let termNames: string[] = [];
  const dry = (labels: Int32Array | null, progress: TrainProgress, r: Rng) => {
    const saved = state.map((v) => tf.clone(v));
    const rec = recordingRng(r);
    const up = uploads(tf, model, labels, x.shape[0]);
    const sc = stepScalars(tf, model, optimizer, w, progress, true);
    try {
      const { trace, outputs } = traceNative(tf, graphFeeds(state, x, up, sc), rec.drawIndex, () => {
        const terms = eager(x, labels, up.labels, up.inputs, sc.weights, rec.rng, sc.progress, sc.opt);
        termNames = Object.keys(terms);
        return [...state, ...termNames.map((k) => terms[k])];
      });
      const terms = outputs.slice(state.length).map((t) => t.dataSync()[0]);
      const after = state.map((v) => v.dataSync() as Float32Array);
      outputs.slice(state.length).forEach((t) => t.dispose());
      trace.problems.push(...rec.problems);
      return { trace, terms, after, draws: rec.draws };
    } finally {
      state.forEach((v, i) => v.assign(saved[i]));
      saved.forEach((t) => t.dispose());
      up.dispose();
      sc.dispose();
    }
  };
  let a: ReturnType<typeof dry>;
  let b: ReturnType<typeof dry>;
  try {
    a = dry(y, START, rng);
    // fresh draws: the same stream, a few numbers on
    const later = rng.clone();
    later.normals(7);
    b = dry(y ? y.slice().reverse() : null, END, later);
  } catch (e) {
    return `tracing failed: ${(e as Error).message}`;
  }
  const problems = [...new Set([...a.trace.problems, ...b.trace.problems])];
  if (problems.length) return problems.join('; ');
  if (!sameGraph(a, b)) return `the step's kernels or constants change with the labels, the schedule or the random draws (${firstDifference(a.trace, b.trace)})`;

  const loaded = loadTrace(tf, a.trace, a.draws, { inGraph });
  if (typeof loaded === 'string') return loaded;
  const { session } = loaded;
  const compiled: Compiled = { ...loaded, termNames, kernels: a.trace.kernels };
  // the graph must give the eager step's loss terms and updates on the same inputs
  // (the traces restored the state, so this is the state they started from)
  const before = state.map((v) => v.dataSync() as Float32Array);
  const up = uploads(tf, model, y, x.shape[0]);
  const sc = stepScalars(tf, model, optimizer, w, START, false);
  // (draws made in the graph are fed the recorded values here, in place of the generator's)
  const draws = drawTensors(tf, compiled.draws, a.draws);
  let outs: tfc.Tensor[] = [];
  try {
    outs = session.run([...graphFeeds(state, x, up, sc), ...draws], inGraph ? compiled.recordedInputs : undefined);
    const got = outs.slice(state.length).map((o) => o.dataSync()[0]);
    const bad = got.findIndex((g, i) => !(Math.abs(g - a.terms[i]) <= 1e-4 * (1 + Math.abs(a.terms[i]))));
    if (bad >= 0) {
      session.dispose();
      return `the graph gives ${termNames[bad]} = ${got[bad]} where the eager step gives ${a.terms[bad]}`;
    }
    // updates: ‖graph − eager‖ small against ‖eager − before‖ (Adam's first step is ±lr
    // wherever a gradient is not exactly zero, so elementwise rounding could flip a few)
    const off = state.findIndex((v, i) => {
      const g = outs[i].dataSync() as Float32Array;
      const e = a.after[i];
      let diff = 0;
      let delta = 0;
      for (let k = 0; k < e.length; k++) {
        diff += (g[k] - e[k]) ** 2;
        delta += (e[k] - before[i][k]) ** 2;
      }
      return !(Math.sqrt(diff) <= 1e-2 * Math.sqrt(delta) + 1e-6);
    });
    if (off >= 0) {
      session.dispose();
      return `the graph updates ${state[off].name} differently from the eager step`;
    }
    if (inGraph) {
      // and it runs with its own draws (the outputs are dropped: the state is untouched)
      const seeds = seedTensors(tf, compiled.draws, rng.clone());
      try {
        session.run([...graphFeeds(state, x, up, sc), ...seeds]).forEach((o) => o.dispose());
      } finally {
        seeds.forEach((t) => t.dispose());
      }
    }
  } catch (e) {
    session.dispose();
    return `TensorFlow could not run the traced graph: ${(e as Error).message}`;
  } finally {
    [...outs, ...draws].forEach((o) => o.dispose());
    up.dispose();
    sc.dispose();
  }
  return compiled;
}

/**
 * The training step used by the training loop and the benchmark (so the benchmark
 * measures exactly what training does). Returns every loss term as a scalar still on
 * the device (nothing is read back here); the caller owns and disposes them.
 *
 * On the tensorflow backend the step is compiled, per batch shape, into one TensorFlow
 * graph (forward, gradients and optimizer update: one session run instead of a few
 * hundred eager kernels). With the host's draws (StepOptions.draws) they come from the
 * same `rng` calls in the same order as the eager step makes them, so both modes train on
 * the same noise and the numbers agree to float rounding, not bit for bit; with the
 * graph's, TensorFlow makes them inside the graph from per-step seeds. Whether a shape compiles depends only on the code
 * and the shape, never on when it is first seen, so a resumed run runs as the
 * uninterrupted one did.
 */
export function makeTrainStep(tf: typeof tfc, model: Model, optimizer: Optimizer, opts: StepOptions = {}): TrainStep {
  const core = eagerStep(tf, model, optimizer, !!opts.binarize, opts.gradients);
  const inGraph = (opts.draws ?? DEFAULT_DRAWS) === 'graph';
  /** The stream the step draws from: the one given, or the step's own (draws: graph). */
  const stream = (rng: Rng, progress: TrainProgress) => (inGraph ? rng.fork(`step-${progress.step}`) : rng);
  const eager: StepFn = (x, y, w, given, progress) => {
    const rng = stream(given, progress);
    const up = uploads(tf, model, y, x.shape[0]);
    try {
      return core(x, y, up.labels, up.inputs, w, rng, progress);
    } finally {
      up.dispose();
    }
  };
  const modes: StepMode[] = [];
  if (opts.compile === 'off' || !nativeBackend(tf)) return Object.assign(eager, { modes, dispose: () => {} });
  // the buffers (batch normalisation's running averages) are fed and read back as the parameters are
  const state = [...model.params.values(), ...(model.buffers?.values() ?? []), ...optimizer.state.values()];
  const compiled = new Map<string, Compiled | null>();

  const step: StepFn = (x, y, w, given, progress) => {
    const rng = stream(given, progress);
    const up = uploads(tf, model, y, x.shape[0]);
    try {
      // one graph per shape of everything fed: x and the model's step inputs
      const key = [x.shape.join('×'), ...Object.entries(up.inputs ?? {}).map(([k, v]) => `${k} ${v.shape[0]}`)].join(', ');
      let c = compiled.get(key);
      if (c === undefined) {
        const t0 = performance.now();
        const r = compile(tf, model, optimizer, core, state, x, y, w, rng, inGraph);
        const seconds = (performance.now() - t0) / 1000;
        c = typeof r === 'string' ? null : r;
        const mode: StepMode = c ? { batch: key, mode: 'graph', kernels: c.kernels, seconds } : { batch: key, mode: 'eager', reason: r as string };
        compiled.set(key, c);
        modes.push(mode);
        opts.onMode?.(mode);
      }
      if (!c) return core(x, y, up.labels, up.inputs, w, rng, progress);
      const draws = c.inGraph ? seedTensors(tf, c.draws, rng) : drawTensors(tf, c.draws, rng);
      const sc = stepScalars(tf, model, optimizer, w, progress, false);
      const outs = c.session.run([...graphFeeds(state, x, up, sc), ...draws]);
      draws.forEach((t) => t.dispose());
      sc.dispose();
      state.forEach((v, i) => {
        v.assign(outs[i]);
        outs[i].dispose();
      });
      return Object.fromEntries(c.termNames.map((k, i) => [k, outs[state.length + i] as tfc.Scalar]));
    } finally {
      up.dispose();
    }
  };
  const dispose = () => {
    for (const c of compiled.values()) c?.session.dispose();
    compiled.clear();
  };
  return Object.assign(step, { modes, dispose });
}
