import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { createRegistry } from '../src/builtins';
import { loadConfig } from '../src/config/load';
import { UserError } from '../src/errors';
import { tmpDir, elbo, ROOT, smallConfig, lastJson, type SchemaBranch, type RunOutput } from './helpers';
import { PLUGIN_KINDS, type PluginContext, type PluginOptions, type TrainProgress } from '../src/contracts';

test('every plugin kind has built-ins, and names are unique within a kind', () => {
  const r = createRegistry();
  for (const k of PLUGIN_KINDS) assert.ok(r.names(k).length > 0, `no ${k} plugin`);
  assert.throws(() => r.get('model', 'vea'), /unknown model 'vea'; did you mean 'vae'/);
});

test('a third-party plugin named in a config is loaded and validated like a built-in', () => {
  const r = createRegistry();
  const prev = process.cwd();
  process.chdir(ROOT);
  try {
    const { config } = loadConfig(path.join(ROOT, 'configs/mnist/vae-cyclical-beta.yaml'), [], r);
    assert.equal(r.source('schedule', 'cyclical'), './plugins/cyclical-beta');
    assert.deepEqual(config.loss.c1, { kind: 'cyclical', cycles: 4, ratio: 0.5, max: 1, min: 0 });
    // its own schema is enforced
    assert.throws(
      () => loadConfig(path.join(ROOT, 'configs/mnist/vae-cyclical-beta.yaml'), ['loss.c1.ratio=2'], createRegistry()),
      (e: unknown) => e instanceof UserError && /loss\.c1\.ratio must be <= 1/.test(e.line()),
    );
    const schedule = r.create('schedule', config.loss.c1 as PluginOptions, {} as PluginContext) as (
      p: Pick<TrainProgress, 'fraction'>,
    ) => number;
    assert.equal(schedule({ fraction: 0 }), 0);
    assert.equal(schedule({ fraction: 0.0625 }), 0.5); // halfway up the first ramp
    assert.equal(schedule({ fraction: 0.2 }), 1); // flat part of cycle 1
    assert.equal(schedule({ fraction: 0.3125 }), 0.5); // halfway up cycle 2
  } finally {
    process.chdir(prev);
  }
});

test('the plugin appears in `elbo plugins` and `elbo schema`', () => {
  const list = elbo(['plugins', 'schedule', '--config', 'configs/mnist/vae-cyclical-beta.yaml']);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /cyclical\s+Cyclical KL annealing .*\[\.\/plugins\/cyclical-beta\]/);
  assert.match(list.stdout, /ratio\s+number = 0\.5/);
  const schema = JSON.parse(elbo(['schema', '--plugin', './plugins/cyclical-beta']).stdout);
  assert.ok(schema.definitions.schedule.oneOf.some((b: SchemaBranch) => b.properties.kind.const === 'cyclical'));
  const all = elbo(['plugins']);
  for (const k of ['dataset:', 'network:', 'prior:', 'model:', 'evaluator:', 'tracker:', 'optimizer:', 'schedule:'])
    assert.ok(all.stdout.includes(k), k);
  const bad = elbo(['plugins', 'modle']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown plugin kind 'modle'; did you mean 'model'/);
});

test('broken plugins give one clear line naming the plugin', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'bad.js'), "module.exports = { kind: 'prior', name: 'Bad Name', schema: {} };");
  fs.writeFileSync(path.join(dir, 'throws.js'), "throw new Error('boom');");
  fs.writeFileSync(
    path.join(dir, 'dup.js'),
    "module.exports = { kind: 'model', name: 'vae', description: 'x', schema: {properties: {}}, create() {} };",
  );
  const cfg = (plugin: string) => {
    const f = path.join(dir, `c-${path.basename(plugin)}.yaml`);
    fs.writeFileSync(f, `plugins: [${plugin}]\ndata: {kind: mnist}\nmodel: {kind: vae}\n`);
    return f;
  };
  const shape = elbo(['validate', cfg('./bad.js')]);
  assert.equal(shape.status, 1);
  assert.match(
    shape.stderr,
    /invalid plugin: 'name' must be a lower-case name.*'description' must be a string.*'create' must be a function/,
  );
  const thrown = elbo(['validate', cfg('./throws.js')]);
  assert.match(thrown.stderr, /c-throws\.js\.yaml:1:11: cannot load plugin '\.\/throws\.js'.*boom/);
  const missing = elbo(['validate', cfg('./nowhere')]);
  assert.match(missing.stderr, /plugin '\.\/nowhere' not found/);
  const dup = elbo(['validate', cfg('./dup.js')]);
  assert.match(dup.stderr, /model plugin 'vae' is already registered by built-in/);
  for (const r of [shape, thrown, missing, dup]) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  // what a model provides and an evaluator needs: capabilities elbo knows
  const registry = createRegistry();
  // plugins as a JavaScript file may give them, wrong fields and all: `as never` lets them past the types
  const base = { kind: 'evaluator', name: 'needy', description: 'x', schema: { properties: {} }, create() {} };
  assert.throws(
    () => registry.register({ ...base, needs: ['latent', 'wings'] } as never, 'needy.js'),
    /'needs' must be a list of latent, classify, density, class-conditional \(got \["latent","wings"\]\)/,
  );
  assert.throws(() => registry.register({ ...base, kind: 'model', provides: 'latent' } as never, 'needy.js'), /'provides' must be a list/);
  registry.register({ ...base, needs: ['classify'] } as never, 'needy.js');
  assert.throws(
    () => registry.register({ ...base, name: 'checky', check: [] } as never, 'checky.js'),
    /'check' must be a function when given/,
  );
});

test("a plugin's check (rules between its options) is run when a config is validated, and located", () => {
  const registry = createRegistry();
  const schema = { properties: { lo: { type: 'number', default: 0 }, hi: { type: 'number', default: 1 } } };
  const base = { kind: 'evaluator', description: 'x', schema, create() {} } as const;
  // as a plugin file written in JavaScript would give them (nothing typed)
  const range = (o: { lo: number; hi: number }) => (o.lo < o.hi ? [] : [{ path: ['hi'], message: `hi must be above lo (${o.lo})` }]);
  const thrower = () => {
    throw new Error('boom');
  };
  registry.register({ ...base, name: 'range', check: range } as never, 'range.js');
  registry.register({ ...base, name: 'broken', check: () => 'nope' } as never, 'broken.js');
  registry.register({ ...base, name: 'thrower', check: thrower } as never, 'thrower.js');
  const dir = tmpDir();
  const cfg = path.join(dir, 'c.yaml');
  const load = (ev: string) => {
    fs.writeFileSync(cfg, `data: {kind: mnist}\nmodel: {kind: vae}\neval:\n  - kind: elbo\n  - ${ev}\n`);
    return () => loadConfig(cfg, [], registry);
  };
  load('{kind: range, lo: 0, hi: 2}')();
  // one located line
  assert.throws(load('{kind: range, lo: 3, hi: 2}'), (e: UserError) => /^[^\n]*c\.yaml:5:30: hi must be above lo \(3\)$/.test(e.line()));
  assert.throws(
    load('{kind: broken}'),
    /evaluator plugin 'broken': its check must return a list of \{path, message\} \(got string "nope"\)/,
  );
  assert.throws(load('{kind: thrower}'), /evaluator plugin 'thrower': its check of these options failed: boom/);
});

test('plugins that break the contract are named with what they broke; one that prints while loading keeps --json one line', () => {
  const dir = tmpDir();
  const ev = (name: string, extra: string) =>
    `{ kind: 'evaluator', name: '${name}', description: 'x', schema: { properties: {} }, create: () => ({ run: async () => ({ metrics: {} }) }), ${extra} }`;
  const files: Record<string, string> = {
    'terms-number.js':
      "module.exports = { kind: 'model', name: 'numbers', description: 'x', schema: { properties: {} }, termNames: () => 3, create() {} };",
    'old-terms.js':
      "module.exports = { kind: 'model', name: 'old-terms', description: 'x', schema: { properties: {} }, terms: () => ['loss'], create() {} };",
    'old-provides.js':
      "module.exports = { kind: 'model', name: 'old-provides', description: 'x', schema: { properties: {} }, provides: () => ({ provides: ['latent'] }), create() {} };",
    'metrics-string.js': `module.exports = ${ev('stringy', "metrics: () => 'test/x'")};`,
    'getter.js': `const p = ${ev('getter', '')}; Object.defineProperty(p, 'description', { get() { throw new Error('getter boom'); }, enumerable: true }); module.exports = p;`,
    'throws-null.js': 'throw null;',
    'chatty.js': `console.log('hello from a plugin'); process.stdout.write('more\\n'); module.exports = ${ev('chatty', "metrics: () => ['chat']")};`,
  };
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  const cfg = (plugin: string, rest = 'data: {kind: mnist}\nmodel: {kind: vae}\n') => {
    const f = path.join(dir, `c-${plugin}.yaml`);
    fs.writeFileSync(f, `plugins: [./${plugin}]\n${rest}`);
    return f;
  };
  const expect: [string, string, RegExp][] = [
    [
      'terms-number.js',
      'data: {kind: mnist}\nmodel: {kind: numbers}\ntrain: {select: {metric: val/elbo}}\n',
      /terms-number\.js: model plugin 'numbers': termNames\(\) must return a list of metric names \(strings\), got number 3/,
    ],
    // the names a plugin declared its terms and capabilities with before they were told apart from what a model computes
    [
      'old-terms.js',
      'data: {kind: mnist}\nmodel: {kind: old-terms}\n',
      /old-terms\.js: invalid plugin: 'terms' is now 'termNames' \(the names of the loss terms; the model it creates computes them in terms\(batch, w, rng, progress\)\)/,
    ],
    [
      'old-provides.js',
      'data: {kind: mnist}\nmodel: {kind: old-provides}\n',
      /old-provides\.js: invalid plugin: 'provides' is a list; a function of the options returning \{provides, why\} is now 'capabilities'/,
    ],
    [
      'metrics-string.js',
      'data: {kind: mnist}\nmodel: {kind: vae}\neval: [{kind: stringy}]\npublished: [{metric: test/x, value: 1, source: s}]\n',
      /metrics-string\.js: evaluator plugin 'stringy': metrics\(\) must return a list of metric names \(strings\) or null, got the string "test\/x"/,
    ],
    [
      'getter.js',
      'data: {kind: mnist}\nmodel: {kind: vae}\n',
      /getter\.js: invalid plugin: reading what it exports failed: getter boom; the problem is in the plugin/,
    ],
    ['throws-null.js', 'data: {kind: mnist}\nmodel: {kind: vae}\n', /cannot load plugin '\.\/throws-null\.js' .*: it threw null/],
  ];
  for (const [plugin, rest, pattern] of expect) {
    const r = elbo(['validate', cfg(plugin, rest)]);
    assert.equal(r.status, 1, `${plugin}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // printing while loading: on stderr, and stdout stays one JSON line
  const chatty = elbo(['validate', cfg('chatty.js', 'data: {kind: mnist}\nmodel: {kind: vae}\neval: [{kind: chatty}]\n'), '--json']);
  assert.equal(chatty.status, 0, chatty.stderr);
  assert.equal(chatty.stdout.trim().split('\n').length, 1, chatty.stdout);
  assert.equal(JSON.parse(chatty.stdout).ok, true);
  assert.match(chatty.stderr, /hello from a plugin/);
});

test("an exception inside a plugin model's terms() while training names the plugin and its file, and the run is FAILED", () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  fs.writeFileSync(
    path.join(dir, 'boom.js'),
    `module.exports = { kind: 'model', name: 'boom', description: 'throws in its loss', schema: { properties: {} },
  create(o, ctx) {
    const w = ctx.tf.variable(ctx.tf.zeros([2]));
    const m = { params: new Map([['w', w]]), latent: 1, terms() { throw new Error('the loss blew up'); },
      encodeMean: (x) => x, reconstruct: (x) => x, decode: (z) => z, sampleLatent: () => null };
    return m;
  } };`,
  );
  const r = elbo([
    'run',
    cfg,
    '--runs-dir',
    path.join(dir, 'runs'),
    '--set',
    'plugins=[./boom.js]',
    '--set',
    'model={kind: boom}',
    '--set',
    'eval=[]',
    '--set',
    'train.epochs=1',
    '--json',
  ]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /boom\.js: model plugin 'boom' failed in its model's terms \(the loss\): the loss blew up; the problem is in the plugin, not in elbo/,
  );
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.equal(lastJson<RunOutput>(r.stdout).status, 'FAILED');
});
