import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import { nativeBackend, traceNative, type Trace } from '../runtime/graph/trace';
import { DEFAULT_DRAWS } from '../config/schema';
import { transformGradients, type GradientOptions } from './gradients';
import {
  recordingRng,
  firstDifference,
  sameGraph,
  loadTrace,
  drawTensors,
  seedTensors,
  type Draw,
  type LoadedTrace,
} from '../runtime/graph/compile';
import { ResidentSession, residentNodes, coversState, DT_FLOAT, type ResidentPlan, type ResidentVar } from '../runtime/graph/resident';
import type { Model, LossWeights, Optimizer, FusedAdam, TrainProgress, StepMode, WeightValues } from '../contracts';

export type StepFn = (
  x: tfc.Tensor2D,
  y: Int32Array | null,
  w: WeightValues,
  rng: Rng,
  progress: TrainProgress,
) => Record<string, tfc.Scalar>;

export type TrainStep = StepFn & {
  modes: StepMode[];
  /**
   * Copy the state a compiled step keeps in its session back into the model's and the
   * optimizer's variables: before anything else reads them (evaluation, a checkpoint).
   */
  sync(): void;
  /** Sync, then free the compiled graphs' sessions. */
  dispose(): void;
};

export interface StepOptions {
  /**
   * 'auto' (default): on the tensorflow backend, compile the step into one TensorFlow
   * graph when the trace shows that is exact; 'off': always run kernel by kernel; 'xla':
   * as 'auto', the graph's clusters compiled by XLA for this CPU.
   */
  compile?: 'auto' | 'off' | 'xla';
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
  /**
   * Where a compiled step keeps the parameters, buffers and optimizer state between steps:
   * 'session' (default) in its TensorFlow session as resource variables, Adam's update then
   * TensorFlow's fused kernel (ResourceApplyAdam), copied back by `sync()`; 'fed': fed in
   * and returned by every step (the variables are always current).
   */
  state?: 'session' | 'fed';
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
  const inputs = arrays
    ? Object.fromEntries(
        Object.keys(arrays)
          .sort()
          .map((k) => [k, tf.tensor1d(arrays[k], 'int32')]),
      )
    : undefined;
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
function eagerStep(
  tf: typeof tfc,
  model: Model,
  optimizer: Optimizer,
  binarize: boolean,
  gradients: GradientOptions | undefined,
  hook: GradsHook,
): CoreFn {
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const byTfName = new Map(vars.map((v, i) => [v.name, names[i]]));
  return (grey, y, labels, inputs, w, rng, progress, opt) => {
    let terms: Record<string, tfc.Scalar> = {};
    tf.tidy(() => {
      const x = binarize ? binarized(tf, grey, rng) : grey;
      const { grads } = inTraining(
        model,
        () =>
          tf.variableGrads(() => {
            terms = model.terms({ x, y, labels, inputs }, w, rng, progress);
            Object.values(terms).forEach((t) => tf.keep(t));
            return terms.loss;
          }, vars),
        rng,
      );
      const named: Record<string, tfc.Tensor> = {};
      for (const [k, g] of Object.entries(grads)) named[byTfName.get(k)!] = g;
      let final = named;
      if (gradients) {
        const t = transformGradients(tf, named, model.params, gradients);
        terms = { ...terms, grad_norm: tf.keep(t.norm) };
        final = t.grads;
      }
      hook.grads?.(final);
      optimizer.apply(final, opt ?? optimizer.scheduled?.(progress) ?? {});
    });
    return terms;
  };
}

/**
 * `fn` with the model's phase in training (Model.phase): its networks use batch
 * statistics, update their buffers and draw dropout masks from `rng`; restored afterwards,
 * also when `fn` throws. The training step's forward pass runs in it (and the bench's
 * reference case, which computes that pass's loss for the PyTorch twin).
 */
export function inTraining<T>(model: Model, fn: () => T, rng: Rng): T {
  const phase = model.phase;
  if (!phase) return fn();
  const was = { training: phase.training, rng: phase.rng };
  phase.training = true;
  phase.rng = rng;
  try {
    return fn();
  } finally {
    phase.training = was.training;
    phase.rng = was.rng;
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

/** TensorFlow's DataType numbers of the state's dtypes. */
const TF_DTYPES: Partial<Record<string, number>> = { float32: DT_FLOAT, int32: 3 };

/** Adam's state, by index into the step's state, when its update can run fused (ResourceApplyAdam). */
interface FusedState {
  adam: FusedAdam;
  /** State index of each parameter, in the moments' order. */
  params: number[];
  t: number;
  m: number;
  v: number;
}

/** Whether the optimizer's update can run as ResourceApplyAdam on this state: Adam's, on float32 parameters it knows all of. */
function fusedState(model: Model, optimizer: Optimizer, state: tfc.Variable[]): FusedState | null {
  const adam = optimizer.fused;
  if (!adam || adam.kind !== 'adam' || adam.slots.length !== model.params.size) return null;
  const params = adam.slots.map((s) => {
    const p = model.params.get(s.name);
    return p && p.size === s.size && p.dtype === 'float32' ? state.indexOf(p) : -1;
  });
  const [t, m, v] = [adam.t, adam.m, adam.v].map((x) => state.indexOf(x));
  return params.every((i) => i >= 0) && Math.min(t, m, v) >= 0 ? { adam, params, t, m, v } : null;
}

/** The step traced twice, and the eager step's numbers on the first trace's inputs. */
interface Traced {
  trace: Trace;
  termNames: string[];
  /** The eager step's loss terms and state after it (from the state it started from). */
  terms: number[];
  after: Float32Array[];
  draws: Draw[];
  /** The graph value of the scheduled learning rate (fused Adam with a schedule). */
  lr?: string;
}

/** Set while tracing: given the gradients the eager step hands the optimizer (to make them graph outputs). */
interface GradsHook {
  grads?: (g: Record<string, tfc.Tensor>) => void;
}

/**
 * Trace the step twice from the same state: at the start of training with the batch's
 * labels and at the end of training with the labels reversed and fresh draws. Returns why
 * the traces cannot be one graph: something the graph would freeze (labels, schedules,
 * random numbers) entered it as a constant, or it reads back mid-step. With `fused`, the
 * gradients the optimizer gets are outputs too, after the state and the terms. State is
 * left untouched and `rng` is not advanced.
 */
function traceStep(
  tf: typeof tfc,
  model: Model,
  optimizer: Optimizer,
  eager: CoreFn,
  hook: GradsHook,
  state: tfc.Variable[],
  fused: FusedState | null,
  x: tfc.Tensor2D,
  y: Int32Array | null,
  w: WeightValues,
  rng: Rng,
): Traced | string {
  let termNames: string[] = [];
  const dry = (labels: Int32Array | null, progress: TrainProgress, r: Rng) => {
    const saved = state.map((v) => tf.clone(v));
    const rec = recordingRng(r);
    const up = uploads(tf, model, labels, x.shape[0]);
    const sc = stepScalars(tf, model, optimizer, w, progress, true);
    const feeds = graphFeeds(state, x, up, sc);
    let grads: tfc.Tensor[] = [];
    if (fused) hook.grads = (g) => (grads = fused.adam.slots.map((s, k) => tf.keep(g[s.name] ?? tf.zeros(state[fused.params[k]].shape))));
    try {
      const { trace, outputs } = traceNative(tf, feeds, rec.drawIndex, () => {
        const terms = eager(x, labels, up.labels, up.inputs, sc.weights, rec.rng, sc.progress, sc.opt);
        termNames = Object.keys(terms);
        return [...state, ...termNames.map((k) => terms[k]), ...grads];
      });
      const own = outputs.slice(state.length);
      const terms = own.slice(0, termNames.length).map((t) => t.dataSync()[0]);
      const after = state.map((v) => v.dataSync() as Float32Array);
      new Set(own).forEach((t) => t.dispose());
      trace.problems.push(...rec.problems);
      const lrAt = typeof fused?.adam.lr === 'string' ? feeds.indexOf(sc.opt[fused.adam.lr]) : -1;
      return { trace, terms, after, draws: rec.draws, lr: lrAt >= 0 ? trace.feedNames[lrAt] : undefined };
    } finally {
      hook.grads = undefined;
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
  if (!sameGraph(a, b))
    return `the step's kernels or constants change with the labels, the schedule or the random draws (${firstDifference(a.trace, b.trace)})`;
  return { ...a, termNames };
}

interface Compiled extends LoadedTrace {
  termNames: string[];
  kernels: number;
  /** The session's variables hold the state between runs (null: the state is fed and returned). */
  resident: ResidentSession | null;
  /** Why the state is fed rather than kept in the session. */
  stateReason?: string;
}

/**
 * How the session keeps the state: one variable per state tensor, except Adam's moments
 * under `fused`, one variable per parameter each (slices of the flat vectors), whose
 * parameters ResourceApplyAdam updates.
 */
function residentPlan(state: tfc.Variable[], t: Traced, fused: FusedState | null): ResidentPlan | string {
  const n = state.length;
  const terms = t.termNames.length;
  const vars: ResidentVar[] = [];
  const reads: number[] = new Array(n).fill(-1);
  const writes: number[] = new Array(n).fill(-1);
  const split = new Set(fused ? [fused.m, fused.v] : []);
  for (const [i, v] of state.entries()) {
    const dtype = TF_DTYPES[v.dtype];
    if (dtype === undefined) return `state ${v.name} is ${v.dtype}`;
    if (!split.has(i)) reads[i] = writes[i] = vars.push({ dtype, shape: v.shape, state: i, offset: 0 }) - 1;
  }
  const plan: ResidentPlan = { vars, reads, writes, outputs: t.termNames.map((_, j) => n + j) };
  if (!fused) return plan;
  const { adam } = fused;
  if (typeof adam.lr === 'string' && !t.lr) return 'the scheduled learning rate is not an input of the graph';
  let offset = 0;
  const updates = fused.params.map((p, k) => {
    writes[p] = -1;
    const shape = state[p].shape;
    const m = vars.push({ dtype: DT_FLOAT, shape, state: fused.m, offset }) - 1;
    const v = vars.push({ dtype: DT_FLOAT, shape, state: fused.v, offset }) - 1;
    offset += adam.slots[k].size;
    return { param: reads[p], m, v, grad: t.trace.fetchNames[n + terms + k] };
  });
  plan.adam = {
    beta1: adam.beta1,
    beta2: adam.beta2,
    epsilon: adam.epsilon,
    lr: typeof adam.lr === 'number' ? adam.lr : t.lr!,
    t: t.trace.fetchNames[fused.t],
    updates,
  };
  return plan;
}

/** Load the traced step with its state in the session's variables, or why not. */
function loadResident(
  tf: typeof tfc,
  state: tfc.Variable[],
  t: Traced,
  fused: FusedState | null,
  o: { inGraph: boolean; xla: boolean },
): Compiled | string {
  const plan = residentPlan(state, t, fused);
  if (typeof plan === 'string') return plan;
  const shapes = state.map((v) => v.shape);
  if (!coversState(plan.vars, shapes)) return 'the session variables do not cover the state';
  const r = residentNodes(t.trace, plan);
  if (typeof r === 'string') return r;
  const loaded = loadTrace(
    tf,
    { ...t.trace, nodes: r.nodes, feedNames: t.trace.feedNames.slice(state.length), fetchNames: r.outputs },
    t.draws,
    o,
  );
  if (typeof loaded === 'string') return loaded;
  return { ...loaded, termNames: t.termNames, kernels: r.kernels, resident: new ResidentSession(tf, loaded.session, plan.vars, shapes) };
}

/** Load the traced step with the state as inputs and outputs, or why not. */
function loadFed(tf: typeof tfc, state: tfc.Variable[], t: Traced, o: { inGraph: boolean; xla: boolean }): Compiled | string {
  const loaded = loadTrace(tf, { ...t.trace, fetchNames: t.trace.fetchNames.slice(0, state.length + t.termNames.length) }, t.draws, o);
  if (typeof loaded === 'string') return loaded;
  return { ...loaded, termNames: t.termNames, kernels: t.trace.kernels, resident: null };
}

/** A compiled step's inputs (before the draws): the state unless the session holds it, then what every step uploads. */
const stepFeeds = (
  c: Compiled,
  state: tfc.Variable[],
  x: tfc.Tensor2D,
  up: ReturnType<typeof uploads>,
  sc: ReturnType<typeof stepScalars>,
) => (c.resident ? [x, ...up.list, ...sc.list] : graphFeeds(state, x, up, sc));

/**
 * Whether the loaded graph gives the eager step's loss terms and updates on the same
 * inputs (the traces restored the state, so this is the state they started from); with
 * draws made in the graph, also that it runs with its own. Returns why not. A session
 * holding the state is left holding something else: upload before using it.
 */
function checkCompiled(
  tf: typeof tfc,
  c: Compiled,
  t: Traced,
  model: Model,
  optimizer: Optimizer,
  state: tfc.Variable[],
  x: tfc.Tensor2D,
  y: Int32Array | null,
  w: WeightValues,
  rng: Rng,
): string | null {
  const before = state.map((v) => v.dataSync() as Float32Array);
  const up = uploads(tf, model, y, x.shape[0]);
  const sc = stepScalars(tf, model, optimizer, w, START, false);
  // (draws made in the graph are fed the recorded values here, in place of the generator's)
  const draws = drawTensors(tf, c.draws, t.draws);
  const n = state.length;
  let outs: tfc.Tensor[] = [];
  let after: tfc.Tensor[] = [];
  try {
    c.resident?.upload(state);
    outs = c.session.run([...stepFeeds(c, state, x, up, sc), ...draws], c.inGraph ? c.recordedInputs : undefined);
    const got = outs.slice(c.resident ? 0 : n).map((o) => o.dataSync()[0]);
    const bad = got.findIndex((g, i) => !(Math.abs(g - t.terms[i]) <= 1e-4 * (1 + Math.abs(t.terms[i]))));
    if (bad >= 0) return `the graph gives ${t.termNames[bad]} = ${got[bad]} where the eager step gives ${t.terms[bad]}`;
    after = c.resident ? c.resident.download() : outs.slice(0, n);
    // updates: ‖graph − eager‖ small against ‖eager − before‖ (Adam's first step is ±lr
    // wherever a gradient is not exactly zero, so elementwise rounding could flip a few)
    const off = state.findIndex((v, i) => {
      const g = after[i].dataSync() as Float32Array;
      const e = t.after[i];
      let diff = 0;
      let delta = 0;
      for (let k = 0; k < e.length; k++) {
        diff += (g[k] - e[k]) ** 2;
        delta += (e[k] - before[i][k]) ** 2;
      }
      return !(Math.sqrt(diff) <= 1e-2 * Math.sqrt(delta) + 1e-6);
    });
    if (off >= 0) return `the graph updates ${state[off].name} differently from the eager step`;
    if (c.inGraph) {
      // and it runs with its own draws (the outputs are dropped; a fed state is untouched)
      const seeds = seedTensors(tf, c.draws, rng.clone());
      try {
        c.session.run([...stepFeeds(c, state, x, up, sc), ...seeds]).forEach((o) => o.dispose());
      } finally {
        seeds.forEach((s) => s.dispose());
      }
    }
    return null;
  } catch (e) {
    return `TensorFlow could not run the traced graph: ${(e as Error).message}`;
  } finally {
    [...new Set([...outs, ...after, ...draws])].forEach((o) => o.dispose());
    up.dispose();
    sc.dispose();
  }
}

/**
 * Trace the step on the native backend (traceStep) and load it as one graph, used only
 * when it reproduces the eager step's loss terms and updates (checkCompiled). With
 * `keep: 'session'` the state stays in the session's variables between steps and Adam's
 * update is TensorFlow's fused kernel, where that loads and checks; else (and with
 * `keep: 'fed'`) the state is fed and returned every step. Returns why not otherwise.
 * State is left untouched and `rng` is not advanced.
 */
function compile(
  tf: typeof tfc,
  model: Model,
  optimizer: Optimizer,
  eager: CoreFn,
  hook: GradsHook,
  state: tfc.Variable[],
  x: tfc.Tensor2D,
  y: Int32Array | null,
  w: WeightValues,
  rng: Rng,
  o: { inGraph: boolean; keep: 'session' | 'fed'; xla: boolean },
): Compiled | string {
  const fused = o.keep === 'session' ? fusedState(model, optimizer, state) : null;
  const traced = traceStep(tf, model, optimizer, eager, hook, state, fused, x, y, w, rng);
  if (typeof traced === 'string') return traced;
  let stateReason: string | undefined;
  if (o.keep === 'session') {
    const r = loadResident(tf, state, traced, fused, o);
    const bad = typeof r === 'string' ? r : checkCompiled(tf, r, traced, model, optimizer, state, x, y, w, rng);
    if (!bad) return r as Compiled;
    if (typeof r !== 'string') r.session.dispose();
    stateReason = bad;
  }
  const fed = loadFed(tf, state, traced, o);
  if (typeof fed === 'string') return fed;
  const bad = checkCompiled(tf, fed, traced, model, optimizer, state, x, y, w, rng);
  if (bad) {
    fed.session.dispose();
    return bad;
  }
  return { ...fed, stateReason };
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
 *
 * A compiled step keeps the parameters, buffers and optimizer state in its session
 * between steps (StepOptions.state): the model's and the optimizer's variables then lag
 * behind until `sync()` (or `dispose()`) copies the state back. A step of another batch
 * shape, an eager step and a new compilation sync first; the next compiled step uploads
 * the variables' values again, so whatever changed them in between counts.
 */
export function makeTrainStep(tf: typeof tfc, model: Model, optimizer: Optimizer, opts: StepOptions = {}): TrainStep {
  const hook: GradsHook = {};
  const core = eagerStep(tf, model, optimizer, !!opts.binarize, opts.gradients, hook);
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
  if (opts.compile === 'off' || !nativeBackend(tf)) return Object.assign(eager, { modes, sync: () => {}, dispose: () => {} });
  // the buffers (batch normalisation's running averages) are fed and read back as the parameters are
  const state = [...model.params.values(), ...(model.buffers?.values() ?? []), ...optimizer.state.values()];
  const compiled = new Map<string, Compiled | null>();
  const keep = opts.state ?? 'session';
  const xla = opts.compile === 'xla';

  /** The compiled step whose session holds the state, and whether it has moved since the variables were copied in. */
  let holder: Compiled | null = null;
  let moved = false;
  const sync = () => {
    if (!holder) return;
    if (moved) {
      const values = holder.resident!.download();
      state.forEach((v, i) => {
        v.assign(values[i]);
        values[i].dispose();
      });
    }
    holder = null;
    moved = false;
  };

  const step: StepFn = (x, y, w, given, progress) => {
    const rng = stream(given, progress);
    const up = uploads(tf, model, y, x.shape[0]);
    try {
      // one graph per shape of everything fed: x and the model's step inputs
      const key = [x.shape.join('×'), ...Object.entries(up.inputs ?? {}).map(([k, v]) => `${k} ${v.shape[0]}`)].join(', ');
      let c = compiled.get(key);
      if (c === undefined) {
        sync();
        const t0 = performance.now();
        const r = compile(tf, model, optimizer, core, hook, state, x, y, w, rng, { inGraph, keep, xla });
        const seconds = (performance.now() - t0) / 1000;
        c = typeof r === 'string' ? null : r;
        const mode: StepMode = c
          ? {
              batch: key,
              mode: 'graph',
              kernels: c.kernels,
              seconds,
              state: c.resident ? 'session' : 'fed',
              ...(xla ? { xla: true } : {}),
              ...(c.stateReason ? { stateReason: c.stateReason } : {}),
            }
          : { batch: key, mode: 'eager', reason: r as string };
        compiled.set(key, c);
        modes.push(mode);
        opts.onMode?.(mode);
      }
      if (!c) {
        sync();
        return core(x, y, up.labels, up.inputs, w, rng, progress);
      }
      const draws = c.inGraph ? seedTensors(tf, c.draws, rng) : drawTensors(tf, c.draws, rng);
      const sc = stepScalars(tf, model, optimizer, w, progress, false);
      let outs: tfc.Tensor[];
      try {
        if (!c.resident) sync();
        else if (holder !== c) {
          sync();
          c.resident.upload(state);
          holder = c;
        }
        outs = c.session.run([...stepFeeds(c, state, x, up, sc), ...draws]);
      } finally {
        draws.forEach((t) => t.dispose());
        sc.dispose();
      }
      if (c.resident) moved = true;
      else {
        state.forEach((v, i) => {
          v.assign(outs[i]);
          outs[i].dispose();
        });
      }
      const terms = outs.slice(c.resident ? 0 : state.length);
      return Object.fromEntries(c.termNames.map((k, i) => [k, terms[i] as tfc.Scalar]));
    } finally {
      up.dispose();
    }
  };
  const dispose = () => {
    try {
      sync();
    } finally {
      for (const c of compiled.values()) c?.session.dispose();
      compiled.clear();
    }
  };
  return Object.assign(step, { modes, sync, dispose });
}
