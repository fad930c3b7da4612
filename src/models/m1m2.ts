import * as fs from 'fs';
import type * as tfc from '@tensorflow/tfjs-core';
import { parse as parseYaml } from 'yaml';
import type { Plugin, PluginContext } from '../registry/types';
import type { Model } from './model';
import type { Network } from '../nn/network';
import type { Prior, TrainProgress } from '../priors/prior';
import type { DataSet } from '../data/dataset';
import type { PluginOptions } from '../config/types';
import { M2CoreOptions, FeatureMap, M2_TERMS, m2Core, m2SchemaProperties } from './m2';
import { openFinishedRun, loadLastCheckpoint } from './load-run';
import { latentParts, VaeOptions } from './vae';
import { UserError } from '../errors';

export interface M1M2Options extends M2CoreOptions {
  kind: 'm1m2';
  m1_run?: string;
  min_std: number;
  std_examples: number;
}

const WHERE = 'model.m1_run';
const EVAL: TrainProgress = { epoch: 0, step: 0, fraction: 1 };

/** A trained M1 loaded from its run directory: the encoder q(z1|x) and decoder p(x|z1), frozen. */
export interface LoadedM1 {
  runDir: string;
  latent: number;
  prior: Prior;
  encoder: Network;
  decoder: Network;
  likelihood: string;
  epoch: number;
}

/**
 * Resolve `m1_run` (relative to the current directory, then to the config's directory),
 * check it is a FINISHED run of a model with encoder/decoder/latent/prior (vae, m1, ...),
 * rebuild its networks from its config.yaml and load its last checkpoint.
 */
export function loadM1Run(spec: string | undefined, ctx: PluginContext, data: DataSet): LoadedM1 {
  const hint = 'train an M1 first (e.g. elbo run configs/mnist/m1.yaml, or any vae run on the same data) and pass its run directory: --set model.m1_run=runs/<experiment>/<runId>';
  if (!spec) throw new UserError(`m1m2 needs the run directory of a finished m1/vae run; ${hint}`, WHERE);
  const { runDir, store } = openFinishedRun(spec, ctx.baseDir, WHERE, hint);
  const cfg = parseYaml(fs.readFileSync(store.file('config.yaml'), 'utf8'));
  const m: PluginOptions | undefined = cfg?.model;
  if (!m || typeof m.latent !== 'number' || !m.encoder || !m.decoder || !m.prior) {
    throw new UserError(`the M1 run's model (${m?.kind ?? 'none'}) has no latent/prior/encoder/decoder; use a run of the m1 or vae model`, WHERE);
  }
  // M1's networks exactly as its run built them, then its trained weights
  const { K, prior, encoder, decoder, params } = latentParts(m as VaeOptions, { ...ctx, rng: ctx.rng.fork('m1'), data });
  const vars = new Map<string, tfc.Variable>([...params].map(([n, v]) => [`model/${n}`, v]));
  const manifest = loadLastCheckpoint(store, ctx.tf, vars, WHERE);
  return { runDir, latent: K, prior, encoder, decoder, likelihood: m.likelihood ?? 'bernoulli', epoch: manifest.epoch };
}

/**
 * Indices of the z1 dimensions whose posterior-mean standard deviation over (up to
 * `maxRows` of) the training data exceeds `minStd` (Kingma's reference code: 0.1).
 */
export function activeDims(tf: typeof tfc, m1: LoadedM1, data: DataSet, minStd: number, maxRows: number): { keep: number[]; std: number[] } {
  const n = Math.min(data.train.n, maxRows);
  const K = m1.latent;
  const sum = new Float64Array(K);
  const sq = new Float64Array(K);
  for (let s = 0; s < n; s += 1000) {
    const e = Math.min(n, s + 1000);
    const mu = tf.tidy(() => m1.prior.mean(m1.encoder.apply(tf.tensor2d(data.train.x.subarray(s * data.dim, e * data.dim), [e - s, data.dim])), K));
    const v = mu.dataSync();
    mu.dispose();
    for (let i = 0; i < e - s; i++)
      for (let k = 0; k < K; k++) {
        sum[k] += v[i * K + k];
        sq[k] += v[i * K + k] ** 2;
      }
  }
  const std = Array.from(sum, (s, k) => Math.sqrt(Math.max(0, sq[k] / n - (s / n) ** 2)));
  return { keep: std.flatMap((sd, k) => (sd > minStd ? [k] : [])), std };
}

/**
 * M1+M2 (SPEC.md "Model: M1+M2"): M2 on the latent features z1 of a trained M1, drawn
 * from q(z1|x) afresh for every batch (the posterior mean for classification and
 * reconstruction), keeping only the z1 dimensions whose posterior-mean std over the
 * training data exceeds `min_std`. The M1 networks are frozen and not part of this run's
 * checkpoints: the run needs `m1_run` to stay where it is (also to resume). Images
 * (reconstructions, samples) are decoded back to pixels by M1's decoder with the dropped
 * z1 dimensions set to 0.
 */
export function m1m2(o: M1M2Options, ctx: PluginContext): Model {
  const tf = ctx.tf;
  const data = ctx.data as DataSet;
  const m1 = loadM1Run(o.m1_run, ctx, data);
  const { keep, std } = activeDims(tf, m1, data, o.min_std, o.std_examples);
  if (!keep.length) {
    throw new UserError(`no z1 dimension of the M1 run has posterior-mean std > ${o.min_std} (largest ${Math.max(...std).toFixed(3)}); lower model.min_std`, WHERE);
  }
  const K1 = m1.latent;
  const keepT = tf.keep(tf.tensor1d(keep, 'int32'));
  // [kept, K1] selection matrix: f · S puts kept features back in their z1 columns, the rest 0
  const sel = new Float32Array(keep.length * K1);
  keep.forEach((k, i) => (sel[i * K1 + k] = 1));
  const S = tf.keep(tf.tensor2d(sel, [keep.length, K1]));
  const features: FeatureMap = {
    dim: keep.length,
    sample: (x, rng) => tf.gather(m1.prior.sample(m1.encoder.apply(x), K1, rng, EVAL), keepT, 1) as tfc.Tensor2D,
    mean: (x) => tf.gather(m1.prior.mean(m1.encoder.apply(x), K1), keepT, 1) as tfc.Tensor2D,
    toData: (f) => {
      const out = m1.decoder.apply(tf.matMul(f, S) as tfc.Tensor2D);
      return m1.likelihood === 'bernoulli' ? (tf.sigmoid(out) as tfc.Tensor2D) : out;
    },
  };
  const model = m2Core(o, ctx, features, 'model (m1m2)');
  return Object.assign(model, { m1: { runDir: m1.runDir, epoch: m1.epoch, keptDims: keep, posteriorMeanStd: std } });
}

export const m1m2Plugin: Plugin<M1M2Options, Model> = {
  kind: 'model',
  name: 'm1m2',
  terms: () => M2_TERMS,
  description:
    'Kingma et al. 2014 M1+M2: M2 on the z1 features of a trained M1 run (m1_run), sampled from q(z1|x) per batch, Gaussian p(z1|y,z2)',
  schema: {
    properties: {
      m1_run: {
        type: 'string',
        description:
          'Run directory of a FINISHED m1 or vae run on the same data (relative to the current directory, then the config file); required when the run starts, e.g. --set model.m1_run=runs/mnist-m1/<runId>',
      },
      min_std: { type: 'number', minimum: 0, default: 0.1, description: 'Keep z1 dimensions whose posterior-mean std over the training data exceeds this (reference code: 0.1)' },
      std_examples: { type: 'integer', minimum: 1, default: 10000, description: 'Training examples used for that std' },
      ...m2SchemaProperties(['gaussian_learned', 'gaussian'], 'gaussian_learned'),
    },
  },
  create: m1m2,
};
