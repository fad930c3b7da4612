import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ROOT, tmpDir } from './helpers';

/** dependency-cruiser with the project's rules (.dependency-cruiser.cjs) over `dir` of `cwd`, type-only imports included. */
function cruise(cwd: string, dir: string) {
  // the package's own CLI (its exports map leaves bin/ out of require.resolve)
  const bin = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  return spawnSync(process.execPath, [bin, '--config', path.join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err', dir], {
    cwd,
    encoding: 'utf8',
  });
}

test('imports flow one way in src/, type-only imports counted: no module cycle, no folder importing from a higher layer, contracts import only types (.dependency-cruiser.cjs)', () => {
  const r = cruise(ROOT, 'src');
  // the violations, listed, are the message
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /no dependency violations found \((\d+) modules/);
  const modules = Number(/\((\d+) modules/.exec(r.stdout)![1]);
  assert.ok(modules > 100, `${modules} modules`);
});

test('the rules catch a cycle and an upward import made of type-only imports, and a value import into src/contracts', () => {
  const dir = tmpDir();
  const write = (f: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  };
  write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'commonjs', strict: true }, include: ['src/**/*.ts'] }));
  write('src/losses/a.ts', "import type { B } from '../models/b';\nexport type A = B;\n");
  write('src/models/b.ts', "import type { C } from '../losses/c';\nexport type B = C;\n");
  write('src/losses/c.ts', "import type { D } from './d';\nexport type C = { d?: D };\n");
  write('src/losses/d.ts', "import type { C } from './c';\nexport type D = { c?: C };\n");
  write(
    'src/contracts/model.ts',
    "import type { B } from '../models/b';\nimport { seed } from '../runtime/rng';\nexport type M = B;\nexport const s = seed;\n",
  );
  write('src/runtime/rng.ts', 'export const seed = 1;\n');
  const r = cruise(dir, 'src');
  assert.notEqual(r.status, 0, r.stdout);
  assert.match(r.stdout, /layer-4-losses-nn-data-schedules-track-mlflow-plot-svm: src\/losses\/a\.ts → src\/models\/b\.ts/);
  assert.match(r.stdout, /layer-1-contracts: src\/contracts\/model\.ts → src\/models\/b\.ts/);
  assert.match(r.stdout, /contracts-types-only: src\/contracts\/model\.ts → src\/runtime\/rng\.ts/);
  assert.match(r.stdout, /no-circular: src\/losses\/c\.ts → \s*src\/losses\/d\.ts →\s*src\/losses\/c\.ts/);
});
