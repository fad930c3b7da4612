import type * as tfc from '@tensorflow/tfjs-core';

/**
 * What happens to the gradients between backpropagation and the optimizer's update
 * (`train.clip`, `train.weight_decay`), in this order:
 *   1. the global norm ‖g‖ = √(Σ over every parameter of Σ g²) is measured (logged as
 *      train/grad_norm, the epoch's mean over steps, before any clipping);
 *   2. clip by norm: g ← g · min(1, norm / ‖g‖) (PyTorch's clip_grad_norm_, Lightning's
 *      gradient_clip_algorithm 'norm');
 *   3. clip by value: g ← clamp(g, −value, value) (clip_grad_value_, 'value');
 *   4. weight decay: g ← g + λ·θ for every parameter (the gradient of λ/2·‖θ‖², a Gaussian
 *      prior N(0, 1/λ) on the weights in a per-example loss; coupled, as PyTorch's Adam
 *      `weight_decay`, not AdamW's decoupled decay), after clipping as there.
 * The auxiliary-DGM authors' code clips the norm at 5 and then the values at ±1, which is
 * steps 2 and 3 together. Everything is tf ops on the gradients, so it is part of the
 * compiled one-graph step.
 */
export interface GradientOptions {
  clip?: { norm?: number; value?: number };
  /** λ ≥ 0; 0 or absent: none. */
  weightDecay?: number;
}

/** The global L2 norm of a set of gradients, as a scalar. */
export function globalNorm(tf: typeof tfc, grads: tfc.Tensor[]): tfc.Scalar {
  if (!grads.length) return tf.scalar(0);
  return tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tfc.Scalar;
}

/**
 * Apply `o` to gradients by parameter name (`params` holds the parameters, for weight
 * decay). Returns the new gradients and the norm measured before clipping. Call inside a
 * tidy.
 */
export function transformGradients(
  tf: typeof tfc,
  grads: Record<string, tfc.Tensor>,
  params: Map<string, tfc.Variable>,
  o: GradientOptions,
): { grads: Record<string, tfc.Tensor>; norm: tfc.Scalar } {
  const names = Object.keys(grads);
  let g = names.map((n) => grads[n]);
  const norm = globalNorm(tf, g);
  const maxNorm = o.clip?.norm;
  if (maxNorm !== undefined) {
    // min(1, max/‖g‖); ‖g‖ = 0 leaves the gradients as they are
    const scale = tf.minimum(1, tf.div(maxNorm, tf.maximum(norm, 1e-12)));
    g = g.map((t) => tf.mul(t, scale));
  }
  const value = o.clip?.value;
  if (value !== undefined) g = g.map((t) => tf.clipByValue(t, -value, value));
  const out: Record<string, tfc.Tensor> = Object.fromEntries(names.map((n, i) => [n, g[i]]));
  const decay = o.weightDecay ?? 0;
  // every parameter decays, also one that this batch gave no gradient
  if (decay > 0) for (const [n, p] of params) out[n] = out[n] ? tf.add(out[n], tf.mul(decay, p)) : tf.mul(decay, p);
  return { grads: out, norm };
}
