import type * as tfc from '@tensorflow/tfjs-core';

/**
 * Weighted running sums of scalar loss terms, kept on the device and read back in one
 * transfer: the training loop and the evaluation of a split both average terms over
 * many batches without a read-back per batch.
 */
export class DeviceSums {
  private sums = new Map<string, tfc.Scalar>();

  constructor(private readonly tf: typeof tfc) {}

  /** Add weight·term for every term (except `skip`); the caller keeps ownership of `terms`. */
  add(terms: Record<string, tfc.Scalar>, weight: number, skip?: string): void {
    const tf = this.tf;
    tf.tidy(() => {
      for (const [k, t] of Object.entries(terms)) {
        if (k === skip) continue;
        const prev = this.sums.get(k);
        this.sums.set(k, tf.keep(tf.add(prev ?? 0, tf.mul(t, weight)) as tfc.Scalar));
        prev?.dispose();
      }
    });
  }

  /** Every sum divided by `count` (one read-back). */
  means(count: number): Record<string, number> {
    const names = [...this.sums.keys()];
    if (!names.length) return {};
    const values = this.tf.tidy(() => this.tf.stack(names.map((k) => this.sums.get(k)!)).dataSync());
    return Object.fromEntries(names.map((k, i) => [k, values[i] / count]));
  }

  dispose(): void {
    this.sums.forEach((t) => t.dispose());
    this.sums.clear();
  }
}
