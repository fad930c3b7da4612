import { Registry } from './registry/registry';
import { mnistDatasetPlugin } from './data/mnist';
import { idxDatasetPlugin } from './data/idx-files';
import { hyperspectralDatasetPlugin } from './data/hyperspectral';
import { fashionMnistDatasetPlugin } from './data/fashion-mnist';
import { cifar10DatasetPlugin } from './data/cifar10';
import { celebaDatasetPlugin } from './data/celeba';
import { npyDatasetPlugin } from './data/npy';
import { csvDatasetPlugin } from './data/csv';
import { imageFolderDatasetPlugin } from './data/image-folder';
import { mlpNetworkPlugin } from './nn/mlp';
import { convNetworkPlugin } from './nn/conv';
import { gaussianPriorPlugin } from './priors/gaussian';
import { spikeSlabPriorPlugin } from './priors/spike-slab';
import { vampPriorPlugin } from './priors/vamp';
import { latentParts, vaeModelPlugin } from './models/vae';
import { iwaeModelPlugin } from './models/iwae';
import { m1ModelPlugin } from './models/m1';
import { m2ModelPlugin } from './models/m2';
import { m1m2ModelPlugin } from './models/m1m2';
import { adgmModelPlugin, sdgmModelPlugin } from './models/adgm';
import { gvaeModelPlugin } from './models/gvae';
import { classifierModelPlugin } from './models/classifier';
import { elboEvaluatorPlugin } from './eval/elbo';
import { iwaeEvaluatorPlugin } from './eval/iwae';
import { reconstructionsEvaluatorPlugin } from './eval/reconstructions';
import { samplesEvaluatorPlugin } from './eval/samples';
import { accuracyEvaluatorPlugin } from './eval/accuracy';
import { classSamplesEvaluatorPlugin } from './eval/class-samples';
import { latentPcaEvaluatorPlugin } from './eval/latent-pca';
import { latentClassifierEvaluatorPlugin } from './eval/latent-classifier';
import { sparsityEvaluatorPlugin } from './eval/sparsity';
import { augmentEvaluatorPlugin } from './eval/augment';
import { localTrackerPlugin } from './track/local';
import { mlflowTrackerPlugin } from './mlflow/tracker';
import { adamOptimizerPlugin, sgdOptimizerPlugin } from './train/optimizer';
import { linearSchedulePlugin, cosineSchedulePlugin, piecewiseSchedulePlugin } from './schedules/schedule';
import type { AnyPlugin } from './contracts';

/** Every built-in plugin; third-party ones are added by `plugins:` in a config. */
export const BUILTIN_PLUGINS: AnyPlugin[] = [
  mnistDatasetPlugin,
  idxDatasetPlugin,
  hyperspectralDatasetPlugin,
  fashionMnistDatasetPlugin,
  cifar10DatasetPlugin,
  celebaDatasetPlugin,
  npyDatasetPlugin,
  imageFolderDatasetPlugin,
  csvDatasetPlugin,
  mlpNetworkPlugin,
  convNetworkPlugin,
  gaussianPriorPlugin,
  spikeSlabPriorPlugin,
  vampPriorPlugin,
  vaeModelPlugin,
  iwaeModelPlugin,
  m1ModelPlugin,
  m2ModelPlugin,
  m1m2ModelPlugin,
  adgmModelPlugin,
  sdgmModelPlugin,
  gvaeModelPlugin,
  classifierModelPlugin,
  elboEvaluatorPlugin,
  iwaeEvaluatorPlugin,
  reconstructionsEvaluatorPlugin,
  samplesEvaluatorPlugin,
  accuracyEvaluatorPlugin,
  classSamplesEvaluatorPlugin,
  latentPcaEvaluatorPlugin,
  latentClassifierEvaluatorPlugin,
  sparsityEvaluatorPlugin,
  augmentEvaluatorPlugin,
  localTrackerPlugin,
  mlflowTrackerPlugin,
  adamOptimizerPlugin,
  sgdOptimizerPlugin,
  linearSchedulePlugin,
  cosineSchedulePlugin,
  piecewiseSchedulePlugin,
];

/** A registry of the built-in plugins, whose model contexts build parts with models/vae.ts's latentParts. */
export function createRegistry(): Registry {
  const r = new Registry({ latentParts });
  for (const p of BUILTIN_PLUGINS) r.register(p);
  return r;
}
