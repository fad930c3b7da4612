import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfjs from '@tensorflow/tfjs';
import { createRegistry } from '../registry/builtins';
import { loadFinishedRun, openFinishedRun } from '../models/load-run';
import type { ExportableModel } from '../models/model';
import type { ExportedPrior } from '../priors/prior';
import { selectBackend } from '../runtime/backend';
import { elboRoot, elboVersion } from '../runtime/fingerprint';
import { Rng } from '../runtime/rng';
import type { RunRecord } from '../track/run-store';
import { UserError } from '../errors';

/**
 * `elbo export RUN --format tfjs`: a finished run's encoder and decoder as TensorFlow.js
 * Layers models (model.json + weights.bin each, what tf.loadLayersModel reads), test images
 * of its data set, a model card, and a static page that samples, reconstructs and
 * interpolates in the browser:
 *
 *   OUT/encoder/   x [D] → the posterior mean [K] (Model.encodeMean)
 *   OUT/decoder/   z [K] → data [D] (Model.decode: the Bernoulli mean, or the output itself)
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
  run: Pick<RunRecord, 'run_id' | 'experiment' | 'seed' | 'config_sha256' | 'epochs_completed' | 'evaluated_on' | 'tags' | 'note'> & { backend: string };
  config: unknown;
  data: RunRecord['data'] & { shape: number[] };
  metrics: Record<string, number>;
  published: NonNullable<RunRecord['published']>;
  model: { kind: string; latent: number; dim: number; shape: number[]; prior: ExportedPrior; output: ExportableModel['output']; likelihood?: string };
  files: { encoder: string; decoder: string; images: string; config: string };
  images: { count: number; labels: number[] | null };
  /** The exported models against elbo's own forward passes at export time. */
  check: { backend: string; layers_backend: string; rows: number; decode_max_abs_diff: number; reconstruct_max_abs_diff: number };
}

export interface ExportResult {
  dir: string;
  card: ModelCard;
}

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
  if (!parts) {
    throw new UserError(`model '${config.model.kind}' has no encoder x → z and decoder z → x to export (models that have one: vae, m1, iwae, gvae)`, runDir);
  }
  if (!parts.encoder.layers || !parts.decoder.layers) {
    const kinds = [(config.model as any).encoder?.kind, (config.model as any).decoder?.kind].filter(Boolean).join(' and ');
    throw new UserError(`network ${kinds} cannot be written as TensorFlow.js Layers (networks that can: mlp, conv)`, runDir);
  }
  if (!parts.prior.exported) {
    throw new UserError(`prior '${(config.model as any).prior?.kind}' has no exported form (its posterior mean as Layers and p(z) for the page; the gaussian prior has)`, runDir);
  }
  const out = path.resolve(o.out ?? path.join(runDir, 'export', 'tfjs'));

  // the Layers models live on the JavaScript tfjs (the union package); elbo's variables may
  // be on a native backend with its own tfjs-core engine, so their values are copied over,
  // and that other engine computes on cpu (a shared engine stays on elbo's backend)
  const tfl = require('@tensorflow/tfjs') as typeof tfjs;
  if (tfl.engine() !== tf.engine()) await tfl.setBackend('cpu');
  const K = parts.latent;
  const D = data.dim;
  const encoder = buildModel(tfl, 'encoder', D, (x) => parts.prior.exported!.meanLayers(tfl, parts.encoder.layers!(tfl, x), K));
  const decoder = buildModel(tfl, 'decoder', K, (z) => {
    const y = parts.decoder.layers!(tfl, z);
    return parts.output === 'sigmoid' ? (tfl.layers.activation({ activation: 'sigmoid', name: 'mean' }).apply(y) as tfjs.SymbolicTensor) : y;
  });

  const n = Math.min(images, data.test.n);
  const x = data.test.x.slice(0, n * D);
  const check = compare(tf, tfl, model, encoder, decoder, x, n, D, K, new Rng(config.seed).fork('export'));
  check.backend = backend.name;

  fs.mkdirSync(out, { recursive: true });
  await save(tfl, encoder, path.join(out, 'encoder'));
  await save(tfl, decoder, path.join(out, 'decoder'));
  encoder.dispose();
  decoder.dispose();
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
      prior: parts.prior.exported.prior,
      output: parts.output,
      ...((config.model as any).likelihood ? { likelihood: (config.model as any).likelihood } : {}),
    },
    files: { encoder: 'encoder/model.json', decoder: 'decoder/model.json', images: 'images.bin', config: 'config.yaml' },
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

/**
 * The Layers models against elbo's model on n prior draws (decode) and the n test images
 * (reconstruct); a difference beyond float tolerance is a bug in a network's `layers`.
 */
function compare(tf: typeof tfc, tfl: typeof tfjs, model: import('../models/model').Model, encoder: tfjs.LayersModel, decoder: tfjs.LayersModel, x: Float32Array, n: number, D: number, K: number, rng: Rng): ModelCard['check'] {
  const z = model.sampleLatent(n, rng);
  const zValues = z.dataSync() as Float32Array;
  const xt = tf.tensor2d(x, [n, D]);
  const ownDecode = model.decode(z).dataSync() as Float32Array;
  const ownRecon = model.reconstruct(xt).dataSync() as Float32Array;
  tf.dispose([z, xt]);
  const run = (m: tfjs.LayersModel, values: Float32Array, dim: number) =>
    tfl.tidy(() => (m.predict(tfl.tensor2d(values, [n, dim])) as tfjs.Tensor).dataSync() as Float32Array);
  const decoded = run(decoder, zValues, K);
  const reconstructed = run(decoder, run(encoder, x, D), K);
  const check = { backend: '', layers_backend: tfl.getBackend(), rows: n, decode_max_abs_diff: maxAbsDiff(ownDecode, decoded), reconstruct_max_abs_diff: maxAbsDiff(ownRecon, reconstructed) };
  const scale = 1 + Math.max(maxAbs(ownDecode), maxAbs(ownRecon));
  if (!(Math.max(check.decode_max_abs_diff, check.reconstruct_max_abs_diff) <= 1e-4 * scale)) {
    throw new Error(`the exported models differ from elbo's own (decode max |Δ| ${check.decode_max_abs_diff}, reconstruct ${check.reconstruct_max_abs_diff}): a network's layers() does not match its apply()`);
  }
  return check;
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
