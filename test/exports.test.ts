import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as api from '../src/index';
import { ROOT } from './helpers';

test('every function the README’s Library API section names is exported by the package entry point', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Library API');
  assert.ok(start >= 0, 'README has a Library API section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  // `name(args)` and the plain `runExperiment` mention
  const names = [...new Set([...section.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)\(/g)].map((m) => m[1]))].filter((n) => n !== 'require');
  names.push('runExperiment');
  assert.ok(names.length >= 15, `found only ${names.join(', ')}`);
  const missing = names.filter((n) => typeof (api as Record<string, unknown>)[n] !== 'function');
  assert.deepEqual(missing, [], `named in README but not exported as functions: ${missing.join(', ')}`);
  // the package's main points at that entry point
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.main, 'dist/src/index.js');
  for (const n of ['isdaClassLoss', 'softmaxCrossEntropy', 'createRegistry', 'loadConfig']) assert.equal(typeof (api as Record<string, unknown>)[n], 'function', n);
});
