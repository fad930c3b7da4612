import type * as tfc from '@tensorflow/tfjs-core';
import type { Network } from '../contracts';

/**
 * One part of a network's input on the class passes (m2Rows in models/m2.ts: the labelled
 * rows with their label, then every unlabelled row once per class): a tensor with one row
 * per pass (z, drawn per pass), or `{ rows, idx }`, pass i reading row idx_i of `rows` (a
 * part that a row's C class passes share: its x, its a).
 */
export type PassPart = tfc.Tensor2D | { rows: tfc.Tensor2D; idx: tfc.Tensor1D };

/**
 * A network on [p_1, …, p_n, onehot(y)] for every pass i (y_i = ys_i; the class part last),
 * as M2, ADGM and SDGM feed their class-conditional networks. When the network starts with a
 * product (Network.affineInput), that product is computed by parts: w split by rows into
 * w_1, …, w_n, w_y; Σ p_j·w_j, each part's product at its own rows (a part shared by passes
 * once per row of `rows`, then gathered by idx: an unlabelled x once, not once per class;
 * shared parts with the same idx summed before one gather) plus w_y[y], a lookup of w's rows
 * for y. The same sums as the product with the concatenated rows, in another order; the
 * network's rest then runs on it. Otherwise (conv, an mlp with input normalisation or
 * dropout) the network runs on the concatenated rows.
 */
export function withClass(tf: typeof tfc, net: Network, parts: PassPart[], ys: tfc.Tensor1D, C: number): tfc.Tensor2D {
  const first = net.affineInput?.();
  if (!first) {
    const rows = parts.map((p) => ('idx' in p ? (tf.gather(p.rows, p.idx) as tfc.Tensor2D) : p));
    return net.apply(tf.concat([...rows, tf.cast(tf.oneHot(ys, C), 'float32') as tfc.Tensor2D], 1) as tfc.Tensor2D);
  }
  const ws = tf.split(first.w, [...parts.map((p) => ('idx' in p ? p.rows : p).shape[1]), C], 0) as tfc.Tensor2D[];
  let sum = tf.gather(ws[parts.length], ys) as tfc.Tensor2D;
  /** The shared parts' products, summed per index tensor (one gather each). */
  const shared = new Map<tfc.Tensor1D, tfc.Tensor2D>();
  parts.forEach((p, j) => {
    if ('idx' in p) {
      const pw = tf.matMul(p.rows, ws[j]) as tfc.Tensor2D;
      const before = shared.get(p.idx);
      shared.set(p.idx, before ? (tf.add(before, pw) as tfc.Tensor2D) : pw);
    } else sum = tf.add(sum, tf.matMul(p, ws[j])) as tfc.Tensor2D;
  });
  for (const [idx, pw] of shared) sum = tf.add(sum, tf.gather(pw, idx)) as tfc.Tensor2D;
  return first.rest(sum);
}
