import type * as tfc from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/rng';
import type { ModelCapability, OptionsSchema, PluginKind, PluginOptions, WeightDeclaration } from './options';
import type { DataSet } from './dataset';
import type { Network, NetworkShape, Phase } from './network';
import type { Prior } from './prior';
import type { LatentParts, LatentPartsOptions, Model } from './model';
import type { Evaluator } from './evaluator';
import type { Tracker } from './tracker';
import type { Optimizer } from './optimizer';
import type { Schedule } from './schedule';
import type { ExperimentConfig } from './config';
import type { RunResult } from './run';

/**
 * The registry as a plugin sees it (`ctx.registry`, and the `info` of `capabilities`):
 * create the plugins you build on, look plugins up, load more. registry/registry.ts
 * implements it.
 */
export interface PluginRegistry {
  /**
   * Create the plugin named by `options.kind` (validated and defaulted options) with its
   * kind's context, and check what it made against the kind's contract.
   */
  create<K extends PluginKind>(kind: K, options: PluginOptions, ctx: GivenContext<K>): KindInstances[K];
  has(kind: PluginKind, name: string): boolean;
  get<K extends PluginKind>(kind: K, name: string, where?: string): AnyPlugin & { kind: K };
  /** The registered names of a kind, sorted. */
  names(kind: PluginKind): string[];
  /** Every plugin (of a kind), with where it came from ('built-in' or the config's name for it). */
  list(kind?: PluginKind): { plugin: AnyPlugin; source: string }[];
  source(kind: PluginKind, name: string): string;
  /** Every loss weight the registered model plugins declare, by name. */
  weights(): Record<string, WeightDeclaration>;
  /** Add a plugin (`source`: 'built-in' or the config's name for it; `file`: where errors point). */
  register(plugin: AnyPlugin, source?: string, file?: string): void;
  /** Load a plugin module (a path, resolved against `baseDir` then the cwd, or a package name) and register what it exports. */
  loadPlugin(spec: string, baseDir: string, where?: string): void;
  /** Whether the module `spec` names is loaded already (it runs no code). */
  isLoaded(spec: string, baseDir: string): boolean;
}

/**
 * The context every plugin's `create` receives besides its options; each kind adds what
 * its plugins need (KindContexts). Nothing else reaches a plugin: a field a plugin needs
 * is added to its kind's context here, not read from an untyped bag.
 */
export interface PluginContext {
  tf: typeof tfc;
  /** Registry, to create nested plugins (e.g. a model creates its prior and networks). */
  registry: PluginRegistry;
  /** A stream forked for this plugin from the run seed: every random draw comes from it. */
  rng: Rng;
  /** Directory of the config file (for resolving relative data paths). */
  baseDir: string;
}

/** What a model's `create` receives: the data set it trains on, the run store, and a builder of its parts. */
export interface ModelContext extends PluginContext {
  data: DataSet;
  /**
   * The model's training/evaluation switch (Phase), made by whoever builds the model
   * (buildRun: `{ training: false }`, which the training step flips around its forward
   * pass). A model hands it on to its networks (spreading its context does).
   * Absent: its networks stay in evaluation.
   */
  phase?: Phase;
  /**
   * Given when `elbo run` creates the model: the run store, and `elbo run` itself, for
   * models built on another run that may have to be trained first (m1m2's nested M1).
   */
  runs?: NestedRuns;
  /**
   * The prior, encoder, decoder and likelihood of an encoder → z → decoder model in one
   * call, created through the registry with this context (rng forks 'prior', 'encoder',
   * 'decoder'; the phase handed on): the prior first, the encoder sized
   * `prior.paramsPerLatent · K` from the data (`inShape` the data's shape), the decoder
   * K → the likelihood's outputs, their variables collected and named. Added by the
   * registry to every model context it creates a model with.
   */
  latentParts(options: LatentPartsOptions): LatentParts;
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

/** A model's context as its creator gives it to `registry.create`: the registry adds `latentParts`. */
export type ModelBuildContext = Omit<ModelContext, 'latentParts'>;

/** What a caller of `registry.create` gives: the kind's context, less what the registry adds. */
export type GivenContext<K extends PluginKind> = K extends 'model' ? ModelBuildContext : KindContexts[K];

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

/** The run store a run lives in, and a way to start (or resume) another run in it. */
export interface NestedRuns {
  /** Root of the local run store (runs/<experiment>/<runId>). */
  dir: string;
  /** The resolved config of the run whose model is being created. */
  config: ExperimentConfig;
  /**
   * Run a config given as YAML text (relative paths resolve against the outer config's
   * directory; `label` says where it came from, e.g. 'model.m1'), or resume a run, with
   * the outer run's backend, run store and trackers: what `elbo run` does. Absent where
   * nothing may be trained (a finished run's model rebuilt for comparison).
   */
  run?(o: { text: string; label: string } | { resume: string }): Promise<RunResult>;
  /** A progress line on stderr. */
  log?(message: string): void;
}

/** What a model offers for given options, and why it lacks what it lacks (Plugin.capabilities). */
export interface Capabilities {
  provides: ModelCapability[];
  why?: Partial<Record<ModelCapability, string>>;
}

/** `capabilities` as a function of the options (written as a method so options narrow per plugin). */
interface CapabilitiesMethod<Options> {
  bivarianceHack(options: Options, info: { registry: PluginRegistry }): Capabilities;
}

/**
 * What a model plugin offers for given options, and why it lacks what it lacks (e.g. vae
 * has `density` only with a prior that has one and the bernoulli likelihood).
 */
export type CapabilitiesOf<Options> = CapabilitiesMethod<Options>['bivarianceHack'];

/**
 * What every plugin, built in or third party, exports. `schema` describes the plugin's
 * own options (a JSON Schema `properties` map plus optional `required`); `kind: NAME`
 * is added by the registry. Nested slots refer to other kinds with `slot('prior')` etc.
 * (`$ref: '#/definitions/prior'` in plain JavaScript). Built-in plugins are written with
 * `definePlugin`, which derives `Options` from the schema; third-party plugins may be
 * plain JavaScript objects of this shape. docs/plugins.md lists every member.
 */
export interface Plugin<
  K extends PluginKind = PluginKind,
  Options extends PluginOptions = PluginOptions,
  Instance extends KindInstances[K] = KindInstances[K],
> {
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
   * Model plugins: the names of the loss terms their model's `terms` returns (the training
   * loop logs `train/<name>` and, with a validation split, `val/<name>` for every one but
   * `loss`). Validation checks `train.select.metric` and `published:` against them.
   */
  termNames?(options: Options): string[];
  /**
   * Model plugins: the loss weights the model's `terms` reads from its `w` argument, by
   * name (config `loss.<name>`; schedules allowed). The loop evaluates each every step,
   * the compiled step feeds each to its graph, evaluators pass 1 for each. Absent: the
   * model reads c1, c2 and alpha.
   */
  weights?: Record<string, WeightDeclaration>;
  /**
   * Model plugins: what their models offer, whatever the options. When a model plugin
   * declares it (or `capabilities`), a config whose evaluators `needs` something it lacks
   * is refused when it is validated (before any training); when neither is given, nothing
   * is checked before the run. Prior plugins: `['density']` when their posterior and prior
   * have densities (logPrior, logPosterior).
   */
  provides?: ModelCapability[];
  /**
   * Model plugins whose offer depends on the options (a prior without a density): what a
   * model made with these options offers, and why it lacks the rest. In place of `provides`.
   */
  capabilities?: CapabilitiesOf<Options>;
  /** Evaluator plugins: what they need of the model (checked against its `provides`). */
  needs?: ModelCapability[];
  /**
   * Rules between this plugin's options that its schema does not say (give one of two keys):
   * one problem per broken rule, its path relative to the options. Run when a config is
   * validated (`elbo validate`, before any training) for the model and every evaluator.
   */
  check?(options: Options): { path: (string | number)[]; message: string }[];
  create(options: Options, ctx: KindContexts[K]): Instance;
}

/** A plugin of any kind, as the registry holds it. */
export type AnyPlugin = { [K in PluginKind]: Plugin<K> }[PluginKind];
