import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../rng';
import { nativeBackend, traceNative, type Trace } from './trace';
import { encodeSavedModel, ATTR, type GraphNode } from './saved-model';
import { GraphSession } from './session';

/**
 * What compiling a traced computation into one TensorFlow graph takes, shared by the
 * training step (src/train/step.ts) and the compiled evaluations (`compileFunction`):
 * random draws recorded as graph inputs, two traces compared, the graph loaded.
 */

/** Array draws a traced computation made, in order, so a compiled one can make the same ones. */
export interface Draw {
  method: 'normals' | 'uniforms';
  n: number;
  values: Float32Array;
}

/**
 * A copy of `rng` that records its array draws (they become graph inputs). Scalar
 * draws and forks cannot be fed to a graph: they are recorded as a problem.
 */
export function recordingRng(rng: Rng) {
  const copy = rng.clone();
  const draws: Draw[] = [];
  const problems: string[] = [];
  const rec = Object.create(copy) as Rng;
  for (const method of ['normals', 'uniforms'] as const) {
    Object.defineProperty(rec, method, {
      value: (n: number) => {
        const values = copy[method](n);
        draws.push({ method, n, values });
        return values;
      },
    });
  }
  for (const method of ['normal', 'uniform', 'int', 'permutation', 'fork'] as const) {
    Object.defineProperty(rec, method, {
      value: (...a: unknown[]) => {
        problems.push(`rng.${method}() is called, whose result a graph cannot take as an input`);
        return (copy[method] as (...b: unknown[]) => unknown)(...a);
      },
    });
  }
  const drawIndex = (values: unknown) => {
    const byRef = draws.findIndex((d) => d.values === values);
    if (byRef >= 0) return byRef;
    if (!(values instanceof Float32Array)) return -1;
    return draws.findIndex((d) => d.values.length === values.length && d.values.every((v, i) => v === values[i]));
  };
  return { rng: rec, draws, problems, drawIndex };
}

/** Where two traces first differ, for the log. */
export function firstDifference(a: Trace, b: Trace): string {
  const n = Math.max(a.nodes.length, b.nodes.length);
  for (let i = 0; i < n; i++) {
    const x = a.nodes[i];
    const y = b.nodes[i];
    if (!x || !y || Buffer.compare(Buffer.from(encodeSavedModel([x])), Buffer.from(encodeSavedModel([y]))) !== 0) {
      const node = x ?? y;
      return node.op === 'Const' ? `constant ${node.name} differs` : `kernel ${i} (${node.op}) differs`;
    }
  }
  return 'outputs differ';
}

/** Whether two traces (and their draws) are one graph: nothing that differed between them was frozen in. */
export function sameGraph(a: { trace: Trace; draws: Draw[] }, b: { trace: Trace; draws: Draw[] }): boolean {
  return (
    Buffer.compare(Buffer.from(encodeSavedModel(a.trace.nodes)), Buffer.from(encodeSavedModel(b.trace.nodes))) === 0 &&
    a.trace.fetchNames.join() === b.trace.fetchNames.join() &&
    a.draws.map((d) => d.method + d.n).join() === b.draws.map((d) => d.method + d.n).join()
  );
}

/** A draw as the compiled graph takes it: its placeholder's shape, or null when the draw never reached a kernel. */
export interface DrawFeed {
  method: Draw['method'];
  n: number;
  shape: number[] | null;
}

/** TensorFlow's DataType numbers the draws' nodes use. */
const DT_INT32 = 3;

/** The placeholder of a draw made inside the graph: its seed. */
const seedName = (draw: string) => `${draw}_seed`;

/**
 * A draw placeholder replaced by TensorFlow's counter-based generator (Philox, as
 * StatelessRandomNormal / StatelessRandomUniform compute it): the same shape and dtype,
 * its values a function of a two-int32 seed fed per run, so the draw costs one kernel in
 * the graph instead of JavaScript numbers made and copied every step.
 */
function statelessDraw(node: GraphNode, method: Draw['method']): GraphNode[] {
  const shape = node.attrs.find((a) => a.name === 'shape')!.value as number[];
  const dtype = node.attrs.find((a) => a.name === 'dtype')!;
  const shapeName = `${node.name}_shape`;
  return [
    {
      name: shapeName,
      op: 'Const',
      inputs: [],
      attrs: [
        { name: 'dtype', type: ATTR.TYPE, value: DT_INT32 },
        {
          name: 'value',
          type: ATTR.TENSOR,
          value: { dtype: DT_INT32, shape: [shape.length], bytes: new Uint8Array(Int32Array.from(shape).buffer) },
        },
      ],
    },
    {
      name: seedName(node.name),
      op: 'Placeholder',
      inputs: [],
      attrs: [
        { name: 'dtype', type: ATTR.TYPE, value: DT_INT32 },
        { name: 'shape', type: ATTR.SHAPE, value: [2] },
      ],
    },
    {
      name: node.name,
      op: method === 'normals' ? 'StatelessRandomNormal' : 'StatelessRandomUniform',
      inputs: [shapeName, seedName(node.name)],
      attrs: [dtype, { name: 'T', type: ATTR.TYPE, value: DT_INT32 }, { name: 'Tseed', type: ATTR.TYPE, value: DT_INT32 }],
    },
  ];
}

/** A loaded trace: its session, and the draws as the session takes them. */
export interface LoadedTrace {
  session: GraphSession;
  draws: DrawFeed[];
  /**
   * Draws made inside the graph (`inGraph`): the session's inputs are the feeds, then one
   * seed per draw (`seedTensors`); a run given `recordedInputs` as names takes the draws'
   * values instead (to check the graph against the eager step on the same numbers).
   */
  inGraph: boolean;
  recordedInputs: string[];
}

/**
 * Load a trace into a TensorFlow session whose inputs are the trace's feeds, then its
 * draws (those that became tensors), or with `inGraph` the draws' seeds; a sentence
 * saying why not when TensorFlow refuses it. `xla`: XLA compiles the graph's clusters
 * (train.compile: xla).
 */
export function loadTrace(tf: typeof tfc, t: Trace, draws: Draw[], o: { inGraph?: boolean; xla?: boolean } = {}): LoadedTrace | string {
  const shapes = draws.map((_, j) => {
    const name = t.drawNames.get(j);
    const node = name ? t.nodes.find((n) => n.name === name) : undefined;
    return node ? (node.attrs.find((at) => at.name === 'shape')!.value as number[]) : null;
  });
  const drawFeeds = shapes.flatMap((s, j) => (s ? [t.drawNames.get(j)!] : []));
  const recordedInputs = [...t.feedNames, ...drawFeeds];
  const inGraph = !!o.inGraph;
  const byName = new Map([...t.drawNames].map(([j, name]) => [name, j]));
  const nodes = inGraph
    ? t.nodes.flatMap((n) => (n.op === 'Placeholder' && byName.has(n.name) ? statelessDraw(n, draws[byName.get(n.name)!].method) : [n]))
    : t.nodes;
  try {
    const session = new GraphSession(tf, nodes, inGraph ? [...t.feedNames, ...drawFeeds.map(seedName)] : recordedInputs, t.fetchNames, {
      xla: o.xla,
    });
    return { session, draws: draws.map((d, j) => ({ method: d.method, n: d.n, shape: shapes[j] })), inGraph, recordedInputs };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const node = /node (n\d+)/.exec((e as Error).message)?.[1];
    const op = node && t.nodes.find((n) => n.name === node)?.op;
    return `TensorFlow did not load the traced graph: ${msg}${op ? ` (kernel ${node} is ${op})` : ''}`;
  }
}

/** The draws' tensors for one run of a compiled graph: from `values` (recorded) or drawn afresh from `rng`. */
export function drawTensors(tf: typeof tfc, draws: DrawFeed[], source: Rng | Draw[]): tfc.Tensor[] {
  return draws.flatMap((d, j) => {
    const values = Array.isArray(source) ? source[j].values : source[d.method](d.n);
    return d.shape ? [tf.tensor(values, d.shape)] : [];
  });
}

/** The seeds of the draws a graph makes itself (`inGraph`): two int32 per draw, from `rng`. */
export function seedTensors(tf: typeof tfc, draws: DrawFeed[], rng: Rng): tfc.Tensor[] {
  return draws.flatMap((d) => {
    const seed = Int32Array.of(rng.nextUint32() | 0, rng.nextUint32() | 0);
    return d.shape ? [tf.tensor1d(seed, 'int32')] : [];
  });
}

/** A computation compiled into one TensorFlow graph (compileFunction). */
export interface GraphFunction {
  /** The outputs for these inputs, with fresh draws from `rng` (the caller owns them; null: no draws). */
  run(inputs: tfc.Tensor[], rng: Rng | null): tfc.Tensor[];
  kernels: number;
  dispose(): void;
}

/**
 * Compile `fn` (tensors in, tensors out, random draws from its `rng`) for inputs of
 * these shapes, when that is exact: it is traced on `inputs` and again on `other`
 * (inputs of the same shapes, other values) with fresh draws, and used only when both
 * traces are one graph (no input, label or draw was frozen into a constant), nothing
 * was read back mid-way, and the graph's outputs match the eager ones (relative `tol`).
 * Otherwise returns why not. `state` (the model's parameters) are graph inputs too, fed
 * their current values on every run. `rng` is not advanced.
 */
export function compileFunction(
  tf: typeof tfc,
  fn: (inputs: tfc.Tensor[], rng: Rng) => tfc.Tensor[],
  inputs: tfc.Tensor[],
  other: tfc.Tensor[],
  rng: Rng,
  o: { state?: tfc.Tensor[]; tol?: number } = {},
): GraphFunction | string {
  if (!nativeBackend(tf)) return 'graphs need the tensorflow backend';
  const state = o.state ?? [];
  const tol = o.tol ?? 1e-4;
  const dry = (feeds: tfc.Tensor[], r: Rng) => {
    const rec = recordingRng(r);
    const { trace, outputs } = traceNative(tf, [...state, ...feeds], rec.drawIndex, () => fn(feeds, rec.rng));
    const values = outputs.map((t) => t.dataSync() as Float32Array);
    outputs.forEach((t) => t.dispose());
    trace.problems.push(...rec.problems);
    return { trace, values, draws: rec.draws };
  };
  let a: ReturnType<typeof dry>;
  let b: ReturnType<typeof dry>;
  try {
    a = dry(inputs, rng);
    const later = rng.clone();
    later.normals(7);
    b = dry(other, later);
  } catch (e) {
    return `tracing failed: ${(e as Error).message}`;
  }
  const problems = [...new Set([...a.trace.problems, ...b.trace.problems])];
  if (problems.length) return problems.join('; ');
  if (!sameGraph(a, b)) return `the kernels or constants change with the inputs or the random draws (${firstDifference(a.trace, b.trace)})`;
  const loaded = loadTrace(tf, a.trace, a.draws);
  if (typeof loaded === 'string') return loaded;
  const { session, draws } = loaded;
  // the graph must give the eager outputs on the same inputs and draws
  const recorded = drawTensors(tf, draws, a.draws);
  let outs: tfc.Tensor[] = [];
  try {
    outs = session.run([...state, ...inputs, ...recorded]);
    for (let i = 0; i < outs.length; i++) {
      const got = outs[i].dataSync();
      const want = a.values[i];
      const bad = want.findIndex((w, k) => !(Math.abs(got[k] - w) <= tol * (1 + Math.abs(w))));
      if (got.length !== want.length || bad >= 0) {
        session.dispose();
        return `the graph gives ${got[bad]} where the eager computation gives ${want[bad]} (output ${i}, element ${bad})`;
      }
    }
  } catch (e) {
    session.dispose();
    return `TensorFlow could not run the traced graph: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    [...outs, ...recorded].forEach((t) => t.dispose());
  }
  return {
    kernels: a.trace.kernels,
    run(feeds, r) {
      if (!r && draws.length) throw new Error('this compiled graph takes random draws: give it an rng');
      const d = r ? drawTensors(tf, draws, r) : [];
      try {
        return session.run([...state, ...feeds, ...d]);
      } finally {
        d.forEach((t) => t.dispose());
      }
    },
    dispose: () => session.dispose(),
  };
}
