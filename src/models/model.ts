import type * as tfc from '@tensorflow/tfjs-core';
import type { Model } from '../contracts';

/**
 * What a checkpoint of the model holds, by name: its parameters, then its buffers (the
 * names never collide: a network names them apart, e.g. bn0/gamma and bn0/mean).
 */
export function modelVariables(model: Pick<Model, 'params' | 'buffers'>): Map<string, tfc.Variable> {
  return new Map([...model.params, ...(model.buffers ?? [])]);
}
