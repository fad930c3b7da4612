import * as tfcore from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; loading the union package @tensorflow/tfjs does (same deduped tfjs-core)
import '@tensorflow/tfjs';

/**
 * The tfjs-core instance in use. The native backend (@tensorflow/tfjs-node) brings its
 * own copy of tfjs-core; when it is chosen, its instance replaces this one so that
 * every op runs on the engine that owns the backend.
 */
let current: typeof tfcore = tfcore;

export function getTf(): typeof tfcore {
  return current;
}

export function setTf(tf: typeof tfcore): void {
  current = tf;
}
