import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { parseYaml } from '../src/config/load';
import { UserError } from '../src/errors';
import { isSweepFile, loadSweep, resolveCells, MAX_CELLS } from '../src/sweep/spec';
import { evalAlphaExpression } from '../src/models/m2';
import { tmpDir, elbo, smallConfig, configProblems as problems, BASE_CONFIG as BASE } from './helpers';
import { runExperiment } from '../src/experiment';

function sweepProblems(yaml: string): string[] {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'base.yaml'), BASE);
  const file = path.join(dir, 's.yaml');
  fs.writeFileSync(file, yaml);
  try {
    resolveCells(loadSweep(file));
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack ?? e}`);
    return e
      .line()
      .split('\n')
      .map((l) => l.split(file).join('FILE').split(path.relative(process.cwd(), file)).join('FILE'));
  }
  return [];
}

test('NaN and ±Infinity are not numbers: every such value is one located error that shows it as YAML writes it', () => {
  const cases: [string, RegExp][] = [
    ['train.epochs=.inf', /^--set train\.epochs=\.inf: train\.epochs must be an integer, got \.inf \(not a finite number\)$/],
    ['model.latent=1e309', /^--set model\.latent=1e309: model\.latent must be an integer, got \.inf/],
    ['train.batch_size=.inf', /train\.batch_size must be an integer, got \.inf/],
    ['model.encoder.hidden=[.inf]', /model\.encoder\.hidden\.0 must be an integer, got \.inf/],
    ['eval=[{kind: iwae, k: .inf}]', /eval\.0\.k must be an integer, got \.inf/],
    ['train.optimizer.lr=.inf', /train\.optimizer\.lr must be a number, got \.inf/],
    ['train.optimizer.lr=-.inf', /train\.optimizer\.lr must be a number, got -\.inf/],
    ['loss.c1=.nan', /loss\.c1 must be a number, got \.nan/],
    ['model.prior={kind: gaussian, logvar_min: .nan}', /model\.prior\.logvar_min must be a number, got \.nan/],
    ['model.prior={kind: spike-slab, c: .nan}', /model\.prior\.c must be a number, got \.nan/],
    ['loss.c1={kind: linear, from: .nan}', /loss\.c1\.from must be a number, got \.nan/],
    ['published=[{metric: test/elbo, value: .nan, source: x}]', /published\.0\.value must be a number, got \.nan/],
  ];
  for (const [flag, want] of cases) {
    const p = problems(BASE, [flag]);
    assert.equal(p.length, 1, `${flag}: ${p.join('\n')}`);
    assert.match(p[0], want, flag);
    assert.doesNotMatch(p[0], /null/, flag);
  }
  // in the file: located at the value
  assert.match(problems(BASE + 'train: {epochs: .inf}\n')[0], /^FILE:4:17: train\.epochs must be an integer, got \.inf/);
});

test('values that validate but cannot run are refused: negative weights, crossed clamps and schedules, over-long names', () => {
  assert.match(problems(BASE, ['loss.c1=-1'])[0], /loss\.c1 must be >= 0, got number -1/);
  assert.match(problems(BASE, ['loss.c2=-0.5'])[0], /loss\.c2 must be >= 0/);
  assert.match(problems(BASE, ['loss.alpha=-2'])[0], /loss\.alpha must be >= 0/);
  assert.match(
    problems(BASE + '  prior: {kind: gaussian, logvar_min: 25}\n')[0],
    /^FILE:4:39: model\.prior\.logvar_min must be < logvar_max \(20\), got number 25$/,
  );
  assert.match(
    problems(BASE + '  prior: {kind: spike-slab, logvar_min: 1, logvar_max: 0}\n')[0],
    /model\.prior\.logvar_min must be < logvar_max \(0\)/,
  );
  assert.match(problems(BASE + '  prior: {kind: spike-slab, c: -3}\n')[0], /model\.prior\.c must be >= 0/);
  assert.match(problems(BASE, ['loss.c1={kind: linear, from: -1, to: 1}'])[0], /loss\.c1\.from must be >= 0/);
  assert.match(
    problems(BASE, ['loss.c1={kind: linear, start_epoch: 5, end_epoch: 2}'])[0],
    /loss\.c1\.end_epoch must be >= start_epoch \(5\), got number 2/,
  );
  assert.match(problems(BASE, [`experiment=${'x'.repeat(256)}`])[0], /experiment must NOT have more than 200 characters/);
  // the edges are fine
  assert.deepEqual(
    problems(BASE + '  prior: {kind: gaussian, logvar_min: -1, logvar_max: 1}\nloss: {c1: 0, c2: 0, alpha: 0}\n', [
      'loss.c1={kind: linear, start_epoch: 2, end_epoch: 2}',
    ]),
    [],
  );
});

test('smaller holes: a learning-rate schedule at 0 throughout, 1e30 epochs, a key both set and swept, CR-only line endings', () => {
  // lr: 0 is refused, and so is a schedule that is 0 over the whole of training
  assert.match(problems(BASE, ['train.optimizer.lr=0'])[0], /train\.optimizer\.lr must be > 0/);
  assert.match(
    problems(BASE, ['train.optimizer.lr={kind: cosine, from: 0, to: 0}'])[0],
    /^--set train\.optimizer\.lr=.*: the learning-rate schedule is 0 over all 10 epochs of training/,
  );
  assert.match(
    problems(BASE, ['train.optimizer.lr={kind: piecewise, stages: [{epochs: 20, value: 0}, {epochs: 1, value: 0.001}]}'])[0],
    /is 0 over all 10 epochs/,
  );
  // a schedule that starts at 0 (a warm-up) is fine
  assert.deepEqual(problems(BASE, ['train.optimizer.lr={kind: linear, from: 0, to: 0.001, end_epoch: 5}']), []);
  assert.match(problems(BASE, ['train.epochs=1e30'])[0], /train\.epochs must be <= 1000000/);
  // set: and a sweep axis naming one key
  assert.match(
    sweepProblems('base: base.yaml\nset: {model.latent: 3}\nsweep:\n  grid:\n    model.latent: [2, 4]\n')[0],
    /^FILE:2:\d+: 'model\.latent' is both in set: and swept; remove it from set:/,
  );
  // CR alone ends lines as LF and CRLF do: a located error on the right line
  const cr = problems('data: {kind: mnist}\rmodel:\r  kind: vae\r  latent: -1\r');
  assert.match(cr[0], /^FILE:4:\d+: model\.latent must be >= 1/);
});

test("a problem of the whole document is the file's, not an unrelated --set flag's", () => {
  assert.deepEqual(problems('model: {kind: vae}\n', ['seed=3']), ["FILE:1:1: missing required key 'data' in the top level"]);
});

test('--set paths: no negative index, no key on a list, no index past the end; one line each', () => {
  const withEval = BASE + 'eval: [{kind: elbo}, {kind: iwae, k: 5}]\n';
  const neg = problems(withEval, ['eval.-1.k=5']);
  assert.deepEqual(neg, ["--set eval.-1.k=5: '-1' in 'eval.-1.k' is not a list index: indices count from 0 (eval.0.k)"]);
  assert.deepEqual(problems(withEval, ['eval.kind=elbo']), [
    "--set eval.kind=elbo: 'eval' is a list: address an item by its index (eval.0.kind), not by 'kind'",
  ]);
  const far = problems(withEval, ['eval.99.k=5']);
  assert.equal(far.length, 1, far.join('\n'));
  assert.match(far[0], /^--set eval\.99\.k=5: 'eval' has 2 items \(eval\.0 … eval\.1\); eval\.2 adds one, eval\.99 is past the end$/);
  // what stays possible: an item, and appending one
  assert.deepEqual(problems(withEval, ['eval.1.k=7', 'eval.2.kind=samples']), []);
  assert.match(problems(withEval, ['eval.0.k.x=1'])[0], /'eval\.0\.k' is nothing, not a section|unknown key 'k'/);
});

test('__proto__ and friends are never config keys: --set and a sweep’s set/grid are refused, Object.prototype stays clean', () => {
  for (const flag of ['__proto__.x=1', 'model.__proto__.polluted=1', 'constructor.prototype.x=1', 'model.prototype=1']) {
    const p = problems(BASE, [flag]);
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(p[0], /^--set .*: '(__proto__|constructor|prototype)' in '.*' is not a config key$/);
  }
  const s = sweepProblems(
    'base: base.yaml\nset: {__proto__.x: 1}\nsweep:\n  grid: {constructor: [1], model.latent: [2]}\n  random: {trials: 1, space: {prototype.y: {uniform: [0, 1]}}}\n',
  );
  assert.equal(s.length, 3, s.join('\n'));
  assert.match(s[0], /^FILE:2:7: '__proto__' in '__proto__\.x' is not a config key$/);
  assert.match(s[1], /^FILE:4:10: 'constructor' in 'constructor' is not a config key$/);
  assert.match(s[2], /^FILE:5:31: 'prototype' in 'prototype\.y' is not a config key$/);
  assert.equal(({} as Record<string, unknown>).x, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // a __proto__ key written in the YAML is an ordinary unknown key
  assert.match(problems(BASE + '__proto__: {x: 1}\n')[0], /^FILE:4:1: unknown key '__proto__' in the top level/);
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('YAML: an undefined alias and an alias bomb are located YAML errors; so is nesting too deep to read', () => {
  assert.deepEqual(problems(BASE + 'seed: *nope\n'), ['FILE:4:7: YAML alias *nope has no anchor &nope before it']);
  const bomb =
    'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
  const p = problems(bomb + BASE);
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0], /^FILE:2:8: YAML aliases expand to too much data/);
  assert.match(problems(BASE, ['model.encoder.hidden=[*a]'])[0], /^--set model\.encoder\.hidden=\[\*a\]: value is not valid YAML/);
  const deep = problems('a: ' + '['.repeat(50_000) + ']'.repeat(50_000) + '\n' + BASE);
  assert.equal(deep.length, 1);
  assert.match(deep[0], /^FILE:1:\d+: YAML is nested too deeply to read$/);
  // aliases in moderation are fine
  assert.deepEqual(problems('data: &d {kind: mnist}\nmodel: {kind: vae}\nx-ignored: *d\n').length, 1);
});

test('duplicate keys are found in linear time, and a flood of problems is cut to 50 lines and a count', () => {
  let keys = '';
  for (let i = 0; i < 30_000; i++) keys += `k${i}: 1\n`;
  const t0 = Date.now();
  assert.throws(
    () => parseYaml(keys + 'k17: 2\n', 'big.yaml'),
    (e: unknown) => e instanceof UserError && e.line() === 'big.yaml:30001:1: YAML syntax error: Map keys must be unique',
  );
  const ms = Date.now() - t0;
  assert.ok(ms < 5000, `30,000 keys took ${ms} ms (the quadratic check took 6 s and more)`);
  const p = problems(keys + BASE);
  assert.equal(p.length, 51);
  assert.match(p[50], /^FILE:1:1: \.\.\. and about 29950 more problems \(fix these first\)$/);
});

test('sweeps: the number of cells is capped before any is made', () => {
  const t0 = Date.now();
  const r = sweepProblems('base: base.yaml\nsweep:\n  random: {trials: 1000000000, space: {loss.c1: {uniform: [0, 1]}}}\n');
  assert.deepEqual(r, [`FILE:3:20: sweep.random.trials must be <= ${MAX_CELLS}, got number 1000000000`]);
  let grid = '';
  for (let i = 0; i < 10; i++) grid += `    k${i}.x: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n`;
  const g = sweepProblems('base: base.yaml\nsweep:\n  grid:\n' + grid);
  assert.equal(g.length, 1, g.join('\n'));
  assert.match(g[0], /^FILE:3:3: the sweep has 10,000,000,000 cells; at most 10,000 are allowed/);
  assert.ok(Date.now() - t0 < 5000);
  // a swept value that is not finite reaches validation as such (not as JSON's null)
  assert.match(
    sweepProblems('base: base.yaml\nsweep:\n  grid: {train.epochs: [.inf]}\n')[0],
    /every cell: train\.epochs must be an integer, got \.inf/,
  );
  assert.match(
    sweepProblems('base: base.yaml\nsweep:\n  grid: {eval.-1.k: [3]}\n')[0],
    /^FILE:3:10: '-1' in 'eval\.-1\.k' is not a list index/,
  );
});

test('alpha_expression: 20,000 nested parentheses are a UserError, not a stack overflow', () => {
  const expr = '('.repeat(20_000) + '1' + ')'.repeat(20_000);
  assert.throws(
    () => evalAlphaExpression(expr, { N: 1, N_total: 1, N_labelled: 1 }),
    (e: unknown) => e instanceof UserError && /at most 1000/.test(e.message),
  );
  assert.throws(
    () => evalAlphaExpression('-'.repeat(20_000) + '1', { N: 1, N_total: 1, N_labelled: 1 }),
    (e: unknown) => e instanceof UserError,
  );
  assert.equal(evalAlphaExpression('((0.1 * N_total / N_labelled))', { N: 10, N_total: 10, N_labelled: 5 }), 0.2);
});

test('evaluators the model cannot serve are refused at validation: iwae without a density, class evaluators without a classifier', () => {
  const iwae = 'eval: [{kind: elbo}, {kind: iwae, k: 5}]\n';
  const ss = problems(BASE + '  prior: {kind: spike-slab}\n' + iwae);
  assert.equal(ss.length, 1, ss.join('\n'));
  assert.match(
    ss[0],
    /^FILE:5:29: the iwae evaluator needs a model with a density .*; model 'vae' has none here: its prior 'spike-slab' has no density/,
  );
  assert.match(problems(BASE + '  likelihood: gaussian\n' + iwae)[0], /its likelihood 'gaussian' is the unnormalised image loss/);
  assert.match(problems('data: {kind: mnist}\nmodel: {kind: m1, prior: {kind: spike-slab}}\n' + iwae)[0], /model 'm1' has none here/);
  assert.match(
    problems('data: {kind: mnist, labelled: 100}\nmodel: {kind: m2}\n' + iwae)[0],
    /the iwae evaluator needs a model with a density .*model 'm2' has none \(it provides: latent, classify, class-conditional\)/,
  );
  assert.deepEqual(problems(BASE + iwae), []);
  assert.match(problems(BASE + 'eval: [{kind: accuracy}]\n')[0], /^FILE:4:15: the accuracy evaluator needs a model that classifies/);
  assert.match(
    problems(BASE + 'eval: [{kind: class-samples}]\n')[0],
    /^FILE:4:15: the class-samples evaluator needs a model that classifies/,
  );
  assert.deepEqual(
    problems('data: {kind: mnist, labelled: 100}\nmodel: {kind: m2}\neval: [{kind: class-samples}, {kind: accuracy}]\n'),
    [],
  );
  // G-VAE classifies but has no class-conditional decoder
  assert.match(
    problems('data: {kind: mnist}\nmodel: {kind: gvae}\neval: [{kind: accuracy}, {kind: class-samples}]\n')[0],
    /^FILE:3:33: the class-samples evaluator needs a class-conditional decoder .*model 'gvae' has none \(it provides: latent, classify\)/,
  );
});

test('a config with a stray top-level sweep: key is a config with an unknown key, not a bad sweep file', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, BASE + 'sweep: {grid: {model.latent: [2]}}\n');
  assert.equal(isSweepFile(file), false);
  const r = elbo(['validate', file]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /c\.yaml:4:1: unknown key 'sweep' in the top level/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  // the schema for editors has no ajv-only $data rules
  const s = elbo(['schema']);
  assert.equal(s.status, 0, s.stderr);
  assert.doesNotMatch(s.stdout, /\$data/);
});

test('a loss weight that is not a number (from a schedule plugin) is blamed for the divergence, not the learning rate', async () => {
  const dir = tmpDir();
  fs.writeFileSync(
    path.join(dir, 'nan.js'),
    "module.exports = { kind: 'schedule', name: 'nan-weight', description: 'x', schema: { properties: {} }, create: () => () => NaN };",
  );
  const cfg = smallConfig(dir, 'plugins: [./nan.js]\nloss: {c1: {kind: nan-weight}}\n');
  const r = await runExperiment({
    config: cfg,
    runsDir: path.join(dir, 'runs'),
    progress: false,
    overrides: ['data.max_train=100', 'train.epochs=1'],
  });
  assert.equal(r.status, 'FAILED');
  assert.match(r.error!, /the loss weight c1 is NaN in epoch 1 .*; loss\.c1 \(its schedule\) must give finite numbers/);
  assert.doesNotMatch(r.error!, /lower train\.optimizer\.lr/);
});
