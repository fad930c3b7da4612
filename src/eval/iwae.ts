import type * as tfc from '@tensorflow/tfjs-core';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { definePlugin, Type, type OptionsOf } from '../registry/define';
import { rows } from './evaluator';
import { UserError } from '../errors';
import { evalGraph, type EvalGraph } from './compiled';
import { Rng } from '../runtime/rng';

const iwaeOptions = {
  k: Type.Integer({ minimum: 1, default: 100, description: 'Importance samples per example (the IWAE paper reports k = 5000)' }),
  batch_size: Type.Integer({
    minimum: 1,
    default: 50,
    description: 'Test examples per forward pass at most (each repeated k times; max_rows caps it too)',
  }),
  max_rows: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'Decoder rows (examples × k) per pass at most: bounds memory; k above it is split into chunks of draws',
  }),
  max_examples: Type.Optional(
    Type.Integer({ minimum: 1, description: 'Evaluate only the first N test examples (the metric says how many)' }),
  ),
};
export type IwaeOptions = OptionsOf<typeof iwaeOptions>;

/** One array draw of a compiled pass, as its graph takes it from the stream: the method and the count. */
type Call = ['normals' | 'uniforms', number];

/** The worker's code: it holds the stream while it has it, and makes the draws asked for. */
const WORKER = `
const { parentPort, workerData } = require('worker_threads');
const { Rng } = require(workerData.rng);
let rng = null;
parentPort.on('message', (m) => {
  if (m.rng) rng = Object.assign(new Rng(0), m.rng);
  if (!m.calls) return parentPort.postMessage({ rng });
  const out = m.calls.map(([method, n]) => rng[method](n));
  parentPort.postMessage(out, out.map((a) => a.buffer));
});`;

/**
 * Draw workers between evaluations: starting one, and the first draws of its fresh
 * JavaScript engine, cost tens of milliseconds, which an evaluation of a few images
 * (the bench's timed calls) would pay every time. Unref'd: they never keep the process alive.
 */
const idleWorkers: Worker[] = [];

/**
 * The random draws of the next compiled pass, made on a worker thread while TensorFlow
 * runs the current one. A pass of k = 5000 draws 250,000 normals; made on the main thread
 * they took about a sixth of the pass's CPU time, with TensorFlow's threads idle. The
 * worker continues the evaluator's stream (a copy of the Rng's state), so the draws are
 * the same numbers in the same order; `reclaim` puts the stream's state back, for the
 * draws made on the main thread (a pass never run before, the eager path) and at the end.
 */
class DrawsAhead {
  private worker: Worker | null = null;
  /** The worker holds the stream: `rng` is behind it until `reclaim`. */
  private holds = false;
  private pending: Promise<Float32Array[]> | null = null;
  /** Requests the worker has not answered: a worker with one outstanding is not reused. */
  private outstanding = 0;
  private failed = false;

  constructor(private rng: Rng) {}

  private ask<T>(message: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
    if (!this.worker) {
      this.worker =
        idleWorkers.pop() ?? new Worker(WORKER, { eval: true, workerData: { rng: path.join(__dirname, '..', 'runtime', 'rng.js') } });
      this.worker.unref();
    }
    const w = this.worker;
    this.outstanding++;
    return new Promise<T>((resolve, reject) => {
      const fail = (e: Error) => {
        this.failed = true;
        reject(e);
      };
      w.once('error', fail);
      w.once('message', (m) => {
        w.off('error', fail);
        this.outstanding--;
        resolve(m as T);
      });
      w.postMessage(message, transfer);
    });
  }

  /** Start making the draws of a pass, after everything drawn so far. */
  request(calls: Call[]): void {
    // the Rng's one field (the generator state) travels as a structured clone
    this.pending = this.ask<Float32Array[]>({ calls, rng: this.holds ? undefined : this.rng });
    this.holds = true;
  }

  /** The draws requested last. */
  take(): Promise<Float32Array[]> {
    const p = this.pending!;
    this.pending = null;
    return p;
  }

  /** The stream back into `rng`: draws on the main thread continue where the worker's ended. */
  async reclaim(): Promise<void> {
    if (!this.holds) return;
    Object.assign(this.rng, (await this.ask<{ rng: object }>({})).rng);
    this.holds = false;
  }

  /** Done with the worker: kept for the next evaluation when it is idle and sound, else stopped. */
  close(): void {
    if (this.worker && !this.failed && this.outstanding === 0) idleWorkers.push(this.worker);
    else void this.worker?.terminate();
    this.worker = null;
  }
}

/** A stream that gives back draws made already (in the order `calls` says), for a compiled pass. */
function replay(draws: Float32Array[], calls: Call[]): Rng {
  let i = 0;
  const next = (method: Call[0]) => (n: number) => {
    const [m, count] = calls[i] ?? [];
    if (m !== method || count !== n) throw new Error(`iwae: the pass drew ${method}(${n}), not the ${m}(${count}) made ahead`);
    return draws[i++];
  };
  return Object.assign(Object.create(Rng.prototype), { normals: next('normals'), uniforms: next('uniforms') }) as Rng;
}

/** A view of `rng` that notes the array draws made through it. */
function recording(rng: Rng, calls: Call[]): Rng {
  const note = (method: Call[0]) => (n: number) => {
    calls.push([method, n]);
    return rng[method](n);
  };
  return Object.assign(Object.create(rng), { normals: note('normals'), uniforms: note('uniforms') }) as Rng;
}

/**
 * Importance-weighted estimate of log p(x) (Burda et al.): log (1/k) Σ_i p(x, z_i)/q(z_i|x),
 * z_i ~ q(z|x), averaged over the test set. A lower bound that tightens as k grows.
 *
 * The decoder runs on (examples per pass)·k rows; a pass takes at most `max_rows` of them
 * (and at most `batch_size` examples), so k = 5000 runs one example per pass. A k larger
 * than max_rows is split into chunks of draws whose log-sum-exps are combined on the device.
 * Per-example sums stay on the device and are read back once, at the end. The draws come
 * from the evaluator's seeded stream example by example, so the pass sizes do not change
 * the estimate (beyond float rounding). On the tensorflow backend each pass is one
 * compiled graph (src/eval/compiled.ts), and the draws of the next pass are made on a
 * worker thread while it runs (DrawsAhead).
 */
export const iwaeEvaluatorPlugin = definePlugin({
  kind: 'evaluator',
  name: 'iwae',
  needs: ['latent', 'density'],
  description: 'Importance-weighted log-likelihood estimate with k samples: test/log_likelihood_k<k>',
  options: iwaeOptions,
  metrics: (o) => [`log_likelihood_k${o.k}`, ...(o.max_examples !== undefined ? [`log_likelihood_k${o.k}_examples`] : [])],
  create: (o) => ({
    async run(ctx) {
      const { tf, model, data } = ctx;
      if (!model.logImportanceWeights) {
        throw new UserError(
          `the iwae evaluator cannot run on this model: ${model.noImportanceWeights ?? 'no importance weights'}`,
          'eval: iwae',
        );
      }
      const n = Math.min(data.test.n, o.max_examples ?? Infinity);
      const perPass = Math.max(1, Math.min(o.batch_size, Math.floor(o.max_rows / o.k)));
      const chunk = Math.min(o.k, o.max_rows);
      const logK = Math.log(o.k);
      /** The passes in order: examples [start, end), draws [s, s + size) of each. */
      const passes: { start: number; end: number; size: number; last: boolean }[] = [];
      for (let start = 0; start < n; start += perPass)
        for (let s = 0; s < o.k; s += chunk)
          passes.push({ start, end: Math.min(n, start + perPass), size: Math.min(chunk, o.k - s), last: s + chunk >= o.k });
      const key = (p: (typeof passes)[number]) => `${p.end - p.start}×${p.size}`;
      /** The draws each compiled pass makes, by its shape (known once one such pass ran). */
      const plans = new Map<string, Call[]>();
      const ahead = new DrawsAhead(ctx.rng);
      let made: Float32Array[] | null = null;
      let total = tf.scalar(0);
      // log Σ_i w_i per example of the current examples, one part per chunk of draws
      let parts: tfc.Tensor1D[] = [];
      let x: tfc.Tensor2D | null = null;
      try {
        for (let i = 0; i < passes.length; i++) {
          const p = passes[i];
          x ??= rows(tf, data.test, data.dim, p.start, p.end);
          const xs = x;
          const lse = (xx: tfc.Tensor2D, r: Rng) => tf.logSumExp(model.logImportanceWeights!(xx, p.size, r), 1) as tfc.Tensor1D;
          // (a first pass of this shape traces the computation: what that leaves is freed)
          let graph = null as EvalGraph | null;
          tf.tidy(() => {
            graph = evalGraph(tf, model, `iwae k ${p.size}`, [xs], ([xx], r) => [lse(xx as tfc.Tensor2D, r)], ctx.rng, {
              compile: ctx.compile,
            });
          });
          const plan = graph ? plans.get(key(p)) : undefined;
          let source: Rng;
          if (plan) {
            const draws = made ?? (await (ahead.request(plan), ahead.take()));
            made = null;
            // the next pass's draws, made while this one runs
            const nextPlan = passes[i + 1] && plans.get(key(passes[i + 1]));
            if (nextPlan) ahead.request(nextPlan);
            source = replay(draws, plan);
          } else {
            await ahead.reclaim();
            const calls: Call[] = [];
            if (graph) plans.set(key(p), calls);
            source = graph ? recording(ctx.rng, calls) : ctx.rng;
          }
          parts.push(tf.tidy(() => (graph ? (graph.run([xs], source)[0] as tfc.Tensor1D) : lse(xs, source))));
          if (plan && passes[i + 1] && plans.has(key(passes[i + 1]))) made = await ahead.take();
          if (!p.last) continue;
          const next = tf.tidy(() => {
            const l = parts.length === 1 ? parts[0] : tf.logSumExp(tf.stack(parts, 1), 1);
            return tf.add(total, tf.sum(tf.sub(l, logK))) as tfc.Scalar;
          });
          [total, ...parts, xs].forEach((t) => t.dispose());
          total = next;
          parts = [];
          x = null;
        }
        await ahead.reclaim();
      } finally {
        ahead.close();
        [...parts, ...(x ? [x] : [])].forEach((t) => t.dispose());
      }
      const value = total.dataSync()[0] / n;
      total.dispose();
      const out: Record<string, number> = { [`log_likelihood_k${o.k}`]: value };
      if (n < data.test.n) out[`log_likelihood_k${o.k}_examples`] = n;
      return out;
    },
  }),
});
