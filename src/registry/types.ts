import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';

/** The kinds of plugin a config can name. Each has one slot type in the config schema. */
export const PLUGIN_KINDS = [
  'dataset',
  'network',
  'prior',
  'model',
  'evaluator',
  'tracker',
  'optimizer',
  'schedule',
] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/**
 * What a model can do, as far as evaluators care: `latent` (a latent space: encodeMean,
 * decode, reconstruct, sampleLatent), `classify` (class probabilities: classify(x)),
 * `density` (log p(x, z) − log q(z|x) for importance weighting: logImportanceWeights).
 * Priors declare `density` when they have logPrior and logPosterior.
 */
export const MODEL_CAPABILITIES = ['latent', 'classify', 'density', 'class-conditional'] as const;
export type ModelCapability = (typeof MODEL_CAPABILITIES)[number];

/**
 * What a model plugin offers for given options, and why it lacks what it lacks (e.g. vae
 * has `density` only with a prior that has one and the bernoulli likelihood).
 */
export type CapabilitiesOf<Options = any> = (
  options: Options,
  info: { registry: import('./registry').Registry },
) => { provides: ModelCapability[]; why?: Partial<Record<ModelCapability, string>> };

/** A JSON Schema fragment (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;

/**
 * What every plugin, built in or third party, exports. `schema` describes the plugin's
 * own options (a JSON Schema `properties` map plus optional `required`); `kind: NAME`
 * is added by the registry. Nested slots refer to other kinds with `slot('prior')` etc.
 */
export interface Plugin<Options = any, Instance = any> {
  kind: PluginKind;
  name: string;
  /** One line for `elbo plugins`. */
  description: string;
  schema: { properties: Record<string, JsonSchema>; required?: string[] };
  /** Backends that can train this plugin's graph (absent: all). Shown by `elbo plugins`. */
  backends?: string[];
  /**
   * Evaluator plugins: the names of the metrics `run` may return for these options
   * (without the `test/` prefix; e.g. iwae: `log_likelihood_k<k>`). `modelTerms` are the
   * configured model's loss terms (null when its plugin does not declare them), for
   * evaluators whose metrics are the model's terms. Return null when the names cannot be
   * known before the run. Validation checks a config's `published:` metrics against them;
   * a plugin without `metrics` leaves its names unchecked.
   */
  metrics?(options: Options, info: { modelTerms: string[] | null }): string[] | null;
  /**
   * Model plugins: the names of the loss terms `terms` returns (the training loop logs
   * `train/<name>` and, with a validation split, `val/<name>` for every one but `loss`).
   * Validation checks `train.select.metric` against them.
   */
  terms?(options: Options): string[];
  /**
   * Model plugins: what their models offer, as a list or, when it depends on the options
   * (a prior without a density), a function of them. When a model plugin declares it, a
   * config whose evaluators `needs` something it lacks is refused when it is validated
   * (before any training); when absent, nothing is checked before the run. Prior plugins:
   * `['density']` when their posterior and prior have densities (logPrior, logPosterior).
   */
  provides?: ModelCapability[] | CapabilitiesOf<Options>;
  /** Evaluator plugins: what they need of the model (checked against its `provides`). */
  needs?: ModelCapability[];
  create(options: Options, ctx: PluginContext): Instance;
}

/** What a plugin's `create` receives besides its options. */
export interface PluginContext {
  tf: typeof tfc;
  /** Registry, to create nested plugins (e.g. a model creates its prior and networks). */
  registry: import('./registry').Registry;
  rng: Rng;
  /** Directory of the config file (for resolving relative data paths). */
  baseDir: string;
  /**
   * Models get this when `elbo run` creates them: the run store, and `elbo run` itself, for
   * models built on another run that may have to be trained first (m1m2's nested M1).
   */
  runs?: NestedRuns;
  [key: string]: unknown;
}

/** The run store a run lives in, and a way to start (or resume) another run in it. */
export interface NestedRuns {
  /** Root of the local run store (runs/<experiment>/<runId>). */
  dir: string;
  /** The resolved config of the run whose model is being created. */
  config: import('../config/types').ExperimentConfig;
  /**
   * Run a config given as YAML text (relative paths resolve against the outer config's
   * directory; `label` says where it came from, e.g. 'model.m1'), or resume a run, with
   * the outer run's backend, run store and trackers: what `elbo run` does. Absent where
   * nothing may be trained (a finished run's model rebuilt for comparison).
   */
  run?(o: { text: string; label: string } | { resume: string }): Promise<import('../experiment').RunResult>;
  /** A progress line on stderr. */
  log?(message: string): void;
}

/** Reference to a plugin slot of another kind inside a plugin schema. */
export function slot(kind: PluginKind, extra: JsonSchema = {}): JsonSchema {
  return { $ref: `#/definitions/${kind}`, ...extra };
}

/** A loss weight: a number or a schedule plugin (e.g. a KL warm-up). */
export function weight(defaultValue: number, description: string): JsonSchema {
  return { $ref: '#/definitions/weight', default: defaultValue, description };
}
