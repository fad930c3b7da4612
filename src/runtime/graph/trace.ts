import type * as tfc from '@tensorflow/tfjs-core';
import { ATTR, type Attr, type GraphNode } from './saved-model';

/**
 * Record what one eager call does on the native (tfjs-node) backend, kernel by kernel,
 * as a TensorFlow graph. Every kernel tfjs-node runs goes through its binding's
 * `executeOp(opName, attrs, inputIds, nOutputs)` with TensorFlow's own op names and
 * attributes, and every tensor made from JavaScript values through `createTensor`: both
 * are wrapped while `run` executes (eagerly, for real), so the graph is exactly the
 * kernels the eager step ran, and its constants are exactly the values it created.
 *
 * Feeds become Placeholders. Values created from JavaScript become Consts, except the
 * ones `drawIndex` recognises as random draws of the step: those become placeholders
 * too (`draw<j>`), fed afresh on every call. Anything the graph could not reproduce is
 * reported in `problems` (a mid-step read back to JavaScript, an input of unknown
 * origin, a variable that is not a feed), and the caller keeps the eager step.
 */
export interface Trace {
  nodes: GraphNode[];
  /** Placeholder names of the given feeds, in order. */
  feedNames: string[];
  /** Placeholder name per random draw index that became a tensor. */
  drawNames: Map<number, string>;
  /** Output names of the tensors `run` returned, in order ("n12", "n12:1", "f3"). */
  fetchNames: string[];
  /** Their TF dtypes. */
  fetchTypes: number[];
  problems: string[];
  /** Kernels recorded (for the log). */
  kernels: number;
}

/** An op attribute as tfjs-node's binding takes it. */
type BindingAttr = { name: string; type: number; value: unknown };

/** What a trace wraps and calls of tfjs-node's native binding (tfjs-node is optional, so its types are not at hand here). */
interface Binding {
  TF_STRING: number;
  createTensor(shape: number[], dtype: number, values: ArrayBufferView): number;
  executeOp(op: string, attrs: BindingAttr[], inputIds: number[], nOutputs: number): { id: number; dtype: number }[];
  tensorDataSync(id: number): ArrayBufferView;
  deleteTensor(id: number): void;
}

const frozen = new WeakSet<object>();

/**
 * Declare variables that keep their values for the rest of the process (a finished run's
 * parameters loaded for reading, as m1m2 loads its M1): a traced graph may hold them as
 * constants. Any other variable a computation reads must be one of its inputs.
 */
export function freezeInGraphs(vars: Iterable<tfc.Variable>): void {
  for (const v of vars) frozen.add(v);
}

/** What elbo uses of tfjs-node's backend object: its binding and tensors (traces), its SavedModel sessions (session.ts). */
export interface NodeBackend {
  binding: Binding;
  tensorMap: { get(dataId: object): { id: number; dtype: number; shape: number[]; values: unknown } };
  getInputTensorIds(tensors: tfc.Tensor[]): number[];
  loadSavedModelMetaGraph(dir: string, tags: string): number;
  runSavedModel(id: number, inputs: tfc.Tensor[], inputOpNames: { name: string }[], outputOpNames: string[]): tfc.Tensor[];
  deleteSavedModel(id: number): void;
}

/** The tfjs-node backend object, or null when another backend is active. */
export function nativeBackend(tf: typeof tfc): NodeBackend | null {
  // tfjs-core types the backend as a KernelBackend, which has none of these members: what is
  // there is checked here
  const backend: unknown = tf.backend();
  const b = backend as Partial<NodeBackend> | null;
  return b && b.binding && b.tensorMap && typeof b.getInputTensorIds === 'function' ? (b as NodeBackend) : null;
}

function typedBytes(values: ArrayBufferView): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/**
 * Type attributes some tfjs-node kernels leave for TensorFlow's eager runtime to infer
 * from the inputs; a GraphDef must spell them out: [attribute, input it follows].
 */
const INFERRED_TYPES: Record<string, [string, number][]> = {
  ExpandDims: [
    ['T', 0],
    ['Tdim', 1],
  ],
};

/**
 * tfjs-node kernels that read an input back only to validate it (GatherV2 checks its
 * indices are in range; TensorFlow's graph kernel checks the same): such a read does
 * not change what the graph computes.
 */
const VALIDATING_READS = new Set(['GatherV2']);

function copyAttr(a: { name: string; type: number; value: unknown }): Attr {
  return { name: a.name, type: a.type, value: Array.isArray(a.value) ? [...a.value] : (a.value as Attr['value']) };
}

/** What a trace records while the step runs: the graph so far, and what every tensor id is in it. */
class Recording {
  nodes: GraphNode[] = [];
  /** The graph value (node output) of every tensor id the step was fed or made. */
  refs = new Map<number, string>();
  /** TF dtype of every graph value by name, for attributes TensorFlow would infer. */
  dtypes = new Map<string, number>();
  problems = new Set<string>();
  drawNames = new Map<number, string>();
  kernels = 0;
  private consts = 0;
  /** Set while a kernel's inputs are being resolved (their constants are named then, in input order). */
  capturing = false;
  /** Which tfjs kernel is running, to tell a validating read from one that shapes the step. */
  kernelStack: string[] = [];

  placeholder(name: string, dtype: number, shape: number[]): void {
    this.dtypes.set(name, dtype);
    this.nodes.push({
      name,
      op: 'Placeholder',
      inputs: [],
      attrs: [
        { name: 'dtype', type: ATTR.TYPE, value: dtype },
        { name: 'shape', type: ATTR.SHAPE, value: [...shape] },
      ],
    });
  }

  constant(dtype: number, shape: number[], values: ArrayBufferView): string {
    const name = `c${this.consts++}`;
    this.dtypes.set(name, dtype);
    this.nodes.push({
      name,
      op: 'Const',
      inputs: [],
      attrs: [
        { name: 'dtype', type: ATTR.TYPE, value: dtype },
        { name: 'value', type: ATTR.TENSOR, value: { dtype, shape: [...shape], bytes: typedBytes(values) } },
      ],
    });
    return name;
  }
}

/**
 * The binding, wrapped to record: every tensor made from JavaScript values (a draw, or a
 * constant), every kernel with its attributes and inputs, reads back to JavaScript, and
 * deleted tensors (their ids are reused).
 */
function recordingBinding(real: Binding, rec: Recording, drawIndex: (values: unknown) => number): Binding {
  const wrapped: Binding = Object.create(real);
  const define = <K extends keyof Binding>(key: K, value: Binding[K]) => Object.defineProperty(wrapped, key, { value });
  define('createTensor', (shape: number[], dtype: number, values: ArrayBufferView) => {
    const id = real.createTensor(shape, dtype, values);
    const j = drawIndex(values);
    if (j >= 0) {
      if (!rec.drawNames.has(j)) {
        rec.drawNames.set(j, `draw${j}`);
        rec.placeholder(`draw${j}`, dtype, shape);
      }
      rec.refs.set(id, rec.drawNames.get(j)!);
    } else if (dtype === real.TF_STRING) {
      rec.problems.add('a string tensor is created in the step');
    } else if (!rec.capturing) {
      rec.refs.set(id, rec.constant(dtype, shape, values));
    }
    // (while a kernel's inputs are captured, their constants are named afterwards in input
    // order: tfjs-node makes a tensor's native copy at its first use, so naming at creation
    // would depend on which tensors an earlier call had already used)
    return id;
  });
  define('executeOp', (op: string, attrs: BindingAttr[], ids: number[], nOut: number) => {
    const inputs = ids.map((id) => {
      const r = rec.refs.get(id);
      if (r === undefined) rec.problems.add(`kernel ${op} reads a tensor made outside the step that is not one of its inputs`);
      return r ?? '?';
    });
    const outs: { id: number; dtype: number }[] = real.executeOp(op, attrs, ids, nOut);
    const name = `n${rec.kernels++}`;
    const copied = attrs.map(copyAttr);
    for (const [attr, input] of INFERRED_TYPES[op] ?? []) {
      if (!copied.some((a) => a.name === attr)) copied.push({ name: attr, type: ATTR.TYPE, value: rec.dtypes.get(inputs[input])! });
    }
    rec.nodes.push({ name, op, inputs, attrs: copied });
    outs.forEach((o, k) => {
      const out = k === 0 ? name : `${name}:${k}`;
      rec.refs.set(o.id, out);
      rec.dtypes.set(out, o.dtype);
    });
    return outs;
  });
  define('tensorDataSync', (id: number) => {
    const kernel = rec.kernelStack[rec.kernelStack.length - 1];
    if (!VALIDATING_READS.has(kernel))
      rec.problems.add(`the step reads a tensor back to JavaScript${kernel ? ` (in kernel ${kernel})` : ''}`);
    return real.tensorDataSync(id);
  });
  define('deleteTensor', (id: number) => {
    rec.refs.delete(id);
    return real.deleteTensor(id);
  });
  return wrapped;
}

/**
 * The backend's `getInputTensorIds`, wrapped so that tensors made before the step (a
 * model's constant tables) enter the graph as constants when a kernel first reads them.
 */
function capturingInputs(tf: typeof tfc, backend: NodeBackend, real: Binding, rec: Recording) {
  const getIds = backend.getInputTensorIds;
  return function (this: NodeBackend, tensors: tfc.Tensor[]): number[] {
    rec.capturing = true;
    let ids: number[];
    try {
      ids = getIds.call(this, tensors);
    } finally {
      rec.capturing = false;
    }
    ids.forEach((id, i) => {
      if (rec.refs.has(id)) return;
      const t = tensors[i];
      // a variable's value would be frozen into the graph: it must be one of the feeds,
      // unless it was declared constant (freezeInGraphs)
      if (t instanceof tf.Variable && !frozen.has(t))
        rec.problems.add(`the computation reads variable ${t.name}, which is not one of its inputs`);
      rec.refs.set(id, rec.constant(backend.tensorMap.get(t.dataId).dtype, t.shape, real.tensorDataSync(id)));
    });
    return ids;
  };
}

/** Keep `rec.kernelStack` as the engine runs tfjs kernels; returns the undo. */
function trackKernels(tf: typeof tfc, rec: Recording): () => void {
  // the engine as seen here: a runKernel whose arguments after the name are passed on as they
  // came (never[]: none is made here)
  const engine: { runKernel: (name: string, ...rest: never[]) => unknown } = tf.engine();
  const runKernel = engine.runKernel;
  const own = Object.prototype.hasOwnProperty.call(engine, 'runKernel');
  engine.runKernel = function (this: unknown, name: string, ...rest: never[]) {
    rec.kernelStack.push(name);
    try {
      return runKernel.call(this, name, ...rest);
    } finally {
      rec.kernelStack.pop();
    }
  };
  return () => {
    if (own) engine.runKernel = runKernel;
    else delete (engine as { runKernel?: unknown }).runKernel;
  };
}

export function traceNative<T extends tfc.Tensor[]>(
  tf: typeof tfc,
  feeds: tfc.Tensor[],
  drawIndex: (values: unknown) => number,
  run: () => T,
): { trace: Trace; outputs: T } {
  const backend = nativeBackend(tf);
  if (!backend) throw new Error('graph tracing needs the tensorflow backend');
  const real = backend.binding;
  const rec = new Recording();
  const feedIds = backend.getInputTensorIds(feeds);
  const feedNames = feeds.map((t, i) => {
    const name = `f${i}`;
    rec.placeholder(name, backend.tensorMap.get(t.dataId).dtype, t.shape);
    rec.refs.set(feedIds[i], name);
    return name;
  });
  const wrapped = recordingBinding(real, rec, drawIndex);
  const capture = capturingInputs(tf, backend, real, rec);
  const untrack = trackKernels(tf, rec);
  backend.binding = wrapped;
  backend.getInputTensorIds = capture;
  let outputs: T;
  let fetchNames: string[];
  try {
    outputs = run();
    fetchNames = backend.getInputTensorIds(outputs).map((id) => rec.refs.get(id)!);
  } finally {
    backend.binding = real;
    // (the own property goes: the backend's own method is seen again)
    delete (backend as Partial<NodeBackend>).getInputTensorIds;
    untrack();
  }
  const { nodes, drawNames, dtypes, problems, kernels } = rec;
  return {
    trace: { nodes, feedNames, drawNames, fetchNames, fetchTypes: fetchNames.map((n) => dtypes.get(n)!), problems: [...problems], kernels },
    outputs,
  };
}
