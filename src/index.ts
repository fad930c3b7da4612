/**
 * elbo's public API: run experiments, build registries and configs, and the loss
 * functions themselves (tensors in, per-example terms out) so other code can check them.
 */
export { runExperiment } from './experiment';
export type { RunOptions, RunResult } from './run/options';
export { Registry } from './registry/registry';
export { createRegistry, BUILTIN_PLUGINS } from './builtins';
export { definePlugin, slot, weight, Enum, ObjectOf, Override, Type, withOptionDefaults, PLUGIN_KINDS } from './registry/types';
export type {
  Plugin,
  PluginKind,
  PluginOptions,
  PluginContext,
  ModelContext,
  PriorContext,
  NetworkContext,
  OptimizerContext,
  TrackerContext,
  KindContexts,
  KindInstances,
  OptionsOf,
  WeightDeclaration,
} from './registry/types';
export { STANDARD_WEIGHTS, standardWeights } from './registry/weights';
export { latentParts } from './models/vae';
export { importanceTerms } from './models/importance';
export { likelihoodOf, LIKELIHOODS } from './losses/likelihood';
export type { Likelihood, LikelihoodName } from './losses/likelihood';
export { loadConfig, parseOverride } from './config/load';
export { buildSchema } from './config/schema';
export { UserError } from './errors';
export { Rng } from './runtime/rng';
export { selectBackend } from './runtime/backend';
export { getTf } from './runtime/tf';
export { gaussianKl, gaussianLogDensity } from './losses/gaussian-kl';
export { bernoulliNll, bernoulliLogNormalizer, squaredError, logSumExp } from './losses/likelihood';
export { isdaClassLoss, softmaxCrossEntropy } from './losses/isda';
export { categoricalNll, categoricalEntropy, m2Labelled, m2Unlabelled } from './losses/m2';
export { evalAlphaExpression } from './models/m2';
export { spikeSlabKl } from './losses/spike-slab-kl';
export type { Model, Batch, LossWeights } from './models/model';
export type { Prior, TrainProgress, NoiseShare } from './priors/prior';
export { noiseRows } from './priors/prior';
export type { DataSet, Split } from './data/dataset';
export type { Network, NetworkShape, Phase } from './nn/network';
export { collectVariables, evaluationPhase } from './nn/network';
export { batchNorm } from './nn/batchnorm';
export { modelVariables } from './models/model';
export type { Optimizer } from './train/optimizer';
export type { Evaluator, EvalContext } from './eval/evaluator';
export type { Tracker } from './track/tracker';
export type { Schedule } from './schedules/schedule';
export { parseIdx, readIdx, writeIdx } from './data/idx';
export { exportTfjs } from './export/tfjs';
export type { ExportOptions, ExportResult, ModelCard } from './export/tfjs';
