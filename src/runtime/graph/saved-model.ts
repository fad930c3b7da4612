import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProtoWriter } from './protobuf';

/** Attribute kinds, numbered as TensorFlow's C API numbers them (TF_AttrType), plus tensors. */
export const ATTR = { STRING: 0, INT: 1, FLOAT: 2, BOOL: 3, TYPE: 4, SHAPE: 5, TENSOR: 6 } as const;

/** A constant tensor: TF DataType number, shape, raw little-endian contents. */
export interface ConstTensor {
  dtype: number;
  shape: number[];
  bytes: Uint8Array;
}

/** An op attribute in the form tfjs-node hands to TFE_OpSetAttr*; arrays are lists. */
export interface Attr {
  name: string;
  type: number;
  value: string | number | boolean | number[] | boolean[] | ConstTensor;
}

export interface GraphNode {
  name: string;
  op: string;
  /** "node" for output 0, "node:k" otherwise. */
  inputs: string[];
  attrs: Attr[];
}

function shapeProto(dims: number[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of dims) w.message(2, new ProtoWriter().int(1, d));
  return w;
}

function tensorProto(t: ConstTensor): ProtoWriter {
  return new ProtoWriter().int(1, t.dtype).message(2, shapeProto(t.shape)).bytes(4, t.bytes);
}

function attrValue(a: Attr): ProtoWriter {
  const w = new ProtoWriter();
  const v = a.value;
  if (Array.isArray(v)) {
    const list = new ProtoWriter();
    if (a.type === ATTR.SHAPE) return w.message(7, shapeProto(v as number[]));
    if (a.type === ATTR.INT) list.packedInts(3, v as number[]);
    else if (a.type === ATTR.FLOAT) list.packedFloats(4, v as number[]);
    else if (a.type === ATTR.BOOL) list.packedInts(5, v as boolean[]);
    else if (a.type === ATTR.TYPE) list.packedInts(6, v as number[]);
    else throw new Error(`attribute ${a.name}: lists of kind ${a.type} are not supported`);
    return w.message(1, list);
  }
  switch (a.type) {
    case ATTR.STRING:
      return w.string(2, String(v));
    case ATTR.INT:
      return w.int(3, v as number);
    case ATTR.FLOAT:
      return w.float(4, v as number);
    case ATTR.BOOL:
      return w.int(5, v as boolean);
    case ATTR.TYPE:
      return w.int(6, v as number);
    case ATTR.TENSOR:
      return w.message(8, tensorProto(v as ConstTensor));
    default:
      throw new Error(`attribute ${a.name}: kind ${a.type} is not supported`);
  }
}

function nodeDef(n: GraphNode): ProtoWriter {
  const w = new ProtoWriter().string(1, n.name).string(2, n.op);
  for (const i of n.inputs) w.string(3, i);
  for (const a of n.attrs) w.message(5, new ProtoWriter().string(1, a.name).message(2, attrValue(a)));
  return w;
}

/** GraphDef version the nodes are written for (TensorFlow ≥ 2.12 reads it). */
const PRODUCER = 1395;

/** A SavedModel (tag "serve", no variables) holding one graph, as bytes of saved_model.pb. */
export function encodeSavedModel(nodes: GraphNode[]): Uint8Array {
  const graph = new ProtoWriter();
  for (const n of nodes) graph.message(1, nodeDef(n));
  graph.message(4, new ProtoWriter().int(1, PRODUCER));
  const meta = new ProtoWriter().message(1, new ProtoWriter().string(4, 'serve')).message(2, graph);
  return new ProtoWriter().int(1, 1).message(2, meta).finish();
}

/** Write the SavedModel directory that TF_LoadSessionFromSavedModel reads. */
export function writeSavedModel(dir: string, nodes: GraphNode[]): void {
  fs.mkdirSync(path.join(dir, 'variables'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'saved_model.pb'), encodeSavedModel(nodes));
}
