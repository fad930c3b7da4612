import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import { createRegistry } from '../builtins';
import { loadFinishedRun, openFinishedRun } from '../models/load-run';
import { blockLayers } from '../priors/prior';
import { selectBackend } from '../runtime/backend';
import { elboRoot, elboVersion } from '../runtime/fingerprint';
import { Rng } from '../runtime/rng';
import { UserError } from '../errors';
import type { ExportableModel, Model, ExportedPrior, PluginOptions, RunRecord } from '../contracts';

/**
 * `elbo export RUN --format tfjs`: a finished run's encoder and decoder as TensorFlow.js
 * Layers models (model.json + weights.bin each, what tf.loadLayersModel reads), test images
 * of its data set, a model card, and a static page that samples, reconstructs and
 * interpolates in the browser:
 *
 *   OUT/encoder/   x [D] → the posterior mean [K] (Model.encodeMean)
 *   OUT/decoder/   z [K] → data [D] (Model.decode: the Bernoulli mean, or the output itself)
 *   OUT/classifier/ x [D] → q(y|x) [C], for class-conditional models (M2), whose encoder
 *                  reads [x, onehot(y)] and decoder [z, onehot(y)]
 *   OUT/images.bin the first `images` test rows, float32 [n, D], row-major
 *   OUT/card.json  run, config, data hash, metrics, published numbers, what was checked
 *   OUT/config.yaml, index.html, elbo-page.js, tf.min.js (the page and the tfjs it loads)
 *
 * Before anything is written, the Layers models are run on prior draws and on the test
 * images and compared with elbo's own decode and reconstruct; the largest differences are
 * in the card.
 */
export interface ExportOptions {
  /** Output directory (default RUN_DIR/export/tfjs). */
  out?: string;
  /** Test images shipped with the export (for reconstructions in the page). */
  images?: number;
  /** Backend for elbo's side of the check (default auto). */
  backend?: string;
}

/** card.json. */
export interface ModelCard {
  format: 'elbo-tfjs';
  version: 1;
  elbo_version: string;
  tfjs_version: string;
  exported: string;
  run: Pick<RunRecord, 'run_id' | 'experiment' | 'seed' | 'config_sha256' | 'epochs_completed' | 'evaluated_on' | 'tags' | 'note'> & {
    backend: string;
  };
  config: unknown;
  data: RunRecord['data'] & { shape: number[] };
  metrics: Record<string, number>;
  published: NonNullable<RunRecord['published']>;
  /** classes: class-conditional (M2): the encoder reads [x, onehot(y)], the decoder [z, onehot(y)], and `classifier` gives q(y|x). */
  model: {
    kind: string;
    latent: number;
    dim: number;
    shape: number[];
    prior: ExportedPrior;
    output: ExportableModel['output'];
    classes?: number;
    likelihood?: string;
  };
  files: { encoder: string; decoder: string; classifier?: string; images: string; config: string };
  images: { count: number; labels: number[] | null };
  /** The exported models against elbo's own forward passes at export time. */
  check: { backend: string; layers_backend: string; rows: number; decode_max_abs_diff: number; reconstruct_max_abs_diff: number };
}

export interface ExportResult {
  dir: string;
  card: ModelCard;
}

/** The model options export names in its messages and card: its networks, its prior, its likelihood (where the model has them). */
type ModelSlots = PluginOptions & {
  encoder?: PluginOptions;
  decoder?: PluginOptions;
  classifier?: PluginOptions;
  prior?: PluginOptions;
  likelihood?: string;
};

const WHERE = 'RUN';
/** The page, copied into every export (web/ in the package). */
const PAGE_FILES = ['index.html', 'elbo-page.js'];

export async function exportTfjs(runSpec: string, o: ExportOptions = {}): Promise<ExportResult> {
  const images = o.images ?? 16;
  if (!Number.isInteger(images) || images < 1) throw new UserError(`must be a whole number ≥ 1 (got ${o.images})`, '--images');
  openFinishedRun(runSpec, process.cwd(), WHERE); // a bad path fails before TensorFlow.js loads
  const backend = await selectBackend(o.backend ?? 'auto');
  const { getTf } = await import('../runtime/tf');
  const tf = getTf();
  const registry = createRegistry();
  const { model, config, data, runDir, record } = await loadFinishedRun(runSpec, tf, registry, WHERE);
  const parts = model.exportable;
  const slots = config.model as ModelSlots;
  if (!parts) {
    throw new UserError(
      `model '${config.model.kind}' has no encoder x → z and decoder z → x to export (models that have them: vae, m1, iwae, gvae, m2)`,
      runDir,
    );
  }
  const classifier = parts.classes?.classifier;
  if (!parts.encoder.layers || !parts.decoder.layers || (classifier && !classifier.layers)) {
    const kinds = [
      ...new Set([slots.encoder?.kind, slots.decoder?.kind, classifier ? slots.classifier?.kind : undefined].filter(Boolean)),
    ].join(', ');
    throw new UserError(`network ${kinds} cannot be written as TensorFlow.js Layers (networks that can: mlp, conv)`, runDir);
  }
  const priorExport = parts.prior.exported;
  if (!priorExport || typeof priorExport === 'string') {
    const why = priorExport ?? 'it gives no posterior mean as Layers and no p(z) for the page';
    throw new UserError(`prior '${slots.prior?.kind}' cannot be exported: ${why}`, runDir);
  }
  const out = path.resolve(o.out ?? path.join(runDir, 'export', 'tfjs'));

  // the Layers models live on the JavaScript tfjs (the union package); elbo's variables may
  // be on a native backend with its own tfjs-core engine, so their values are copied over,
  // and that other engine computes on cpu (a shared engine stays on elbo's backend)
  const tfl = require('@tensorflow/tfjs') as typeof tfjs;
  if (tfl.engine() !== tf.engine()) await tfl.setBackend('cpu');
  const K = parts.latent;
  const D = data.dim;
  // class-conditional: the encoder reads [x, onehot(y)], the decoder [z, onehot(y)]
  const C = parts.classes?.count ?? 0;
  const models: Record<string, tfjs.LayersModel> = {
    encoder: buildModel(tfl, 'encoder', D + C, (x) => priorExport.meanLayers(tfl, parts.encoder.layers!(tfl, x), K)),
    decoder: buildModel(tfl, 'decoder', K + C, (z) => outputLayers(tfl, parts.output, parts.decoder.layers!(tfl, z), D)),
  };
  if (classifier)
    models.classifier = buildModel(
      tfl,
      'classifier',
      D,
      (x) => tfl.layers.activation({ activation: 'softmax', name: 'q_y' }).apply(classifier.layers!(tfl, x)) as tfjs.SymbolicTensor,
    );

  const n = Math.min(images, data.test.n);
  const x = data.test.x.slice(0, n * D);
  const check = compare(tf, tfl, model, models, x, n, D, K, C, new Rng(config.seed).fork('export'));
  check.backend = backend.name;

  fs.mkdirSync(out, { recursive: true });
  for (const [name, m] of Object.entries(models)) {
    await save(tfl, m, path.join(out, name));
    m.dispose();
  }
  fs.writeFileSync(path.join(out, 'images.bin'), Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  fs.copyFileSync(path.join(runDir, 'config.yaml'), path.join(out, 'config.yaml'));
  for (const f of PAGE_FILES) fs.copyFileSync(path.join(elboRoot(), 'web', f), path.join(out, f));
  const tfjsDir = path.dirname(require.resolve('@tensorflow/tfjs/package.json'));
  fs.copyFileSync(path.join(tfjsDir, 'dist', 'tf.min.js'), path.join(out, 'tf.min.js'));

  const card: ModelCard = {
    format: 'elbo-tfjs',
    version: 1,
    elbo_version: elboVersion(),
    tfjs_version: tfl.version.tfjs,
    exported: new Date().toISOString(),
    run: {
      run_id: record.run_id,
      experiment: record.experiment,
      seed: record.seed,
      config_sha256: record.config_sha256,
      epochs_completed: record.epochs_completed,
      backend: record.backend.name,
      ...(record.evaluated_on ? { evaluated_on: record.evaluated_on } : {}),
      ...(record.tags ? { tags: record.tags } : {}),
      ...(record.note ? { note: record.note } : {}),
    },
    config,
    data: { ...record.data, shape: data.shape },
    metrics: record.metrics,
    published: record.published ?? [],
    model: {
      kind: config.model.kind,
      latent: K,
      dim: D,
      shape: data.shape,
      prior: priorExport.prior,
      output: parts.output,
      ...(C ? { classes: C } : {}),
      ...(slots.likelihood ? { likelihood: slots.likelihood } : {}),
    },
    files: {
      encoder: 'encoder/model.json',
      decoder: 'decoder/model.json',
      ...(classifier ? { classifier: 'classifier/model.json' } : {}),
      images: 'images.bin',
      config: 'config.yaml',
    },
    images: { count: n, labels: data.test.y ? Array.from(data.test.y.subarray(0, n)) : null },
    check,
  };
  fs.writeFileSync(path.join(out, 'card.json'), JSON.stringify(card, null, 1) + '\n');
  return { dir: out, card };
}

/** A Layers model from one input of `dim` numbers per example. */
function buildModel(tfl: typeof tfjs, name: string, dim: number, body: (x: tfjs.SymbolicTensor) => tfjs.SymbolicTensor): tfjs.LayersModel {
  const input = tfl.input({ shape: [dim], name: `${name}_input` });
  return tfl.model({ inputs: input, outputs: body(input), name });
}

/** Decoder output → data space, as Layers (ExportableModel.output). */
function outputLayers(tfl: typeof tfjs, output: ExportableModel['output'], y: tfjs.SymbolicTensor, D: number): tfjs.SymbolicTensor {
  if (output === 'sigmoid') return tfl.layers.activation({ activation: 'sigmoid', name: 'mean' }).apply(y) as tfjs.SymbolicTensor;
  if (output === 'gaussian-mean') return blockLayers(tfl, y, 2, D, 0, 'mean');
  return y;
}

/** Rows of `values` ([n, dim]) followed by onehot(ys) ([n, C]); the rows themselves when C = 0. */
export function withClasses(values: Float32Array, n: number, ys: ArrayLike<number>, C: number): Float32Array {
  if (!C) return values;
  const dim = values.length / n;
  const out = new Float32Array(n * (dim + C));
  for (let i = 0; i < n; i++) {
    out.set(values.subarray(i * dim, (i + 1) * dim), i * (dim + C));
    out[i * (dim + C) + dim + ys[i]] = 1;
  }
  return out;
}

/**
 * The Layers models against elbo's model on n prior draws (decode; class i mod C for row i,
 * as Model.decode) and the n test images (reconstruct; with the class q(y|x) finds most
 * likely); a difference beyond float tolerance is a bug in a network's `layers`.
 */
function compare(
  tf: typeof tfc,
  tfl: typeof tfjs,
  model: Model,
  models: Record<string, tfjs.LayersModel>,
  x: Float32Array,
  n: number,
  D: number,
  K: number,
  C: number,
  rng: Rng,
): ModelCard['check'] {
  const z = model.sampleLatent(n, rng);
  const zValues = z.dataSync() as Float32Array;
  const xt = tf.tensor2d(x, [n, D]);
  const ownDecode = model.decode(z).dataSync() as Float32Array;
  const ownRecon = model.reconstruct(xt).dataSync() as Float32Array;
  tf.dispose([z, xt]);
  const run = (m: tfjs.LayersModel, values: Float32Array) =>
    tfl.tidy(() => (m.predict(tfl.tensor2d(values, [n, values.length / n])) as tfjs.Tensor).dataSync() as Float32Array);
  const cycle = Int32Array.from({ length: n }, (_, i) => (C ? i % C : 0));
  const decoded = run(models.decoder, withClasses(zValues, n, cycle, C));
  let ys = cycle;
  if (C) {
    const q = run(models.classifier, x);
    ys = Int32Array.from({ length: n }, (_, i) => argmax(q.subarray(i * C, (i + 1) * C)));
  }
  const means = run(models.encoder, withClasses(x, n, ys, C));
  const reconstructed = run(models.decoder, withClasses(means, n, ys, C));
  const check = {
    backend: '',
    layers_backend: tfl.getBackend(),
    rows: n,
    decode_max_abs_diff: maxAbsDiff(ownDecode, decoded),
    reconstruct_max_abs_diff: maxAbsDiff(ownRecon, reconstructed),
  };
  const scale = 1 + Math.max(maxAbs(ownDecode), maxAbs(ownRecon));
  if (!(Math.max(check.decode_max_abs_diff, check.reconstruct_max_abs_diff) <= 1e-4 * scale)) {
    throw new Error(
      `the exported models differ from elbo's own (decode max |Δ| ${check.decode_max_abs_diff}, reconstruct ${check.reconstruct_max_abs_diff}): a network's layers() does not match its apply()`,
    );
  }
  return check;
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** model.json (topology and weights manifest, as tf.loadLayersModel reads it over HTTP) and weights.bin. */
async function save(tfl: typeof tfjs, model: tfjs.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tfl.io.withSaveHandler(async (a) => {
      const weights = tfl.io.CompositeArrayBuffer.join(a.weightData!);
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(weights));
      const json = {
        format: a.format,
        generatedBy: a.generatedBy,
        convertedBy: a.convertedBy ?? null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}
