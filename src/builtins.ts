import { Registry } from './registry/registry';
import { mnistDataset } from './data/mnist';
import { idxFilesDataset } from './data/idx-files';
import { hyperspectralDataset } from './data/hyperspectral';
import { fashionMnistDataset } from './data/fashion-mnist';
import { cifar10Dataset } from './data/cifar10';
import { celebaDataset } from './data/celeba';
import { npyDataset } from './data/npy';
import { csvDataset } from './data/csv';
import { imageFolderDataset } from './data/image-folder';
import { mlpNetwork } from './nn/mlp';
import { convNetwork } from './nn/conv';
import { gaussianPriorPlugin } from './priors/gaussian';
import { spikeSlabPriorPlugin } from './priors/spike-slab';
import { vampPriorPlugin } from './priors/vamp';
import { latentParts, vaePlugin } from './models/vae';
import { iwaeModelPlugin } from './models/iwae';
import { m1Plugin } from './models/m1';
import { m2Plugin } from './models/m2';
import { m1m2Plugin } from './models/m1m2';
import { adgmPlugin, sdgmPlugin } from './models/adgm';
import { gvaePlugin } from './models/gvae';
import { classifierPlugin } from './models/classifier';
import { elboEvaluator } from './eval/elbo';
import { iwaeEvaluator } from './eval/iwae';
import { reconstructionsEvaluator } from './eval/reconstructions';
import { samplesEvaluator } from './eval/samples';
import { accuracyEvaluator } from './eval/accuracy';
import { classSamplesEvaluator } from './eval/class-samples';
import { latentPcaEvaluator } from './eval/latent-pca';
import { latentClassifierEvaluator } from './eval/latent-classifier';
import { sparsityEvaluator } from './eval/sparsity';
import { augmentEvaluator } from './eval/augment';
import { localTracker } from './track/local';
import { mlflowTracker } from './track/mlflow';
import { adamPlugin, sgdPlugin } from './train/optimizer';
import { linearSchedule, cosineSchedule, piecewiseSchedule } from './schedules/schedule';
import type { AnyPlugin } from './contracts';

/** Every built-in plugin; third-party ones are added by `plugins:` in a config. */
export const BUILTIN_PLUGINS: AnyPlugin[] = [
  mnistDataset,
  idxFilesDataset,
  hyperspectralDataset,
  fashionMnistDataset,
  cifar10Dataset,
  celebaDataset,
  npyDataset,
  imageFolderDataset,
  csvDataset,
  mlpNetwork,
  convNetwork,
  gaussianPriorPlugin,
  spikeSlabPriorPlugin,
  vampPriorPlugin,
  vaePlugin,
  iwaeModelPlugin,
  m1Plugin,
  m2Plugin,
  m1m2Plugin,
  adgmPlugin,
  sdgmPlugin,
  gvaePlugin,
  classifierPlugin,
  elboEvaluator,
  iwaeEvaluator,
  reconstructionsEvaluator,
  samplesEvaluator,
  accuracyEvaluator,
  classSamplesEvaluator,
  latentPcaEvaluator,
  latentClassifierEvaluator,
  sparsityEvaluator,
  augmentEvaluator,
  localTracker,
  mlflowTracker,
  adamPlugin,
  sgdPlugin,
  linearSchedule,
  cosineSchedule,
  piecewiseSchedule,
];

/** A registry of the built-in plugins, whose model contexts build parts with models/vae.ts's latentParts. */
export function createRegistry(): Registry {
  const r = new Registry({ latentParts });
  for (const p of BUILTIN_PLUGINS) r.register(p);
  return r;
}
