/**
 * Writing a plugin in TypeScript: `definePlugin` derives the options type from the schema
 * (TypeBox), and the helpers below write the option schemas a config validates. The
 * contracts themselves (Plugin, the contexts, what each kind makes) are in src/contracts/.
 */
import { OptionalKind, Type, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';
import {
  CONFIG_PATH_KEYWORD,
  type JsonSchema,
  type KindInstances,
  type OptionsSchema,
  type Plugin,
  type PluginKind,
  type PluginOptions,
} from '../contracts';

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
export function withOptionDefaults<O extends PluginOptions>(
  plugin: Plugin<PluginKind, O, never> | { schema: OptionsSchema },
  options: PluginOptions | (Partial<O> & { kind: string }),
): O {
  const out: Record<string, unknown> = { ...options };
  for (const [k, s] of Object.entries(plugin.schema.properties)) {
    const d = (s as { default?: unknown }).default;
    if (out[k] === undefined && d !== undefined) out[k] = structuredClone(d);
  }
  return out as O;
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

/**
 * A file or directory read relative to the config file (`path.resolve(ctx.baseDir, value)`):
 * a relative one that a base config gave is rewritten to the extending config's directory.
 */
export function ConfigPath(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({
    type: 'string',
    [CONFIG_PATH_KEYWORD]: true,
    description: `${description}; relative to the config file that gives it`,
  });
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
