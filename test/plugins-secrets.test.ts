import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { createRegistry } from '../src/builtins';
import { loadConfig } from '../src/config/load';
import { loadRunModel } from '../src/models/load-run';
import { UserError } from '../src/errors';
import type { DataSet, EvalContext, ModelBuildContext, PluginContext } from '../src/contracts';
import { redactArgv } from '../src/runtime/fingerprint';
import { tmpDir, smallConfig, elbo, lastJson, ROOT, type RunOutput } from './helpers';

/** A plugin module's source: the given fields and a working create. */
const plugin = (extra: Record<string, unknown> = {}) =>
  `Object.assign(${JSON.stringify({ kind: 'schedule', name: 'ok-plugin', description: 'x', schema: { properties: {} }, ...extra })}, { create: () => () => 1 })`;

test("a run read for comparison (compare_run) loads none of its config's plugins, and is checked before its config is read", async () => {
  const dir = tmpDir();
  const marker = path.join(dir, 'evil-ran');
  fs.writeFileSync(
    path.join(dir, 'evil.js'),
    `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran'); module.exports = ${plugin({ name: 'evil' })};`,
  );
  const runDir = path.join(dir, 'runs', 'vae', 'r1');
  fs.mkdirSync(runDir, { recursive: true });
  fs.writeFileSync(path.join(runDir, 'config.yaml'), 'plugins: [./evil.js]\ndata: {kind: mnist}\nmodel: {kind: vae}\n');
  fs.writeFileSync(
    path.join(runDir, 'run.json'),
    JSON.stringify({ run_id: 'r1', status: 'FINISHED', config_dir: dir, data: { name: 'mnist', sha256: 'aaaa' } }),
  );
  const registry = createRegistry();
  const where = 'eval: augment.compare_run';
  // other data: refused from the record alone (no tf, and a data set of its hash alone: both
  // calls are refused before either is used)
  await assert.rejects(
    loadRunModel(runDir, null as never, registry, { sha256: 'bbbb' } as DataSet, where),
    (e: unknown) => e instanceof UserError && /trained on other data/.test(e.message) && e.where === where,
  );
  // same data: its plugin is not loaded from there
  await assert.rejects(
    loadRunModel(runDir, null as never, registry, { sha256: 'aaaa' } as DataSet, where),
    (e: unknown) =>
      e instanceof UserError &&
      e.where === where &&
      /cannot use run .*: .*config\.yaml:1:11: this config loads plugin '\.\/evil\.js', which the running config does not/.test(e.message),
  );
  assert.ok(!fs.existsSync(marker), "the other run's plugin ran");
  // a plugin the running config loaded itself is fine
  const trusted = createRegistry();
  trusted.loadPlugin(path.join(ROOT, 'plugins', 'cyclical-beta'), ROOT);
  const cfg = path.join(dir, 'other.yaml');
  fs.writeFileSync(cfg, `plugins: [${path.join(ROOT, 'plugins', 'cyclical-beta')}]\ndata: {kind: mnist}\nmodel: {kind: vae}\n`);
  assert.equal(loadConfig(cfg, [], trusted, { loadPlugins: false }).config.model.kind, 'vae');
});

test('plugin problems name the plugin and its file: bad schemas, reserved names, a create that throws', async () => {
  const dir = tmpDir();
  const file = (name: string, body: string) => {
    const f = path.join(dir, `${name}.js`);
    fs.writeFileSync(f, body);
    return f;
  };
  const load = (f: string) => {
    const r = createRegistry();
    r.loadPlugin(f, dir, 'c.yaml:1:11');
    return r;
  };
  const refused = (f: string, why: RegExp) =>
    assert.throws(
      () => load(f),
      (e: unknown) => e instanceof UserError && e.where === f && why.test(e.message),
      f,
    );
  refused(
    file('badtype', `module.exports = ${plugin({ schema: { properties: { x: { type: 'nmber' } } } })}`),
    /invalid plugin: its schema is not a valid JSON Schema: schema\/properties\/x\/type must be equal to one of the allowed values/,
  );
  refused(
    file('badpattern', `module.exports = ${plugin({ schema: { properties: { x: { type: 'string', pattern: '(' } } } })}`),
    /its schema is not a valid JSON Schema: .*Invalid regular expression/,
  );
  refused(
    file('arrayprops', `module.exports = ${plugin({ schema: { properties: [{ type: 'number' }] } })}`),
    /'schema\.properties' must be an object \(a mapping\) of JSON Schemas, not a list/,
  );
  refused(
    file('badrequired', `module.exports = ${plugin({ schema: { properties: { a: { type: 'number' } }, required: ['b'] } })}`),
    /'schema\.required' must list option names of schema\.properties/,
  );
  refused(file('ctor', `module.exports = ${plugin({ name: 'constructor' })}`), /'name' 'constructor' is reserved/);
  // a create that throws, sync or async; an evaluator whose run throws: named, at the file
  const throws = file(
    'throws',
    `module.exports = [
    { kind: 'schedule', name: 'boom', description: 'x', schema: { properties: {} }, create() { throw new TypeError('x is not a function'); } },
    { kind: 'model', name: 'slow-boom', description: 'x', schema: { properties: {} }, async create() { throw new Error('no GPU'); } },
    { kind: 'evaluator', name: 'run-boom', description: 'x', schema: { properties: {} }, metrics: () => [], create: () => ({ async run() { throw new RangeError('bad index'); } }) },
  ];`,
  );
  const r = load(throws);
  // an empty context: each plugin throws before it reads one
  assert.throws(
    () => r.create('schedule', { kind: 'boom' }, {} as PluginContext),
    (e: unknown) =>
      e instanceof UserError &&
      e.where === throws &&
      e.message === "schedule plugin 'boom' failed in create: x is not a function; the problem is in the plugin, not in elbo",
  );
  await assert.rejects(
    r.create('model', { kind: 'slow-boom' }, {} as ModelBuildContext) as Promise<unknown>,
    (e: unknown) => e instanceof UserError && e.where === throws && /model plugin 'slow-boom' failed in create: no GPU/.test(e.message),
  );
  const ev = r.create('evaluator', { kind: 'run-boom' }, {} as PluginContext);
  await assert.rejects(
    ev.run({} as EvalContext),

    (e: unknown) => e instanceof UserError && e.where === throws && /evaluator plugin 'run-boom' failed in run: bad index/.test(e.message),
  );
  // through the CLI: one line, exit 1, no "internal error"
  fs.writeFileSync(path.join(dir, 'c.yaml'), 'plugins: [./badtype.js]\ndata: {kind: mnist}\nmodel: {kind: vae}\n');
  const v = elbo(['validate', path.join(dir, 'c.yaml')]);
  assert.equal(v.status, 1);
  assert.equal(v.stderr.trim().split('\n').length, 1, v.stderr);
  assert.match(v.stderr, /badtype\.js: invalid plugin: its schema is not a valid JSON Schema/);
});

test('elbo sync with the server down says so, exits 1 and leaves no lock; a ?token= in a tracking URI is refused before anything is written', () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  // nothing listens on port 9: the run spools its events and says MLflow is behind
  const tracking =
    'tracking=[{kind: mlflow, tracking_uri: "http://127.0.0.1:9", retries: 1, backoff_s: 0.5, timeout_s: 2, finish_timeout_s: 1}]';
  const r = elbo([
    'run',
    cfg,
    '--runs-dir',
    runs,
    '--json',
    '-q',
    '--set',
    'data.max_train=100',
    '--set',
    'train.epochs=1',
    '--set',
    tracking,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const runDir = lastJson<RunOutput>(r.stdout).runDir;
  const t0 = Date.now();
  const s = elbo(['sync', runDir]);
  assert.equal(s.status, 1, `exit ${s.status}: ${s.stdout}${s.stderr}`);
  assert.match(s.stdout, /events? still pending .*nothing lost: run elbo sync again later/);
  assert.ok(Date.now() - t0 > 400, 'the back-off was waited for');
  assert.ok(!fs.existsSync(path.join(runDir, 'mlflow', 'lock')), 'sync left its lock');

  const secret = 'S3CRET-tok';
  const q = elbo([
    'run',
    cfg,
    '--runs-dir',
    path.join(dir, 'q'),
    '--set',
    'data.max_train=100',
    '--set',
    'train.epochs=1',
    '--tracking-uri',
    `http://127.0.0.1:9/?token=${secret}`,
  ]);
  assert.equal(q.status, 1, q.stderr);
  assert.match(
    q.stderr,
    /^--tracking-uri: the tracking URI must not carry a query string or fragment \(http:\/\/127\.0\.0\.1:9\?…\); credentials go in MLFLOW_TRACKING_TOKEN/m,
  );
  assert.doesNotMatch(q.stderr, new RegExp(secret));
  assert.ok(!fs.existsSync(path.join(dir, 'q')), 'nothing was written');
  const sy = elbo(['sync', runDir, '--tracking-uri', `http://127.0.0.1:9/x?token=${secret}`]);
  assert.equal(sy.status, 1);
  assert.doesNotMatch(fs.readFileSync(path.join(runDir, 'mlflow', 'state.json'), 'utf8'), new RegExp(secret));
  // whatever reaches the recorded command line loses credentials and query strings
  assert.deepEqual(
    redactArgv([
      'run',
      'c.yaml',
      '--tracking-uri',
      `https://u:p@mlflow.example:5000/base?token=${secret}#x`,
      `--tracking-uri=http://h/?token=${secret}`,
    ]),
    ['run', 'c.yaml', '--tracking-uri', 'https://mlflow.example:5000/base', '--tracking-uri=http://h'],
  );
});
