import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { UserError, UserErrors } from '../src/errors';
import { tmpDir, elbo } from './helpers';

/**
 * Property-based fuzzing of config loading (fast-check, seeded): configs built from the
 * real keys with hostile values, text-level mutations of a valid file, and `--set` flags
 * with hostile paths and values. Whatever comes in, loadConfig either returns a config or
 * throws a UserError every line of which says where: FILE:LINE:COL, the --set flag, or a
 * path; never another exception, and nothing lands on Object.prototype.
 */

const SEED = 20261130;
const RUNS = 300;

const VALID = `experiment: fuzz
seed: 3
data: {kind: mnist, validation: 100, max_train: 200}
model:
  kind: vae
  latent: 4
  prior: {kind: gaussian}
  encoder: {kind: mlp, hidden: [16]}
  decoder: {kind: mlp, hidden: [16]}
loss: {c1: 1, c2: 1, alpha: 0}
train: {epochs: 1, batch_size: 50, optimizer: {kind: adam, lr: 0.001}}
eval:
  - {kind: elbo}
  - {kind: iwae, k: 5}
published: []
`;

/** Keys a config has (and some it must not), as dotted paths. */
const PATHS = [
  'experiment',
  'seed',
  'backend',
  'data',
  'data.kind',
  'data.validation',
  'data.max_train',
  'data.labelled',
  'data.binarize',
  'data.path',
  'model',
  'model.kind',
  'model.latent',
  'model.prior',
  'model.prior.kind',
  'model.prior.logvar_min',
  'model.prior.logvar_max',
  'model.prior.c',
  'model.prior.alpha',
  'model.encoder',
  'model.encoder.hidden',
  'model.encoder.hidden.0',
  'model.decoder.activation',
  'model.likelihood',
  'loss',
  'loss.c1',
  'loss.c1.kind',
  'loss.c1.from',
  'loss.c1.end_epoch',
  'loss.c2',
  'loss.alpha',
  'train',
  'train.epochs',
  'train.batch_size',
  'train.optimizer',
  'train.optimizer.kind',
  'train.optimizer.lr',
  'train.select',
  'train.select.metric',
  'train.log_every',
  'train.steps_per_epoch',
  'eval',
  'eval.0',
  'eval.0.kind',
  'eval.1.k',
  'eval.2',
  'eval.2.kind',
  'eval.99.k',
  'eval.-1.k',
  'eval.kind',
  'published',
  'published.0',
  'published.0.metric',
  'published.0.value',
  'tracking',
  'tracking.0.kind',
  '__proto__',
  '__proto__.x',
  'constructor.prototype.x',
  'model.__proto__.y',
  'prototype',
  'x',
  'sweep',
  '',
  '.',
  'a..b',
  'model.',
  '0',
  'data.0',
];

/** YAML scalars and snippets, including the hostile ones. */
const SNIPPETS = [
  '.inf',
  '-.inf',
  '.nan',
  '1e309',
  '-1',
  '0',
  '1',
  '3',
  '2.5',
  '1e-300',
  '4294967296',
  '9007199254740993',
  '-0',
  '0x1F',
  'null',
  '~',
  'true',
  "''",
  '""',
  'mnist',
  'vae',
  'gaussian',
  'spike-slab',
  'iwae',
  'linear',
  'adam',
  '[]',
  '{}',
  '[.inf]',
  '[1, 2]',
  '[-1]',
  '{kind: gaussian, logvar_min: 30}',
  '{kind: spike-slab, c: -3}',
  '{kind: linear, start_epoch: 5, end_epoch: 1}',
  '{kind: iwae, k: .nan}',
  '[{kind: elbo}, {kind: iwae}]',
  '*x',
  '&a [1, *a]',
  '!!binary aGVsbG8=',
  '!!js/function "function(){}"',
  '!!timestamp 2001-12-14',
  '{a: 1, a: 2}',
  '[[[[[[]]]]]]',
  "'a'",
  '"\\u0000"',
  '{__proto__: {x: 1}}',
  '{constructor: {prototype: {x: 1}}}',
  'val/elbo',
  'test/elbo',
  '|\n  text',
  '- a\n- b',
  'x'.repeat(300),
  // unicode and emoji keys and values, control characters, very long strings
  '🦜: 1',
  'modèle: vae',
  '{🦜: 1}',
  'ключ',
  '"\u001b[31mred"',
  '"a\rb"',
  '"\t"',
  'x'.repeat(70_000),
  `"${'é'.repeat(5_000)}"`,
];

/** A JSON-ish value with the numbers validation must refuse. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(
      Infinity,
      -Infinity,
      NaN,
      -1,
      0,
      1,
      2,
      // eslint-disable-next-line no-loss-of-precision -- deliberately overflows to Infinity
      1e309,
      2 ** 32,
      1e12,
      0.5,
      -0.5,
      null,
      true,
      false,
      '',
      'mnist',
      'vae',
      'gaussian',
      'iwae',
      'elbo',
      'x',
    ),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 12 }),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(
      fc.constantFrom('kind', 'k', 'hidden', 'from', 'to', 'end_epoch', 'start_epoch', 'lr', 'metric', 'value', 'source', '__proto__', 'x'),
      tie('v'),
      { maxKeys: 3 },
    ),
  ),
})).v;

/** Set `v` at a dotted path in a plain object (what a YAML file could say there). */
function place(obj: Record<string, unknown>, dotted: string, v: unknown): void {
  const segs = dotted.split('.').filter(Boolean);
  if (!segs.length) return;
  let cur = obj;
  for (const s of segs.slice(0, -1)) {
    const own = Object.prototype.hasOwnProperty.call(cur, s);
    if (!own || cur[s] === null || typeof cur[s] !== 'object')
      Object.defineProperty(cur, s, { value: {}, enumerable: true, writable: true, configurable: true });
    cur = cur[s] as Record<string, unknown>; // an object: made one above if it was not
  }
  Object.defineProperty(cur, segs[segs.length - 1], { value: v, enumerable: true, writable: true, configurable: true });
}

/** YAML text of a mutated valid config (values placed at real and hostile paths). */
const structured = fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { maxLength: 4 }).map((edits) => {
  const obj = require('yaml').parse(VALID);
  for (const [p, v] of edits) place(obj, p, v);
  return stringify(obj, { lineWidth: 0 });
});

/** Text-level damage to a valid file: a line replaced, inserted or cut, characters spliced in. */
const textual = fc
  .tuple(
    fc.nat(30),
    fc.constantFrom('replace', 'insert', 'cut', 'splice'),
    fc.oneof(fc.constantFrom(...SNIPPETS), fc.string({ maxLength: 20 })),
    fc.nat(40),
  )
  .map(([line, how, text, col]) => {
    const lines = VALID.split('\n');
    const i = line % lines.length;
    if (how === 'replace') lines[i] = `${lines[i].split(':')[0]}: ${text}`;
    else if (how === 'insert') lines.splice(i, 0, text);
    else if (how === 'cut') lines[i] = lines[i].slice(0, col % (lines[i].length + 1));
    else lines[i] = lines[i].slice(0, col) + text + lines[i].slice(col);
    return lines.join('\n');
  });

const flag = fc
  .tuple(
    fc.oneof(fc.constantFrom(...PATHS), fc.string({ maxLength: 10 })),
    fc.oneof(fc.constantFrom(...SNIPPETS), fc.string({ maxLength: 12 })),
    fc.boolean(),
  )
  .map(([k, v, eq]) => (eq ? `${k}=${v}` : k + v));

/** How the file's bytes are laid out: as written, with a BOM, CRLF or CR-only line endings. */
const layout = fc
  .constantFrom('as-is', 'bom', 'crlf', 'cr')
  .map(
    (how) => (t: string) =>
      how === 'bom' ? '\uFEFF' + t : how === 'crlf' ? t.replace(/\n/g, '\r\n') : how === 'cr' ? t.replace(/\n/g, '\r') : t,
  );

const caseArb = fc
  .record({ text: fc.oneof(structured, textual, fc.constant(VALID)), sets: fc.array(flag, { maxLength: 3 }), layout })
  .map(({ text, sets, layout: lay }) => ({ text: lay(text), sets }));

/** Every line of a UserError says where: FILE:LINE:COL, the --set flag, or a path. */
function checkLocated(e: UserError, file: string): void {
  const lines = e instanceof UserErrors ? e.errors : [e];
  assert.ok(lines.length >= 1);
  for (const l of lines) {
    assert.ok(!(l instanceof UserErrors), 'nested UserErrors');
    const w = l.where ?? '';
    const ok =
      new RegExp(`^${escape(file)}:\\d+:\\d+$`).test(w) ||
      w.startsWith('--set ') ||
      w === file ||
      path.isAbsolute(w) ||
      /^data \(|^model|^eval|^train/.test(w);
    assert.ok(ok, `not located: '${l.line()}'`);
    assert.ok(!/\n\s+at .*:\d+:\d+\)?$/m.test(l.message), `a stack trace in: ${l.message}`);
    assert.ok(!/got (number )?null\b.*\.inf|undefined undefined/.test(l.message), `unhelpful: ${l.message}`);
    // one line a terminal shows as it is: no raw control characters, no endless word
    const shown = l.line();
    assert.ok(!/[\u0000-\u001f\u007f]/.test(shown), `a control character in: ${JSON.stringify(shown)}`);
    assert.ok(shown.length < 5_000, `a ${shown.length}-character error line`);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test(`fuzz: ${RUNS} seeded configs and --set flags load or give located one-line errors, never an internal error`, () => {
  const dir = tmpDir('elbo-fuzz-');
  const file = path.join(dir, 'fuzz.yaml');
  const shown = path.relative(process.cwd(), file).startsWith('..') ? path.resolve(file) : path.relative(process.cwd(), file);
  const registry = createRegistry();
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();
  let valid = 0;
  let refused = 0;
  const details = fc.check(
    fc.property(caseArb, ({ text, sets }) => {
      fs.writeFileSync(file, text);
      try {
        loadConfig(file, sets, registry);
        valid++;
      } catch (e) {
        if (!(e instanceof UserError)) throw new Error(`internal error for ${JSON.stringify({ text, sets })}: ${(e as Error)?.stack ?? e}`);
        checkLocated(e, shown);
        refused++;
      }
      assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(), protoKeys, 'Object.prototype was written');
      assert.equal(({} as Record<string, unknown>).x, undefined);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  if (details.failed)
    assert.fail(
      `case ${details.numRuns}: ${(details.errorInstance as Error)?.message ?? details.errorInstance}\n${JSON.stringify(details.counterexample)}`,
    );
  assert.equal(valid + refused, RUNS);
  assert.ok(valid > 0 && refused > RUNS / 2, `valid ${valid}, refused ${refused}`);
});

test('fuzz through the CLI: a few generated cases exit 0 or 1 with no stack trace', () => {
  const dir = tmpDir('elbo-fuzz-cli-');
  const cases = fc.sample(caseArb, { seed: SEED + 1, numRuns: 4 });
  cases.forEach(({ text, sets }, i) => {
    const file = path.join(dir, `c${i}.yaml`);
    fs.writeFileSync(file, text);
    const r = elbo(['validate', file, ...sets.flatMap((s) => ['--set', s])]);
    assert.ok(r.status === 0 || r.status === 1 || (r.status === 2 && /^validate: /.test(r.stderr)), `exit ${r.status}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at .*\.js:\d+/);
  });
});
