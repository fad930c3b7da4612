import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { createRegistry } from '../../builtins';
import { modelCapabilities } from '../../config/needs';
import { UserError, suggestion } from '../../errors';
import { PLUGIN_KINDS, PluginKind, JsonSchema, Plugin, type PluginRegistry } from '../../contracts';

export default class Plugins extends BaseCommand {
  static summary = 'List registered plugins (built in, and those a config loads) with their options';
  static examples = [
    '<%= config.bin %> plugins',
    '<%= config.bin %> plugins model',
    '<%= config.bin %> plugins --config configs/mnist/vae-cyclical-beta.yaml',
  ];
  static args = { kind: Args.string({ description: `One of: ${PLUGIN_KINDS.join(', ')}`, required: false }) };
  static flags = {
    config: Flags.string({ description: 'Also load the third-party plugins this config names' }),
    plugin: Flags.string({ description: 'Also load this plugin (path or package); repeatable', multiple: true, default: [] }),
    json: Flags.boolean({ description: 'Machine-readable output', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Plugins);
    if (args.kind && !PLUGIN_KINDS.includes(args.kind as PluginKind)) {
      throw new UserError(`unknown plugin kind '${args.kind}'${suggestion(args.kind, [...PLUGIN_KINDS])}`, 'elbo plugins');
    }
    const registry = createRegistry();
    if (flags.config) loadPluginsOf(flags.config, registry);
    for (const p of flags.plugin) registry.loadPlugin(p, process.cwd(), `--plugin ${p}`);
    const entries = registry.list(args.kind as PluginKind | undefined);
    if (flags.json) {
      process.stdout.write(
        JSON.stringify(
          entries.map(({ plugin, source }) => ({
            kind: plugin.kind,
            name: plugin.name,
            description: plugin.description,
            source,
            backends: plugin.backends ?? 'all',
            ...(plugin.provides || plugin.capabilities ? { provides: shownProvides(plugin, registry) } : {}),
            ...(plugin.needs ? { needs: plugin.needs } : {}),
            ...(plugin.weights ? { weights: plugin.weights } : {}),
            options: plugin.schema,
          })),
        ) + '\n',
      );
      return;
    }
    let kind = '';
    const out: string[] = [];
    for (const { plugin, source } of entries) {
      if (plugin.kind !== kind) {
        kind = plugin.kind;
        out.push(`${out.length ? '\n' : ''}${kind}:`);
      }
      const from = source === 'built-in' ? '' : `  [${source}]`;
      const backends = plugin.backends ? `  (backends: ${plugin.backends.join(', ')})` : '';
      const caps =
        plugin.provides || plugin.capabilities
          ? `  (provides: ${shownProvides(plugin, registry).join(', ') || 'nothing'}${plugin.capabilities ? ' with the default options' : ''})`
          : plugin.needs?.length
            ? `  (needs: ${plugin.needs.join(', ')})`
            : '';
      out.push(`  ${plugin.name.padEnd(16)} ${plugin.description}${backends}${caps}${from}`);
      // the loss weights a model reads (config loss.<name>)
      if (plugin.weights)
        out.push(
          `      ${'loss weights'.padEnd(16)} ${
            Object.keys(plugin.weights)
              .map((n) => `${n} = ${plugin.weights![n].default}`)
              .join(', ') || 'none'
          }`,
        );
      for (const [name, s] of Object.entries(plugin.schema.properties))
        out.push(`      ${name.padEnd(16)} ${describeOption(s, (plugin.schema.required ?? []).includes(name))}`);
    }
    process.stdout.write(out.join('\n') + '\n');
  }
}

/** What a plugin provides; for one whose answer depends on its options, with its defaults. */
function shownProvides(plugin: Plugin, registry: PluginRegistry): string[] {
  if (!plugin.capabilities) return plugin.provides ?? [];
  const defaults = Object.fromEntries(
    Object.entries(plugin.schema.properties)
      .filter(([, s]) => s.default !== undefined)
      .map(([k, s]) => [k, s.default]),
  );
  return modelCapabilities(plugin, { kind: plugin.name, ...defaults }, registry)?.provides ?? [];
}

/** Load only the `plugins:` of a config (it need not be valid otherwise). */
function loadPluginsOf(file: string, registry: ReturnType<typeof createRegistry>): void {
  const fs = require('fs') as typeof import('fs');
  const path = require('path') as typeof import('path');
  const YAML = require('yaml') as typeof import('yaml');
  // whatever YAML the file holds: only a mapping's plugins: is read
  let data: { plugins?: unknown } | null | undefined;
  try {
    data = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read config: ${String((e as Error).message).split('\n')[0]}`, file);
  }
  for (const spec of Array.isArray(data?.plugins) ? data.plugins : [])
    registry.loadPlugin(String(spec), path.dirname(path.resolve(file)), file);
}

/** An option's type as `elbo plugins` prints it: a number or a schedule (a loss weight, a learning rate) reads `number|schedule`. */
export function describeOption(s: JsonSchema, required: boolean): string {
  const ref = (r: unknown) => String(r).split('/').pop();
  const numberOrSchedule = s.$ref === '#/definitions/weight' || (s.if && ref((s.then as JsonSchema | undefined)?.$ref) === 'schedule');
  const t = numberOrSchedule
    ? 'number|schedule'
    : s.enum
      ? (s.enum as unknown[]).join('|')
      : s.$ref
        ? `${ref(s.$ref)} plugin`
        : s.type === 'array'
          ? `list of ${(s.items as JsonSchema | undefined)?.type ?? 'values'}`
          : String(s.type ?? 'value');
  const dflt = s.default !== undefined ? ` = ${JSON.stringify(s.default)}` : required ? ' (required)' : '';
  const desc = s.description ? `  ${s.description}` : '';
  return `${t}${dflt}${desc}`;
}
