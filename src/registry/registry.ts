import * as path from 'path';
import * as fs from 'fs';
import { MODEL_CAPABILITIES, PLUGIN_KINDS, Plugin, PluginContext, PluginKind } from './types';
import { UserError, suggestion } from '../errors';

interface Entry {
  plugin: Plugin;
  /** 'built-in' or the path it was loaded from. */
  source: string;
}

/**
 * The one registry every plugin goes through. The config schema, `elbo plugins`,
 * `elbo schema` and validation are all derived from what is registered here.
 */
export class Registry {
  private entries = new Map<PluginKind, Map<string, Entry>>();

  constructor() {
    for (const k of PLUGIN_KINDS) this.entries.set(k, new Map());
  }

  register(plugin: Plugin, source = 'built-in'): void {
    checkPluginShape(plugin, source);
    const byName = this.entries.get(plugin.kind)!;
    const existing = byName.get(plugin.name);
    if (existing && existing.source !== source) {
      throw new UserError(
        `${plugin.kind} plugin '${plugin.name}' is already registered by ${existing.source}; rename one of them`,
        source,
      );
    }
    byName.set(plugin.name, { plugin, source });
  }

  has(kind: PluginKind, name: string): boolean {
    return this.entries.get(kind)!.has(name);
  }

  get(kind: PluginKind, name: string, where?: string): Plugin {
    const e = this.entries.get(kind)!.get(name);
    if (!e) {
      throw new UserError(`unknown ${kind} '${name}'${suggestion(name, this.names(kind))}`, where);
    }
    return e.plugin;
  }

  source(kind: PluginKind, name: string): string {
    return this.entries.get(kind)!.get(name)?.source ?? '?';
  }

  names(kind: PluginKind): string[] {
    return [...this.entries.get(kind)!.keys()].sort();
  }

  list(kind?: PluginKind): { plugin: Plugin; source: string }[] {
    const kinds = kind ? [kind] : [...PLUGIN_KINDS];
    return kinds.flatMap((k) =>
      this.names(k).map((n) => this.entries.get(k)!.get(n)!),
    );
  }

  /** Create the plugin named by `options.kind` (options already validated and defaulted). */
  create<T = any>(kind: PluginKind, options: { kind: string; [k: string]: any }, ctx: PluginContext): T {
    return this.get(kind, options.kind).create(options, ctx) as T;
  }

  /**
   * Load third-party plugins named in a config: a path to a file or directory (resolved
   * against the config file's directory, then the current directory) or an npm package
   * name. The module exports one plugin, an array of them, or `{plugins: [...]}`.
   */
  loadPlugin(spec: string, baseDir: string, where?: string): void {
    const file = resolvePluginPath(spec, baseDir, where);
    let mod: any;
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      mod = require(file);
    } catch (e: any) {
      throw new UserError(`cannot load plugin '${spec}' (${file}): ${firstLine(e?.message)}`, where);
    }
    const exported = mod?.default ?? mod;
    const plugins: unknown[] = Array.isArray(exported)
      ? exported
      : Array.isArray(exported?.plugins)
        ? exported.plugins
        : [exported];
    for (const p of plugins) this.register(p as Plugin, spec);
  }
}

function resolvePluginPath(spec: string, baseDir: string, where?: string): string {
  const isPath = spec.startsWith('.') || spec.startsWith('/') || spec.includes(path.sep);
  if (isPath) {
    const candidates = path.isAbsolute(spec)
      ? [spec]
      : [path.resolve(baseDir, spec), path.resolve(process.cwd(), spec)];
    for (const c of candidates) {
      try {
        return require.resolve(c);
      } catch {
        /* try next */
      }
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

function checkPluginShape(p: any, source: string): void {
  const problems: string[] = [];
  if (!p || typeof p !== 'object') problems.push('does not export a plugin object');
  else {
    if (!PLUGIN_KINDS.includes(p.kind)) problems.push(`'kind' must be one of ${PLUGIN_KINDS.join(', ')} (got ${JSON.stringify(p.kind)})`);
    if (typeof p.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(p.name)) problems.push(`'name' must be a lower-case name like 'my-plugin' (got ${JSON.stringify(p.name)})`);
    if (typeof p.description !== 'string') problems.push(`'description' must be a string`);
    if (!p.schema || typeof p.schema.properties !== 'object') problems.push(`'schema.properties' must be an object of JSON Schemas`);
    else if ('kind' in p.schema.properties) problems.push(`'schema.properties' must not define 'kind' (the registry adds it)`);
    if (typeof p.create !== 'function') problems.push(`'create' must be a function`);
    for (const f of ['metrics', 'terms']) if (p[f] !== undefined && typeof p[f] !== 'function') problems.push(`'${f}' must be a function when given`);
    for (const key of ['provides', 'needs']) {
      const v = p[key];
      if (key === 'provides' && typeof v === 'function') continue;
      if (v !== undefined && (!Array.isArray(v) || v.some((c: unknown) => !(MODEL_CAPABILITIES as readonly unknown[]).includes(c)))) {
        problems.push(`'${key}' must be a list of ${MODEL_CAPABILITIES.join(', ')}${key === 'provides' ? ' (or a function of the options returning {provides})' : ''} (got ${JSON.stringify(v)})`);
      }
    }
  }
  if (problems.length) {
    throw new UserError(`invalid plugin: ${problems.join('; ')}; a plugin exports {kind, name, description, schema, create}`, source);
  }
}

function firstLine(s: unknown): string {
  return String(s ?? '').split('\n')[0];
}

export function fileExists(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
