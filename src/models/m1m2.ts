import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { stringify } from 'yaml';
import { definePlugin, Enum, ObjectOf, withOptionDefaults, slot, Type, type OptionsOf } from '../registry/define';
import { evaluationPhase } from '../nn/network';
import { FeatureMap, M2_TERMS, m2Core, m2Options } from './m2';
import { standardWeights } from '../registry/weights';
import { openFinishedRun, loadLastCheckpoint } from './load-run';
import { freezeInGraphs } from '../runtime/graph/trace';
import { latentParts, vaeModelPlugin } from './vae';
import { loadConfig, LoadedConfig } from '../config/load';
import { readStoredConfig, runsIn } from '../track/run-store';
import { takeLock, releaseLock } from '../util/lock';
import { UserError, UserErrors } from '../errors';
import type {
  ModelBuildContext,
  NestedRuns,
  PluginOptions,
  Model,
  RunDependency,
  Network,
  Prior,
  TrainProgress,
  DataSet,
} from '../contracts';

/** The nested M1: its model block and its own train/loss/eval sections (config.yaml's shapes). */
export interface M1Block {
  model: PluginOptions;
  train: Record<string, unknown>;
  loss: Record<string, unknown>;
  eval: PluginOptions[];
}

const m1m2Options = {
  m1: Type.Optional(
    ObjectOf(
      {
        model: slot('model', { description: 'The M1 model (m1 or vae)' }),
        train: Type.Unsafe<Record<string, unknown>>({
          $ref: '#/properties/train',
          default: {},
          description: "The M1's training settings (as the top-level train)",
        }),
        loss: Type.Unsafe<Record<string, unknown>>({
          $ref: '#/properties/loss',
          default: {},
          description: "The M1's loss weights (as the top-level loss)",
        }),
        eval: Type.Array(slot('evaluator'), {
          default: [],
          description: "Evaluations of the M1 run (default: none; this run's own eval follows)",
        }),
      },
      {
        additionalProperties: false,
        description:
          'The M1, as a config would give it: {model, train, loss, eval}. At the start of the run a FINISHED run in <runs>/<experiment>-m1/ with the same resolved config (this block, the data block without labelled, the seed) is reused, else it is trained first as such a run',
      },
    ),
  ),
  m1_run: Type.Optional(
    Type.String({
      description:
        'Instead of m1: the run directory of a FINISHED m1 or vae run on the same data (relative to the current directory, then the config file), e.g. --set model.m1_run=runs/mnist-m1/<runId>',
    }),
  ),
  min_std: Type.Number({
    minimum: 0,
    default: 0.1,
    description: 'Keep z1 dimensions whose posterior-mean std over the training data exceeds this (reference code: 0.1)',
  }),
  features: Enum(['sample', 'mean'], {
    default: 'sample',
    description:
      "The z1 features M2 trains on: sample draws them from q(z1|x) afresh in every step (Kingma's code: a fresh sample per minibatch, a data augmentation); mean uses the posterior means. Classification, encoding and reconstruction always use the means",
  }),
  std_examples: Type.Integer({ minimum: 1, default: 10000, description: 'Training examples used for that std' }),
  ...m2Options(['gaussian_learned', 'gaussian'], 'gaussian_learned'),
};
export type M1M2Options = OptionsOf<typeof m1m2Options>;

const WHERE = 'model.m1_run';
const WHERE_NESTED = 'model.m1';
const EVAL: TrainProgress = { epoch: 0, step: 0, fraction: 1 };
const M1_HINT =
  'describe the M1 in model.m1 (see configs/mnist/m1m2.yaml: it is trained first or reused), or train one (e.g. elbo run configs/mnist/m1.yaml) and pass its run directory: --set model.m1_run=runs/<experiment>/<runId>';

/** The M1 is given once: a nested model.m1 block or model.m1_run, checked when the config is validated. */
function checkM1Given(o: M1M2Options): { path: string[]; message: string }[] {
  if (o.m1 && o.m1_run !== undefined)
    return [
      {
        path: ['m1_run'],
        message:
          "give the M1 either as model.m1 (trained or reused here) or as model.m1_run (a finished run), not both (--set ~model.m1 drops the config's m1 block)",
      },
    ];
  if (!o.m1 && o.m1_run === undefined)
    return [{ path: [], message: `m1m2 needs an M1: a nested model.m1 block or the run directory of a finished m1/vae run; ${M1_HINT}` }];
  return [];
}

/** A trained M1 loaded from its run directory: the encoder q(z1|x) and decoder p(x|z1), frozen. */
export interface LoadedM1 {
  runDir: string;
  runId: string;
  configSha256: string;
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
export function loadM1Run(spec: string, ctx: ModelBuildContext, data: DataSet): LoadedM1 {
  const { runDir, store, record } = openFinishedRun(spec, ctx.baseDir, WHERE, M1_HINT);
  const m = readStoredConfig(runDir).model;
  if (!m || typeof m.latent !== 'number' || !m.encoder || !m.decoder || !m.prior) {
    throw new UserError(
      `the M1 run's model (${m?.kind ?? 'none'}) has no latent/prior/encoder/decoder; use a run of the m1 or vae model`,
      WHERE,
    );
  }
  // M1's networks exactly as its run built them, then its trained weights
  const vo = withOptionDefaults(vaeModelPlugin, { ...m, kind: 'vae' });
  // its own phase, always evaluation: batch normalisation in the M1 uses its running averages
  const { K, prior, encoder, decoder, params, buffers } = latentParts(vo, {
    ...ctx,
    rng: ctx.rng.fork('m1'),
    data,
    phase: evaluationPhase(),
  });
  const vars = new Map<string, tfc.Variable>([...params, ...buffers].map(([n, v]) => [`model/${n}`, v]));
  const manifest = loadLastCheckpoint(store, ctx.tf, vars, WHERE);
  // nothing trains the M1 here: a compiled step or evaluation may hold its weights as constants
  freezeInGraphs(vars.values());
  return {
    runDir,
    runId: record.run_id,
    configSha256: record.config_sha256,
    latent: K,
    prior,
    encoder,
    decoder,
    likelihood: vo.likelihood,
    epoch: manifest.epoch,
  };
}

/**
 * The nested M1's own config: the outer run's experiment name + '-m1', its seed, plugins
 * and data block (without data.labelled: M1 reads no labels, and the labelled subset is
 * drawn from a stream of its own, so the images it trains on are the same for every N;
 * without validation_as_unlabelled, which needs labelled: M1 trains on the training rows),
 * and the m1 block's model, train, loss and eval. Its hash finds it again in the run store.
 */
export function nestedM1Config(
  block: M1Block,
  outer: { experiment: string; seed: number; plugins: string[]; data: PluginOptions },
): Record<string, unknown> {
  const { labelled: _labelled, validation_as_unlabelled: _validation, ...data } = outer.data;
  return {
    experiment: `${outer.experiment}-m1`,
    seed: outer.seed,
    plugins: outer.plugins,
    data,
    model: block.model,
    loss: block.loss,
    train: block.train,
    eval: block.eval,
    tracking: [],
  };
}

/**
 * The run directory of the nested M1: a FINISHED run in <runs>/<experiment>-m1/ whose
 * resolved config has the nested config's sha256 (reused), else an unfinished one with it
 * (resumed), else a new run trained now, through `elbo run`'s own machinery. A lock file per
 * config hash keeps parallel runs (sweep cells) from training the same M1 twice.
 */
export async function resolveNestedM1(block: M1Block, ctx: ModelBuildContext): Promise<{ runDir: string; how: RunDependency['how'] }> {
  const runs: NestedRuns | undefined = ctx.runs;
  if (!runs) throw new UserError('a nested M1 needs the run store; create this model through elbo run', WHERE_NESTED);
  if (!['m1', 'vae'].includes(block.model.kind)) {
    throw new UserError(
      `the M1 must be an m1 or vae model (a VAE with latent/prior/encoder/decoder), not '${block.model.kind}'`,
      `${WHERE_NESTED}.model`,
    );
  }
  const text = stringify(nestedM1Config(block, runs.config), { lineWidth: 0 });
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(WHERE_NESTED, [], ctx.registry, { text, baseDir: ctx.baseDir });
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    const all = e instanceof UserErrors ? e.errors : [e];
    throw new UserError(`the M1's config is invalid: ${all.map((x) => x.message).join('; ')}`, WHERE_NESTED);
  }
  const experimentDir = path.join(runs.dir, loaded.config.experiment);
  fs.mkdirSync(experimentDir, { recursive: true });
  const lock = path.join(experimentDir, `.lock-${loaded.sha256.slice(0, 16)}`);
  for (let told = false, holder = takeLock(lock); holder; holder = takeLock(lock)) {
    if (!told) runs.log?.(`M1: waiting for process ${holder.pid} on ${holder.host}, which trains this M1 (${lock})`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
  try {
    const same = runsIn(experimentDir).filter((r) => r.record.config_sha256 === loaded.sha256);
    const done = same.find((r) => r.record.status === 'FINISHED');
    if (done) {
      runs.log?.(`M1: reusing ${done.dir} (finished, same config sha256 ${loaded.sha256.slice(0, 12)})`);
      return { runDir: done.dir, how: 'reused' };
    }
    if (!runs.run) {
      throw new UserError(
        `no finished M1 with config sha256 ${loaded.sha256.slice(0, 12)} in ${experimentDir}; elbo run trains it`,
        WHERE_NESTED,
      );
    }
    const unfinished = same.at(-1);
    runs.log?.(
      unfinished
        ? `M1: resuming ${unfinished.dir} (${unfinished.record.status}), then M1+M2`
        : `M1: no finished run with this config (sha256 ${loaded.sha256.slice(0, 12)}) in ${experimentDir}; training it first`,
    );
    const r = await runs.run(unfinished ? { resume: unfinished.dir } : { text, label: WHERE_NESTED });
    if (r.status !== 'FINISHED') {
      throw new UserError(
        `the M1 run ${r.runDir} ended ${r.status}${r.error ? ` (${r.error})` : ''}; run again to resume it`,
        WHERE_NESTED,
        r.status === 'KILLED' ? 130 : 1,
      );
    }
    return { runDir: r.runDir, how: unfinished ? 'resumed' : 'trained' };
  } finally {
    releaseLock(lock);
  }
}

/**
 * Indices of the z1 dimensions whose posterior-mean standard deviation over (up to
 * `maxRows` of) the training data exceeds `minStd` (Kingma's reference code: 0.1).
 */
export function activeDims(
  tf: typeof tfc,
  m1: LoadedM1,
  data: DataSet,
  minStd: number,
  maxRows: number,
): { keep: number[]; std: number[] } {
  const n = Math.min(data.train.n, maxRows);
  const K = m1.latent;
  const sum = new Float64Array(K);
  const sq = new Float64Array(K);
  for (let s = 0; s < n; s += 1000) {
    const e = Math.min(n, s + 1000);
    const mu = tf.tidy(() =>
      m1.prior.mean(m1.encoder.apply(tf.tensor2d(data.train.x.subarray(s * data.dim, e * data.dim), [e - s, data.dim])), K),
    );
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
 * M1+M2 (docs/models.md "Model: M1+M2"): M2 on the latent features z1 of a trained M1, drawn
 * from q(z1|x) afresh for every batch (the posterior mean for classification and
 * reconstruction), keeping only the z1 dimensions whose posterior-mean std over the
 * training data exceeds `min_std`. The M1 is a finished run: given as `m1_run`, or
 * described by the nested `m1` block and then reused from the run store or trained first
 * (resolveNestedM1); run.json records which under depends_on.m1. The M1 networks are
 * frozen and not part of this run's checkpoints: the M1 run must stay where it is (also to
 * resume). Images (reconstructions, samples) are decoded back to pixels by M1's decoder
 * with the dropped z1 dimensions set to 0.
 */
export async function m1m2(o: M1M2Options, ctx: ModelBuildContext): Promise<Model> {
  const tf = ctx.tf;
  const data = ctx.data;
  // validation ran checkM1Given; options made outside a config (the API) meet it here
  const given = checkM1Given(o)[0];
  if (given) throw new UserError(given.message, WHERE);
  const nested = o.m1 ? await resolveNestedM1(o.m1, ctx) : null;
  const m1 = loadM1Run(nested ? nested.runDir : o.m1_run!, ctx, data);
  const dependsOn: Record<string, RunDependency> = {
    m1: { run_id: m1.runId, run_dir: m1.runDir, config_sha256: m1.configSha256, how: nested ? nested.how : 'given' },
  };
  const { keep, std } = activeDims(tf, m1, data, o.min_std, o.std_examples);
  if (!keep.length) {
    throw new UserError(
      `no z1 dimension of the M1 run has posterior-mean std > ${o.min_std} (largest ${Math.max(...std).toFixed(3)}); lower model.min_std`,
      WHERE,
    );
  }
  const K1 = m1.latent;
  const keepT = tf.keep(tf.tensor1d(keep, 'int32'));
  // [kept, K1] selection matrix: f · S puts kept features back in their z1 columns, the rest 0
  const sel = new Float32Array(keep.length * K1);
  keep.forEach((k, i) => (sel[i * K1 + k] = 1));
  const S = tf.keep(tf.tensor2d(sel, [keep.length, K1]));
  const features: FeatureMap = {
    dim: keep.length,
    sample: (x, rng) =>
      o.features === 'mean'
        ? (tf.gather(m1.prior.mean(m1.encoder.apply(x), K1), keepT, 1) as tfc.Tensor2D)
        : (tf.gather(m1.prior.sample(m1.encoder.apply(x), K1, rng, EVAL), keepT, 1) as tfc.Tensor2D),
    mean: (x) => tf.gather(m1.prior.mean(m1.encoder.apply(x), K1), keepT, 1) as tfc.Tensor2D,
    toData: (f) => {
      const out = m1.decoder.apply(tf.matMul(f, S) as tfc.Tensor2D);
      return m1.likelihood === 'bernoulli' ? (tf.sigmoid(out) as tfc.Tensor2D) : out;
    },
  };
  const model = m2Core(o, ctx, features, 'model (m1m2)');
  return Object.assign(model, { dependsOn, m1: { runDir: m1.runDir, epoch: m1.epoch, keptDims: keep, posteriorMeanStd: std } });
}

export const m1m2ModelPlugin = definePlugin({
  kind: 'model',
  name: 'm1m2',
  termNames: () => M2_TERMS,
  provides: ['latent', 'classify', 'class-conditional'],
  description:
    'Kingma et al. 2014 M1+M2: M2 on the z1 features of an M1 (nested m1 block: reused by config hash or trained first; or a finished m1_run), sampled from q(z1|x) per batch, Gaussian p(z1|y,z2)',
  options: m1m2Options,
  weights: standardWeights('c1', 'c2', 'alpha'),
  check: checkM1Given,
  create: m1m2,
});
