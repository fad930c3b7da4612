import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { createRegistry } from '../src/builtins';
import { buildSchema } from '../src/config/schema';
import { loadConfig } from '../src/config/load';
import { UserError } from '../src/errors';
import { definePlugin, Enum, Type, slot } from '../src/registry/define';
import { Rng } from '../src/runtime/rng';
import { getTf } from '../src/runtime/tf';
import { STANDARD_WEIGHTS } from '../src/registry/weights';
import { tmpDir, elbo, tinyDataSet } from './helpers';
import type { PluginOptions } from '../src/contracts';

test('definePlugin: the schema is the one source of the options (required = neither optional nor defaulted)', () => {
  const p = definePlugin({
    kind: 'evaluator',
    name: 'probe',
    description: 'x',
    options: {
      n: Type.Integer({ minimum: 1, default: 3 }),
      mode: Enum(['a', 'b'], { default: 'a' }),
      path: Type.String(),
      note: Type.Optional(Type.String()),
      net: slot('network', { default: { kind: 'mlp' } }),
    },
    create: (o) => {
      // the types derived from the schema: these lines only compile if they are right
      const n: number = o.n;
      const mode: 'a' | 'b' = o.mode;
      const file: string = o.path;
      const note: string | undefined = o.note;
      const net: PluginOptions = o.net;
      return { run: async () => ({ n, mode: mode === 'a' ? 0 : 1, file: file.length, note: note ? 1 : 0, net: net.kind.length }) };
    },
  });
  assert.deepEqual(p.schema.required, ['path']);
  assert.deepEqual(JSON.parse(JSON.stringify(p.schema.properties.mode)), { enum: ['a', 'b'], default: 'a' });
  assert.deepEqual(JSON.parse(JSON.stringify(p.schema.properties.net)), { $ref: '#/definitions/network', default: { kind: 'mlp' } });
  // the registry fills in defaults before create, also for options that did not come through a config
  const r = createRegistry();
  r.register(p);
  const ev = r.create('evaluator', { kind: 'probe', path: 'abc' }, { tf: getTf(), registry: r, rng: new Rng(0), baseDir: '.' });
  return ev.run({} as never).then((out) => assert.deepEqual(out, { n: 3, mode: 0, file: 3, note: 0, net: 3 }));
});

test('a created instance is checked against its kind: a prior without paramsPerLatent names kind, plugin and file', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'broken-prior.js');
  // a prior that forgets paramsPerLatent (it would otherwise die as "shape [B, NaN]" deep in the encoder)
  fs.writeFileSync(
    file,
    `module.exports = { kind: 'prior', name: 'broken', description: 'x', schema: { properties: {} },
       create: () => ({ kl() {}, sample() {}, mean() {}, sampleFromPrior() {} }) };\n`,
  );
  const r = createRegistry();
  r.loadPlugin(file, dir);
  const data = tinyDataSet({ shape: [6] });
  const tf = getTf();
  await assert.rejects(
    async () => r.create('model', { kind: 'vae', latent: 2, prior: { kind: 'broken' }, encoder: { kind: 'mlp', hidden: [4] }, decoder: { kind: 'mlp', hidden: [4] }, likelihood: 'bernoulli' }, { tf, registry: r, rng: new Rng(0), baseDir: dir, data }),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.where, file);
      assert.match(e.message, /^prior plugin 'broken' \(.*broken-prior\.js\) created an invalid prior: it lacks paramsPerLatent \(an integer ≥ 1, got undefined\)/);
      return true;
    },
  );
  // the same through the CLI: one line, at the plugin's file, no stack trace
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, `plugins: [./broken-prior.js]\ndata: {kind: mnist, max_train: 50, validation: 0}\nmodel: {kind: vae, latent: 2, prior: {kind: broken}}\ntrain: {epochs: 1}\neval: []\n`);
  const out = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--backend', 'cpu']);
  assert.equal(out.status, 1, out.stderr);
  assert.match(out.stderr, /broken-prior\.js: prior plugin 'broken' \(.*\) created an invalid prior: it lacks paramsPerLatent/);
  assert.doesNotMatch(out.stderr, /\n\s+at /);
});

test('loss weights by name: the loss section comes from the models\' declarations; a name means one thing', () => {
  const r = createRegistry();
  const loss = buildSchema(r).properties as Record<string, { properties: Record<string, { default: number }> }>;
  assert.deepEqual(Object.keys(loss.loss.properties).sort(), ['alpha', 'c1', 'c2']);
  for (const [n, d] of Object.entries(STANDARD_WEIGHTS)) assert.equal(loss.loss.properties[n].default, d.default);
  assert.deepEqual(Object.keys(r.get('model', 'vae').weights!), ['c1', 'c2']);
  assert.deepEqual(Object.keys(r.get('model', 'm2').weights!), ['c1', 'c2', 'alpha']);
  // a model with a new weight: one declaration, and the config takes it (a number or a schedule)
  const base = { kind: 'model' as const, description: 'x', schema: { properties: {} }, create: () => { throw new Error('not built here'); } };
  r.register({ ...base, name: 'tc-vae', weights: { c1: STANDARD_WEIGHTS.c1, beta_tc: { default: 6, description: 'Total-correlation weight' } } });
  const dir = tmpDir();
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, 'data: {kind: mnist}\nmodel: {kind: tc-vae}\nloss: {beta_tc: {kind: linear, from: 0, to: 6}}\n');
  const { config } = loadConfig(cfg, [], r);
  assert.deepEqual(config.loss.beta_tc, { kind: 'linear', from: 0, to: 6, start_epoch: 0, end_epoch: 10 });
  assert.equal(config.loss.c1, 1);
  assert.throws(() => loadConfig(cfg, ['loss.beta_tcc=1'], r), /unknown key 'beta_tcc' in loss; did you mean 'beta_tc'/);
  // the same name with another default is refused where the plugin is registered
  assert.throws(
    () => r.register({ ...base, name: 'other', weights: { c1: { default: 0.5, description: 'KL' } } }, 'other.js'),
    (e: unknown) => e instanceof UserError && e.where === 'other.js' && /loss weight 'c1': it is already declared with default 1/.test(e.message),
  );
});
