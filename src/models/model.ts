import type * as tfc from '@tensorflow/tfjs-core';
import type { Model } from '../contracts';

/**
 * What a checkpoint of the model holds, by name: its parameters, then its buffers (the
 * names never collide: a network names them apart, e.g. bn0/gamma and bn0/mean).
 */
export function modelVariables(model: Pick<Model, 'params' | 'buffers'>): Map<string, tfc.Variable> {
  return new Map([...model.params, ...(model.buffers ?? [])]);
}

/**
 * A model's terms as a run logs them, from their batch-weighted means over many batches
 * (`means`: Σ_b n_b·term_b / Σ_b n_b): each of the model's `ratios` divided by its
 * denominator's mean (left out where that is 0: no labelled row was seen), and the
 * denominators (names beginning with `_`) left out.
 */
export function termMeans(model: Pick<Model, 'ratios'>, means: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(means)) {
    if (k.startsWith('_')) continue;
    const over = model.ratios?.[k];
    if (over === undefined || !(over in means)) out[k] = v;
    else if (means[over] > 0) out[k] = v / means[over];
  }
  return out;
}
