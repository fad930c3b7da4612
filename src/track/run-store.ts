import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { UserError } from '../errors';
import type { BackendInfo } from '../runtime/backend';
import type { Fingerprint } from '../runtime/fingerprint';
import type { StepMode } from '../train/step';
import type { Selected } from '../train/checkpoint';
import type { PublishedComparison } from '../config/metrics';
import type { RunDependency } from '../models/model';

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

/** run.json: everything needed to know what ran, where, and how it ended. */
export interface RunRecord {
  run_id: string;
  experiment: string;
  status: RunStatus;
  seed: number;
  backend: BackendInfo;
  fingerprint: Fingerprint;
  config_file: string;
  /** Relative paths in the config (data, plugins) resolve against this directory. */
  config_dir: string;
  config_sha256: string;
  data: { name: string; source: string; sha256: string; train: number; val: number; test: number };
  start_time: string;
  end_time: string | null;
  duration_s: number | null;
  epochs_completed: number;
  epochs_planned: number;
  global_step: number;
  error: string | null;
  resumes: { time: string; from_epoch: number; backend: string }[];
  /** How the training step ran, per batch shape (one TensorFlow graph, or eager kernels and why). */
  step_modes?: StepMode[];
  /** train.select: the best epoch so far (at the end: the selected one) and its metric value. */
  selected?: Selected;
  /** Which parameters the test metrics were measured on: the best checkpoint (train.select) or the last epoch. */
  evaluated_on?: { checkpoint: 'best' | 'last'; epoch: number };
  /** The config's `published:` entries with the measured value and a verdict (within, better, worse, missing). */
  published?: PublishedComparison[];
  /** Runs the model was built on, by role (m1m2: its M1), and whether they were reused or trained for this run. */
  depends_on?: Record<string, RunDependency>;
  metrics: Record<string, number>;
}

/** The runs of one experiment directory (<runs-dir>/<experiment>/), each with its run.json, oldest first. */
export function runsIn(experimentDir: string): { dir: string; record: RunRecord }[] {
  if (!fs.existsSync(experimentDir) || !fs.statSync(experimentDir).isDirectory()) return [];
  return fs
    .readdirSync(experimentDir)
    .sort()
    .flatMap((id) => {
      const dir = path.join(experimentDir, id);
      try {
        return [{ dir, record: JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunRecord }];
      } catch {
        return []; // not a run (a lock file, a half-created directory)
      }
    });
}

/**
 * The local run store: <runs-dir>/<experiment>/<runId>/ with config.yaml, run.json,
 * metrics.jsonl, checkpoints/ and artifacts/. Files that mark a state (run.json,
 * checkpoints) are written to a temporary name and renamed, so a crash never leaves a
 * half-written file that looks complete.
 */
export class RunStore {
  private constructor(readonly dir: string) {}

  static create(runsDir: string, experiment: string): RunStore {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    const runId = `${stamp}-${crypto.randomBytes(3).toString('hex')}`;
    const dir = path.resolve(runsDir, experiment, runId);
    fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
    return new RunStore(dir);
  }

  static open(dir: string): RunStore {
    const store = new RunStore(path.resolve(dir));
    if (!fs.existsSync(store.file('run.json')) || !fs.existsSync(store.file('config.yaml'))) {
      throw new UserError('not a run directory (no run.json and config.yaml); give runs/<experiment>/<runId>', dir);
    }
    return store;
  }

  get runId(): string {
    return path.basename(this.dir);
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  artifact(name: string): string {
    return path.join(this.dir, 'artifacts', name);
  }

  writeAtomic(name: string, content: string | Buffer): void {
    const target = this.file(name);
    const tmp = `${target}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, target);
  }

  readRecord(): RunRecord {
    try {
      return JSON.parse(fs.readFileSync(this.file('run.json'), 'utf8'));
    } catch (e: any) {
      throw new UserError(`run.json is unreadable: ${e.message}`, this.file('run.json'));
    }
  }

  writeRecord(rec: RunRecord): void {
    this.writeAtomic('run.json', JSON.stringify(rec, null, 2) + '\n');
  }

  appendMetrics(line: Record<string, number>): void {
    fs.appendFileSync(this.file('metrics.jsonl'), JSON.stringify(line) + '\n');
  }

  readMetrics(): Record<string, number>[] {
    if (!fs.existsSync(this.file('metrics.jsonl'))) return [];
    return fs
      .readFileSync(this.file('metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
  }

  /** Drop metric lines written after the checkpoint a resume starts from. */
  truncateMetrics(maxEpoch: number): void {
    const keep = this.readMetrics().filter((m) => m.epoch <= maxEpoch);
    this.writeAtomic('metrics.jsonl', keep.map((m) => JSON.stringify(m) + '\n').join(''));
  }

  checkpointDir(epoch: number): string {
    return path.join(this.dir, 'checkpoints', `epoch-${String(epoch).padStart(4, '0')}`);
  }

  /** Completed checkpoints (those with a manifest), newest last. */
  checkpoints(): { epoch: number; dir: string }[] {
    const root = path.join(this.dir, 'checkpoints');
    if (!fs.existsSync(root)) return [];
    return fs
      .readdirSync(root)
      .map((n) => /^epoch-(\d+)$/.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => ({ epoch: Number(m[1]), dir: path.join(root, m[0]) }))
      .filter((c) => fs.existsSync(path.join(c.dir, 'manifest.json')))
      .sort((a, b) => a.epoch - b.epoch);
  }

  /** The best checkpoint under train.select: checkpoints/best/epoch-NNNN/ (model parameters only). */
  bestDir(epoch: number): string {
    return path.join(this.dir, 'checkpoints', 'best', `epoch-${String(epoch).padStart(4, '0')}`);
  }

  /** Remove every best checkpoint (and leftover temporary) but the one of `epoch`. */
  pruneBest(epoch: number): void {
    const root = path.join(this.dir, 'checkpoints', 'best');
    if (!fs.existsSync(root)) return;
    const keep = path.basename(this.bestDir(epoch));
    for (const n of fs.readdirSync(root)) if (n !== keep) fs.rmSync(path.join(root, n), { recursive: true, force: true });
  }

  /** Epoch checkpoints beyond the last `keep` are removed; checkpoints/best/ is never touched. */
  pruneCheckpoints(keep: number): void {
    const all = this.checkpoints();
    for (const c of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(c.dir, { recursive: true, force: true });
  }
}

export interface LocalTrackerOptions {
  kind: 'local';
  dir: string;
}
