import type * as tfc from '@tensorflow/tfjs-core';
import { OptionalKind, Type, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';
import type { Rng } from '../runtime/rng';
import type { DataSet } from '../data/dataset';
import type { Network, NetworkShape, Phase } from '../nn/network';
import type { Prior } from '../priors/prior';
import type { Model } from '../models/model';
import type { Evaluator } from '../eval/evaluator';
import type { Tracker } from '../track/tracker';
import type { Optimizer } from '../train/optimizer';
import type { Schedule } from '../schedules/schedule';

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
export type CapabilitiesOf<Options> = CapabilitiesMethod<Options>['bivarianceHack'];

/** A JSON Schema fragment (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;

/**
 * The context every plugin's `create` receives besides its options; each kind adds what
 * its plugins need (KindContexts). Nothing else reaches a plugin: a field a plugin needs
 * is added to its kind's context here, not read from an untyped bag.
 */
export interface PluginContext {
  tf: typeof tfc;
  /** Registry, to create nested plugins (e.g. a model creates its prior and networks). */
  registry: import('./registry').Registry;
  /** A stream forked for this plugin from the run seed: every random draw comes from it. */
  rng: Rng;
  /** Directory of the config file (for resolving relative data paths). */
  baseDir: string;
}

/** What a model's `create` receives: the data set it trains on, and the run store. */
export interface ModelContext extends PluginContext {
  data: DataSet;
  /**
   * The model's training/evaluation switch (nn/network.ts Phase), made by whoever builds
   * the model (buildRun: `{ training: false }`, which the training step flips around its
   * forward pass). A model hands it on to its networks (spreading its context does).
   * Absent: its networks stay in evaluation.
   */
  phase?: Phase;
  /**
   * Given when `elbo run` creates the model: the run store, and `elbo run` itself, for
   * models built on another run that may have to be trained first (m1m2's nested M1).
   */
  runs?: NestedRuns;
}

/** What a prior's `create` receives: the latent size, what the encoder reads, and the encoder. */
export interface PriorContext extends PluginContext {
  /** Latent size K. */
  latent: number;
  /** The input dimension of the model's encoder (data, or data and one-hot class for M2), and its shape when an image. */
  inDim: number;
  inShape?: number[];
  /**
   * The model's encoder q(z|·), once the model has built it (the prior is created first:
   * the encoder's output size depends on paramsPerLatent). Call it when computing, not in
   * `create`. Absent where a prior is made without a model.
   */
  encoder?(): Network;
}

/** What a network's `create` receives: its input and output sizes. */
export interface NetworkContext extends PluginContext {
  shape: NetworkShape;
  /**
   * The training/evaluation switch of the model the network belongs to: read
   * `phase.training` when computing (not in `create`) for layers that behave differently
   * while training (batch normalisation). Absent: always evaluation.
   */
  phase?: Phase;
}

/** What an optimizer's `create` receives: the parameters it updates, by name. */
export interface OptimizerContext extends PluginContext {
  params: Map<string, tfc.Variable>;
}

/** What a tracker's `create` receives: where the run lives. */
export interface TrackerContext extends PluginContext {
  experiment: string;
  /** --runs-dir: the run store's root (overrides the local tracker's dir). */
  runsDir?: string;
  /** --resume: the run directory being continued. */
  resumeDir?: string;
  /** The run's directory (trackers other than the local store). */
  runDir?: string;
  /** --tracking-uri. */
  trackingUri?: string;
  /** A warning line on stderr (trackers never fail a run). */
  warn?(message: string): void;
}

/** The context of each kind's `create`. */
export interface KindContexts {
  dataset: PluginContext;
  network: NetworkContext;
  prior: PriorContext;
  model: ModelContext;
  evaluator: PluginContext;
  tracker: TrackerContext;
  optimizer: OptimizerContext;
  schedule: PluginContext;
}

/** What each kind's `create` returns (a data set or a model may take a while: a promise). */
export interface KindInstances {
  dataset: DataSet | Promise<DataSet>;
  network: Network;
  prior: Prior;
  model: Model | Promise<Model>;
  evaluator: Evaluator;
  tracker: Tracker;
  optimizer: Optimizer;
  schedule: Schedule;
}

/** Plugin options as the config gives them (validated and defaulted): `kind` and the plugin's own. */
export interface PluginOptions {
  kind: string;
  [key: string]: unknown;
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

/** The options schema of a plugin: a JSON Schema `properties` map and the required names. */
export interface OptionsSchema {
  properties: Record<string, JsonSchema>;
  required?: string[];
}

/** `provides` as a function of the options (written as a method so options narrow per plugin). */
interface CapabilitiesMethod<Options> {
  bivarianceHack(options: Options, info: { registry: import('./registry').Registry }): { provides: ModelCapability[]; why?: Partial<Record<ModelCapability, string>> };
}

/**
 * What every plugin, built in or third party, exports. `schema` describes the plugin's
 * own options (a JSON Schema `properties` map plus optional `required`); `kind: NAME`
 * is added by the registry. Nested slots refer to other kinds with `slot('prior')` etc.
 * Built-in plugins are written with `definePlugin`, which derives `Options` from the
 * schema; third-party plugins may be plain JavaScript objects of this shape.
 */
export interface Plugin<K extends PluginKind = PluginKind, Options extends PluginOptions = PluginOptions, Instance extends KindInstances[K] = KindInstances[K]> {
  kind: K;
  name: string;
  /** One line for `elbo plugins`. */
  description: string;
  schema: OptionsSchema;
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
   * Model plugins: the loss weights the model's `terms` reads from its `w` argument, by
   * name (config `loss.<name>`; schedules allowed). The loop evaluates each every step,
   * the compiled step feeds each to its graph, evaluators pass 1 for each. Absent: the
   * model reads c1, c2 and alpha.
   */
  weights?: Record<string, WeightDeclaration>;
  /**
   * Model plugins: what their models offer, as a list or, when it depends on the options
   * (a prior without a density), a function of them. When a model plugin declares it, a
   * config whose evaluators `needs` something it lacks is refused when it is validated
   * (before any training); when absent, nothing is checked before the run. Prior plugins:
   * `['density']` when their posterior and prior have densities (logPrior, logPosterior).
   */
  provides?: ModelCapability[] | CapabilitiesMethod<Options>['bivarianceHack'];
  /** Evaluator plugins: what they need of the model (checked against its `provides`). */
  needs?: ModelCapability[];
  create(options: Options, ctx: KindContexts[K]): Instance;
}

/** A plugin of any kind, as the registry holds it. */
export type AnyPlugin = { [K in PluginKind]: Plugin<K> }[PluginKind];

/** The options type a `definePlugin` schema describes: `kind` and each property's static type. */
export type OptionsOf<P extends TProperties> = { kind: string } & Static<TObject<P>>;

/**
 * A built-in plugin, its options type derived from its own schema (TypeBox), so the schema
 * that validates a config and the type `create` sees are one source:
 *
 *   export const gaussianPriorPlugin = definePlugin({
 *     kind: 'prior', name: 'gaussian', description: '...',
 *     options: { logvar_max: Type.Number({ default: 20 }) },
 *     create: (o, ctx) => gaussianPrior(ctx.tf, o),   // o.logvar_max: number
 *   });
 *
 * Options with a default are always present (the config is defaulted before `create`);
 * wrap the others in `Type.Optional`. An option that has neither is required: the config
 * must give it.
 */
export function definePlugin<K extends PluginKind, P extends TProperties, I extends KindInstances[K]>(
  spec: Omit<Plugin<K, OptionsOf<P>, I>, 'schema'> & { options: P },
): Plugin<K, OptionsOf<P>, I> {
  const { options, ...rest } = spec;
  const required = requiredOf(options);
  return { ...rest, schema: { properties: options as Record<string, JsonSchema>, ...(required.length ? { required } : {}) } };
}

/** Options a config must give: neither optional nor defaulted. */
function requiredOf(properties: TProperties): string[] {
  return Object.entries(properties)
    .filter(([, s]) => !(OptionalKind in s) && (s as { default?: unknown }).default === undefined)
    .map(([k]) => k);
}

/** A nested object option, `required` as for plugin options (neither optional nor defaulted). */
export function ObjectOf<P extends TProperties>(properties: P, extra: JsonSchema = {}): TObject<P> {
  const o = Type.Object(properties, extra);
  const required = requiredOf(properties);
  if (required.length) o.required = required;
  else delete (o as { required?: string[] }).required;
  return o;
}

/**
 * `options` with the plugin's top-level defaults filled in where absent: what `create`
 * receives from a validated config, for options that come from elsewhere (a run directory's
 * recorded config, a command-line flag). The registry applies it before every `create`.
 */
export function withOptionDefaults<O extends PluginOptions>(plugin: Plugin<PluginKind, O, never> | { schema: OptionsSchema }, options: PluginOptions | (Partial<O> & { kind: string })): O {
  const out: Record<string, unknown> = { ...options };
  for (const [k, s] of Object.entries(plugin.schema.properties)) {
    const d = (s as { default?: unknown }).default;
    if (out[k] === undefined && d !== undefined) out[k] = structuredClone(d);
  }
  return out as O;
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
  run?(o: { text: string; label: string } | { resume: string }): Promise<import('../run/options').RunResult>;
  /** A progress line on stderr. */
  log?(message: string): void;
}

/** Reference to a plugin slot of another kind inside a plugin schema: its options, `kind` first. */
export function slot(kind: PluginKind, extra: JsonSchema = {}): TUnsafe<PluginOptions> {
  return Type.Unsafe<PluginOptions>({ $ref: `#/definitions/${kind}`, ...extra });
}

/**
 * A number, or a schedule plugin's options evaluated every step (`{kind: linear, ...}`):
 * the shape of a loss weight (`#/definitions/weight`) and of a learning rate, whose
 * numbers are bounded by `number` (a JSON Schema for the number case).
 */
export function numberOrSchedule(number: JsonSchema, extra: JsonSchema = {}): JsonSchema {
  return { ...extra, if: { type: 'object' }, then: { $ref: '#/definitions/schedule' }, else: { type: 'number', ...number } };
}

/** A number or a schedule plugin (e.g. a KL warm-up), as an option: a schedule's options or the number. */
export function weight(defaultValue: number, description: string): TUnsafe<number | PluginOptions> {
  return Type.Unsafe<number | PluginOptions>({ $ref: '#/definitions/weight', default: defaultValue, description });
}

/**
 * One of the given strings, as a JSON Schema `enum` (ajv's one-line "must be one of"
 * messages) typed as their union: `Enum(['bernoulli', 'gaussian'], { default: 'bernoulli' })`.
 */
export function Enum<const T extends readonly (string | number | boolean)[]>(values: T, extra: JsonSchema = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ enum: [...values], ...extra });
}

/** `schema` with other annotations (another default, a description): the same option, so the same type. */
export function Override<S extends TSchema>(schema: S, annotations: { default?: Static<S>; description?: string }): S {
  return { ...schema, ...annotations };
}

/**
 * A number whose bound refers to a sibling option (`{$data: '1/logvar_max'}`, an ajv rule
 * `elbo validate` checks): TypeBox's own number options cannot hold a reference.
 */
export function NumberRelative(extra: JsonSchema): TUnsafe<number> {
  return Type.Unsafe<number>({ type: 'number', ...extra });
}

export { Type };
