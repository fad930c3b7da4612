import type * as tfc from '@tensorflow/tfjs-core';
import { ATTR, type Attr, type GraphNode } from './saved-model';
import { GraphSession } from './session';
import type { Trace } from './trace';

/**
 * A traced step whose state (parameters, buffers, optimizer state) stays inside its
 * TensorFlow session between runs, as resource variables, instead of being fed in and
 * returned on every run. The state's feeds become reads of the variables (ReadVariableOp),
 * its new values are written back (AssignVariableOp), and an Adam update can instead be
 * TensorFlow's fused kernel (ResourceApplyAdam: one pass over a parameter and its moments,
 * in place). The same session has an initialiser (`upload`: the variables from tensors) and
 * a reader (`download`), so the variables and their tfjs copies meet only when asked.
 */

/** TensorFlow's DataType numbers used here. */
export const DT_FLOAT = 1;
const DT_INT32 = 3;

/** A variable of the session: a slice of one state tensor, flattened ([offset, offset + size)). */
export interface ResidentVar {
  dtype: number;
  shape: number[];
  /** The state tensor it is part of (index into the step's state), and where. */
  state: number;
  offset: number;
}

/** Adam's update of each parameter as ResourceApplyAdam on session variables. */
export interface ResidentAdam {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** A constant learning rate, or the graph value (a fed scalar) that holds it. */
  lr: number | string;
  /** The graph value of the step count after this update (β^t is taken of it). */
  t: string;
  /** Per parameter: its variable, its moments' variables, and the graph value of its gradient. */
  updates: { param: number; m: number; v: number; grad: string }[];
}

/** How a trace's state maps to session variables. */
export interface ResidentPlan {
  vars: ResidentVar[];
  /** Per state feed (the trace's first feeds): the variable it reads, or -1 where the step must not read it. */
  reads: number[];
  /** Per state output (the trace's first fetches): the variable it is written to, or -1 where `adam` writes it. */
  writes: number[];
  /** The fetches a run returns (the loss terms), as indices into the trace's fetches. */
  outputs: number[];
  adam?: ResidentAdam;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const nodeOf = (input: string) => input.replace(/^\^/, '').replace(/:\d+$/, '');
const type = (name: string, value: number): Attr => ({ name, type: ATTR.TYPE, value });
const varName = (k: number) => `var/${k}`;

function scalarConst(name: string, value: number): GraphNode {
  return {
    name,
    op: 'Const',
    inputs: [],
    attrs: [
      type('dtype', DT_FLOAT),
      { name: 'value', type: ATTR.TENSOR, value: { dtype: DT_FLOAT, shape: [], bytes: new Uint8Array(Float32Array.of(value).buffer) } },
    ],
  };
}

/** The nodes reachable backwards from `roots` (data and control inputs), in their order. */
function reachable(nodes: GraphNode[], roots: string[]): GraphNode[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const keep = new Set<string>();
  const stack = roots.map(nodeOf);
  while (stack.length) {
    const name = stack.pop()!;
    if (keep.has(name)) continue;
    keep.add(name);
    for (const i of byName.get(name)?.inputs ?? []) stack.push(nodeOf(i));
  }
  return nodes.filter((n) => keep.has(n.name));
}

/** The variables' handles, initialiser (`init/k` fed, `init/done` fetched) and readers (`read/k`). */
function variableNodes(vars: ResidentVar[]): GraphNode[] {
  const nodes: GraphNode[] = vars.flatMap((v, k) => [
    {
      name: varName(k),
      op: 'VarHandleOp',
      inputs: [],
      attrs: [
        { name: 'container', type: ATTR.STRING, value: '' },
        { name: 'shared_name', type: ATTR.STRING, value: varName(k) },
        type('dtype', v.dtype),
        { name: 'shape', type: ATTR.SHAPE, value: [...v.shape] },
      ],
    },
    {
      name: `init/${k}`,
      op: 'Placeholder',
      inputs: [],
      attrs: [type('dtype', v.dtype), { name: 'shape', type: ATTR.SHAPE, value: [...v.shape] }],
    },
    { name: `init/assign/${k}`, op: 'AssignVariableOp', inputs: [varName(k), `init/${k}`], attrs: [type('dtype', v.dtype)] },
    { name: `read/${k}`, op: 'ReadVariableOp', inputs: [varName(k)], attrs: [type('dtype', v.dtype)] },
  ]);
  nodes.push(
    {
      name: 'init/zero',
      op: 'Const',
      inputs: [],
      attrs: [
        type('dtype', DT_INT32),
        { name: 'value', type: ATTR.TENSOR, value: { dtype: DT_INT32, shape: [], bytes: new Uint8Array(4) } },
      ],
    },
    { name: 'init/done', op: 'Identity', inputs: ['init/zero', ...vars.map((_, k) => `^init/assign/${k}`)], attrs: [type('T', DT_INT32)] },
  );
  return nodes;
}

/** ResourceApplyAdam per parameter, with β1^t and β2^t of the new step count. */
function adamNodes(a: ResidentAdam, after: (k: number) => string[]): GraphNode[] {
  const nodes: GraphNode[] = [
    scalarConst('adam/beta1', a.beta1),
    scalarConst('adam/beta2', a.beta2),
    scalarConst('adam/epsilon', a.epsilon),
  ];
  if (typeof a.lr === 'number') nodes.push(scalarConst('adam/lr', a.lr));
  const lr = typeof a.lr === 'number' ? 'adam/lr' : a.lr;
  nodes.push(
    { name: 'adam/beta1_power', op: 'Pow', inputs: ['adam/beta1', a.t], attrs: [type('T', DT_FLOAT)] },
    { name: 'adam/beta2_power', op: 'Pow', inputs: ['adam/beta2', a.t], attrs: [type('T', DT_FLOAT)] },
  );
  a.updates.forEach((u, i) =>
    nodes.push({
      name: `adam/apply/${i}`,
      op: 'ResourceApplyAdam',
      inputs: [
        varName(u.param),
        varName(u.m),
        varName(u.v),
        'adam/beta1_power',
        'adam/beta2_power',
        lr,
        'adam/beta1',
        'adam/beta2',
        'adam/epsilon',
        u.grad,
        ...after(u.param),
      ],
      attrs: [
        type('T', DT_FLOAT),
        { name: 'use_locking', type: ATTR.BOOL, value: false },
        { name: 'use_nesterov', type: ATTR.BOOL, value: false },
      ],
    }),
  );
  return nodes;
}

/**
 * The session graph of a trace under `plan`: its inputs are the trace's feeds after the
 * state (and its draws), its outputs the plan's fetches, each run after every update.
 * Returns a sentence saying why not when the step reads state the plan keeps elsewhere.
 */
export function residentNodes(t: Trace, plan: ResidentPlan): { nodes: GraphNode[]; outputs: string[]; kernels: number } | string {
  const stateFeeds = t.feedNames.slice(0, plan.reads.length);
  const written = plan.writes.flatMap((k, i) =>
    k >= 0 && t.fetchNames[i] !== stateFeeds[plan.reads.indexOf(k)] ? [{ k, value: t.fetchNames[i] }] : [],
  );
  const a = plan.adam;
  // (every input stays, also one that only the replaced update read: runs feed them all)
  const inputs = [...t.feedNames.slice(plan.reads.length), ...t.drawNames.values()];
  const roots = [
    ...inputs,
    ...plan.outputs.map((i) => t.fetchNames[i]),
    ...written.map((w) => w.value),
    ...(a ? [a.t, ...a.updates.map((u) => u.grad), ...(typeof a.lr === 'string' ? [a.lr] : [])] : []),
  ];
  const kept = reachable(t.nodes, roots);
  const unread = stateFeeds.filter((f, i) => plan.reads[i] < 0 && kept.some((n) => n.name === f));
  if (unread.length) return `the step reads state kept per parameter in the session (${unread.join(', ')})`;
  const nodes = kept.map((n) => {
    const i = stateFeeds.indexOf(n.name);
    return i < 0
      ? n
      : { name: n.name, op: 'ReadVariableOp', inputs: [varName(plan.reads[i])], attrs: [type('dtype', plan.vars[plan.reads[i]].dtype)] };
  });
  // a write must not overtake a read of the same variable: it waits for the read and the
  // read's consumers (then the value read is usually released, and the update is in place;
  // where it is still held, TensorFlow copies before writing)
  const consumers = new Map<string, string[]>();
  for (const n of nodes)
    for (const i of n.inputs) if (!i.startsWith('^')) consumers.set(nodeOf(i), [...(consumers.get(nodeOf(i)) ?? []), n.name]);
  const after = (k: number) =>
    [...new Set(stateFeeds.flatMap((f, i) => (plan.reads[i] === k ? [f, ...(consumers.get(f) ?? [])] : [])))].map((n) => `^${n}`);
  const writes: GraphNode[] = written.map((w) => ({
    name: `write/${w.k}`,
    op: 'AssignVariableOp',
    inputs: [varName(w.k), w.value, ...after(w.k)],
    attrs: [type('dtype', plan.vars[w.k].dtype)],
  }));
  const updates = [...writes, ...(a ? adamNodes(a, after) : [])];
  const done: GraphNode = {
    name: 'updated',
    op: 'NoOp',
    inputs: updates.filter((n) => n.op !== 'Const' && n.op !== 'Pow').map((n) => `^${n.name}`),
    attrs: [],
  };
  const outputs = plan.outputs.map((i, j) => ({
    name: `out/${j}`,
    op: 'Identity',
    inputs: [t.fetchNames[i], '^updated'],
    attrs: [type('T', t.fetchTypes[i])],
  }));
  const all = [...variableNodes(plan.vars), ...nodes, ...updates, done, ...outputs];
  const bookkeeping = new Set(['Const', 'Placeholder', 'VarHandleOp', 'NoOp', 'Identity']);
  const kernels = [...nodes, ...updates].filter((n) => !bookkeeping.has(n.op)).length;
  return { nodes: all, outputs: outputs.map((n) => n.name), kernels };
}

/** A step's session with its state inside: upload, run, download. */
export class ResidentSession {
  private readonly readers: string[];

  constructor(
    private readonly tf: typeof tfc,
    private readonly session: GraphSession,
    private readonly vars: ResidentVar[],
    /** The state tensors' shapes, by state index. */
    private readonly shapes: number[][],
  ) {
    this.readers = vars.map((_, k) => `read/${k}`);
  }

  /** One step: the outputs for these inputs (named `names` where not the session's own). */
  run(inputs: tfc.Tensor[], names?: string[]): tfc.Tensor[] {
    return this.session.run(inputs, names);
  }

  /** Set the variables from the state tensors (by state index). */
  upload(state: tfc.Tensor[]): void {
    const tf = this.tf;
    const made: tfc.Tensor[] = [];
    const values = this.vars.map((v) => {
      const whole = state[v.state];
      if (v.offset === 0 && size(v.shape) === whole.size) return whole;
      const t = tf.tidy(() => tf.reshape(tf.slice(tf.reshape(whole, [-1]), v.offset, size(v.shape)), v.shape));
      made.push(t);
      return t;
    });
    try {
      this.session
        .runWith(
          values,
          this.vars.map((_, k) => `init/${k}`),
          ['init/done'],
        )
        .forEach((t) => t.dispose());
    } finally {
      made.forEach((t) => t.dispose());
    }
  }

  /** The state tensors (by state index, the caller owns them) as the variables hold them. */
  download(): tfc.Tensor[] {
    const tf = this.tf;
    const read = this.session.runWith([], [], this.readers);
    return this.shapes.map((shape, i) => {
      const parts = this.vars.flatMap((v, k) => (v.state === i ? [{ v, t: read[k] }] : [])).sort((x, y) => x.v.offset - y.v.offset);
      if (parts.length === 1) return parts[0].t;
      const joined = tf.tidy(() => tf.reshape(tf.concat(parts.map((p) => tf.reshape(p.t, [-1]))), shape));
      parts.forEach((p) => p.t.dispose());
      return joined;
    });
  }

  dispose(): void {
    this.session.dispose();
  }
}

/** Check that the variables tile every state tensor exactly once. */
export function coversState(vars: ResidentVar[], shapes: number[][]): boolean {
  return shapes.every((shape, i) => {
    const parts = vars.filter((v) => v.state === i).sort((x, y) => x.offset - y.offset);
    let at = 0;
    for (const p of parts) {
      if (p.offset !== at) return false;
      at += size(p.shape);
    }
    return at === size(shape);
  });
}
