import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import type { Registry } from '../registry/registry';
import type { DataSet } from '../data/dataset';
import type { Model } from './model';
import type { ExperimentConfig } from '../config/types';
import { loadConfig } from '../config/load';
import { loadCheckpoint } from '../train/checkpoint';
import { RunStore } from '../track/run-store';
import { Rng } from '../runtime/rng';
import { UserError } from '../errors';

/**
 * The trained model of a finished run, rebuilt from its resolved config and last
 * checkpoint, on `data` (which must have the shapes the run was trained on). Used to
 * stack models (M1+M2) and to compare against another run (G-VAE vs VAE grids).
 */
export function loadRunModel(runDir: string, tf: typeof tfc, registry: Registry, data: DataSet, where: string): { model: Model; config: ExperimentConfig } {
  const dir = path.resolve(runDir);
  if (!fs.existsSync(path.join(dir, 'run.json'))) throw new UserError(`not a run directory (no run.json): ${dir}`, where);
  const store = RunStore.open(dir);
  const record = store.readRecord();
  if (record.status !== 'FINISHED') {
    throw new UserError(`run ${record.run_id} is ${record.status}, not FINISHED; finish it first (elbo run --resume ${dir})`, where);
  }
  const { config } = loadConfig(store.file('config.yaml'), [], registry, { baseDir: record.config_dir });
  if (record.data.sha256 && record.data.sha256 !== data.sha256) {
    throw new UserError(`run ${record.run_id} was trained on other data (${record.data.name}, sha256 ${record.data.sha256.slice(0, 12)}…)`, where);
  }
  const model = registry.create<Model>('model', config.model, { tf, registry, rng: new Rng(config.seed).fork('init'), baseDir: record.config_dir, data });
  const last = store.checkpoints().at(-1);
  if (!last) throw new UserError(`run ${record.run_id} has no checkpoint`, where);
  const vars = new Map<string, tfc.Variable>();
  for (const [k, v] of model.params) vars.set(`model/${k}`, v);
  loadCheckpoint(tf, last.dir, vars);
  return { model, config };
}
