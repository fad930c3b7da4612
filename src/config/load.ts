import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import type { DataValidationCxt } from 'ajv/dist/types';
import {
  Document,
  LineCounter,
  parseDocument,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  visit,
  Node as YamlNode,
  Pair,
  YAMLMap,
  parse as parseYamlValue,
  stringify,
} from 'yaml';
import { UserError, UserErrors, suggestion, type Caught } from '../errors';
import { buildSchema } from './schema';
import { checkMetrics } from './metrics';
import { unmetEvaluatorNeeds } from './needs';
import { isMapping } from '../util/mapping';
import { shownPath } from '../util/shown-path';
import { isPluginPath, pluginFileAt } from '../registry/registry';
import { deleteAtPath, parseKeyPath, setAtPath } from './path';
import { CONFIG_PATH_KEYWORD, type PluginKind, type PluginOptions, type ExperimentConfig, type PluginRegistry } from '../contracts';

export interface LoadedConfig {
  config: ExperimentConfig;
  /** Directory that relative paths in the config are resolved against. */
  baseDir: string;
  /** The file it came from (for messages). */
  file: string;
  /** sha256 of the resolved config as YAML. */
  sha256: string;
  /** The resolved config as YAML (what is written to the run). */
  yaml: string;
  /** The base configs the file extends (absolute paths, in the order merged: a base's own bases before it); [] when none. */
  bases: string[];
}

/** One YAML file a config is read from: how messages name it, and its parsed document. */
export interface ConfigSource {
  file: string;
  doc: Document;
  lines: LineCounter;
  /** Its directory (absolute), which the relative paths it gives are read against. */
  dir?: string;
}

/**
 * Where things are, for error messages: YAML nodes by path, in the files a config is composed
 * of (the one given first, then its bases: `extends`), and the --set flags.
 */
export class Locator {
  constructor(
    private sources: ConfigSource[],
    private overrides: { path: (string | number)[]; flag: string }[],
  ) {}

  /**
   * Location of the value at `p`, or of the key `key` inside it: in the first file that has
   * the whole path (a value a base config gave is found in the base), else as far as the
   * first file goes.
   */
  at(p: (string | number)[], key?: string): string {
    const full = key === undefined ? p : [...p, key];
    // the last --set that touched this path or a parent of it wins
    for (let i = this.overrides.length - 1; i >= 0; i--) {
      const o = this.overrides[i];
      // (a problem of the whole document, such as a missing top-level key, stays the file's)
      if (isPrefix(o.path, full) || (full.length > 0 && isPrefix(full, o.path))) return o.flag;
    }
    const found = this.found(full, key);
    const { source, node } = found.find((f) => f.whole) ?? found[0];
    // a pair (a key with no value) has no range of its own: its key's
    const range = isPair(node) ? (isNode(node.key) ? node.key.range : undefined) : node?.range;
    if (!range) return source.file;
    const pos = source.lines.linePos(range[0]);
    return `${source.file}:${pos.line}:${pos.col}`;
  }

  /** The file given (the one that names the bases). */
  get given(): ConfigSource {
    return this.sources[0];
  }

  /** The file that gave the value at `p` (the first with the whole path; --set aside), or null: none has it. */
  source(p: (string | number)[]): ConfigSource | null {
    return this.found(p).find((f) => f.whole)?.source ?? null;
  }

  private found(full: (string | number)[], key?: string) {
    return this.sources.map((source) => ({ source, ...nodeAt(source.doc, full, key) }));
  }
}

/** The node at `full` in a document, or the deepest one on the way; `whole` when the path is all there. */
function nodeAt(doc: Document, full: (string | number)[], key?: string): { node: YamlNode | Pair | null; whole: boolean } {
  let node: unknown = doc.contents;
  let found: YamlNode | Pair | null = (node as YamlNode) ?? null;
  for (const seg of full) {
    if (isMap(node)) {
      const pair = pairsOf(node).get(String(seg));
      if (!pair) return { node: found, whole: false };
      // for the last segment of a key lookup, point at the key itself
      found = (seg === key && full[full.length - 1] === seg ? (pair.key as YamlNode) : (pair.value as YamlNode)) ?? pair;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
      node = node.items[seg];
      found = node as YamlNode;
    } else return { node: found, whole: false };
  }
  return { node: found, whole: true };
}

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

/** A mapping's pairs by key (the first of each), built once per mapping: lookups stay linear in the errors. */
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();
function pairsOf(map: YAMLMap): Map<string, Pair> {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const it of map.items) if (isPair(it) && !index.has(keyOf(it))) index.set(keyOf(it), it);
    pairIndex.set(map, index);
  }
  return index;
}

function isPrefix(a: (string | number)[], b: (string | number)[]): boolean {
  return a.length <= b.length && a.every((s, i) => String(s) === String(b[i]));
}

/**
 * Parse `key.path=value` (value as a YAML scalar or flow collection), or `~key.path`, which
 * deletes the key (Hydra's syntax): `--set ~model.m1` drops a section the file has.
 */
export function parseOverride(flag: string): { path: (string | number)[]; value: unknown; flag: string; remove?: true } {
  const where = `--set ${flag}`;
  if (flag.startsWith('~')) {
    if (flag.includes('='))
      throw new UserError('~key.path deletes the key and takes no value (write ~model.m1, or key.path=value to set it)', where);
    return { path: parseKeyPath(flag.slice(1).trim(), where), value: undefined, flag: where, remove: true };
  }
  const eq = flag.indexOf('=');
  if (eq <= 0) throw new UserError(`expected key.path=value (e.g. model.latent=32), or ~key.path to delete a key`, where);
  const key = flag.slice(0, eq).trim();
  const raw = flag.slice(eq + 1);
  const p = parseKeyPath(key, where);
  let value: unknown;
  try {
    value = raw === '' ? '' : parseYamlValue(raw, { maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    throw new UserError(`value is not valid YAML: ${String((e as Caught)?.message).split('\n')[0]}`, where);
  }
  return { path: p, value, flag: where };
}

/**
 * The --set flags a command that works on a stored run takes: each is parsed (so a malformed
 * one gets parseOverride's error) and one whose key `allows` refuses is one line naming that flag.
 */
export function restrictOverrides(
  flags: readonly string[],
  allows: (key: string, remove: boolean) => boolean,
  refusal: (key: string) => string,
): void {
  for (const flag of flags) {
    const o = parseOverride(flag);
    const key = o.path.join('.');
    if (!allows(key, !!o.remove)) throw new UserError(refusal(key), o.flag);
  }
}

/** Aliases one document may resolve (YAML's own default): an alias bomb stops here. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parse YAML text, keeping positions; syntax errors, duplicate keys, aliases without an
 * anchor, alias bombs and documents nested too deeply become file:line:col errors.
 */
export function parseYaml(text: string, file: string): { doc: Document; lines: LineCounter; data: Record<string, unknown> } {
  const lines = new LineCounter();
  const at = (offset: number | undefined) => {
    const pos = lines.linePos(offset ?? 0);
    return `${file}:${pos.line}:${pos.col}`;
  };
  const tooDeep = (e: unknown, offset?: number) => {
    if (e instanceof RangeError) return new UserError('YAML is nested too deeply to read', at(offset));
    return e;
  };
  // a file with old Mac line endings (CR alone) is read line by line, as with LF or CRLF
  if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
  let doc: Document;
  try {
    // duplicate keys are checked below, in linear time (the parser's own check is quadratic)
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  } catch (e) {
    throw tooDeep(e);
  }
  if (doc.errors.length) {
    throw new UserErrors(
      doc.errors
        .slice(0, MAX_PROBLEMS)
        .map((e) =>
          /call stack/i.test(e.message)
            ? new UserError('YAML is nested too deeply to read', at(e.pos[0]))
            : new UserError(`YAML syntax error: ${e.message.split('\n')[0]}`, at(e.pos[0])),
        ),
    );
  }
  const problems: UserError[] = [];
  const aliases: YamlNode[] = [];
  try {
    visit(doc, {
      Map(_, map) {
        const seen = new Set<string>();
        for (const it of map.items) {
          if (!isScalar(it.key)) continue;
          const id = `${typeof it.key.value}:${String(it.key.value)}`;
          if (seen.has(id)) problems.push(new UserError('YAML syntax error: Map keys must be unique', at(it.key.range?.[0])));
          seen.add(id);
        }
      },
      Alias(_, alias) {
        aliases.push(alias);
        if (alias.resolve(doc) === undefined)
          problems.push(new UserError(`YAML alias *${alias.source} has no anchor &${alias.source} before it`, at(alias.range?.[0])));
      },
    });
  } catch (e) {
    throw tooDeep(e);
  }
  if (problems.length) throw capProblems(problems, at(0));
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (e) {
    const first = aliases[0]?.range?.[0];
    if (e instanceof RangeError) throw new UserError('YAML is nested too deeply to read (or an alias refers to itself)', at(first));
    if (/alias/i.test(String((e as Caught)?.message))) {
      throw new UserError(
        `YAML aliases expand to too much data (more than ${MAX_ALIAS_COUNT} alias resolutions: an "alias bomb"); write the values out or use fewer aliases`,
        at(first),
      );
    }
    throw e;
  }
  if (!isMapping(data)) {
    throw new UserError('a config must be a YAML mapping (key: value lines)', `${file}:1:1`);
  }
  return { doc, lines, data };
}

/**
 * A config file with its bases (`extends: BASE` or a list, paths relative to the file that
 * names them): the bases merged in order, each composed of its own bases first, then the
 * file's keys over them. Mappings merge key by key; any other value (a list, a number, null)
 * replaces the base's. Also the files, the given one first, then the bases latest first: where
 * a value's location is looked up.
 */
function composeConfig(
  text: string,
  abs: string,
  chain: string[],
): { data: Record<string, unknown>; sources: ConfigSource[]; bases: string[] } {
  const shown = shownPath(abs);
  const { doc, lines, data } = parseYaml(text, shown);
  const own: ConfigSource = { file: shown, doc, lines, dir: path.dirname(abs) };
  if (!Object.prototype.hasOwnProperty.call(data, 'extends')) return { data, sources: [own], bases: [] };
  const { extends: spec, ...rest } = data;
  const loc = new Locator([own], []);
  const bases = typeof spec === 'string' ? [spec] : spec;
  const bad = Array.isArray(bases) ? bases.findIndex((b) => typeof b !== 'string' || !b) : -1;
  if (!Array.isArray(bases) || !bases.length || bad >= 0) {
    throw new UserError(
      'extends takes the path of a base config (relative to this file), or a list of them',
      loc.at(bad >= 0 && typeof spec !== 'string' ? ['extends', bad] : ['extends']),
    );
  }
  let merged: Record<string, unknown> = {};
  const baseSources: ConfigSource[][] = [];
  const merges: string[] = [];
  bases.forEach((name: string, i: number) => {
    const where = loc.at(typeof spec === 'string' ? ['extends'] : ['extends', i]);
    const baseAbs = path.resolve(path.dirname(abs), name);
    if (baseAbs === abs || chain.includes(baseAbs)) {
      throw new UserError(`extends goes round in a circle: ${[...chain, abs, baseAbs].map(shownPath).join(' → ')}`, where);
    }
    let baseText: string;
    try {
      baseText = fs.readFileSync(baseAbs, 'utf8');
    } catch (e) {
      const err = e as Caught;
      throw new UserError(
        err?.code === 'ENOENT'
          ? `base config ${shownPath(baseAbs)} not found (extends paths are relative to the file that names them)`
          : `cannot read base config ${shownPath(baseAbs)}: ${err?.message ?? e}`,
        where,
      );
    }
    const base = composeConfig(baseText, baseAbs, [...chain, abs]);
    merged = mergeConfig(merged, base.data);
    baseSources.unshift(base.sources);
    merges.push(...base.bases, baseAbs);
  });
  return { data: mergeConfig(merged, rest), sources: [own, ...baseSources.flat()], bases: merges };
}

/**
 * Rewrites, in the composed `data`, a relative path that a base config in another directory
 * gave so that it is relative to `baseDir` (what the composed config's paths are read against):
 * `path: data/x.csv` in team/base.yaml, extended by me/run.yaml, becomes ../team/data/x.csv.
 * A plugin entry only when it is a path to a plugin there. True when it rewrote one.
 */
function basePathRebaser(data: Record<string, unknown>, files: Locator, baseDir: string) {
  return (p: (string | number)[], plugin: boolean): boolean => {
    const parent = p.slice(0, -1).reduce<unknown>((o, k) => (isMapping(o) || Array.isArray(o) ? (o as never)[k] : undefined), data);
    const key = p[p.length - 1];
    const value = isMapping(parent) || Array.isArray(parent) ? (parent as never)[key] : undefined;
    if (typeof value !== 'string' || !value || path.isAbsolute(value)) return false;
    // the given file's own paths are relative to baseDir already (its directory, or the one a run recorded)
    const source = files.source(p);
    const from = source === files.given ? undefined : source?.dir;
    if (!from || path.resolve(from) === path.resolve(baseDir)) return false;
    const abs = path.resolve(from, value);
    // as the registry reads it: a path, found next to the base (a package name, or a path it finds elsewhere, stays)
    if (plugin && !(isPluginPath(value) && pluginFileAt(abs))) return false;
    (parent as Record<string | number, unknown>)[key] = path.relative(path.resolve(baseDir), abs) || '.';
    return true;
  };
}

/** The places (key paths) of the options marked as config-relative paths that `validate` met in the data. */
function pathsMarked(validate: () => unknown): (string | number)[][] {
  const sink: string[] = [];
  markedPathSink = sink;
  try {
    validate();
  } finally {
    markedPathSink = null;
  }
  return [...new Set(sink)].map(pathOf);
}

/** Where the schema keyword CONFIG_PATH_KEYWORD reports the values it marks, while pathsMarked runs. */
let markedPathSink: string[] | null = null;

/** `over` merged into `base`: mappings key by key, any other value replacing the base's. */
function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = Object.prototype.hasOwnProperty.call(base, k) ? base[k] : undefined;
    // defineProperty: a key such as __proto__ stays a key (that validation then refuses)
    Object.defineProperty(out, k, {
      value: isMapping(b) && isMapping(v) ? mergeConfig(b, v) : v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * Load, override, validate and default a config. Third-party plugins it names are
 * loaded into `registry` first, so their schemas take part in validation.
 */
export function loadConfig(
  file: string,
  overrides: string[],
  registry: PluginRegistry,
  opts: {
    text?: string;
    baseDir?: string;
    /**
     * false: the config's `plugins:` are not loaded (no code of its runs); each must already
     * be in the registry (loaded by the running config), else a located error. For configs
     * read from elsewhere, e.g. another run's config.yaml that an evaluator compares with.
     */
    loadPlugins?: boolean;
  } = {},
): LoadedConfig {
  let text = opts.text;
  if (text === undefined) {
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new UserError(
        err.code === 'ENOENT'
          ? 'config file not found; give the path to a YAML config (see configs/)'
          : `cannot read config: ${err.message}`,
        file,
      );
    }
  }
  const { data: fileData, sources, bases } = composeConfig(text, path.resolve(file), []);
  const parsed = overrides.map(parseOverride);
  const composing = parsed.find((o) => o.path[0] === 'extends');
  if (composing) {
    throw new UserError(
      "extends names a config file's bases and is read from the file: write it there, or run the base config with --set",
      composing.flag,
    );
  }
  const withOverrides = (defaults: unknown) => {
    const data = structuredClone(fileData);
    for (const o of parsed) {
      if (o.remove) deleteAtPath(data, o.path, o.flag);
      else setAtPath(data, o.path, o.value, o.flag, defaults);
    }
    return data;
  };
  const loc = new Locator(sources, parsed);
  const baseDir = opts.baseDir ?? path.dirname(path.resolve(file));
  const rebase = basePathRebaser(fileData, new Locator(sources, []), baseDir);
  if (Array.isArray(fileData.plugins)) fileData.plugins.forEach((_: unknown, i: number) => rebase(['plugins', i], true));

  // plugins first: their schemas are part of the config's schema
  const plugins = withOverrides(undefined).plugins;
  if (plugins !== undefined) {
    if (!Array.isArray(plugins) || plugins.some((p: unknown) => typeof p !== 'string')) {
      throw new UserError('plugins must be a list of paths or package names', loc.at(['plugins']));
    }
    plugins.forEach((spec: string, i: number) => {
      if (opts.loadPlugins !== false) return registry.loadPlugin(spec, baseDir, loc.at(['plugins', i]));
      if (!registry.isLoaded(spec, baseDir)) {
        throw new UserError(
          `this config loads plugin '${spec}', which the running config does not: it is not loaded from here (a plugin runs code); add it to the running config's plugins: if you trust it`,
          loc.at(['plugins', i]),
        );
      }
    });
  }
  // the file's own values with defaults filled in (errors are reported below, not here)
  let defaults = structuredClone(fileData);
  const marked = pathsMarked(() => compiled(registry)(defaults));
  if (marked.map((p) => rebase(p, false)).some(Boolean)) {
    defaults = structuredClone(fileData);
    compiled(registry)(defaults);
  }
  const data = withOverrides(defaults);

  const config = validate(data, registry, loc);
  // what the run will write: published metrics, the model-selection metric
  checkMetrics(
    config,
    registry,
    (p) => loc.at(p),
    parsed.map((o) => o.path.join('.')),
  );
  checkLearningRate(config, registry, loc);
  // evaluators the model cannot serve (no latent space, no classifier) are refused before any training
  const unmet = [...unmetEvaluatorNeeds(config, registry), ...optionRules(config, registry)];
  if (unmet.length) throw new UserErrors(unmet.map((u) => new UserError(u.message, loc.at(u.path))));
  const yaml = stringify(config, { lineWidth: 0 });
  return {
    config,
    baseDir,
    file,
    yaml,
    sha256: crypto.createHash('sha256').update(yaml).digest('hex'),
    bases,
  };
}

/** What the model's and the evaluators' own `check` say of their options (rules between keys). */
function optionRules(config: ExperimentConfig, registry: PluginRegistry): { path: (string | number)[]; message: string }[] {
  const slots: [PluginKind, PluginOptions, (string | number)[]][] = [
    ['model', config.model, ['model']],
    ...config.eval.map((e, i): [PluginKind, PluginOptions, (string | number)[]] => ['evaluator', e, ['eval', i]]),
  ];
  return slots.flatMap(([kind, options, at]) => {
    const plugin = registry.has(kind, options.kind) ? registry.get(kind, options.kind) : null;
    if (!plugin?.check) return [];
    let problems: unknown;
    try {
      problems = plugin.check(options as never);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      problems = [{ path: [], message: `${kind} plugin '${options.kind}': its check of these options failed: ${why}` }];
    }
    if (!Array.isArray(problems) || problems.some((p) => !Array.isArray(p?.path) || typeof p?.message !== 'string'))
      return [
        {
          path: at,
          message: `${kind} plugin '${options.kind}': its check must return a list of {path, message} (got ${describe(problems)})`,
        },
      ];
    return problems.map((p: { path: (string | number)[]; message: string }) => ({ path: [...at, ...p.path], message: p.message }));
  });
}

/**
 * A learning-rate schedule that is 0 over the whole of training is refused as `lr: 0` is (the
 * parameters would never move): it is read at 201 points from epoch 0 to train.epochs.
 */
function checkLearningRate(config: ExperimentConfig, registry: PluginRegistry, loc: Locator): void {
  const lr = (config.train.optimizer as { lr?: unknown }).lr;
  if (!lr || typeof lr !== 'object' || !registry.has('schedule', (lr as PluginOptions).kind)) return;
  const s = registry.create('schedule', lr as PluginOptions, { registry } as never) as (p: {
    epoch: number;
    step: number;
    fraction: number;
    epochFloat: number;
  }) => number;
  const E = config.train.epochs;
  const values = Array.from({ length: 201 }, (_, i) =>
    s({ epoch: Math.floor((i * E) / 200), step: 0, fraction: i / 200, epochFloat: (i * E) / 200 }),
  );
  if (values.every((v) => !(v > 0))) {
    throw new UserError(
      `the learning-rate schedule is ${values[0]} over all ${E} epochs of training, so the parameters would never move; give it a positive value somewhere (as lr must be > 0)`,
      loc.at(['train', 'optimizer', 'lr']),
    );
  }
}

/**
 * How configs (and sweep files) are validated: every error, defaults filled in, numbers
 * finite (NaN and ±Infinity are not numbers here: `.inf` epochs would train forever), and
 * `$data` references for rules between fields (logvar_min < logvar_max).
 */
export const AJV_OPTIONS = {
  allErrors: true,
  useDefaults: true,
  discriminator: true,
  strict: false,
  verbose: true,
  strictNumbers: true,
  $data: true,
} as const;

const ajvCache = new WeakMap<PluginRegistry, { size: number; validate: ValidateFunction<ExperimentConfig> }>();

function compiled(registry: PluginRegistry) {
  const size = registry.list().length;
  const hit = ajvCache.get(registry);
  if (hit && hit.size === size) return hit.validate;
  const ajv = new Ajv(AJV_OPTIONS);
  ajv.addKeyword({
    keyword: CONFIG_PATH_KEYWORD,
    type: 'string',
    schemaType: 'boolean',
    errors: false,
    validate: (marked: boolean, _data: unknown, _schema?: unknown, cxt?: DataValidationCxt) => {
      if (marked && cxt) markedPathSink?.push(cxt.instancePath);
      return true;
    },
  });
  let v: ValidateFunction<ExperimentConfig>;
  try {
    v = ajv.compile<ExperimentConfig>(buildSchema(registry));
  } catch (e) {
    // built-in schemas compile (tested): a third-party plugin's schema is the cause
    const third = registry.list().filter((p) => p.source !== 'built-in');
    const blame = third.map((p) => `${p.plugin.kind} '${p.plugin.name}' (${p.source})`).join(', ');
    throw new UserError(
      `the config schema does not compile with the loaded plugins${blame ? ` (${blame})` : ''}: ${String((e as Caught)?.message).split('\n')[0]}; fix the plugin's schema`,
      third[0]?.source,
    );
  }
  ajvCache.set(registry, { size, validate: v });
  return v;
}

function validate(data: unknown, registry: PluginRegistry, loc: Locator): ExperimentConfig {
  const v = compiled(registry);
  if (v(data)) return data;
  throw ajvUserErrors(v.errors ?? [], data, loc, registry);
}

/** At most this many problems are listed; the rest are counted (a file of 30,000 unknown keys gives 51 lines). */
export const MAX_PROBLEMS = 50;

/** ajv errors as user errors, one line per distinct problem, each with its position. */
export function ajvUserErrors(errors: ErrorObject[], data: unknown, loc: Locator, registry?: PluginRegistry): UserErrors {
  // only the problems that are shown are turned into messages (30,000 of them would take seconds)
  const shown: UserError[] = [];
  const lines = new Set<string>();
  const distinct = new Set<string>();
  for (const e of relevant(errors)) {
    const id = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (distinct.has(id)) continue;
    distinct.add(id);
    if (shown.length > MAX_PROBLEMS) continue;
    const u = toUserError(e, data, registry, loc);
    if (!lines.has(u.line())) {
      lines.add(u.line());
      shown.push(u);
    }
  }
  if (shown.length <= MAX_PROBLEMS) return new UserErrors(shown);
  return new UserErrors([
    ...shown.slice(0, MAX_PROBLEMS),
    new UserError(`... and about ${distinct.size - MAX_PROBLEMS} more problems (fix these first)`, loc.at([])),
  ]);
}

/** The first MAX_PROBLEMS problems, and a line saying how many more there are. */
export function capProblems(problems: UserError[], where: string): UserErrors {
  if (problems.length <= MAX_PROBLEMS) return new UserErrors(problems);
  return new UserErrors([
    ...problems.slice(0, MAX_PROBLEMS),
    new UserError(`... and ${problems.length - MAX_PROBLEMS} more problems (fix these first)`, where),
  ]);
}

/** Drop errors that only restate a more specific one (if/then wrappers, a missing tag twice). */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const out = errors.filter((e) => e.keyword !== 'if');
  const missingKind = new Set(
    out.filter((e) => e.keyword === 'required' && e.params.missingProperty === 'kind').map((e) => e.instancePath),
  );
  return out.filter((e) => !(e.keyword === 'discriminator' && e.params.error === 'tag' && missingKind.has(e.instancePath)));
}

function pathOf(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function dotted(p: (string | number)[]): string {
  return p.length ? p.join('.') : 'the top level';
}

function valueAt(data: unknown, p: (string | number)[]): unknown {
  // (indexing a string or number, as a path through a wrong type does, gives a character or undefined)
  return p.reduce<unknown>((o, s) => (o == null ? undefined : (o as Record<string | number, unknown>)[s]), data);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number' && !Number.isFinite(v)) return `${Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf'} (not a finite number)`;
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const shown = JSON.stringify(v);
  return `${typeof v} ${shown.length > 80 ? `${shown.slice(0, 60)}…" (${String(v).length} characters)` : shown}`;
}

/** Which plugin kind a slot error belongs to (buildSchema tags each slot). */
function kindOf(e: ErrorObject): PluginKind | undefined {
  return e.parentSchema?.['x-elbo-kind'] as PluginKind | undefined;
}

function toUserError(e: ErrorObject, data: unknown, registry: PluginRegistry | undefined, loc: Locator): UserError {
  const p = pathOf(e.instancePath);
  const here = dotted(p);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const allowed = Object.keys(e.parentSchema?.properties ?? {});
      const hint = colonKeyHint(key, valueAt(data, [...p, key]));
      return new UserError(`unknown key '${key}' in ${here}${hint || suggestion(key, allowed)}`, loc.at(p, key));
    }
    case 'discriminator': {
      const kind = kindOf(e);
      const names = kind && registry ? registry.names(kind) : [];
      if (e.params.error === 'mapping') {
        const name = String(e.params.tagValue);
        return new UserError(
          `unknown ${kind} '${name}'${suggestion(name, names)}; list them with 'elbo plugins ${kind}'`,
          loc.at([...p, 'kind']),
        );
      }
      return new UserError(`'kind' of ${here} must be a string naming ${aOrAn(kind)} ${kind} (one of: ${names.join(', ')})`, loc.at(p));
    }
    case 'required': {
      const key = String(e.params.missingProperty);
      const kind = kindOf(e);
      const hint = spaceHint(valueAt(data, p), key);
      const extra =
        !hint && key === 'kind' && kind && registry ? ` naming ${aOrAn(kind)} ${kind} (one of: ${registry.names(kind).join(', ')})` : '';
      return new UserError(`missing required key '${key}' in ${here}${extra || hint}`, loc.at(p));
    }
    case 'type':
      return new UserError(`${here} must be ${article(String(e.params.type))}, got ${describe(valueAt(data, p))}`, loc.at(p));
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[]).map(String);
      const got = valueAt(data, p);
      return new UserError(
        `${here} must be one of ${allowed.join(', ')}, got ${describe(got)}${typeof got === 'string' ? suggestion(got, allowed).replace(/ \(allowed.*$/, '') : ''}`,
        loc.at(p),
      );
    }
    case 'const':
      return new UserError(`${here} must be ${JSON.stringify(e.params.allowedValue)}`, loc.at(p));
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      // a rule between fields ({$data: '1/logvar_max'}) names the other field
      const ref = typeof e.schema === 'object' && e.schema !== null && '$data' in e.schema ? e.schema.$data : undefined;
      const other = typeof ref === 'string' ? ` ${ref.split('/').pop()} (${e.params.limit})` : ` ${e.params.limit}`;
      return new UserError(`${here} must be ${e.params.comparison}${other}, got ${describe(valueAt(data, p))}`, loc.at(p));
    }
    default:
      return new UserError(`${here} ${e.message ?? 'is invalid'} (got ${describe(valueAt(data, p))})`, loc.at(p));
  }
}

/**
 * YAML reads `{kind:cosine}` as one key 'kind:cosine' with no value (a colon makes a key only
 * with a space after it): said as such where that key is unknown (`colonKeyHint`) or hides the
 * required `key` in mapping `v` (`spaceHint`).
 */
function colonKeyHint(k: string, value: unknown, key?: string): string {
  const m = /^([^:\s]+):(\S.*)$/.exec(k);
  if (!m || value != null || (key !== undefined && m[1] !== key)) return '';
  return ` ('${k}' reads as one key with no value: write '${m[1]}: ${m[2]}', a space after the colon)`;
}

function spaceHint(v: unknown, key: string): string {
  if (!isMapping(v)) return '';
  for (const [k, val] of Object.entries(v)) {
    const hint = colonKeyHint(k, val, key);
    if (hint) return hint;
  }
  return '';
}

/** "a" or "an" before `word` (a plugin kind: "an optimizer", "a dataset"). */
function aOrAn(word: string | undefined): string {
  return word && /^[aeiou]/.test(word) ? 'an' : 'a';
}

function article(t: string): string {
  const map: Record<string, string> = {
    integer: 'an integer',
    object: 'a mapping',
    array: 'a list',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
  };
  return map[t] ?? t;
}
