import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir, smallConfig, elbo, lastJson, untimedLines, type RunOutput } from './helpers';
import { runExperiment } from '../src/experiment';

// train.compile: xla — the compiled training step's graph, its clusters compiled by XLA for
// this CPU (src/runtime/graph/session.ts). On the tensorflow backend XLA must really compile
// (TensorFlow says so in its log), the runs stay deterministic and resume exactly; on the
// others there is no graph and xla trains as auto does.

const BACKEND = process.env.ELBO_BACKEND === 'tensorflow' ? 'tensorflow' : 'wasm';
const IWAE = ['model={kind: iwae, k: 4, latent: 4, encoder: {kind: mlp, hidden: [32]}, decoder: {kind: mlp, hidden: [32]}}'];
const quiet = { progress: false, backend: BACKEND };

test(`train.compile: xla on ${BACKEND}: deterministic, resumed exactly, within float rounding of auto`, async () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const runs = path.join(dir, 'runs');
  const xla = [...IWAE, 'train.compile=xla'];
  const a = await runExperiment({ config: cfg, runsDir: runs, overrides: xla, ...quiet });
  const b = await runExperiment({ config: cfg, runsDir: runs, overrides: xla, ...quiet });
  assert.equal(a.status, 'FINISHED', a.error);
  assert.deepEqual(untimedLines(b.runDir), untimedLines(a.runDir));
  const modes = JSON.parse(fs.readFileSync(path.join(a.runDir, 'run.json'), 'utf8')).step_modes ?? [];
  if (BACKEND === 'tensorflow')
    assert.ok(modes.length > 0 && modes.every((m: { mode: string; xla?: boolean }) => m.mode === 'graph' && m.xla), JSON.stringify(modes));
  else
    assert.ok(
      modes.every((m: { xla?: boolean }) => !m.xla),
      JSON.stringify(modes),
    );

  let epochs = 0;
  const cut = await runExperiment({
    config: cfg,
    runsDir: runs,
    overrides: xla,
    ...quiet,
    onEpoch: () => epochs++,
    shouldStop: () => epochs >= 1,
  });
  assert.equal(cut.status, 'KILLED');
  const resumed = await runExperiment({ resume: cut.runDir, progress: false });
  assert.equal(resumed.status, 'FINISHED');
  assert.deepEqual(untimedLines(resumed.runDir), untimedLines(a.runDir));

  const auto = await runExperiment({ config: cfg, runsDir: runs, overrides: IWAE, ...quiet });
  for (const k of ['test/elbo', 'val/elbo', 'train/loss']) {
    const rel = Math.abs(auto.metrics[k] - a.metrics[k]) / Math.abs(auto.metrics[k]);
    assert.ok(rel < 1e-3, `${k}: xla ${a.metrics[k]}, auto ${auto.metrics[k]}`);
  }
});

test("train.compile: xla on the tensorflow backend: XLA compiles the step (TensorFlow's log says so), and only with xla", () => {
  const dir = tmpDir();
  const cfg = smallConfig(dir);
  const log = (compile: string) => {
    const r = elbo(
      [
        'run',
        cfg,
        '--runs-dir',
        path.join(dir, 'runs'),
        '--backend',
        'tensorflow',
        '--set',
        IWAE[0],
        '--set',
        `train.compile=${compile}`,
        '--set',
        'train.epochs=1',
        '--json',
        '--quiet',
      ],
      {
        env: { TF_CPP_MIN_LOG_LEVEL: '0' },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(lastJson<RunOutput>(r.stdout).status, 'FINISHED');
    return r.stderr;
  };
  assert.match(log('xla'), /Compiled cluster using XLA/);
  assert.doesNotMatch(log('auto'), /Compiled cluster using XLA/);
});
