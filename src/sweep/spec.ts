import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { parse as parseYamlDocument, stringify as stringifyYaml } from 'yaml';
import Ajv, { type SchemaObject } from 'ajv';
import { Locator, parseYaml, ajvUserErrors, loadConfig, LoadedConfig, AJV_OPTIONS, parseOverride } from '../config/load';
import { parseKeyPath } from '../config/path';
import { epochMetrics, evaluatorMetrics } from '../config/metrics';
import { EXPERIMENT_NAME_MAX } from '../config/schema';
import { UserError, UserErrors, suggestion, type Caught } from '../errors';
import { createRegistry } from '../builtins';
import { Rng } from '../runtime/rng';
import { flatten as flattenConfig } from './compare';
import { SLURM_SCHEMA } from './slurm';
import { EARLY_STOP_SCHEMA, sweepRungs, type EarlyStop } from './asha';
import { SEARCH_SCHEMA, type Distribution, type Search } from './optuna';
import { writeFileAtomic } from '../util/write-atomic';
import { shownPath } from '../util/shown-path';
import type { ExperimentConfig, PluginRegistry } from '../contracts';

/**
 * A sweep file: a base config, fixed overrides, and the axes to vary.
 *
 *   base: ../quickstart.yaml          # relative to the sweep file
 *   set: { train.epochs: 2 }          # overrides every cell shares
 *   sweep:
 *     grid: { model.latent: [8, 32], model.prior: [{kind: gaussian}, {kind: spike-slab}] }
 *     zip: [ { train.optimizer.lr: [1e-3, 3e-4], train.batch_size: [128, 64] } ]
 *     seeds: [0, 1]
 *     random: { trials: 4, seed: 0, space: { loss.c1: {uniform: [0.5, 2]}, model.latent: {choice: [8, 16]} } }
 *
 * Cells are the product of every grid key, every zip group (its keys move together),
 * the seeds, and the random trials (drawn with the random seed).
 *
 * The base config itself may be an axis, like a Hydra config group: the key `base` in
 * grid, zip or random (choice) lists config files (relative to the sweep file), e.g.
 * `grid: {base: [../mnist/m1.yaml, ../mnist/m2.yaml], data.labelled: [100, 600]}`; a
 * zip group can pair each base with overrides of its own. The top-level `base:` is then
 * left out.
 */
export interface SweepSpec {
  file: string;
  name: string;
  /** The base config (absolute), or null when `base` is an axis (each cell has its own). */
  base: string | null;
  set: Record<string, unknown>;
  sweep: {
    grid: Record<string, unknown[]>;
    zip: Record<string, unknown[]>[];
    seeds?: number[];
    random?: { trials: number; seed: number; space: Record<string, Distribution> };
    search?: Search;
  };
  /** Stop bad cells early (see asha.ts). */
  early_stop?: EarlyStop;
  /** What each task of an emitted SLURM array asks for (see slurm.ts). */
  slurm?: Record<string, unknown>;
  /** FILE:LINE:COL of the metric names the sweep ranks its cells by, for located errors. */
  metricWhere?: { early_stop?: string; search?: string };
}

/** One cell: its index, its base config, the overrides that make it, and its seed. */
export interface Cell {
  index: number;
  /** The cell's base config (absolute path). */
  base: string;
  overrides: Record<string, unknown>;
  seed?: number;
}

/**
 * Most cells a sweep may have: every cell is validated (and recorded in sweep.json) before
 * anything runs, so a sweep of 10^10 cells must be refused before it is expanded.
 */
export const MAX_CELLS = 10_000;

const KEY = { type: 'string', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' };
/** set:'s keys: a config path, or ~path, which deletes the key from the base config (its value is ignored; write null). */
const SET_KEY = { type: 'string', pattern: '^~?[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' };
/** The values random: draws and search: proposes, per config key. */
const SPACE = {
  type: 'object',
  propertyNames: KEY,
  minProperties: 1,
  additionalProperties: {
    type: 'object',
    minProperties: 1,
    maxProperties: 1,
    additionalProperties: false,
    properties: {
      uniform: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
      log_uniform: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 2, maxItems: 2 },
      int: { type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 2 },
      choice: { type: 'array', minItems: 1 },
    },
  },
};
const SWEEP_SCHEMA: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['sweep'],
  properties: {
    base: { type: 'string', description: "The base config, relative to this file (or sweep over several: the axis key 'base')" },
    name: {
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      maxLength: EXPERIMENT_NAME_MAX,
      description: 'Sweep name (default: the file name)',
    },
    set: {
      type: 'object',
      propertyNames: SET_KEY,
      default: {},
      description: 'Overrides every cell shares; a key ~path (value null) deletes that key of the base config, as --set ~path does',
    },
    sweep: {
      type: 'object',
      additionalProperties: false,
      properties: {
        grid: { type: 'object', propertyNames: KEY, additionalProperties: { type: 'array', minItems: 1 }, default: {} },
        zip: {
          type: 'array',
          default: [],
          items: { type: 'object', propertyNames: KEY, minProperties: 1, additionalProperties: { type: 'array', minItems: 1 } },
        },
        seeds: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } },
        random: {
          type: 'object',
          additionalProperties: false,
          required: ['trials', 'space'],
          properties: {
            trials: { type: 'integer', minimum: 1, maximum: MAX_CELLS },
            seed: { type: 'integer', minimum: 0, default: 0 },
            space: SPACE,
          },
        },
        search: { ...SEARCH_SCHEMA, properties: { ...SEARCH_SCHEMA.properties, space: SPACE } },
      },
    },
    early_stop: EARLY_STOP_SCHEMA,
    slurm: SLURM_SCHEMA,
  },
};

/**
 * Is this YAML file a sweep file: a mapping with `sweep:` and neither `model:` nor `data:`
 * (a config with a stray `sweep:` key is a config, and its validation says the key is
 * unknown)? A file that cannot be read or parsed is not: loading it as a config says why.
 */
export function isSweepFile(file: string): boolean {
  let data: unknown;
  try {
    data = parseYaml(fs.readFileSync(file, 'utf8'), file).data;
  } catch {
    return false;
  }
  const has = (k: string) => Object.prototype.hasOwnProperty.call(data, k);
  return has('sweep') && !has('model') && !has('data');
}

/** A sweep file's data once SWEEP_SCHEMA has validated it (and filled in its defaults). */
interface SweepData {
  base?: string;
  name?: string;
  set: Record<string, unknown>;
  sweep: SweepSpec['sweep'];
  early_stop?: EarlyStop;
  slurm?: Record<string, unknown>;
}

/** Check that every key of set: and the sweep's axes is a config path, and that a search stands alone; returns the search, if any. */
function checkSweepKeys(data: SweepData, loc: Locator, problems: UserError[]): Search | undefined {
  // every key is a config path, checked as --set checks it (no __proto__, no negative index)
  const checkKeys = (obj: Record<string, unknown>, where: (string | number)[]) => {
    for (const key of Object.keys(obj)) {
      try {
        if (key !== 'base') parseKeyPath(where[0] === 'set' && key.startsWith('~') ? key.slice(1) : key, loc.at(where, key));
      } catch (e) {
        if (e instanceof UserError) problems.push(e);
        else throw e;
      }
    }
  };
  checkKeys(data.set, ['set']);
  checkKeys(data.sweep.grid, ['sweep', 'grid']);
  data.sweep.zip.forEach((g: Record<string, unknown>, i: number) => checkKeys(g, ['sweep', 'zip', i]));
  if (data.sweep.random) checkKeys(data.sweep.random.space, ['sweep', 'random', 'space']);
  const search = data.sweep.search;
  if (search) {
    checkKeys(search.space, ['sweep', 'search', 'space']);
    // the search proposes every swept value: no other axis beside it
    const other = (['grid', 'zip', 'seeds', 'random'] as const).filter((k) => {
      const axis = data.sweep[k];
      // (a key that is there holds a list or a mapping: the schema says so)
      return k in data.sweep && (Array.isArray(axis) ? axis.length : Object.keys(axis as object).length);
    });
    if (other.length)
      problems.push(
        new UserError(
          `search proposes every swept value: put the keys of ${other.join(', ')} into search.space (e.g. {choice: [..]}), or run them as a sweep of their own`,
          loc.at(['sweep', other[0]]),
        ),
      );
    if (data.early_stop)
      problems.push(new UserError('early_stop and search together are not supported yet: give one', loc.at(['early_stop'])));
    if ('base' in search.space)
      problems.push(
        new UserError(
          "a search cannot choose the base config: sweep over 'base' with grid, zip or random",
          loc.at(['sweep', 'search', 'space', 'base']),
        ),
      );
  }
  return search;
}

/** Check the sweep's size and its axes (zip lengths, no key swept twice or both set and swept); returns the swept keys. */
function checkSweepAxes(data: SweepData, loc: Locator, problems: UserError[]): string[] {
  // how many cells, before any is made
  const count =
    Object.values(data.sweep.grid).reduce((n, v) => n * v.length, 1) *
    data.sweep.zip.reduce((n: number, g: Record<string, unknown[]>) => n * (Object.values(g)[0]?.length ?? 1), 1) *
    (data.sweep.random?.trials ?? 1) *
    (data.sweep.search?.trials ?? 1) *
    (data.sweep.seeds?.length ?? 1);
  if (count > MAX_CELLS) {
    problems.push(
      new UserError(
        `the sweep has ${count.toLocaleString('en')} cells; at most ${MAX_CELLS.toLocaleString('en')} are allowed (each is validated and recorded before anything runs): split it into several sweep files or use fewer values`,
        loc.at(['sweep']),
      ),
    );
  }
  data.sweep.zip.forEach((group: Record<string, unknown[]>, g: number) => {
    const lengths = new Set(Object.values(group).map((v) => v.length));
    if (lengths.size > 1)
      problems.push(
        new UserError(`zip group ${g}: its lists must have one length (got ${[...lengths].join(', ')})`, loc.at(['sweep', 'zip', g])),
      );
  });
  const axes: string[] = [
    ...Object.keys(data.sweep.grid),
    ...data.sweep.zip.flatMap((g: object) => Object.keys(g)),
    ...Object.keys(data.sweep.random?.space ?? {}),
    ...Object.keys(data.sweep.search?.space ?? {}),
  ];
  const dup = axes.find((k, i) => axes.indexOf(k) !== i);
  if (dup) problems.push(new UserError(`'${dup}' is swept twice; give each key one axis`, loc.at(['sweep'])));
  // a key both set for every cell and swept: the sweep would win silently
  for (const k of Object.keys(data.set)) {
    if (axes.includes(k))
      problems.push(
        new UserError(`'${k}' is both in set: and swept; remove it from set: (the sweep gives every cell its value)`, loc.at(['set', k])),
      );
  }
  if (axes.includes('seed')) problems.push(new UserError("sweep seeds with 'seeds: [..]', not as a grid key", loc.at(['sweep'])));
  return axes;
}

/** Check the base config: one top-level file, or an axis of files. */
function checkSweepBase(data: SweepData, axes: string[], loc: Locator, problems: UserError[]): void {
  // the base config: one file, or an axis of files
  if ('base' in data.set)
    problems.push(
      new UserError("'base' is not an override: give it at the top level, or as an axis of the sweep", loc.at(['set', 'base'])),
    );
  if (axes.includes('base')) {
    if (data.base !== undefined)
      problems.push(new UserError("'base' is both the top-level base config and an axis; keep one", loc.at(['base'])));
    const randomBase = data.sweep.random?.space.base;
    const randomChoice = randomBase && 'choice' in randomBase ? randomBase.choice : undefined;
    const values = [
      ...(data.sweep.grid.base ?? []),
      ...data.sweep.zip.flatMap((g: Record<string, unknown[]>) => g.base ?? []),
      ...(randomChoice ?? []),
    ];
    const where = data.sweep.grid.base
      ? ['sweep', 'grid', 'base']
      : data.sweep.random?.space.base
        ? ['sweep', 'random', 'space', 'base']
        : ['sweep', 'zip'];
    if (randomBase && !randomChoice) problems.push(new UserError("a random 'base' must be a {choice: [config files]}", loc.at(where)));
    if (values.some((v: unknown) => typeof v !== 'string' || !v))
      problems.push(new UserError("the 'base' axis lists config files (paths relative to the sweep file)", loc.at(where)));
  } else if (data.base === undefined) {
    problems.push(
      new UserError("missing the base config: 'base: FILE' (relative to this file), or a 'base' axis listing several", loc.at([])),
    );
  }
}

/** Check early_stop against the axes and set's train.epochs (setting it from max_epochs); returns early_stop, if any. */
function checkEarlyStop(data: SweepData, axes: string[], loc: Locator, problems: UserError[]): EarlyStop | undefined {
  const es = data.early_stop as EarlyStop | undefined;
  if (es && axes.includes('train.epochs'))
    problems.push(
      new UserError('with early_stop every cell trains to the same max_epochs: do not sweep train.epochs', loc.at(['early_stop'])),
    );
  if (es?.max_epochs !== undefined) {
    // max_epochs is every cell's train.epochs
    if (data.set['train.epochs'] !== undefined && data.set['train.epochs'] !== es.max_epochs)
      problems.push(
        new UserError(
          `early_stop.max_epochs (${es.max_epochs}) and set's train.epochs (${data.set['train.epochs']}) disagree; give one`,
          loc.at(['early_stop', 'max_epochs']),
        ),
      );
    else data.set['train.epochs'] = es.max_epochs;
  }
  return es;
}

export function loadSweep(file: string): SweepSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(err.code === 'ENOENT' ? 'sweep file not found' : `cannot read sweep file: ${err.message}`, file);
  }
  const shown = shownPath(file);
  const { doc, lines, data } = parseYaml(text, shown);
  const loc = new Locator([{ file: shown, doc, lines }], []);
  const validate = new Ajv(AJV_OPTIONS).compile<SweepData>(SWEEP_SCHEMA);
  if (!validate(data)) throw ajvUserErrors(validate.errors ?? [], data, loc);
  const problems: UserError[] = [];
  const search = checkSweepKeys(data, loc, problems);
  const axes = checkSweepAxes(data, loc, problems);
  checkSweepBase(data, axes, loc, problems);
  const es = checkEarlyStop(data, axes, loc, problems);
  if (!axes.length && !data.sweep.seeds)
    problems.push(new UserError('the sweep has no axis: add grid, zip, seeds or random', loc.at(['sweep'])));
  if (problems.length) throw new UserErrors(problems);
  return {
    file: path.resolve(file),
    name: data.name ?? path.basename(file).replace(/\.ya?ml$/, ''),
    base: data.base === undefined ? null : path.resolve(path.dirname(path.resolve(file)), data.base),
    set: data.set,
    sweep: data.sweep,
    ...(es ? { early_stop: es } : {}),
    slurm: data.slurm,
    metricWhere: {
      ...(es ? { early_stop: loc.at(['early_stop', ...('metric' in (data.early_stop as object) ? ['metric'] : [])]) } : {}),
      ...(search ? { search: loc.at(['sweep', 'search', ...('metric' in search ? ['metric'] : [])]) } : {}),
    },
  };
}

/** The rungs of a sweep with early_stop (checked against its cells' train.epochs), else null. */
export function earlyStopRungs(spec: SweepSpec, resolved: { loaded: LoadedConfig }[]): number[] | null {
  if (!spec.early_stop) return null;
  try {
    return sweepRungs(
      spec.early_stop,
      resolved.map((r) => r.loaded.config.train.epochs),
    );
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.message, `${shownPath(spec.file)}: ${e.where}`);
    throw e;
  }
}

/** Every cell of a sweep, in a fixed order (grid keys, zip groups, random trials, seeds). */
export function expand(spec: SweepSpec): Cell[] {
  let combos: Record<string, unknown>[] = [{}];
  const axis = (options: Record<string, unknown>[]) => {
    combos = combos.flatMap((c) => options.map((o) => ({ ...c, ...o })));
  };
  for (const [key, values] of Object.entries(spec.sweep.grid)) axis(values.map((v) => ({ [key]: v })));
  for (const group of spec.sweep.zip) {
    const n = Object.values(group)[0].length;
    axis(Array.from({ length: n }, (_, i) => Object.fromEntries(Object.entries(group).map(([k, vs]) => [k, vs[i]]))));
  }
  if (spec.sweep.random) {
    const r = spec.sweep.random;
    const rng = new Rng(r.seed);
    axis(Array.from({ length: r.trials }, () => Object.fromEntries(Object.entries(r.space).map(([k, d]) => [k, draw(d, rng)]))));
  }
  // a search: its trials, whose values Optuna proposes when each is about to run (runner.ts)
  if (spec.sweep.search) axis(Array.from({ length: spec.sweep.search.trials }, () => ({})));
  const seeds = spec.sweep.seeds ?? [undefined];
  const cells: Cell[] = [];
  const dir = path.dirname(spec.file);
  for (const { base, ...c } of combos) {
    const file = base === undefined ? spec.base! : path.resolve(dir, String(base));
    for (const seed of seeds) cells.push({ index: cells.length, base: file, overrides: { ...spec.set, ...c }, seed });
  }
  return cells;
}

/** The base configs a sweep's cells use, relative to the current directory (for messages). */
export function describeBases(spec: SweepSpec, cells: Cell[]): string {
  const bases = [...new Set(cells.map((c) => c.base))];
  return bases.length === 1 ? path.relative(process.cwd(), bases[0]) : `${bases.length} base configs`;
}

function draw(d: Distribution, rng: Rng): unknown {
  if ('uniform' in d) return d.uniform[0] + rng.uniform() * (d.uniform[1] - d.uniform[0]);
  if ('log_uniform' in d)
    return Math.exp(Math.log(d.log_uniform[0]) + rng.uniform() * (Math.log(d.log_uniform[1]) - Math.log(d.log_uniform[0])));
  if ('int' in d) return d.int[0] + rng.int(d.int[1] - d.int[0] + 1);
  return d.choice[rng.int(d.choice.length)];
}

/**
 * A value as one line of flow-style YAML: JSON, except that non-finite numbers are written
 * as YAML writes them (.inf, .nan; JSON would make them null), so validation sees them.
 */
export function flowYaml(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf';
  if (Array.isArray(v)) return `[${v.map(flowYaml).join(', ')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${flowYaml(x)}`)
      .join(', ')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** A cell's overrides as `elbo run` flags. */
export function cellArgs(cell: Cell): string[] {
  const args = Object.entries(cell.overrides).flatMap(([k, v]) => ['--set', k.startsWith('~') ? k : `${k}=${flowYaml(v)}`]);
  if (cell.seed !== undefined) args.push('--seed', String(cell.seed));
  return args;
}

/** A cell's overrides as `--set` strings for loadConfig. */
export function cellOverrides(cell: Cell): string[] {
  const flat = cellArgs(cell);
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(flat[i] === '--seed' ? `seed=${flat[i + 1]}` : flat[i + 1]);
  return out;
}

/**
 * The overrides that make a cell differ from the others: not the keys every cell shares
 * (`set`), nor its published numbers (they say what it aims at, not how it differs).
 */
function sweptOverrides(cell: Cell, spec: SweepSpec): [string, unknown][] {
  const fixed = new Set(Object.keys(spec.set));
  return Object.entries(cell.overrides).filter(([k]) => !fixed.has(k) && k !== 'published');
}

/** A short label for tables: key=value pairs of what the cell varies. */
export function cellLabel(cell: Cell, spec: SweepSpec): string {
  const parts = spec.base === null ? [`base=${path.relative(path.dirname(spec.file), cell.base)}`] : [];
  parts.push(...sweptOverrides(cell, spec).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`));
  if (cell.seed !== undefined) parts.push(`seed=${cell.seed}`);
  return parts.join(' ');
}

/** A base config as its path from the sweep file, without leading ../ and the extension (mnist/vsc, fashion-mnist/vsc). */
function baseName(cell: Cell, spec: SweepSpec): string {
  return path
    .relative(path.dirname(spec.file), cell.base)
    .replace(/^(\.\.\/)+/, '')
    .replace(/\.ya?ml$/, '');
}

/**
 * What the cell varies, as `elbo compare` keys a sweep's rows: `base` (when it is an axis, by
 * baseName) and each swept key with its value; not the seed (rows are over seeds), nor the
 * keys every cell shares or the published numbers.
 */
export function cellAxes(cell: Cell, spec: SweepSpec): Record<string, unknown> {
  return { ...(spec.base === null ? { base: baseName(cell, spec) } : {}), ...Object.fromEntries(sweptOverrides(cell, spec)) };
}

/**
 * A cell's short name, its MLflow run name: each swept key by its last part (the whole key
 * when two would read alike), a plugin block by its kind and options, then the seed:
 * `latent=8,prior=gaussian,seed=0`.
 */
export function cellRunName(cell: Cell, spec: SweepSpec): string {
  const swept = sweptOverrides(cell, spec);
  const last = (k: string) => k.split('.').pop()!;
  const count = new Map<string, number>();
  for (const [k] of swept) count.set(last(k), (count.get(last(k)) ?? 0) + 1);
  // the base by its path from the sweep file (mnist/vsc and fashion-mnist/vsc read apart)
  const parts = spec.base === null ? [`base=${baseName(cell, spec)}`] : [];
  for (const [k, v] of swept) {
    const flat = flattenConfig(v, 'v');
    const shown = Object.keys(flat).length === 1 && 'v' in flat ? flat.v : JSON.stringify(v);
    parts.push(`${count.get(last(k))! > 1 ? k : last(k)}=${shown}`);
  }
  if (cell.seed !== undefined) parts.push(`seed=${cell.seed}`);
  return parts.join(',') || `cell ${cell.index}`;
}

/**
 * Validate the sweep and every expanded config before anything runs; returns each
 * cell's resolved config. Problems name the cell and its overrides.
 */
export function resolveCells(spec: SweepSpec, registry?: PluginRegistry): { cell: Cell; loaded: LoadedConfig }[] {
  // one line per distinct problem, naming the cells it occurs in
  const problems = new Map<string, { error: UserError; cells: Cell[] }>();
  const out: { cell: Cell; loaded: LoadedConfig }[] = [];
  const cells = expand(spec);
  // one registry, and so one compiled schema, for every cell of base configs that load no
  // plugins; a base config with plugins gets a registry of its own (its plugins only)
  const registries = new Map<string, PluginRegistry>();
  const registryFor = (cell: Cell) => {
    if (registry) return registry;
    const key = 'plugins' in cell.overrides || hasPlugins(cell.base) ? cell.base : '';
    if (!registries.has(key)) registries.set(key, createRegistry());
    return registries.get(key)!;
  };
  for (const cell of cells) {
    try {
      const loaded = loadConfig(cell.base, cellOverrides(cell), registryFor(cell));
      checkSweepMetrics(spec, loaded.config, registryFor(cell));
      out.push({ cell, loaded });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      for (const l of e instanceof UserErrors ? e.errors : [e]) {
        const key = l.line();
        problems.set(key, { error: l, cells: [...(problems.get(key)?.cells ?? []), cell] });
      }
    }
  }
  // a search's cells get their values when they run: every value at the ends of its space is checked now
  if (spec.sweep.search && out.length) {
    const space = spec.sweep.search.space;
    const ends = (d: Distribution): unknown[] =>
      'choice' in d ? d.choice : 'uniform' in d ? d.uniform : 'log_uniform' in d ? d.log_uniform : d.int;
    const lows = Object.fromEntries(Object.entries(space).map(([k, d]) => [k, ends(d)[0]]));
    for (const [k, d] of Object.entries(space)) {
      for (const v of ends(d)) {
        const probe: Cell = { ...out[0].cell, overrides: { ...out[0].cell.overrides, ...lows, [k]: v } };
        try {
          loadConfig(probe.base, cellOverrides(probe), registryFor(probe));
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          for (const l of e instanceof UserErrors ? e.errors : [e])
            problems.set(l.line(), { error: new UserError(`space ${k}=${flowYaml(v)}: ${l.message}`, l.where), cells: [] });
        }
      }
    }
  }
  if (problems.size) {
    throw new UserErrors(
      [...problems.values()].map(({ error, cells: bad }) => {
        const which = !bad.length
          ? 'the search'
          : bad.length === cells.length
            ? 'every cell'
            : bad.length === 1
              ? `cell ${bad[0].index} (${cellLabel(bad[0], spec)})`
              : `cells ${bad.map((c) => c.index).join(', ')}`;
        return new UserError(`${which}: ${error.message}`, error.where);
      }),
    );
  }
  return out;
}

/**
 * The metrics a sweep ranks its cells by, against what a cell's run writes: early_stop reads
 * its metric from the epochs' lines (train/ and val/ metrics), a search's metric is told back
 * from the run's final metrics (those, and the evaluators' test/ metrics). Checked as
 * train.select is, before any cell trains.
 */
function checkSweepMetrics(spec: SweepSpec, config: ExperimentConfig, registry: PluginRegistry): void {
  const problems: UserError[] = [];
  const per = epochMetrics(config, registry);
  const check = (what: 'early_stop' | 'search', metric: string, allowed: string[] | null) => {
    const where = spec.metricWhere?.[what] ?? `${shownPath(spec.file)}: ${what}`;
    const option = what === 'early_stop' ? 'early_stop.metric' : 'search.metric';
    if (metric.startsWith('val/') && config.data.validation === 0) {
      problems.push(
        new UserError(
          `${option} '${metric}' is a validation metric, but data.validation is 0: set data.validation (e.g. --set data.validation=10000 in set:) or rank by a train/ metric`,
          where,
        ),
      );
    } else if (allowed && !allowed.includes(metric)) {
      problems.push(
        new UserError(
          `${option} '${metric}' is not written by model '${config.model.kind}'${suggestion(metric, allowed).replace('(allowed: ', '(it writes: ')}`,
          where,
        ),
      );
    }
  };
  if (spec.early_stop) check('early_stop', spec.early_stop.metric, per);
  const search = spec.sweep.search;
  if (search) check('search', search.metric, per && [...per, ...evaluatorMetrics(config, registry).names]);
  if (problems.length) throw new UserErrors(problems);
}

/** Whether a config file has a `plugins:` key (an unreadable one: loadConfig reports it). */
function hasPlugins(file: string): boolean {
  try {
    return /^plugins\s*:/m.test(fs.readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * A sweep made on the command line (Hydra's multirun): `elbo sweep CONFIG --grid
 * model.latent=8,32 --seeds 0,1 [--set key=value]`. It is written as a sweep file into its
 * sweep directory (<runs-dir>/sweeps/<name>/sweep.yaml; the name is the config's plus a
 * hash of the axes, so the same command finds its finished cells again) and loaded from
 * there like any sweep file: an emitted SLURM script runs that file.
 */
export function sweepFromFlags(
  config: string,
  o: { grid: string[]; seeds?: string; set: string[]; name?: string; runsDir: string },
): SweepSpec {
  const grid: Record<string, unknown[]> = {};
  const list = (raw: string, where: string) => {
    let v: unknown;
    try {
      v = parseYamlDocument(`[${raw}]`);
    } catch (e) {
      throw new UserError(`values are not valid YAML: ${String((e as Caught)?.message).split('\n')[0]}`, where);
    }
    if (!Array.isArray(v) || !v.length || v.some((x) => x === null))
      throw new UserError('give one or more values separated by commas (e.g. model.latent=8,32)', where);
    return v;
  };
  const keyValue = (flag: string, kind: string) => {
    const where = `--${kind} ${flag}`;
    const eq = flag.indexOf('=');
    if (eq <= 0)
      throw new UserError(
        `expected key.path=${kind === 'grid' ? 'value,value,...' : 'value'} (e.g. model.latent=${kind === 'grid' ? '8,32' : '32'})`,
        where,
      );
    const key = flag.slice(0, eq).trim();
    parseKeyPath(key, where);
    return { key, raw: flag.slice(eq + 1), where };
  };
  for (const g of o.grid) {
    const { key, raw, where } = keyValue(g, 'grid');
    if (key in grid) throw new UserError(`'${key}' is given twice; list all its values in one --grid`, where);
    grid[key] = list(raw, where);
  }
  const set: Record<string, unknown> = {};
  for (const f of o.set) {
    if (f.startsWith('~')) {
      // a deletion, checked as elbo run checks it and kept as the key ~path (cellArgs passes it on as --set ~path)
      set[`~${parseOverride(f).path.join('.')}`] = null;
      continue;
    }
    const { key, raw, where } = keyValue(f, 'set');
    try {
      set[key] = raw === '' ? '' : parseYamlDocument(raw);
    } catch (e) {
      throw new UserError(`value is not valid YAML: ${String((e as Caught)?.message).split('\n')[0]}`, where);
    }
  }
  const seeds = o.seeds === undefined ? undefined : list(o.seeds, `--seeds ${o.seeds}`);
  if (seeds && seeds.some((x) => !Number.isInteger(x) || (x as number) < 0))
    throw new UserError('seeds are integers >= 0, separated by commas (e.g. 0,1,2)', `--seeds ${o.seeds}`);
  if (!Object.keys(grid).length && !seeds)
    throw new UserError('a config is swept over --grid KEY=V1,V2 (repeatable) and/or --seeds 0,1; or give a sweep file', config);
  const base = path.resolve(config);
  const body = { base, set, sweep: { grid, ...(seeds ? { seeds } : {}) } };
  const name = o.name ?? `${path.basename(config).replace(/\.ya?ml$/, '')}-${sha256(JSON.stringify(body)).slice(0, 8)}`;
  const file = path.join(path.resolve(o.runsDir), 'sweeps', name, 'sweep.yaml');
  const text = `# made by: elbo sweep ${path.relative(process.cwd(), config) || config} ${[...o.grid.map((g) => `--grid ${g}`), ...(o.seeds ? [`--seeds ${o.seeds}`] : []), ...o.set.map((f) => `--set ${f}`)].join(' ')}\n${stringifyYaml({ name, ...body }, { lineWidth: 0 })}`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) {
    writeFileAtomic(file, text);
  }
  return loadSweep(file);
}

/** Where a sweep lives in the run store. */
export function sweepDir(runsDir: string, spec: SweepSpec): string {
  return path.resolve(runsDir, 'sweeps', spec.name);
}

export function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}
