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
import { Registry } from '../src/registry/registry';
import { installedBackends } from '../src/runtime/backend';
import { tmpDir, elbo, tinyDataSet, smallConfig, lastJson, type RunOutput } from './helpers';
import { END_OF_TRAINING, type Plugin, type PluginOptions } from '../src/contracts';

const needsNative = installedBackends().includes('tensorflow')
  ? {}
  : { skip: 'the tensorflow backend is not installed here (npm run setup:native builds it)' };

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
    async () =>
      r.create(
        'model',
        {
          kind: 'vae',
          latent: 2,
          prior: { kind: 'broken' },
          encoder: { kind: 'mlp', hidden: [4] },
          decoder: { kind: 'mlp', hidden: [4] },
          likelihood: 'bernoulli',
        },
        { tf, registry: r, rng: new Rng(0), baseDir: dir, data },
      ),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.where, file);
      assert.match(
        e.message,
        /^prior plugin 'broken' \(.*broken-prior\.js\) created an invalid prior: it lacks paramsPerLatent \(an integer ≥ 1, got undefined\)/,
      );
      return true;
    },
  );
  // the same through the CLI: one line, at the plugin's file, no stack trace
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(
    cfg,
    `plugins: [./broken-prior.js]\ndata: {kind: mnist, max_train: 50, validation: 0}\nmodel: {kind: vae, latent: 2, prior: {kind: broken}}\ntrain: {epochs: 1}\neval: []\n`,
  );
  const out = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--backend', 'cpu']);
  assert.equal(out.status, 1, out.stderr);
  assert.match(out.stderr, /broken-prior\.js: prior plugin 'broken' \(.*\) created an invalid prior: it lacks paramsPerLatent/);
  assert.doesNotMatch(out.stderr, /\n\s+at /);
});

test("loss weights by name: the loss section comes from the models' declarations; a name means one thing", () => {
  const r = createRegistry();
  const loss = buildSchema(r).properties as Record<string, { properties: Record<string, { default: number }> }>;
  assert.deepEqual(Object.keys(loss.loss.properties).sort(), ['alpha', 'c1', 'c2']);
  for (const [n, d] of Object.entries(STANDARD_WEIGHTS)) assert.equal(loss.loss.properties[n].default, d.default);
  assert.deepEqual(Object.keys(r.get('model', 'vae').weights!), ['c1', 'c2']);
  assert.deepEqual(Object.keys(r.get('model', 'm2').weights!), ['c1', 'c2', 'alpha']);
  // a model with a new weight: one declaration, and the config takes it (a number or a schedule)
  const base = {
    kind: 'model' as const,
    description: 'x',
    schema: { properties: {} },
    create: () => {
      throw new Error('not built here');
    },
  };
  r.register({
    ...base,
    name: 'tc-vae',
    weights: { c1: STANDARD_WEIGHTS.c1, beta_tc: { default: 6, description: 'Total-correlation weight' } },
  });
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
    (e: unknown) =>
      e instanceof UserError && e.where === 'other.js' && /loss weight 'c1': it is already declared with default 1/.test(e.message),
  );
});

test("an option {type: 'object'} that states nothing is refused when the plugin is registered: one line at its file, naming the option and $ref", () => {
  const dir = tmpDir();
  const plugin = (name: string, props: string) =>
    `module.exports = { kind: 'model', name: '${name}', description: 'x', schema: { properties: ${props} }, create() { throw new Error('not built here'); } };\n`;
  // encoder: {type: object} would let encoder: {hiddn: [256]} validate and train on the mlp's defaults
  fs.writeFileSync(
    path.join(dir, 'loose.js'),
    plugin('loose', "{ latent: { type: 'integer', default: 2 }, encoder: { type: 'object', default: { kind: 'mlp' } } }"),
  );
  fs.writeFileSync(
    path.join(dir, 'nested.js'),
    plugin('nested', "{ layout: { type: 'object', properties: { inner: { type: ['object', 'null'] } }, additionalProperties: false } }"),
  );
  fs.writeFileSync(path.join(dir, 'listed.js'), plugin('listed', "{ stages: { type: 'array', items: { type: 'object' } } }"));
  for (const [file, option] of [
    ['loose.js', 'encoder'],
    ['nested.js', 'layout.inner'],
    ['listed.js', 'stages[]'],
  ]) {
    const cfg = path.join(dir, `c-${file}.yaml`);
    fs.writeFileSync(cfg, `plugins: [./${file}]\ndata: {kind: mnist}\nmodel: {kind: ${file.replace('.js', '')}}\n`);
    const r = elbo(['validate', cfg]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^${path.join(dir, file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid plugin: model plugin '${file.replace('.js', '')}': option '${option.replace(/[[\]]/g, '\\$&')}' is \\{type: 'object'\\} without properties, \\$ref or additionalProperties, .*write \\{\\$ref: '#/definitions/network'\\}`,
      ),
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  // what states its contents passes: another plugin's options by $ref, an object with its properties or additionalProperties
  const r = createRegistry();
  const base = {
    kind: 'model' as const,
    description: 'x',
    create: () => {
      throw new Error('not built here');
    },
  };
  r.register(
    {
      ...base,
      name: 'ok',
      schema: {
        properties: {
          encoder: { $ref: '#/definitions/network' },
          extra: { type: 'object', additionalProperties: true },
          box: { type: 'object', properties: { w: { type: 'number' } } },
        },
      },
    },
    'ok.js',
  );
  assert.ok(r.has('model', 'ok'));
});

/** A third-party model in `dir` built with ctx.latentParts that sets no `scheduled`, and draws z without `progress` in `reconstruct`. */
function writePartsModel(dir: string): string {
  const file = path.join(dir, 'parts-vae.js');
  fs.writeFileSync(
    file,
    `module.exports = {
  kind: 'model', name: 'parts-vae', description: 'x',
  schema: { properties: {
    latent: { type: 'integer', default: 3 },
    prior: { $ref: '#/definitions/prior', default: { kind: 'gaussian' } },
    encoder: { $ref: '#/definitions/network', default: { kind: 'mlp', hidden: [8] } },
    decoder: { $ref: '#/definitions/network', default: { kind: 'mlp', hidden: [8] } },
  } },
  weights: { c1: { default: 1, description: 'Weight of the KL term (beta in a beta-VAE)' }, c2: { default: 1, description: 'Weight of the reconstruction term' } },
  termNames: () => ['loss', 'recon', 'kl', 'elbo'],
  create(o, ctx) {
    const tf = ctx.tf;
    const { K, prior, encoder, decoder, params, nll, toData } = ctx.latentParts(o);
    return {
      params, latent: K,
      terms(batch, w, rng, progress) {
        const enc = encoder.apply(batch.x);
        const z = prior.sample(enc, K, rng, progress);
        const recon = tf.mean(nll(batch.x, decoder.apply(z)));
        const kl = tf.mean(prior.kl(enc, K, progress, z));
        return { loss: tf.add(tf.mul(w.c1, kl), tf.mul(w.c2, recon)), recon, kl, elbo: tf.neg(tf.add(kl, recon)) };
      },
      encodeMean: (x) => tf.tidy(() => prior.mean(encoder.apply(x), K)),
      // a stochastic reconstruction: a sample drawn without progress
      reconstruct: (x) => tf.tidy(() => toData(decoder.apply(prior.sample(encoder.apply(x), K, ctx.rng.fork('reconstruct'))))),
      decode: (z) => tf.tidy(() => toData(decoder.apply(z))),
      sampleLatent: (n, rng) => prior.sampleFromPrior(n, K, rng),
    };
  },
};
`,
  );
  return file;
}

test('a plugin model built with ctx.latentParts: its spike-slab schedule is fed to the step without a scheduled() of its own, and prior.sample works without progress', async () => {
  const dir = tmpDir();
  const file = writePartsModel(dir);
  const r = createRegistry();
  r.loadPlugin(file, dir);
  const tf = getTf();
  const data = tinyDataSet({ shape: [6] });
  const options = {
    kind: 'parts-vae',
    latent: 3,
    prior: { kind: 'spike-slab', c: { kind: 'linear', from: 50, to: 200, end_epoch: 4 } },
    encoder: { kind: 'mlp', hidden: [8] },
    decoder: { kind: 'mlp', hidden: [8] },
  };
  const model = await r.create('model', options, { tf, registry: r, rng: new Rng(0), baseDir: dir, data });
  // the parts, named as the built-in models name theirs
  assert.deepEqual(
    [...model.params.keys()].filter((n) => !n.startsWith('encoder/') && !n.startsWith('decoder/')),
    [],
  );
  assert.ok([...model.params.keys()].some((n) => n.startsWith('encoder/')));
  // the prior's scheduled c (and warm-up λ), which a compiled step feeds to its graph
  assert.ok(model.scheduled, "the registry gave the model its prior's scheduled()");
  assert.deepEqual(model.scheduled({ epoch: 0, step: 0, fraction: 0, epochFloat: 2 }), { c: 125, warmup: 1 });
  // spike-slab's sample without progress: c at the end of its schedule, as in evaluation
  const x = tf.tensor2d(data.test.x.subarray(0, 12), [2, 6]);
  const rec = model.reconstruct(x);
  assert.deepEqual(rec.shape, [2, 6]);
  assert.ok((rec.dataSync() as Float32Array).every(Number.isFinite));
  const t = model.terms({ x, y: null }, { c1: 1, c2: 1 }, new Rng(1), { epoch: 0, step: 0, fraction: 0 });
  assert.ok(Number.isFinite(t.loss.dataSync()[0]));
  // a prior plugin that reads progress gets END_OF_TRAINING when the model gives none
  const seen: unknown[] = [];
  const gaussian = r.get('prior', 'gaussian');
  const probe: Plugin<'prior'> = {
    ...gaussian,
    name: 'progress-probe',
    create(o, c) {
      const p = gaussian.create(o, c);
      return { ...p, sample: (e, K, rng, progress, share) => (seen.push(progress), p.sample(e, K, rng, progress, share)) };
    },
  };
  r.register(probe, 'probe.js');
  const probed = await r.create(
    'model',
    { ...options, prior: { kind: 'progress-probe' } },
    { tf, registry: r, rng: new Rng(0), baseDir: dir, data },
  );
  probed.reconstruct(x);
  assert.deepEqual(seen, [END_OF_TRAINING]);
  // a registry made without a latentParts builder says how to get one
  await assert.rejects(
    async () => new Registry().create('model', options, { tf, registry: r, rng: new Rng(0), baseDir: dir, data }),
    /unknown model 'parts-vae'/,
  );
  const bare = new Registry();
  bare.loadPlugin(file, dir);
  await assert.rejects(
    async () => bare.create('model', options, { tf, registry: bare, rng: new Rng(0), baseDir: dir, data }),
    /ctx\.latentParts is missing: .* make it with createRegistry\(\)/,
  );
});

test(
  "tensorflow: the plugin model with a scheduled spike-slab c trains as one graph (its prior's c is fed, not frozen)",
  needsNative,
  () => {
    const dir = tmpDir();
    writePartsModel(dir);
    const cfg = smallConfig(dir, 'plugins: [./parts-vae.js]\n');
    const r = elbo([
      'run',
      cfg,
      '--runs-dir',
      path.join(dir, 'runs'),
      '--json',
      '--backend',
      'tensorflow',
      '--set',
      'model={kind: parts-vae, prior: {kind: spike-slab, c: {kind: linear, from: 50, to: 200, end_epoch: 2}}}',
      '--set',
      'train.epochs=2',
      '--set',
      'eval=[{kind: elbo}]',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const rec = JSON.parse(fs.readFileSync(path.join(lastJson<RunOutput>(r.stdout).runDir, 'run.json'), 'utf8'));
    assert.ok(rec.step_modes.length > 0);
    for (const m of rec.step_modes) assert.equal(m.mode, 'graph', `${m.batch}: ${m.reason}`);
  },
);
