import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/registry/builtins';
import { UserError } from '../src/errors';
import { isSweepFile, loadSweep, resolveCells } from '../src/sweep/spec';
import { tmpDir, elbo, ROOT } from './helpers';

function problems(yaml: string, overrides: string[] = []): string[] {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, yaml);
  try {
    loadConfig(file, overrides, createRegistry());
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    return e.line().split('\n').map((l) => l.replace(file, 'FILE').replace(path.relative(process.cwd(), file), 'FILE'));
  }
  return [];
}

const BASE = 'data: {kind: mnist}\nmodel:\n  kind: vae\n';

test('a valid config gets every default filled in', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, BASE);
  const { config, sha256 } = loadConfig(file, [], createRegistry());
  assert.equal(config.seed, 0);
  assert.equal(config.model.latent, 20);
  assert.deepEqual(config.model.prior, { kind: 'gaussian', logvar_min: -30, logvar_max: 20 });
  assert.deepEqual(config.model.encoder, { kind: 'mlp', hidden: [400], activation: 'relu' });
  assert.equal(config.train.optimizer.kind, 'adam');
  assert.equal(config.train.optimizer.lr, 0.001);
  assert.deepEqual(config.loss, { c1: 1, c2: 1, alpha: 0 });
  assert.match(sha256, /^[0-9a-f]{64}$/);
});

test('unknown key: position of the key and a close match', () => {
  const p = problems(BASE + '  latnt: 3\n');
  assert.deepEqual(p.length, 1);
  assert.match(p[0], /^FILE:4:3: unknown key 'latnt' in model; did you mean 'latent'\?/);
});

test('wrong type: position of the value', () => {
  const p = problems(BASE + 'train:\n  epochs: many\n');
  assert.equal(p.length, 1);
  assert.match(p[0], /^FILE:5:11: train\.epochs must be an integer, got string "many"/);
});

test('unknown plugin: names the kind, suggests, lists allowed', () => {
  const p = problems('data: {kind: mnst}\nmodel: {kind: vae}\n');
  assert.equal(p.length, 1);
  assert.match(p[0], /^FILE:1:14: unknown dataset 'mnst'; did you mean 'mnist'\? \(allowed: .*idx, mnist/);
  const q = problems(BASE + '  prior: {kind: spike}\n');
  assert.match(q[0], /^FILE:4:17: unknown prior 'spike'/);
});

test('bad YAML syntax: line and column', () => {
  const p = problems('data: {kind: mnist\nmodel: {kind: vae}\n');
  assert.ok(p.length >= 1);
  assert.match(p[0], /^FILE:\d+:\d+: YAML syntax error/);
  const dup = problems('seed: 1\nseed: 2\n' + BASE);
  assert.match(dup[0], /^FILE:2:1: YAML syntax error: Map keys must be unique/);
});

test('every problem is reported, one line each', () => {
  const p = problems(BASE + '  latent: -1\n  likelihood: bernouli\nextra: 1\n');
  assert.equal(p.length, 3, p.join('\n'));
  assert.ok(p.some((l) => /FILE:6:1: unknown key 'extra'/.test(l)));
  assert.ok(p.some((l) => /FILE:4:11: model\.latent must be >= 1/.test(l)));
  assert.ok(p.some((l) => /FILE:5:15: model\.likelihood must be one of bernoulli, gaussian, got string "bernouli"; did you mean 'bernoulli'\?/.test(l)));
});

test('missing required section and missing kind', () => {
  const p = problems('model: {kind: vae}\n');
  assert.match(p[0], /missing required key 'data'/);
  const q = problems('data: {path: x}\nmodel: {kind: vae}\n');
  assert.match(q[0], /^FILE:1:7: missing required key 'kind' in data naming a dataset \(one of: .*idx, mnist/);
});

test('--set overrides apply, are validated, and errors name the flag', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, BASE);
  const { config } = loadConfig(file, ['model.latent=7', 'train.optimizer.lr=0.01', 'model.encoder.hidden=[64, 32]'], createRegistry());
  assert.equal(config.model.latent, 7);
  assert.equal(config.train.optimizer.lr, 0.01);
  assert.deepEqual(config.model.encoder.hidden, [64, 32]);
  assert.match(problems(BASE, ['model.latent=abc'])[0], /^--set model\.latent=abc: model\.latent must be an integer/);
  assert.match(problems(BASE, ['model.latnt=3'])[0], /^--set model\.latnt=3: unknown key 'latnt' in model; did you mean 'latent'/);
  assert.match(problems(BASE, ['nonsense'])[0], /^--set nonsense: expected key\.path=value/);
});

test('elbo validate: exit 0 on a shipped config, exit 1 with FILE:LINE:COL lines on stderr', () => {
  const ok = elbo(['validate', 'configs/quickstart.yaml']);
  assert.equal(ok.status, 0, ok.stderr);
  const dir = tmpDir();
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'data: {kind: mnist}\nmodel:\n  kind: vea\n');
  const r = elbo(['validate', bad]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /bad\.yaml:3:9: unknown model 'vea'; did you mean 'vae'\?/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  const missing = elbo(['validate', path.join(dir, 'nope.yaml')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.yaml: config file not found/);
});

test('every shipped config validates', () => {
  const files: string[] = [];
  const walk = (d: string) =>
    fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.yaml') && files.push(path.join(d, e.name))));
  walk(path.join(ROOT, 'configs'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const prev = process.cwd();
    process.chdir(ROOT);
    try {
      if (isSweepFile(f)) resolveCells(loadSweep(f));
      else loadConfig(f, [], createRegistry());
    } finally {
      process.chdir(prev);
    }
  }
});

test('elbo schema prints a JSON Schema whose slots list the registered plugins', () => {
  const r = elbo(['schema']);
  assert.equal(r.status, 0, r.stderr);
  const schema = JSON.parse(r.stdout);
  const names = (kind: string) => schema.definitions[kind].oneOf.map((b: any) => b.properties.kind.const);
  assert.ok(names('dataset').includes('mnist') && names('dataset').includes('idx'));
  assert.ok(names('model').includes('vae'));
  for (const k of ['dataset', 'network', 'prior', 'model', 'evaluator', 'tracker', 'optimizer', 'schedule']) {
    assert.ok(names(k).length >= 1, k);
  }
});
