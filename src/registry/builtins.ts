import { Registry } from './registry';
import { mnistDataset } from '../data/mnist';
import { idxFilesDataset } from '../data/idx-files';
import { mlpNetwork } from '../nn/mlp';
import { gaussianPriorPlugin } from '../priors/gaussian';
import { vaePlugin } from '../models/vae';
import { elboEvaluator } from '../eval/elbo';
import { iwaeEvaluator } from '../eval/iwae';
import { reconstructionsEvaluator } from '../eval/reconstructions';
import { samplesEvaluator } from '../eval/samples';
import { localTracker } from '../track/local';
import { adamPlugin, sgdPlugin } from '../train/optimizer';
import { linearSchedule } from '../train/schedule';
import type { Plugin } from './types';

/** Every built-in plugin; third-party ones are added by `plugins:` in a config. */
export const BUILTIN_PLUGINS: Plugin[] = [
  mnistDataset,
  idxFilesDataset,
  mlpNetwork,
  gaussianPriorPlugin,
  vaePlugin,
  elboEvaluator,
  iwaeEvaluator,
  reconstructionsEvaluator,
  samplesEvaluator,
  localTracker,
  adamPlugin,
  sgdPlugin,
  linearSchedule,
];

export function createRegistry(): Registry {
  const r = new Registry();
  for (const p of BUILTIN_PLUGINS) r.register(p);
  return r;
}
