/**
 * The contracts between elbo and its plugins, in one place: what each kind of plugin
 * makes (Model, Prior, Network, DataSet, Evaluator, Tracker, Optimizer, Schedule), what
 * its `create` receives, and the records they exchange. These modules import only
 * TensorFlow.js types, each other and type-only pieces of src/runtime: every other folder
 * builds on them, and .dependency-cruiser.cjs keeps it so.
 */
export * from './options';
export * from './progress';
export * from './network';
export * from './prior';
export * from './likelihood';
export * from './dataset';
export * from './model';
export * from './run';
export * from './config';
export * from './evaluator';
export * from './tracker';
export * from './optimizer';
export * from './schedule';
export * from './plugin';
