import * as path from 'path';
import * as fs from 'fs';
import { withOptionDefaults } from './define';
import { instanceProblem } from './instances';
import Ajv from 'ajv';
import { UserError, suggestion, type Caught } from '../errors';
import { isMapping } from '../util/mapping';
import { modelContext, recordPrior, withDefaultProgress, withPriorSchedules, type LatentPartsBuilder } from './model-context';
import { looseObjectOption } from './option-schemas';
import {
  MODEL_CAPABILITIES,
  PLUGIN_KINDS,
  type AnyPlugin,
  type GivenContext,
  type KindContexts,
  type KindInstances,
  type Model,
  type PluginKind,
  type PluginOptions,
  type PluginRegistry,
  type Prior,
  type WeightDeclaration,
} from '../contracts';

interface Entry {
  plugin: AnyPlugin;
  /** 'built-in' or the plugin as the config names it. */
  source: string;
  /** Where it was loaded from ('built-in' for built-ins): errors about its instances point there. */
  file: string;
}

/** Names a plugin may not have: they are Object.prototype's, and a lookup by name would find those. */
const RESERVED_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype).map((n) => n.toLowerCase()));

/**
 * The one registry every plugin goes through. The config schema, `elbo plugins`,
 * `elbo schema` and validation are all derived from what is registered here.
 */
export class Registry implements PluginRegistry {
  private entries = new Map<PluginKind, Map<string, Entry>>();
  /** The files third-party plugins were loaded from (resolved paths). */
  private readonly loadedFiles = new Set<string>();
  /** What a model context's `latentParts` calls (createRegistry gives models/vae.ts's). */
  private readonly latentParts?: LatentPartsBuilder;

  constructor(options: { latentParts?: LatentPartsBuilder } = {}) {
    for (const k of PLUGIN_KINDS) this.entries.set(k, new Map());
    this.latentParts = options.latentParts;
  }

  /** `source`: 'built-in' or the plugin as the config names it; `file`: where it was loaded from (errors point there). */
  register(plugin: AnyPlugin, source = 'built-in', file = source): void {
    checkPluginShape(plugin, file, source !== 'built-in');
    this.checkWeights(plugin, file);
    // a third-party plugin's failures carry its name and file (not "internal error")
    if (source !== 'built-in') plugin = attributed(plugin, file);
    const byName = this.entries.get(plugin.kind)!;
    const existing = byName.get(plugin.name);
    if (existing && existing.source !== source) {
      throw new UserError(`${plugin.kind} plugin '${plugin.name}' is already registered by ${existing.source}; rename one of them`, source);
    }
    byName.set(plugin.name, { plugin, source, file });
  }

  has(kind: PluginKind, name: string): boolean {
    return this.entries.get(kind)!.has(name);
  }

  get<K extends PluginKind>(kind: K, name: string, where?: string): AnyPlugin & { kind: K } {
    const e = this.entries.get(kind)!.get(name);
    if (!e) {
      throw new UserError(`unknown ${kind} '${name}'${suggestion(name, this.names(kind))}`, where);
    }
    return e.plugin as AnyPlugin & { kind: K };
  }

  source(kind: PluginKind, name: string): string {
    return this.entries.get(kind)!.get(name)?.source ?? '?';
  }

  names(kind: PluginKind): string[] {
    return [...this.entries.get(kind)!.keys()].sort();
  }

  list(kind?: PluginKind): { plugin: AnyPlugin; source: string }[] {
    const kinds = kind ? [kind] : [...PLUGIN_KINDS];
    return kinds.flatMap((k) => this.names(k).map((n) => this.entries.get(k)!.get(n)!));
  }

  /** Whether the plugin file `spec` names (resolved against `baseDir`, then the cwd) is already loaded: it runs no code. */
  isLoaded(spec: string, baseDir: string): boolean {
    try {
      return this.loadedFiles.has(resolvePluginPath(spec, baseDir));
    } catch {
      return false;
    }
  }

  /**
   * Create the plugin named by `options.kind` (options already validated and defaulted)
   * with its kind's context, and check what it made against its kind's contract: an
   * instance that lacks something (a prior without paramsPerLatent) is a UserError naming
   * the kind, the plugin and its file, not a failure deep inside training. A model's
   * context gets `latentParts` (model-context.ts); a prior takes END_OF_TRAINING for a
   * `progress` its caller omits.
   */
  create<K extends PluginKind>(kind: K, options: PluginOptions, given: GivenContext<K>): KindInstances[K] {
    const e = this.entries.get(kind)!.get(options.kind);
    if (!e) throw new UserError(`unknown ${kind} '${options.kind}'${suggestion(options.kind, this.names(kind))}`);
    const built = kind === 'model' ? modelContext(given as GivenContext<'model'>, this.latentParts) : null;
    const ctx = (built?.ctx ?? given) as KindContexts[K];
    // the options were validated against this plugin's schema, from which its Options type is derived
    const made = (e.plugin as { create(o: PluginOptions, c: KindContexts[K]): unknown }).create(withOptionDefaults(e.plugin, options), ctx);
    const check = (inst: unknown) => {
      const why = instanceProblem(kind, inst);
      if (why) {
        throw new UserError(
          `${kind} plugin '${e.plugin.name}' (${e.file}) created an invalid ${kind}: ${why}; see docs/plugins.md for what a ${kind} provides`,
          e.file === 'built-in' ? undefined : e.file,
        );
      }
      if (kind === 'prior') {
        recordPrior(given, inst as Prior);
        return withDefaultProgress(inst as Prior);
      }
      // the built-in models give their own scheduled where they need one
      if (built && e.source !== 'built-in') withPriorSchedules(inst as Model, built.priors, { name: e.plugin.name, file: e.file });
      return inst;
    };
    return (made instanceof Promise ? made.then(check) : check(made)) as KindInstances[K];
  }

  /** Every loss weight the registered model plugins declare, by name (the config's `loss:` section). */
  weights(): Record<string, WeightDeclaration> {
    const out: Record<string, WeightDeclaration> = {};
    for (const { plugin } of this.entries.get('model')!.values()) Object.assign(out, plugin.weights ?? {});
    return out;
  }

  /** A weight name means one thing: a declaration must agree with the one already registered. */
  private checkWeights(plugin: AnyPlugin, file: string): void {
    if (!plugin.weights) return;
    const known = this.weights();
    for (const [name, d] of Object.entries(plugin.weights)) {
      const problem = !/^[a-z][a-z0-9_]*$/.test(name)
        ? `its name must be lower case letters, digits and _`
        : typeof d?.default !== 'number' ||
            !(d.default >= 0) ||
            typeof d.description !== 'string' ||
            (d.role !== undefined && d.role !== 'multiplier' && d.role !== 'parameter')
          ? `its declaration must be {default: a number ≥ 0, description: a string, role?: 'multiplier' | 'parameter'}`
          : known[name] && known[name].default !== d.default
            ? `it is already declared with default ${known[name].default} (${known[name].description}); a weight name means one thing in every model: choose another name`
            : null;
      if (problem) throw new UserError(`${plugin.kind} plugin '${plugin.name}': loss weight '${name}': ${problem}`, file);
    }
  }

  /**
   * Load third-party plugins named in a config: a path to a file or directory (resolved
   * against the config file's directory, then the current directory) or an npm package
   * name. The module exports one plugin, an array of them, or `{plugins: [...]}`.
   */
  loadPlugin(spec: string, baseDir: string, where?: string): void {
    const file = resolvePluginPath(spec, baseDir, where);
    if (this.loadedFiles.has(file)) return;
    let mod: PluginModule;
    // what a plugin prints while it loads goes to stderr: stdout carries --json's one line
    const write = process.stdout.write;
    process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
    try {
      try {
        mod = require(file);
      } catch (e) {
        throw new UserError(`cannot load plugin '${spec}' (${file}): ${thrown(e)}`, where);
      }
      try {
        const exported = (mod?.default ?? mod) as PluginModule;
        const plugins: unknown[] = Array.isArray(exported) ? exported : Array.isArray(exported?.plugins) ? exported.plugins : [exported];
        for (const p of plugins) this.register(p as AnyPlugin, spec, file);
      } catch (e) {
        // a getter that throws, a Proxy: reading the plugin object failed
        if (e instanceof UserError) throw e;
        throw new UserError(
          `invalid plugin: reading what it exports failed: ${thrown(e)}; the problem is in the plugin, not in elbo`,
          file,
        );
      }
    } finally {
      process.stdout.write = write;
    }
    this.loadedFiles.add(file);
  }
}

/** What a plugin module exports (anything): one plugin, a list of them, `{plugins: [...]}`, or one of these as `default`. */
type PluginModule = { default?: unknown; plugins?: unknown } | null | undefined;

/** Whether a `plugins:` entry is a path to a file or directory (else the name of an installed package). */
export function isPluginPath(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || spec.includes(path.sep);
}

/** The module file a plugin spec names, or null (not found there). */
export function pluginFileAt(spec: string): string | null {
  try {
    return require.resolve(spec);
  } catch {
    return null;
  }
}

function resolvePluginPath(spec: string, baseDir: string, where?: string): string {
  if (isPluginPath(spec)) {
    const candidates = path.isAbsolute(spec) ? [spec] : [path.resolve(baseDir, spec), path.resolve(process.cwd(), spec)];
    for (const c of candidates) {
      const file = pluginFileAt(c);
      if (file) return file;
    }
    const tried = [...new Set(candidates)].join(' or ');
    throw new UserError(
      `plugin '${spec}' not found (looked for ${tried}); give a path to a .js file or a directory with index.js/package.json`,
      where,
    );
  }
  try {
    return require.resolve(spec, { paths: [baseDir, process.cwd()] });
  } catch {
    throw new UserError(`plugin package '${spec}' is not installed; run 'npm install ${spec}' or give a path`, where);
  }
}

function checkPluginShape(plugin: unknown, source: string, thirdParty: boolean): void {
  const problems: string[] = [];
  if (!plugin || typeof plugin !== 'object') problems.push('does not export a plugin object');
  else {
    // any object (a list too): each member is checked below
    const p = plugin as Record<string, unknown>;
    if (!(PLUGIN_KINDS as readonly unknown[]).includes(p.kind))
      problems.push(`'kind' must be one of ${PLUGIN_KINDS.join(', ')} (got ${JSON.stringify(p.kind)})`);
    if (typeof p.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(p.name))
      problems.push(`'name' must be a lower-case name like 'my-plugin' (got ${JSON.stringify(p.name)})`);
    if (typeof p.description !== 'string') problems.push(`'description' must be a string`);
    if (typeof p.name === 'string' && RESERVED_NAMES.has(p.name.toLowerCase()))
      problems.push(`'name' '${p.name}' is reserved (it is a property of every JavaScript object); choose another`);
    const schema = p.schema as { properties?: unknown; required?: unknown } | null | undefined;
    const props = schema?.properties;
    if (!schema || !isMapping(props))
      problems.push(
        `'schema.properties' must be an object (a mapping) of JSON Schemas, not ${Array.isArray(props) ? 'a list' : (JSON.stringify(props) ?? 'missing')}`,
      );
    else if (Object.prototype.hasOwnProperty.call(props, 'kind'))
      problems.push(`'schema.properties' must not define 'kind' (the registry adds it)`);
    else {
      const bad = Object.entries(props)
        .filter(([, s]) => !isMapping(s) && typeof s !== 'boolean')
        .map(([k]) => k);
      if (bad.length)
        problems.push(`'schema.properties' must map option names to JSON Schemas (${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not)`);
      const loose = Object.entries(props)
        .map(([k, v]) => looseObjectOption(v, k))
        .find((path) => path !== null);
      if (loose) problems.push(looseObjectProblem(loose, p));
      const req = schema.required;
      if (
        req !== undefined &&
        (!Array.isArray(req) || req.some((r: unknown) => typeof r !== 'string' || !Object.prototype.hasOwnProperty.call(props, r)))
      ) {
        problems.push(`'schema.required' must list option names of schema.properties (got ${JSON.stringify(req)})`);
      }
      // built-in schemas are tested; a third party's is checked once, here
      if (!bad.length && thirdParty) {
        // (properties and required are checked above)
        const why = schemaProblem(schema as { properties: Record<string, unknown>; required?: string[] });
        if (why) problems.push(`its schema is not a valid JSON Schema: ${why}`);
      }
    }
    if (typeof p.create !== 'function') problems.push(`'create' must be a function`);
    problems.push(...memberProblems(p));
  }
  if (problems.length) {
    throw new UserError(`invalid plugin: ${problems.join('; ')}; a plugin exports {kind, name, description, schema, create}`, source);
  }
}

/** What is wrong with a plugin's optional members (metrics, termNames, provides, capabilities, needs, check), and the names they had before. */
function memberProblems(p: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (p.terms !== undefined)
    problems.push(
      `'terms' is now 'termNames' (the names of the loss terms; the model it creates computes them in terms(batch, w, rng, progress))`,
    );
  if (typeof p.provides === 'function')
    problems.push(`'provides' is a list; a function of the options returning {provides, why} is now 'capabilities'`);
  else if (p.provides !== undefined && p.capabilities !== undefined)
    problems.push(`give 'provides' (a list) or 'capabilities' (a function of the options), not both`);
  for (const f of ['metrics', 'termNames', 'capabilities', 'check'])
    if (p[f] !== undefined && typeof p[f] !== 'function') problems.push(`'${f}' must be a function when given`);
  for (const key of ['provides', 'needs']) {
    const v = p[key];
    // provides as a function has its own message above
    if (
      v !== undefined &&
      !(key === 'provides' && typeof v === 'function') &&
      (!Array.isArray(v) || v.some((c: unknown) => !(MODEL_CAPABILITIES as readonly unknown[]).includes(c)))
    ) {
      problems.push(`'${key}' must be a list of ${MODEL_CAPABILITIES.join(', ')} (got ${JSON.stringify(v)})`);
    }
  }
  return problems;
}

/** Why an option whose object schema states nothing is refused, and what to write instead. */
function looseObjectProblem(path: string, p: { kind?: unknown; name?: unknown }): string {
  return (
    `${typeof p.name === 'string' ? `${String(p.kind)} plugin '${p.name}': ` : ''}option '${path}' is {type: 'object'} without properties, $ref or additionalProperties, so any keys pass and a misspelt one is silently ignored: ` +
    `for another plugin's options write {$ref: '#/definitions/network'} (or prior, dataset, schedule, ...), for an object of your own list its properties (and additionalProperties: false)`
  );
}

let schemaChecker: Ajv | undefined;

/** Why a plugin's options schema is not one ajv can use (null when it is): checked against the meta-schema, then compiled. */
function schemaProblem(schema: { properties: Record<string, unknown>; required?: string[] }): string | null {
  // slots refer to the config schema's definitions: stand-ins here
  const definitions = Object.fromEntries([...PLUGIN_KINDS, 'weight'].map((k) => [k, {}]));
  const whole = { type: 'object', properties: schema.properties, required: schema.required ?? [], definitions };
  // one checker for every plugin (making an Ajv instance costs more than checking a schema)
  const ajv = (schemaChecker ??= new Ajv({ strict: false, $data: true, strictNumbers: true }));
  try {
    if (!ajv.validateSchema(whole)) return ajv.errorsText(ajv.errors, { dataVar: 'schema' });
    ajv.compile(whole);
    ajv.removeSchema(whole);
    return null;
  } catch (e) {
    // a reference into the whole config schema (#/properties/train) resolves there, not here
    // (ajv's MissingRefError says which in missingRef)
    const err = e as Caught & { missingRef?: string };
    if (err?.missingRef !== undefined) return null;
    return firstLine(err?.message);
  }
}

/**
 * A third-party plugin whose failures name it: an exception from `create` (also a rejected
 * promise), `metrics`, `termNames` or `capabilities`, or from an evaluator's `run`, becomes a
 * UserError "<kind> plugin '<name>' (<file>) failed: ..." at the plugin's file. UserErrors
 * it throws itself pass through.
 */
function attributed(plugin: AnyPlugin, source: string): AnyPlugin {
  const blame =
    (what: string) =>
    (e: unknown): never => {
      if (e instanceof UserError) throw e;
      throw new UserError(
        `${plugin.kind} plugin '${plugin.name}' failed in ${what}: ${thrown(e)}; the problem is in the plugin, not in elbo`,
        source,
      );
    };
  /** `f` with its exceptions blamed on the plugin, and its result checked by `check` (why it is wrong, or null). */
  const guard = <A extends unknown[], R>(f: ((...a: A) => R) | undefined, what: string, check?: (r: R) => string | null) =>
    f === undefined
      ? undefined
      : (...a: A): R => {
          let out: R;
          try {
            out = f.apply(plugin, a);
          } catch (e) {
            return blame(what)(e);
          }
          if (out instanceof Promise) return out.catch(blame(what)) as R;
          const why = check?.(out);
          if (why) throw new UserError(`${plugin.kind} plugin '${plugin.name}': ${what}() ${why}; see docs/plugins.md`, source);
          return out;
        };
  const names = (nullable: boolean) => (r: unknown) =>
    (nullable && r === null) || (Array.isArray(r) && r.every((n) => typeof n === 'string'))
      ? null
      : `must return a list of metric names (strings)${nullable ? ' or null' : ''}, got ${describeValue(r)}`;
  const create = guard(plugin.create as (o: PluginOptions, c: unknown) => unknown, 'create');
  return {
    ...plugin,
    metrics: guard(
      plugin.metrics as ((o: PluginOptions, i: { modelTerms: string[] | null }) => string[] | null) | undefined,
      'metrics',
      names(true),
    ),
    termNames: guard(plugin.termNames as ((o: PluginOptions) => string[]) | undefined, 'termNames', names(false)),
    capabilities: guard(plugin.capabilities as NonNullable<AnyPlugin['capabilities']> | undefined, 'capabilities'),
    create(options: PluginOptions, ctx: unknown) {
      const made: unknown = create!(options, ctx);
      const wrapRun = (inst: unknown) => {
        const ev = inst as { run?: unknown } | null;
        // a model's loss, computed every step: an exception there names the plugin's file too
        const model = inst as { terms?: unknown } | null;
        if (plugin.kind === 'model' && model && typeof model.terms === 'function') {
          model.terms = guard(model.terms.bind(model) as (...a: unknown[]) => unknown, "its model's terms (the loss)");
        }
        return plugin.kind === 'evaluator' && ev && typeof ev.run === 'function'
          ? { ...ev, run: guard(ev.run.bind(ev) as (...a: unknown[]) => unknown, 'run') }
          : inst;
      };
      return made instanceof Promise ? made.then(wrapRun) : wrapRun(made);
    },
  } as AnyPlugin;
}

function firstLine(s: unknown): string {
  return String(s ?? '').split('\n')[0];
}

/** What a plugin threw, as one line: an Error's message, or the value itself (null, a string, a number). */
function thrown(e: unknown): string {
  if (e instanceof Error) return firstLine(e.message) || `${e.name} without a message`;
  return `it threw ${describeValue(e)}`;
}

/** A value as a message shows it: short, with its type. */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  if (Array.isArray(v)) return `a list of ${v.length} items${v.every((x) => typeof x === 'string') ? '' : ', not all strings'}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

export function fileExists(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
