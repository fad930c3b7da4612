import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ROOT, tmpDir, smallConfig, elbo, lastJson, type RunOutput } from './helpers';

// npm's install step (src/runtime/native/install.sh) builds the native backend; where it
// cannot, the install still succeeds with one line and training falls back to wasm.
const INSTALL = path.join(ROOT, 'src', 'runtime', 'native', 'install.sh');

/** A PATH with every command of this one except Python and pip (symlinks in a temporary folder). */
function pathWithoutPython(): string {
  const bin = tmpDir('elbo-nopython-');
  for (const dir of (process.env.PATH ?? '').split(':')) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (/^(python|pip)/.test(n) || fs.existsSync(path.join(bin, n))) continue;
      fs.symlinkSync(path.join(dir, n), path.join(bin, n));
    }
  }
  return bin;
}

function install(env: Record<string, string>) {
  const r = spawnSync('bash', [INSTALL], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

test('install without Python on PATH: exit 0, one line, and auto trains on wasm saying why', () => {
  const dir = tmpDir();
  const native = path.join(dir, 'native');
  const PATH = pathWithoutPython();
  assert.equal(spawnSync('bash', ['-c', 'command -v python3'], { env: { PATH } }).status, 1, 'python3 is still on the PATH');
  const lines = install({ PATH, ELBO_NATIVE_DIR: native, ELBO_NATIVE: '1' });
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(
    lines[0],
    /^elbo: native TensorFlow backend .*: not built \(python3 not found on PATH: .*\); training falls back to wasm \(npm run setup:native retries\)$/,
  );
  assert.ok(!fs.existsSync(path.join(native, 'tfjs-node')));

  const cfg = smallConfig(dir);
  const env: Record<string, string> = { ELBO_NATIVE_DIR: native };
  const r = elbo(['run', cfg, '--runs-dir', path.join(dir, 'runs'), '--json', '--set', 'train.epochs=1', '--set', 'eval=[{kind: elbo}]'], {
    env: { ...env, ELBO_BACKEND: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  const rec = JSON.parse(fs.readFileSync(path.join(lastJson<RunOutput>(r.stdout).runDir, 'run.json'), 'utf8'));
  assert.equal(rec.backend.name, 'wasm');
  assert.match(rec.backend.fallback, /the native backend is not built \(npm run setup:native builds it\)/);
  assert.match(r.stderr, /backend wasm \(the native backend is not built/);
});

test('ELBO_NATIVE=0 skips the native build with one line', () => {
  const native = path.join(tmpDir(), 'native');
  const lines = install({ ELBO_NATIVE: '0', ELBO_NATIVE_DIR: native });
  assert.deepEqual(lines, [
    'elbo: ELBO_NATIVE=0: the native TensorFlow backend is not built; training uses wasm (npm run setup:native builds it)',
  ]);
  assert.ok(!fs.existsSync(native));
});
