import { UserError } from '../errors';
import { isMapping } from '../util/mapping';

/**
 * Dotted key paths (`model.encoder.hidden`, `eval.1.k`) as `--set` flags and sweep files
 * write them: one parser and one setter for both, so neither can reach a property that a
 * config cannot have (`__proto__`, `constructor`, a negative or far-away list index, a
 * key on a list).
 */

/** Names that would reach an object's prototype instead of a config key. */
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

export type KeyPath = (string | number)[];

/**
 * `a.b.0.c` → ['a', 'b', 0, 'c']. Segments are names (letters, digits, `_`, `-`, not
 * starting with `-`) or list indices (digits); anything else is a located error.
 */
export function parseKeyPath(key: string, where: string): KeyPath {
  if (!key) throw new UserError('empty key: use dotted names such as train.epochs or eval.0.k', where);
  return key.split('.').map((seg) => {
    if (/^(0|[1-9]\d*)$/.test(seg)) {
      const n = Number(seg);
      if (!Number.isSafeInteger(n)) throw new UserError(`list index ${seg} in '${key}' is too large`, where);
      return n;
    }
    if (/^-\d+$/.test(seg)) throw new UserError(`'${seg}' in '${key}' is not a list index: indices count from 0 (eval.0.k)`, where);
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) {
      throw new UserError(
        `bad key '${key}': use dotted names such as train.epochs or eval.0.k (segment '${seg}' is neither a name nor an index)`,
        where,
      );
    }
    if (FORBIDDEN.has(seg)) throw new UserError(`'${seg}' in '${key}' is not a config key`, where);
    return seg;
  });
}

function describe(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

/**
 * Set `value` at `p` inside `obj`. A missing section is created: a list when the next
 * segment is an index (only index 0 of a new list), else a mapping, which starts with the
 * `kind` the defaulted config has there (so `--set model.encoder.hidden=[64]` means the
 * default network). In a list, an index may address an item or append one (index =
 * length); a name on a list, or an index past its end, is a located error.
 */
export function setAtPath(obj: Record<string, unknown>, p: KeyPath, value: unknown, where: string, defaults?: unknown): void {
  let cur: unknown = obj;
  let dflt = defaults;
  const shown = (i: number) => p.slice(0, i).join('.') || 'the top level';
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    const last = i === p.length - 1;
    if (Array.isArray(cur)) {
      if (typeof seg !== 'number') {
        throw new UserError(`'${shown(i)}' is a list: address an item by its index (${shown(i)}.0.${seg}), not by '${seg}'`, where);
      }
      if (seg > cur.length) {
        throw new UserError(
          `'${shown(i)}' has ${cur.length} item${cur.length === 1 ? '' : 's'}${cur.length ? ` (${shown(i)}.0 … ${shown(i)}.${cur.length - 1})` : ''}; ${shown(i)}.${cur.length} adds one, ${shown(i)}.${seg} is past the end`,
          where,
        );
      }
    } else if (cur === null || typeof cur !== 'object') {
      throw new UserError(`'${shown(i)}' is ${describe(cur)}, not a section`, where);
    }
    const key = Array.isArray(cur) ? (seg as number) : String(seg);
    // a list (indexed by number) or a mapping (by name), as checked above
    const section = cur as Record<string | number, unknown>;
    if (last) {
      section[key] = value;
      return;
    }
    dflt =
      dflt !== null && typeof dflt === 'object' && Object.prototype.hasOwnProperty.call(dflt, key)
        ? (dflt as Record<string | number, unknown>)[key]
        : undefined;
    const has = Object.prototype.hasOwnProperty.call(section, key);
    if (!has || section[key] === undefined || section[key] === null) {
      const next = p[i + 1];
      // (a truthy default that is not a mapping has no kind: reading it gives undefined)
      const kind = dflt ? (dflt as { kind?: unknown }).kind : undefined;
      section[key] = typeof next === 'number' ? [] : typeof kind === 'string' ? { kind } : {};
    }
    cur = section[key];
  }
}

/**
 * Delete the key (or list item) at `p` inside `obj`: `--set ~model.m1` (Hydra's `~key`). A
 * missing key is a located error, so a typo never passes as a deletion; a deleted list item
 * moves the ones after it up.
 */
export function deleteAtPath(obj: Record<string, unknown>, p: KeyPath, where: string): void {
  let cur: unknown = obj;
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    const last = i === p.length - 1;
    if (Array.isArray(cur) && typeof seg === 'number' && seg < cur.length) {
      if (last) cur.splice(seg, 1);
      else cur = cur[seg];
    } else if (isMapping(cur) && Object.prototype.hasOwnProperty.call(cur, String(seg))) {
      const map = cur as Record<string, unknown>;
      if (last) delete map[String(seg)];
      else cur = map[String(seg)];
    } else {
      throw new UserError(
        `'${p.join('.')}' is not in the config, so there is nothing to delete (elbo run CONFIG --print-config shows what is)`,
        where,
      );
    }
  }
}
