import type * as tfcore from '@tensorflow/tfjs-core';

/**
 * The tfjs-core instance in use. The native backend (@tensorflow/tfjs-node) brings its
 * own copy of tfjs-core; when it is chosen, its instance replaces this one so that
 * every op runs on the engine that owns the backend.
 *
 * TensorFlow.js is loaded on first use, not when this module is imported: commands that
 * never train (`elbo --help`, `validate`, `plugins`, `schema`) start without it.
 */
let current: typeof tfcore | undefined;
let base: typeof tfcore | undefined;

/** The JavaScript tfjs-core (with the gradients of the union package), loaded once. */
export function baseTf(): typeof tfcore {
  if (!base) {
    base = require('@tensorflow/tfjs-core') as typeof tfcore;
    // tfjs-core alone registers no gradients; loading the union package @tensorflow/tfjs does (same deduped tfjs-core)
    require('@tensorflow/tfjs');
  }
  return base;
}

export function getTf(): typeof tfcore {
  return (current ??= baseTf());
}

export function setTf(tf: typeof tfcore): void {
  current = tf;
}
