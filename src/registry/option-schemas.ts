/**
 * Option schemas that validate nothing they hold. `{type: 'object'}` alone accepts any
 * keys: a nested network written `encoder: {type: 'object'}` lets `encoder: {hiddn: [256]}`
 * through validation, and the model trains on the network's defaults without a word. The
 * registry refuses such an option when a plugin is registered: another plugin's options
 * are `{$ref: '#/definitions/network'}` (prior, dataset, ...), an object of the plugin's
 * own lists its properties.
 */

import { isMapping } from '../util/mapping';

/** Keywords that say what an object holds (or defer to a schema that does). */
const STATES_CONTENTS = [
  'properties',
  'patternProperties',
  'additionalProperties',
  'unevaluatedProperties',
  '$ref',
  'allOf',
  'anyOf',
  'oneOf',
  'then',
  'else',
  'const',
  'enum',
];

/** Keywords whose value is one schema a value (or a part of it) must match. */
const ONE_SCHEMA = ['additionalProperties', 'items', 'then', 'else', 'contains', 'unevaluatedProperties'];
/** Keywords whose value is a list of such schemas, and those whose value maps names to them. */
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const SCHEMA_MAPS = ['properties', 'patternProperties'];

function isObjectType(s: Record<string, unknown>): boolean {
  return s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'));
}

/**
 * The path of the first schema in `schema` (an option's) that is an object and states
 * nothing of its contents (`encoder`, `stages[]`, `layout.inner`), or null when there is none.
 * `if` is a condition, not a value's schema: it is not looked into.
 */
export function looseObjectOption(schema: unknown, path: string): string | null {
  if (!isMapping(schema)) return null;
  if (isObjectType(schema) && !STATES_CONTENTS.some((k) => schema[k] !== undefined)) return path;
  for (const k of SCHEMA_MAPS) {
    const m = schema[k];
    if (!isMapping(m)) continue;
    for (const [name, sub] of Object.entries(m)) {
      const found = looseObjectOption(sub, `${path}.${name}`);
      if (found) return found;
    }
  }
  for (const k of SCHEMA_LISTS) {
    const list = schema[k];
    if (!Array.isArray(list)) continue;
    for (const sub of list) {
      const found = looseObjectOption(sub, k === 'items' || k === 'prefixItems' ? `${path}[]` : path);
      if (found) return found;
    }
  }
  for (const k of ONE_SCHEMA) {
    const found = isMapping(schema[k]) ? looseObjectOption(schema[k], k === 'items' || k === 'contains' ? `${path}[]` : path) : null;
    if (found) return found;
  }
  return null;
}
