/**
 * elbo's public API: run experiments, build registries and configs, and the loss
 * functions themselves (tensors in, per-example terms out) so other code can check them.
 */
export { runExperiment } from './experiment';
export type { RunOptions } from './run/options';
export { PLUGIN_KINDS, LIKELIHOODS, END_OF_TRAINING, CONFIG_PATH_KEYWORD } from './contracts';
export type {
  RunResult,
  Plugin,
  PluginKind,
  PluginOptions,
  PluginRegistry,
  PluginContext,
  ModelContext,
  ModelBuildContext,
  PriorContext,
  NetworkContext,
  OptimizerContext,
  TrackerContext,
  KindContexts,
  KindInstances,
  Capabilities,
  WeightDeclaration,
  Model,
  ClassConditionalModel,
  Batch,
  LossWeights,
  WeightValues,
  LatentParts,
  LatentPartsOptions,
  Prior,
  TrainProgress,
  NoiseShare,
  DataSet,
  Split,
  Network,
  NetworkShape,
  Phase,
  Likelihood,
  LikelihoodName,
  Optimizer,
  Evaluator,
  EvalContext,
  Tracker,
  RunRecord,
  Schedule,
} from './contracts';
export { Registry } from './registry/registry';
export { createRegistry, BUILTIN_PLUGINS } from './builtins';
export { definePlugin, slot, weight, ConfigPath, Enum, ObjectOf, Override, Type, withOptionDefaults } from './registry/define';
export type { OptionsOf } from './registry/define';
export { STANDARD_WEIGHTS, standardWeights } from './registry/weights';
export { latentParts } from './models/vae';
export { importanceTerms } from './models/importance';
export { likelihoodOf } from './losses/likelihood';
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
export { noiseRows } from './priors/prior';
export { collectVariables, evaluationPhase } from './nn/network';
export { batchNorm } from './nn/batchnorm';
export { modelVariables } from './models/model';
export { parseIdx, readIdx, writeIdx } from './data/idx';
export { exportTfjs } from './export/tfjs';
export { evaluateCheckpoint, type CheckpointEvaluation } from './run/evaluate-checkpoint';
export type { ExportOptions, ExportResult, ModelCard } from './export/tfjs';
