import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import type { Phase, HasVariables } from '../contracts';

/** A phase that stays in evaluation (a network built outside a model, a frozen network). */
export const evaluationPhase = (): Phase => ({ training: false });

/**
 * `fn` with `phase` in evaluation, then as it was: a pass inside the training step that only
 * monitors (no gradient flows from it) runs as validation would, so that it neither moves
 * batch normalisation's running averages nor draws dropout masks.
 */
export function inEvaluation<T>(phase: Phase | undefined, fn: () => T): T {
  if (!phase?.training) return fn();
  phase.training = false;
  try {
    return fn();
  } finally {
    phase.training = true;
  }
}

/**
 * `fn` with `phase.normSplit` = `split` (undefined: none), then as it was: a semi-supervised
 * model runs its networks on rows laid out labelled first with the split at the labelled
 * count, and a network it applies to other rows (a prior's, on its pseudo-inputs) without.
 */
export function withNormSplit<T>(phase: Phase | undefined, split: number | undefined, fn: () => T): T {
  if (!phase || phase.normSplit === split) return fn();
  const before = phase.normSplit;
  phase.normSplit = split;
  try {
    return fn();
  } finally {
    phase.normSplit = before;
  }
}

/**
 * Apply a Layers layer to a symbolic tensor and set its weights from elbo variables (in the
 * order the layer lists them, e.g. kernel then bias): the building block of `Network.layers`.
 * The values are copied, so the variables may live on another tfjs-core instance (the native
 * backend's).
 */
export function applyWithWeights(
  tfl: typeof tfjs,
  layer: tfjs.layers.Layer,
  input: tfjs.SymbolicTensor,
  weights: tfc.Variable[],
): tfjs.SymbolicTensor {
  const out = layer.apply(input) as tfjs.SymbolicTensor;
  const values = weights.map((v) => tfl.tensor(v.dataSync() as Float32Array, v.shape));
  layer.setWeights(values);
  values.forEach((t) => t.dispose());
  return out;
}

/**
 * A model's parameters and buffers from its parts, each name prefixed with its part's
 * ('encoder' → 'encoder/dense0/w', 'encoder/bn0/mean'): what every model builds its
 * `params` and `buffers` from, so both get the same names.
 */
export function collectVariables(parts: Record<string, HasVariables | null | undefined>): {
  params: Map<string, tfc.Variable>;
  buffers: Map<string, tfc.Variable>;
} {
  const params = new Map<string, tfc.Variable>();
  const buffers = new Map<string, tfc.Variable>();
  for (const [prefix, part] of Object.entries(parts)) {
    for (const [n, v] of part?.params ?? []) params.set(`${prefix}/${n}`, v);
    for (const [n, v] of part?.buffers ?? []) buffers.set(`${prefix}/${n}`, v);
  }
  return { params, buffers };
}
