/**
 * The vocabulary every contract shares: the kinds of plugin, what a model can offer,
 * plugin options as a config gives them, and the declaration of a loss weight.
 */

/** The kinds of plugin a config can name. Each has one slot type in the config schema. */
export const PLUGIN_KINDS = ['dataset', 'network', 'prior', 'model', 'evaluator', 'tracker', 'optimizer', 'schedule'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/**
 * What a model can do, as far as evaluators care: `latent` (a latent space: encodeMean,
 * decode, reconstruct, sampleLatent), `classify` (class probabilities: classify(x)),
 * `density` (log p(x, z) − log q(z|x) for importance weighting: logImportanceWeights),
 * `class-conditional` (a decoder of z and a class). Priors declare `density` when they
 * have logPrior and logPosterior.
 */
export const MODEL_CAPABILITIES = ['latent', 'classify', 'density', 'class-conditional'] as const;
export type ModelCapability = (typeof MODEL_CAPABILITIES)[number];

/** A JSON Schema fragment (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;

/**
 * The schema keyword that marks a string option as a file or directory path read relative to
 * the config file: `{ type: 'string', 'x-elbo-path': true }`. A relative path that a base config
 * (`extends`) gave is rewritten to be relative to the config that extends it, so every path
 * means what it meant in the file that wrote it.
 */
export const CONFIG_PATH_KEYWORD = 'x-elbo-path';

/** Plugin options as the config gives them (validated and defaulted): `kind` and the plugin's own. */
export interface PluginOptions {
  kind: string;
  [key: string]: unknown;
}

/** The options schema of a plugin: a JSON Schema `properties` map and the required names. */
export interface OptionsSchema {
  properties: Record<string, JsonSchema>;
  required?: string[];
}

/**
 * A loss weight a model reads (`loss.<name>` in a config): a number or a schedule, by name.
 * A weight name means one thing in every model that declares it (`c1` the KL weight, `c2`
 * the reconstruction weight, `alpha` the classification weight), so its default and
 * description are shared: the registry refuses a second declaration that differs.
 */
export interface WeightDeclaration {
  default: number;
  description: string;
  /**
   * 'multiplier' (default): it multiplies a term of the loss (c1, c2, alpha), and the
   * evaluators and validation report the unweighted terms with it at 1. 'parameter': a
   * scheduled hyper-parameter inside a term (a KL capacity, a temperature), which stays at its
   * value there: validation reads it where the epoch's training left it, the test evaluators
   * at the end of its schedule.
   */
  role?: 'multiplier' | 'parameter';
}
