import type * as tfc from '@tensorflow/tfjs-core';

/**
 * Weighted running sums of scalar loss terms, kept on the device and read back in one
 * transfer: the training loop and the evaluation of a split both average terms over
 * many batches without a read-back per batch. The terms of one call are stacked into
 * one vector, so an update is three kernels however many terms there are (the training
 * loop adds after every step).
 */
export class DeviceSums {
  /** Per set of term names (normally one): the names and their running sums. */
  private groups = new Map<string, { names: string[]; sum: tfc.Tensor1D }>();

  constructor(private readonly tf: typeof tfc) {}

  /** Add weight·term for every term (except `skip`); the caller keeps ownership of `terms`. */
  add(terms: Record<string, tfc.Scalar>, weight: number, skip?: string): void {
    const tf = this.tf;
    const names = Object.keys(terms).filter((k) => k !== skip);
    if (!names.length) return;
    const key = names.join('\n');
    const prev = this.groups.get(key);
    const sum = tf.tidy(() => {
      const v = tf.mul(tf.stack(names.map((k) => terms[k])), weight) as tfc.Tensor1D;
      // kept: callers may add from inside their own tidy
      return tf.keep(prev ? (tf.add(prev.sum, v) as tfc.Tensor1D) : v);
    });
    prev?.sum.dispose();
    this.groups.set(key, { names, sum });
  }

  /** Every sum divided by `count` (one read-back per set of names). */
  means(count: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { names, sum } of this.groups.values()) {
      const values = sum.dataSync();
      names.forEach((k, i) => (out[k] = (out[k] ?? 0) + values[i] / count));
    }
    return out;
  }

  dispose(): void {
    this.groups.forEach((g) => g.sum.dispose());
    this.groups.clear();
  }
}
