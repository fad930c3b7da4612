import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';

/** What a network plugin creates: named trainable parameters and a forward pass. */
export interface Network {
  /** Parameters by name, e.g. 'dense0/w'. Names are stable: checkpoints use them. */
  params: Map<string, tfc.Variable>;
  apply(x: tfc.Tensor2D): tfc.Tensor2D;
  /**
   * The same forward pass as TensorFlow.js Layers on `input` ([B, inDim] symbolic), with
   * the current parameter values copied in: what `elbo export --format tfjs` writes
   * (export/tfjs.ts). `tfl` is the @tensorflow/tfjs package. Absent: the network cannot
   * be exported.
   */
  layers?(tfl: typeof tfjs, input: tfjs.SymbolicTensor): tfjs.SymbolicTensor;
}

/**
 * Apply a Layers layer to a symbolic tensor and set its weights from elbo variables (in the
 * order the layer lists them, e.g. kernel then bias): the building block of `Network.layers`.
 * The values are copied, so the variables may live on another tfjs-core instance (the native
 * backend's).
 */
export function applyWithWeights(tfl: typeof tfjs, layer: tfjs.layers.Layer, input: tfjs.SymbolicTensor, weights: tfc.Variable[]): tfjs.SymbolicTensor {
  const out = layer.apply(input) as tfjs.SymbolicTensor;
  const values = weights.map((v) => tfl.tensor(v.dataSync() as Float32Array, v.shape));
  layer.setWeights(values);
  values.forEach((t) => t.dispose());
  return out;
}

/** The extra context a network's `create` receives. */
export interface NetworkShape {
  inDim: number;
  outDim: number;
  /** Shape of one input example when it is an image ([h, w, c]); conv networks need it. */
  inShape?: number[];
  /** Shape of one output example when it is an image; conv decoders need it. */
  outShape?: number[];
}
