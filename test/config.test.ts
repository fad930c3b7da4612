import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { isSweepFile, loadSweep, resolveCells } from '../src/sweep/spec';
import { UserError } from '../src/errors';
import { tmpDir, elbo, ROOT, smallConfig, lastJson, configProblems as problems, BASE_CONFIG as BASE, type SchemaBranch } from './helpers';
import type { PluginOptions } from '../src/contracts';

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
  assert.match(p[0], /^FILE:1:14: unknown dataset 'mnst'; did you mean 'mnist'\? \(allowed: .*idx, image-folder, mnist, npy\)/);
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
  assert.ok(
    p.some((l) =>
      /FILE:5:15: model\.likelihood must be one of bernoulli, gaussian, gaussian_learned, got string "bernouli"; did you mean 'bernoulli'\?/.test(
        l,
      ),
    ),
  );
});

test('missing required section and missing kind', () => {
  const p = problems('model: {kind: vae}\n');
  assert.match(p[0], /missing required key 'data'/);
  const q = problems('data: {path: x}\nmodel: {kind: vae}\n');
  assert.match(q[0], /^FILE:1:7: missing required key 'kind' in data naming a dataset \(one of: .*idx, image-folder, mnist, npy\)/);
  const o = problems('data: {kind: mnist}\nmodel: {kind: vae}\ntrain: {optimizer: {lr: 3}}\n');
  assert.match(o[0], /missing required key 'kind' in train\.optimizer naming an optimizer \(one of: adam, sgd\)/);
});

test('a key written without the space after its colon ({kind:vae}) is said as such', () => {
  const p = problems('data: {kind: mnist}\nmodel: {kind:vae}\n');
  assert.deepEqual(p, [
    "FILE:2:8: missing required key 'kind' in model ('kind:vae' reads as one key with no value: write 'kind: vae', a space after the colon)",
  ]);
  const q = problems('data: {kind: mnist}\nmodel: {kind: vae, latent:2}\n');
  assert.deepEqual(q, [
    "FILE:2:20: unknown key 'latent:2' in model ('latent:2' reads as one key with no value: write 'latent: 2', a space after the colon)",
  ]);
  // a key that merely has a colon and a value is only unknown
  const r = problems('data: {kind: mnist}\nmodel: {kind: vae, "a:b": 1}\n');
  assert.match(r[0], /unknown key 'a:b' in model$|unknown key 'a:b' in model \(allowed/);
});

test('--set overrides apply, are validated, and errors name the flag', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, BASE);
  const { config } = loadConfig(file, ['model.latent=7', 'train.optimizer.lr=0.01', 'model.encoder.hidden=[64, 32]'], createRegistry());
  assert.equal(config.model.latent, 7);
  assert.equal(config.train.optimizer.lr, 0.01);
  assert.deepEqual((config.model.encoder as PluginOptions).hidden, [64, 32]);
  assert.match(problems(BASE, ['model.latent=abc'])[0], /^--set model\.latent=abc: model\.latent must be an integer/);
  assert.match(problems(BASE, ['model.latnt=3'])[0], /^--set model\.latnt=3: unknown key 'latnt' in model; did you mean 'latent'/);
  assert.match(problems(BASE, ['nonsense'])[0], /^--set nonsense: expected key\.path=value/);
});

test('--set ~key.path deletes a key or list item of the file (Hydra); a missing key or a value is a located error', () => {
  // the shipped M1+M2 config describes its M1; deleting that block lets model.m1_run name a finished one
  const m1m2 = path.join(ROOT, 'configs', 'mnist', 'm1m2.yaml');
  const { config } = loadConfig(m1m2, ['~model.m1', 'model.m1_run=runs/mnist-m1/x', '~eval.1'], createRegistry());
  assert.equal((config.model as PluginOptions).m1, undefined);
  assert.equal((config.model as PluginOptions).m1_run, 'runs/mnist-m1/x');
  assert.deepEqual(
    config.eval.map((e) => e.kind),
    ['accuracy', 'latent-pca', 'reconstructions'],
  );
  assert.ok((loadConfig(m1m2, [], createRegistry()).config.model as PluginOptions).m1);
  // a deleted key the schema requires is reported as missing; a default comes back as the default
  assert.match(problems(BASE, ['~model.kind']).join('\n'), /--set ~model\.kind: .*kind/);
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, BASE + '  latent: 3\n');
  assert.equal(loadConfig(file, [], createRegistry()).config.model.latent, 3);
  assert.equal(loadConfig(file, ['~model.latent'], createRegistry()).config.model.latent, 20);
  assert.match(
    problems(BASE, ['~model.latnt'])[0],
    /^--set ~model\.latnt: 'model\.latnt' is not in the config, so there is nothing to delete/,
  );
  assert.match(problems(BASE, ['~eval.7'])[0], /^--set ~eval\.7: 'eval\.7' is not in the config/);
  assert.match(problems(BASE, ['~model.latent=3'])[0], /^--set ~model\.latent=3: ~key\.path deletes the key and takes no value/);
});

test('extends: a config builds on base configs (merged in order, mappings key by key); problems are located in the file that gave the value', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'bases'));
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  write(
    'bases/vae.yaml',
    'experiment: base\ndata: {kind: mnist, validation: 500}\nmodel:\n  kind: vae\n  latent: 8\n  encoder: {kind: mlp, hidden: [64]}\ntrain: {epochs: 7, batch_size: 50}\n',
  );
  write('bases/short.yaml', 'train: {epochs: 2}\neval: [{kind: elbo}]\n');
  const child = write('child.yaml', 'extends: [bases/vae.yaml, bases/short.yaml]\nexperiment: child\nmodel:\n  latent: 4\n');
  const reg = createRegistry();
  const { config, sha256, yaml } = loadConfig(child, [], reg);
  assert.equal(config.experiment, 'child');
  assert.equal(config.model.latent, 4); // the file's own key over its base's
  assert.deepEqual(config.model.encoder, { kind: 'mlp', hidden: [64], activation: 'relu' }); // the base's, merged
  assert.equal(config.train.epochs, 2); // the later base over the earlier
  assert.equal(config.train.batch_size, 50);
  assert.deepEqual(
    config.data,
    loadConfig(write('flat0.yaml', 'data: {kind: mnist, validation: 500}\nmodel: {kind: vae}\n'), [], reg).config.data,
  );
  assert.deepEqual(
    config.eval.map((e) => e.kind),
    ['elbo'],
  ); // a list replaces the base's whole
  assert.doesNotMatch(yaml, /extends/);
  assert.deepEqual(loadConfig(child, [], reg).bases, [path.join(dir, 'bases', 'vae.yaml'), path.join(dir, 'bases', 'short.yaml')]);
  // the composed config is the run's config: its hash is that of the same config written out flat
  const flat = write(
    'flat.yaml',
    'experiment: child\ndata: {kind: mnist, validation: 500}\nmodel:\n  kind: vae\n  latent: 4\n  encoder: {kind: mlp, hidden: [64]}\ntrain: {epochs: 2, batch_size: 50}\neval: [{kind: elbo}]\n',
  );
  assert.equal(sha256, loadConfig(flat, [], reg).sha256);
  // --set applies to the composed config, a key a base gave included
  assert.equal(loadConfig(child, ['train.batch_size=20'], reg).config.train.batch_size, 20);
  assert.deepEqual(loadConfig(child, ['~model.encoder'], reg).config.model.encoder, { kind: 'mlp', hidden: [400], activation: 'relu' });

  const problemsOf = (file: string, overrides: string[] = []) => {
    try {
      loadConfig(file, overrides, reg);
    } catch (e) {
      assert.ok(e instanceof UserError, String(e));
      return e
        .line()
        .split(dir + path.sep)
        .join('');
    }
    return '';
  };
  // a bad value a base gave is located in the base; one the file gave, in the file
  write('bases/bad.yaml', 'data: {kind: mnist}\nmodel:\n  kind: vae\n  encoder: {kind: mlp, hidden: [64], activaton: relu}\n');
  assert.match(
    problemsOf(write('c1.yaml', 'extends: bases/bad.yaml\nmodel: {latent: 3}\n')),
    /^bases\/bad\.yaml:4:38: unknown key 'activaton' in model\.encoder; did you mean 'activation'\?/,
  );
  assert.match(
    problemsOf(write('c2.yaml', 'extends: bases/vae.yaml\nmodel: {latent: -1}\n')),
    /^c2\.yaml:2:17: model\.latent must be >= 1/,
  );
  // a base that is missing, a cycle, a value that is not a path, and --set extends: located, one line each
  assert.match(
    problemsOf(write('c3.yaml', 'extends: nowhere.yaml\n')),
    /^c3\.yaml:1:10: base config .*nowhere\.yaml not found \(extends paths are relative to the file that names them\)/,
  );
  write('bases/loop.yaml', 'extends: ../c4.yaml\n');
  assert.match(
    problemsOf(write('c4.yaml', 'extends: bases/loop.yaml\n')),
    /^bases\/loop\.yaml:1:10: extends goes round in a circle: .*c4\.yaml → .*loop\.yaml → .*c4\.yaml$/,
  );
  assert.match(problemsOf(write('c5.yaml', 'extends: {a: 1}\n')), /^c5\.yaml:1:10: extends takes the path of a base config/);
  assert.match(problemsOf(write('c6.yaml', 'extends: [bases/vae.yaml, 3]\n')), /^c6\.yaml:1:27: extends takes the path of a base config/);
  assert.match(
    problemsOf(child, ['extends=bases/vae.yaml']),
    /^--set extends=bases\/vae\.yaml: extends names a config file's bases and is read from the file/,
  );
  // elbo validate and the schema know the key
  assert.equal(elbo(['validate', child]).status, 0);
  assert.match(elbo(['schema']).stdout, /"extends"/);
});

test('extends: relative paths a base in another directory gives (plugins, data files) are read against that base', () => {
  const dir = tmpDir();
  for (const d of ['team/data', 'team/cb', 'me']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(path.join(dir, 'team/data/x.csv'), Array.from({ length: 40 }, (_, i) => `${i % 7},${i % 3},${i % 2}`).join('\n') + '\n');
  fs.copyFileSync(path.join(ROOT, 'plugins/cyclical-beta/index.js'), path.join(dir, 'team/cb/index.js'));
  const abs = path.join(dir, 'team/data/x.csv');
  fs.writeFileSync(
    path.join(dir, 'team/base.yaml'),
    `plugins: [./cb]\ndata: {kind: csv, path: data/x.csv, test_path: ${JSON.stringify(abs)}}\nmodel: {kind: vae, latent: 2}\n`,
  );
  const child = path.join(dir, 'me/run.yaml');
  fs.writeFileSync(child, 'extends: ../team/base.yaml\nexperiment: mine\n');
  const reg = createRegistry();
  const { config, yaml, sha256 } = loadConfig(child, [], reg);
  assert.deepEqual(config.plugins, [path.join('..', 'team', 'cb')]); // loaded from there: the registry has it
  assert.ok(reg.has('schedule', 'cyclical'));
  assert.equal((config.data as PluginOptions).path, path.join('..', 'team', 'data', 'x.csv'));
  assert.equal((config.data as PluginOptions).test_path, abs); // an absolute path stays as it is
  // the run's config is that of the same config written flat next to the child
  const flat = path.join(dir, 'me/flat.yaml');
  fs.writeFileSync(
    flat,
    `plugins: [../team/cb]\ndata: {kind: csv, path: ../team/data/x.csv, test_path: ${JSON.stringify(abs)}}\nmodel: {kind: vae, latent: 2}\nexperiment: mine\n`,
  );
  assert.equal(sha256, loadConfig(flat, [], reg).sha256, yaml);
  // the child's own paths and --set's are relative to the child, as without a base
  fs.writeFileSync(child, 'extends: ../team/base.yaml\ndata: {path: ../team/data/x.csv}\n');
  assert.equal((loadConfig(child, [], reg).config.data as PluginOptions).path, path.join('..', 'team', 'data', 'x.csv'));
  assert.equal((loadConfig(child, ['data.path=other.csv'], reg).config.data as PluginOptions).path, 'other.csv');
  // a plugin entry that is no file next to the base is a package name: kept
  fs.writeFileSync(path.join(dir, 'team/pkg.yaml'), 'plugins: [elbo-plugin-nowhere]\ndata: {kind: mnist}\nmodel: {kind: vae}\n');
  fs.writeFileSync(child, 'extends: ../team/pkg.yaml\n');
  assert.throws(() => loadConfig(child, [], createRegistry()), /elbo-plugin-nowhere/);
  assert.doesNotMatch(
    (() => {
      try {
        loadConfig(child, [], createRegistry());
      } catch (e) {
        return (e as UserError).line();
      }
      return '';
    })(),
    /\.\.[/\\]team/,
  );
  // a run reads the base's data file, from another directory too
  fs.writeFileSync(child, 'extends: ../team/base.yaml\ntrain: {epochs: 1, batch_size: 16}\neval: [{kind: elbo}]\n');
  const r = elbo(['run', child, '--runs-dir', path.join(dir, 'runs'), '--json', '-q'], { cwd: os.tmpdir() });
  assert.equal(r.status, 0, r.stderr);
  const { runDir } = lastJson<{ runDir: string }>(r.stdout);
  assert.match(fs.readFileSync(path.join(runDir, 'config.yaml'), 'utf8'), /path: \.\.[/\\]team[/\\]data[/\\]x\.csv/);
  // its config.yaml, read as --resume reads it (against the directory the run recorded), keeps them
  const again = loadConfig(path.join(runDir, 'config.yaml'), [], createRegistry(), { baseDir: path.join(dir, 'me') });
  assert.equal((again.config.data as PluginOptions).path, path.join('..', 'team', 'data', 'x.csv'));
});

test('a run of a config that extends records its bases: run.json config_bases, elbo runs show, report.html', () => {
  const dir = tmpDir();
  smallConfig(dir);
  const child = path.join(dir, 'one-epoch.yaml');
  fs.writeFileSync(child, 'extends: small.yaml\nexperiment: one-epoch\ntrain: {epochs: 1}\neval: [{kind: elbo}]\n');
  const r = elbo(['run', child, '--runs-dir', path.join(dir, 'runs'), '--json', '-q']);
  assert.equal(r.status, 0, r.stderr);
  const { runDir } = lastJson<{ runDir: string }>(r.stdout);
  const rec = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(rec.config_file, child);
  assert.deepEqual(rec.config_bases, [path.join(dir, 'small.yaml')]);
  assert.equal(rec.epochs_planned, 1);
  assert.match(elbo(['runs', 'show', runDir]).stdout, /^extends\s+\S*small\.yaml$/m);
  assert.match(fs.readFileSync(path.join(runDir, 'artifacts', 'report.html'), 'utf8'), /extending [^<]*small\.yaml/);
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
    fs
      .readdirSync(d, { withFileTypes: true })
      .forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.yaml') && files.push(path.join(d, e.name))));
  walk(path.join(ROOT, 'configs'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const prev = process.cwd();
    process.chdir(ROOT);
    try {
      if (isSweepFile(f)) resolveCells(loadSweep(f));
      else {
        // every shipped config says what it aims at: published entries, or [] when none applies
        const { config } = loadConfig(f, [], createRegistry());
        assert.ok(Array.isArray(config.published), `${f} has no published: list`);
      }
    } finally {
      process.chdir(prev);
    }
  }
});

test('elbo schema prints a JSON Schema whose slots list the registered plugins', () => {
  const r = elbo(['schema']);
  assert.equal(r.status, 0, r.stderr);
  const schema = JSON.parse(r.stdout);
  const names = (kind: string) => schema.definitions[kind].oneOf.map((b: SchemaBranch) => b.properties.kind.const);
  assert.ok(names('dataset').includes('mnist') && names('dataset').includes('idx'));
  assert.ok(names('model').includes('vae'));
  for (const k of ['dataset', 'network', 'prior', 'model', 'evaluator', 'tracker', 'optimizer', 'schedule']) {
    assert.ok(names(k).length >= 1, k);
  }
});

test('published: a good block validates and gets its mode from the metric name', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(
    file,
    BASE +
      'eval: [{kind: elbo}, {kind: iwae, k: 50}]\npublished:\n' +
      '  - {metric: test/log_likelihood_k50, value: -86.76, source: "a paper, Table 1"}\n' +
      '  - {metric: test/kl, value: 25, pm: 1, source: "a paper", note: "other net"}\n' +
      '  - {metric: test/recon, value: 60, mode: max, source: "a paper"}\n',
  );
  const { config } = loadConfig(file, [], createRegistry());
  assert.deepEqual(
    config.published!.map((e) => e.mode),
    ['max', 'min', 'max'],
  );
  assert.equal(config.published![1].pm, 1);
  // [] says that no published number applies
  assert.deepEqual(problems(BASE + 'published: []\n'), []);
});

test('published: an unknown metric is a located error naming the metrics the evaluators write', () => {
  const p = problems(
    BASE +
      'eval: [{kind: elbo}, {kind: iwae, k: 50}]\npublished:\n  - metric: test/log_likelihood_k5000\n    value: -86.76\n    source: x\n',
  );
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(
    p[0],
    /^FILE:6:13: published\.0\.metric 'test\/log_likelihood_k5000' is not a metric this config's evaluators write; did you mean 'test\/log_likelihood_k50'\? \(the configured evaluators write: test\/elbo, test\/kl, test\/log_likelihood_k50, test\/recon\)$/,
  );
  // a metric of an evaluator the config does not run; a val/ metric; one metric twice; no source
  const q = problems(
    BASE +
      'published:\n  - {metric: test/accuracy, value: 0.9, source: x}\n  - {metric: val/elbo, value: 1, source: x}\n  - {metric: test/elbo, value: 1, source: x}\n  - {metric: test/elbo, value: 2, source: y}\n',
  );
  assert.equal(q.length, 3, q.join('\n'));
  assert.match(q[0], /^FILE:5:14: published\.0\.metric 'test\/accuracy' is not a metric/);
  assert.match(q[1], /^FILE:6:14: published\.1\.metric 'val\/elbo' .*\(published numbers are test metrics: test\/\.\.\.\)/);
  assert.match(q[2], /^FILE:8:14: published\.3: 'test\/elbo' is listed twice/);
  assert.match(
    problems(BASE + 'published:\n  - {metric: test/elbo, value: 1}\n')[0],
    /^FILE:5:5: missing required key 'source' in published\.0/,
  );
  const r = problems(BASE + 'eval: [{kind: sparsity}]\npublished:\n  - {metric: test/sparsity_dead_dims, value: 3, source: x}\n');
  assert.match(
    r[0],
    /^FILE:6:5: published\.0: cannot tell from 'test\/sparsity_dead_dims' whether lower or higher is better; add mode: min or mode: max/,
  );
  assert.deepEqual(
    problems(BASE + 'eval: [{kind: sparsity}]\npublished:\n  - {metric: test/sparsity_dead_dims, value: 3, mode: min, source: x}\n'),
    [],
  );
  // evaluators declare their metrics for their options: accuracy on the validation split, a latent-classifier prefix
  assert.deepEqual(
    problems(BASE + 'eval: [{kind: latent-classifier, prefix: knn}]\npublished: [{metric: test/knn_error, value: 3, source: x}]\n'),
    [],
  );
  assert.match(
    problems(
      BASE + 'eval: [{kind: latent-classifier, prefix: knn}]\npublished: [{metric: test/latent_classifier_error, value: 3, source: x}]\n',
    )[0],
    /\(the configured evaluators write: test\/knn_accuracy, test\/knn_error, test\/knn_labelled\)$/,
  );
  assert.match(
    problems(BASE, ['published=[{metric: test/elbow, value: 1, source: x}]'])[0],
    /^--set published=.*: published\.0\.metric 'test\/elbow' .*did you mean 'test\/elbo'/,
  );
  // an override of the evaluators that leaves the file's published metric unmeasured says how to drop it
  const o = problems(
    BASE + 'eval: [{kind: elbo}, {kind: iwae, k: 5000}]\npublished: [{metric: test/log_likelihood_k5000, value: -86.76, source: x}]\n',
    ['eval.1.k=100'],
  );
  assert.equal(o.length, 1, o.join('\n'));
  assert.match(
    o[0],
    /did you mean 'test\/log_likelihood_k100'.*; eval\.1\.k changed what this run measures: add --set 'published=\[\]' to compare with nothing$/,
  );
  assert.doesNotMatch(problems(BASE, ['published=[{metric: test/elbow, value: 1, source: x}]'])[0], /changed what this run measures/);
});

test('train.select: a validation metric the model writes; otherwise a located error', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, 'data: {kind: mnist, labelled: 100}\nmodel: {kind: m2}\ntrain:\n  select: {metric: val/accuracy}\n');
  assert.deepEqual(loadConfig(file, [], createRegistry()).config.train.select, { metric: 'val/accuracy', mode: 'max' });
  const vae = problems(BASE + 'train:\n  select: {metric: val/accuracy, mode: max}\n');
  assert.equal(vae.length, 1, vae.join('\n'));
  assert.match(
    vae[0],
    /^FILE:5:20: train\.select\.metric 'val\/accuracy' is not written by model 'vae' \(it writes: val\/recon, val\/kl, val\/elbo\)$/,
  );
  assert.match(
    problems(BASE + 'train: {select: {metric: train/loss, mode: min}}\n')[0],
    /must be a validation metric, val\/<loss term> \(this model writes: val\/recon, val\/kl, val\/elbo\)/,
  );
  assert.match(
    problems('data: {kind: mnist, validation: 0}\nmodel: {kind: vae}\ntrain: {select: {metric: val/elbo}}\n')[0],
    /^FILE:3:26: train\.select\.metric 'val\/elbo' needs a validation split, but data\.validation is 0/,
  );
  assert.match(problems(BASE + 'train: {select: {metric: val/elbo, mode: best}}\n')[0], /train\.select\.mode must be one of min, max/);
  // the resolved config says which direction was used
  fs.writeFileSync(file, BASE + 'train: {select: {metric: val/elbo}}\n');
  assert.match(loadConfig(file, [], createRegistry()).yaml, /select:\n\s+metric: val\/elbo\n\s+mode: max/);
});
