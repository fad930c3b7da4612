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
  [key: string]: unknown;
}

/** Reference to a plugin slot of another kind inside a plugin schema. */
export function slot(kind: PluginKind, extra: JsonSchema = {}): JsonSchema {
  return { $ref: `#/definitions/${kind}`, ...extra };
}

/** A loss weight: a number or a schedule plugin (e.g. a KL warm-up). */
export function weight(defaultValue: number, description: string): JsonSchema {
  return { $ref: '#/definitions/weight', default: defaultValue, description };
}
