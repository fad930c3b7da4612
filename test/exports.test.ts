import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as api from '../src/index';
import { ROOT, tmpDir, elbo } from './helpers';

test('every function the Library API section of docs/api.md names is exported by the package entry point', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8');
  const start = readme.indexOf('## Library API');
  assert.ok(start >= 0, 'docs/api.md has a Library API section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  // `name(args)` and the plain `runExperiment` mention
  const names = [...new Set([...section.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)\(/g)].map((m) => m[1]))].filter((n) => n !== 'require');
  names.push('runExperiment');
  assert.ok(names.length >= 15, `found only ${names.join(', ')}`);
  const missing = names.filter((n) => typeof (api as Record<string, unknown>)[n] !== 'function');
  assert.deepEqual(missing, [], `named in docs/api.md but not exported as functions: ${missing.join(', ')}`);
  // the package's main points at that entry point
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.main, 'dist/src/index.js');
  for (const n of ['isdaClassLoss', 'softmaxCrossEntropy', 'createRegistry', 'loadConfig'])
    assert.equal(typeof (api as Record<string, unknown>)[n], 'function', n);
});

test('a plugin outside the repository imports elbo by the path install docs/plugins.md describes, in JavaScript and TypeScript', () => {
  // what `npm install /path/to/elbo` makes: node_modules/elbo, a link to the checkout
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'elbo'), 'dir');
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'my-plugin', private: true, main: 'index.js', dependencies: { elbo: `file:${ROOT}` } }),
  );
  fs.writeFileSync(
    path.join(dir, 'index.js'),
    "const { definePlugin, Type } = require('elbo');\nmodule.exports = definePlugin({ kind: 'schedule', name: 'outside', description: 'a constant from outside the repository', options: { value: Type.Number({ default: 0.5 }) }, create: (o) => () => o.value });\n",
  );
  const listed = elbo(['plugins', 'schedule', '--plugin', dir]);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /outside\s+a constant from outside the repository/);
  // the TypeScript API: definePlugin's options typed from the schema, the contracts' types
  fs.writeFileSync(
    path.join(dir, 'typed.ts'),
    [
      "import { definePlugin, Type, type Model, type PriorContext } from 'elbo';",
      "export const p = definePlugin({ kind: 'schedule', name: 'typed', description: 'x', options: { value: Type.Number({ default: 0.5 }) }, create: (o) => () => o.value });",
      'export const latentOf = (m: Model, ctx: PriorContext): number => m.latent + ctx.latent;',
      '',
    ].join('\n'),
  );
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(
    process.execPath,
    [
      tsc,
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module',
      'commonjs',
      '--moduleResolution',
      'node',
      '--target',
      'es2022',
      '--types',
      'node',
      '--typeRoots',
      path.join(ROOT, 'node_modules', '@types'),
      'typed.ts',
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
