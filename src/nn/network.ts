import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';

/**
 * The training/evaluation switch of one model (docs/plugins.md "Training and evaluation
 * phase"): made once per model build (`{ training: false }`), handed to its networks as
 * `ctx.phase`, and set to `training: true` by the training step only around its forward
 * pass (eager, and while the compiled step is traced). Everything else (validation,
 * test, evaluators, export) runs with `training: false`. A network that behaves
 * differently while training (batch normalisation: batch statistics and running
 * averages) reads `phase.training` when it computes, not when it is created.
 */
export interface Phase {
  training: boolean;
}

/** A phase that stays in evaluation (a network built outside a model, a frozen network). */
export const evaluationPhase = (): Phase => ({ training: false });

/** What a network plugin creates: named trainable parameters and a forward pass. */
export interface Network {
  /** Parameters by name, e.g. 'dense0/w'. Names are stable: checkpoints use them. */
  params: Map<string, tfc.Variable>;
  /**
   * Non-trainable state by name (batch normalisation's running averages, 'bn0/mean',
   * 'bn0/var'): checkpointed and fed to compiled graphs like the parameters, but never
   * given gradients, never touched by the optimizer or weight decay. The network updates
   * them itself with `v.assign(...)` while `phase.training` (the compiled step picks the
   * new values up as outputs). Absent: none.
   */
  buffers?: Map<string, tfc.Variable>;
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

/** Anything with named parameters and, maybe, buffers (a network, a prior). */
export interface HasVariables {
  params?: Map<string, tfc.Variable>;
  buffers?: Map<string, tfc.Variable>;
}

/**
 * A model's parameters and buffers from its parts, each name prefixed with its part's
 * ('encoder' → 'encoder/dense0/w', 'encoder/bn0/mean'): what every model builds its
 * `params` and `buffers` from, so both get the same names.
 */
export function collectVariables(parts: Record<string, HasVariables | null | undefined>): { params: Map<string, tfc.Variable>; buffers: Map<string, tfc.Variable> } {
  const params = new Map<string, tfc.Variable>();
  const buffers = new Map<string, tfc.Variable>();
  for (const [prefix, part] of Object.entries(parts)) {
    for (const [n, v] of part?.params ?? []) params.set(`${prefix}/${n}`, v);
    for (const [n, v] of part?.buffers ?? []) buffers.set(`${prefix}/${n}`, v);
  }
  return { params, buffers };
}
