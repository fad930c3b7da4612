import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { getTf } from '../src/runtime/tf';
import { createRegistry } from '../src/builtins';
import { loadFinishedRun } from '../src/models/load-run';
import type { ClassConditionalModel, PluginOptions } from '../src/contracts';
import { modelVariables } from '../src/models/model';
import { elbo, lastJson, smallConfig, type RunOutput } from './helpers';
import type { ModelCard } from '../src/export/tfjs';

/** `elbo export --json`'s line: the model card (its config the run's, with the model's networks) and the directory written. */
export type PrintedCard = Omit<ModelCard, 'config'> & {
  dir: string;
  config: { model: { encoder: PluginOptions; decoder: PluginOptions } };
};

/** `elbo run CONFIG ARGS` then `elbo export RUN --format tfjs`, as a user runs them. */
export function trainAndExport(config: string, args: string[] = []): { runDir: string; exportDir: string; card: PrintedCard } {
  const runsDir = path.join(path.dirname(config), 'runs');
  const run = elbo(['run', config, '--runs-dir', runsDir, '--json', '-q', ...args]);
  assert.equal(run.status, 0, run.stderr);
  const runDir = lastJson<RunOutput>(run.stdout).runDir;
  const exportDir = path.join(path.dirname(config), 'export');
  const ex = elbo(['export', runDir, '--format', 'tfjs', '--out', exportDir, '--json']);
  assert.equal(ex.status, 0, ex.stderr);
  const card = lastJson<PrintedCard>(ex.stdout);
  assert.equal(card.dir, exportDir);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(exportDir, 'card.json'), 'utf8')).run, card.run);
  return { runDir, exportDir, card };
}

/**
 * trainAndExport for a conv VAE with residual blocks (channels 4, 6; kernel 3; Gaussian
 * likelihood), one epoch on the cpu backend (conv layers train on cpu and tensorflow, not
 * wasm); `norm: batch` in both networks when asked.
 */
export function trainAndExportConv(dir: string, norm?: 'batch'): ReturnType<typeof trainAndExport> {
  const n = norm ? `, norm: ${norm}` : '';
  const net = (activation: string) => `{kind: conv, channels: [4, 6], kernel: 3, residual: true, activation: ${activation}${n}}`;
  const sets = [
    `model.encoder=${net('leakyrelu')}`,
    `model.decoder=${net('elu')}`,
    'model.likelihood=gaussian',
    'train.epochs=1',
    'eval=[{kind: elbo}]',
  ];
  return trainAndExport(smallConfig(dir), [...sets.flatMap((v) => ['--set', v]), '--backend', 'cpu']);
}

/**
 * elbo's own forward passes of the trained run (rebuilt from its config and checkpoint, on
 * the backend selected): decode of z [nz·K] (class-conditional models: with classes `ys`,
 * default row i mod C), encodeMean and reconstruct of x [n·D].
 */
export async function elboOwn(
  runDir: string,
  z: Float32Array,
  nz: number,
  x: Float32Array,
  n: number,
  ys?: number[],
): Promise<{ decode: Float32Array; encode: Float32Array; reconstruct: Float32Array }> {
  const tf = getTf();
  const { model } = await loadFinishedRun(runDir, tf, createRegistry(), 'test');
  const zt = tf.tensor2d(z, [nz, z.length / nz]);
  const xt = tf.tensor2d(x, [n, x.length / n]);
  const decodeClass = (model as Partial<ClassConditionalModel>).decodeClass;
  const out = {
    decode: (ys && decodeClass ? decodeClass(zt, Int32Array.from(ys)) : model.decode(zt)).dataSync() as Float32Array,
    encode: model.encodeMean(xt).dataSync() as Float32Array,
    reconstruct: model.reconstruct(xt).dataSync() as Float32Array,
  };
  tf.dispose([zt, xt]);
  modelVariables(model).forEach((v) => v.dispose());
  return out;
}
