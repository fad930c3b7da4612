import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ROOT, tmpDir } from './helpers';

/** dependency-cruiser with the project's rules (.dependency-cruiser.cjs) over `files`, run in `cwd`. */
function cruise(cwd: string, files: string[]) {
  // the package's own CLI (its exports map leaves bin/ out of require.resolve)
  const bin = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  return spawnSync(process.execPath, [bin, '--config', path.join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err', ...files], { cwd, encoding: 'utf8' });
}

test('imports flow one way: no module cycles, no folder importing from a higher layer (.dependency-cruiser.cjs)', () => {
  // the compiled modules of today's sources (a stale file left in dist/ by a rename is not one)
  const sources = (dir: string): string[] =>
    fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join('dist', dir, e.name.replace(/\.ts$/, '.js'))] : [],
    );
  const files = sources('src');
  assert.ok(files.length > 100, `${files.length} modules`);
  const r = cruise(ROOT, files);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /no dependency violations found/);
});

test('the rules catch an upward import and a cycle', () => {
  const dir = tmpDir();
  const write = (f: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  };
  write('dist/src/losses/a.js', "require('../models/b');\n");
  write('dist/src/models/b.js', "require('../losses/c');\n");
  write('dist/src/losses/c.js', "require('./d');\n");
  write('dist/src/losses/d.js', "require('./c');\n");
  const r = cruise(dir, ['dist/src']);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /layer-3-losses-nn-data-schedules-track-plot-svm: dist\/src\/losses\/a\.js → dist\/src\/models\/b\.js/);
  assert.match(r.stdout, /no-circular: dist\/src\/losses\/c\.js → /);
});
