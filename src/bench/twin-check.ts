import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import type * as tfc from '@tensorflow/tfjs-core';
import { WORKLOADS, referenceCase } from './workload';

/**
 * Before `npm run bench` times a PyTorch twin (reference_torch.py), it checks that the twin
 * is the same computation: from elbo's own parameters, batch and normal draws of one step,
 * the twin's loss (`reference_torch.py --check`) must be elbo's to 1e-5 (float32 both agree
 * to about 1e-7), using every draw; and M2's draws fed in reverse must change it by ten times
 * that (the check sees the row layout: a twin that paired rows and draws otherwise would be
 * off by about as much as the reversal moves the loss, 4·10⁻⁴ of it with the ziggurat's draws
 * of seed 1, 1.2·10⁻³ with the Box-Muller draws before 2026-12-05). gvae-conv's twin lays
 * images and filters out otherwise: its sizes only are checked (test/bench.test.ts, which
 * needs no torch).
 */

type Case = Awaited<ReturnType<typeof referenceCase>>;

/** How close the twin's loss must be to elbo's, relative. */
const AGREE = 1e-5;

/** The twin's loss for an elbo reference case. */
function twinLoss(python: string, script: string, c: Case, dir: string, draws = c.draws): { loss: number; draws: number; used: number } {
  const parts: Float32Array[] = [];
  let offset = 0;
  const put = (v: Float32Array) => {
    parts.push(v);
    offset += v.length;
    return offset - v.length;
  };
  const manifest = {
    workload: c.workload,
    params: c.params.map((p) => ({ name: p.name, shape: p.shape, offset: put(p.values) })),
    x: { shape: c.xShape, offset: put(c.x) },
    y: c.y ? Array.from(c.y) : null,
    draws: { n: draws.length, offset: put(draws) },
    bin: path.join(dir, `${c.workload}.f32`),
  };
  fs.writeFileSync(manifest.bin, Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  const file = path.join(dir, `${c.workload}.json`);
  fs.writeFileSync(file, JSON.stringify(manifest));
  const r = spawnSync(python, [script, '--check', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${c.workload}: reference_torch.py --check failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** What disagrees between elbo and the twins of these workloads (empty: every twin is the same computation). */
export async function checkTwins(tf: typeof tfc, python: string, script: string, workloads: string[]): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'elbo-twins-'));
  const problems: string[] = [];
  try {
    for (const w of WORKLOADS.filter((x) => workloads.includes(x.name) && x.name !== 'gvae-conv')) {
      const c = await referenceCase(tf, w);
      if (c.uniformDraws !== 0) problems.push(`${w.name}: ${c.uniformDraws} uniform draws the twin would not see`);
      const t = twinLoss(python, script, c, dir);
      if (t.used !== t.draws) problems.push(`${w.name}: the twin used ${t.used} of elbo's ${t.draws} normal draws`);
      if (!(Math.abs(t.loss - c.loss) <= AGREE * Math.abs(c.loss)))
        problems.push(`${w.name}: loss ${t.loss} in PyTorch, ${c.loss} in elbo`);
      if (w.name === 'm2-mnist') {
        const swapped = twinLoss(python, script, c, dir, c.draws.slice().reverse());
        if (!(Math.abs(swapped.loss - c.loss) > 10 * AGREE * Math.abs(c.loss)))
          problems.push(`m2-mnist: the draws in reverse give the same loss (${swapped.loss}): the twin does not see the row layout`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return problems;
}
