import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import { diskError } from '../util/disk-errors';
import type { Selected } from '../contracts';

/** The checkpoint names of train.swa's averaged parameters: `average/` before the model's (`average/model/...`; src/train/average.ts). */
export const AVERAGE_PREFIX = 'average/';

export interface CheckpointManifest {
  epoch: number;
  global_step: number;
  time: string;
  /**
   * With train.select: the best epoch up to and including this one, so that a run
   * resumed from this checkpoint goes on selecting exactly as an uninterrupted run.
   */
  selected?: Selected;
  /**
   * The epoch's metrics line as metrics.jsonl gets it (step, timestamp, epoch, ...): a run
   * killed after the checkpoint was renamed but before the line was appended gets it back
   * on resume.
   */
  metrics?: Record<string, number>;
  /**
   * train.swa, once averaging has begun: the parameters evaluated at this epoch are the
   * average (`average/model/...`), not the raw training parameters (`model/...`) a resume
   * trains on; loadCheckpoint with `evaluated` reads those.
   */
  evaluated?: 'average';
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

/**
 * Save named variables (model parameters and optimizer state) as one float32 file plus
 * a manifest. Written into a temporary directory and renamed, so a checkpoint either
 * exists whole or not at all.
 */
export function saveCheckpoint(
  dir: string,
  epoch: number,
  globalStep: number,
  vars: Map<string, tfc.Variable>,
  extra: Pick<CheckpointManifest, 'selected' | 'metrics' | 'evaluated'> = {},
): void {
  const tmp = `${dir}.tmp`;
  const tensors: CheckpointManifest['tensors'] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, v] of vars) {
    const data = v.dataSync() as Float32Array;
    tensors.push({ name, shape: v.shape, offset, length: data.length });
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    offset += data.length;
  }
  const manifest: CheckpointManifest = { epoch, global_step: globalStep, time: new Date().toISOString(), ...extra, tensors };
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'weights.bin'), Buffer.concat(chunks));
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    // the previous checkpoints stay; the half-written one goes
    fs.rmSync(tmp, { recursive: true, force: true });
    throw diskError(e, dir) ?? e;
  }
}

/** Restore every variable in `vars` from a checkpoint; names and shapes must match. */
export function loadCheckpoint(
  tf: typeof tfc,
  dir: string,
  vars: Map<string, tfc.Variable>,
  o: { evaluated?: boolean } = {},
): CheckpointManifest {
  const manifest: CheckpointManifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  // the model as it was evaluated at that epoch: train.swa's average where the checkpoint says so
  if (o.evaluated && manifest.evaluated === 'average') vars = new Map([...vars].map(([k, v]) => [`${AVERAGE_PREFIX}${k}`, v]));
  const buf = fs.readFileSync(path.join(dir, 'weights.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const byName = new Map(manifest.tensors.map((t) => [t.name, t]));
  for (const [name, v] of vars) {
    const t = byName.get(name);
    if (!t) throw new UserError(`checkpoint has no tensor '${name}'; was it written by a different model config?`, dir);
    if (t.shape.join('x') !== v.shape.join('x')) {
      throw new UserError(`checkpoint tensor '${name}' has shape ${t.shape} but the model expects ${v.shape}`, dir);
    }
    tf.tidy(() => v.assign(tf.tensor(all.subarray(t.offset, t.offset + t.length), t.shape)));
  }
  return manifest;
}
