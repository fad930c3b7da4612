import type * as tfc from '@tensorflow/tfjs-core';
import { Rng } from '../runtime/rng';
import { nativeBackend } from '../runtime/graph/trace';
import { compileFunction, type GraphFunction } from '../runtime/graph/compile';
import type { Model, CompileMode } from '../contracts';

/**
 * Evaluations compiled as the training step is (`train.compile`): on the tensorflow
 * backend, each batched computation of an evaluation (a split's loss terms, the IWAE
 * weights of a pass, latent encodings) runs as one TensorFlow graph per input shape
 * instead of kernel by kernel, when the trace shows that is exact
 * (src/runtime/graph/compile.ts); otherwise, and on the other backends, eagerly. The
 * graphs are kept per model and computation, so the validation of every epoch reuses
 * them; their sessions are freed with the model.
 */

export interface EvalGraph extends GraphFunction {
  /** Names of the outputs' parts, where the computation has them (loss terms). */
  names: string[];
}

type Cache = Map<string, EvalGraph | null>;
const graphs = new WeakMap<Model, Cache>();
const sessions = new FinalizationRegistry<Cache>((cache) => cache.forEach((g) => g?.dispose()));

/** Why each computation stays eager, once per model, computation and shape (for the log). */
export type EagerReason = (what: string, reason: string) => void;

/**
 * The compiled graph of computation `what` for inputs of these shapes, or null when it
 * runs eagerly. `fn(inputs, rng, second)` computes it; the second trace (`second`
 * true) sees other inputs of the same shapes, and should see other host-side values
 * the computation reads (reversed labels), so that any of them frozen into the graph
 * shows up as a difference. `names` are read after the traces. `rng` is not advanced
 * (null: the computation draws nothing).
 */
export function evalGraph(
  tf: typeof tfc,
  model: Model,
  what: string,
  inputs: tfc.Tensor[],
  fn: (inputs: tfc.Tensor[], rng: Rng, second: boolean) => tfc.Tensor[],
  rng: Rng | null,
  o: { compile?: CompileMode; names?: () => string[]; onEager?: EagerReason } = {},
): EvalGraph | null {
  if (o.compile === 'off' || !nativeBackend(tf)) return null;
  let cache = graphs.get(model);
  if (!cache) {
    cache = new Map();
    graphs.set(model, cache);
    sessions.register(model, cache);
  }
  // (scalar inputs, a computation's loss weights, have no shape to tell graphs apart by)
  const key = `${what}: ${inputs
    .filter((t) => t.rank > 0)
    .map((t) => t.shape.join('×'))
    .join(', ')}`;
  if (!cache.has(key)) {
    let first = true;
    const other = tf.tidy(() => inputs.map((t) => (t.dtype === 'float32' ? tf.add(t, 0.25) : t.clone())));
    const r = compileFunction(
      tf,
      (feeds, rr) => {
        const second = !first;
        first = false;
        return fn(feeds, rr, second);
      },
      inputs,
      other,
      rng ?? new Rng(0),
      // the parameters and buffers are inputs: training moves them between evaluations
      { state: [...model.params.values(), ...(model.buffers?.values() ?? [])] },
    );
    other.forEach((t) => t.dispose());
    if (typeof r === 'string') o.onEager?.(key, r);
    cache.set(key, typeof r === 'string' ? null : { ...r, names: o.names?.() ?? [] });
  }
  return cache.get(key)!;
}

/** The computations compiled or kept eager for this model so far: shape key → kernels, or null (eager). */
export function compiledEvaluations(model: Model): Record<string, number | null> {
  return Object.fromEntries([...(graphs.get(model) ?? new Map()).entries()].map(([k, g]) => [k, g ? g.kernels : null]));
}
