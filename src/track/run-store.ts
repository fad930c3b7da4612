import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { parse as parseYaml } from 'yaml';
import { UserError, type Caught } from '../errors';
import { takeLock, releaseLock, readLock, type LockHolder } from '../util/lock';
import { writeFileAtomic } from '../util/write-atomic';
import { diskError } from '../util/disk-errors';
import { isMapping } from '../util/mapping';
import type { SweepCellLabel, RunRecord, RunStatus } from '../contracts';

/**
 * The sweep cell `elbo sweep` runs in this process (ELBO_SWEEP_CELL, JSON), or undefined.
 * A damaged value is ignored: the label is for reading, never a reason to fail a run.
 */
export function sweepCellFromEnv(env: NodeJS.ProcessEnv = process.env): SweepCellLabel | undefined {
  if (!env.ELBO_SWEEP_CELL) return undefined;
  try {
    const c = JSON.parse(env.ELBO_SWEEP_CELL);
    return c && typeof c.label === 'string' && typeof c.name === 'string' && Number.isInteger(c.cell)
      ? { name: c.name, dir: String(c.dir ?? ''), cell: c.cell, label: c.label, short: String(c.short ?? c.label) }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A JSON file of the run store (run.json, sweep.json): a damaged one is a one-line error
 * at the file, not a JSON parser's message that reads like a usage error.
 */
export function readJsonFile<T = unknown>(file: string, what: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as Caught;
    throw new UserError(err?.code === 'ENOENT' ? `${what} not found` : `cannot read ${what}: ${err?.message ?? e}`, file);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(
      `${what} is damaged (not valid JSON: ${String((e as Caught)?.message ?? e).split('\n')[0]}); restore it from a backup, or move this run directory away`,
      file,
    );
  }
}

/**
 * A run's config.yaml as the tools that read finished runs see it (compare, report, the MLflow
 * tracker): parsed, not validated again, since a hand edit may have left anything there. Only
 * the fields those tools read are named, each `unknown` until they check it.
 */
export type StoredConfig = Record<string, unknown> & {
  model?: Record<string, unknown> & { kind?: unknown; latent?: unknown; prior?: { kind?: unknown } };
  train?: { batch_size?: unknown; select?: { metric?: unknown }; swa?: { from_epoch?: unknown } };
  published?: unknown;
  tracking?: unknown;
};

/**
 * The resolved config a run directory holds (config.yaml), as written at its start. A missing,
 * damaged or non-mapping file is a one-line error at the file.
 */
export function readStoredConfig(runDir: string): StoredConfig {
  const file = path.join(runDir, 'config.yaml');
  let parsed: StoredConfig | null;
  try {
    parsed = parseStoredConfig(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as Caught;
    throw new UserError(
      err?.code === 'ENOENT'
        ? 'config.yaml not found: not a complete run directory'
        : `config.yaml is damaged: ${String(err?.message ?? e).split('\n')[0]}`,
      file,
    );
  }
  if (!parsed) throw new UserError('config.yaml is damaged: not a mapping of settings', file);
  return parsed;
}

/** config.yaml's text as a StoredConfig; anything but a mapping gives null. */
export function parseStoredConfig(text: string): StoredConfig | null {
  const parsed: unknown = parseYaml(text);
  return isMapping(parsed) ? parsed : null;
}

/**
 * The runs of one experiment directory (<runs-dir>/<experiment>/), each with its run.json,
 * oldest first. A directory whose run.json is damaged is left out and passed to `damaged`.
 */
export function runsIn(experimentDir: string, damaged?: (dir: string, error: UserError) => void): { dir: string; record: RunRecord }[] {
  if (!fs.existsSync(experimentDir) || !fs.statSync(experimentDir).isDirectory()) return [];
  return fs
    .readdirSync(experimentDir)
    .sort()
    .flatMap((id) => {
      const dir = path.join(experimentDir, id);
      if (!fs.existsSync(path.join(dir, 'run.json'))) return []; // not a run (a lock file, a half-created directory)
      try {
        return [{ dir, record: readJsonFile<RunRecord>(path.join(dir, 'run.json'), 'run.json') }];
      } catch (e) {
        if (e instanceof UserError) damaged?.(dir, e);
        return [];
      }
    });
}

/**
 * Every run of a run store: <runs-dir>/<experiment>/<runId>/ and the cells of its sweeps
 * (<runs-dir>/sweeps/<name>/runs/<experiment>/<runId>/), oldest first (run ids start with
 * their start time). Damaged run.json files go to `damaged`.
 */
export function allRuns(runsRoot: string, damaged?: (dir: string, error: UserError) => void): { dir: string; record: RunRecord }[] {
  const subdirs = (d: string) =>
    fs.existsSync(d) && fs.statSync(d).isDirectory() ? fs.readdirSync(d).filter((n) => fs.statSync(path.join(d, n)).isDirectory()) : [];
  const out: { dir: string; record: RunRecord }[] = [];
  for (const exp of subdirs(runsRoot)) {
    if (exp === 'sweeps') {
      for (const sweep of subdirs(path.join(runsRoot, exp))) {
        const root = path.join(runsRoot, exp, sweep, 'runs');
        for (const e of subdirs(root)) out.push(...runsIn(path.join(root, e), damaged));
      }
    } else out.push(...runsIn(path.join(runsRoot, exp), damaged));
  }
  return out.sort((a, b) => a.record.start_time.localeCompare(b.record.start_time) || a.dir.localeCompare(b.dir));
}

/** Who holds a run directory's lock (a live process training or resuming it), or null. */
export function runLockHolder(dir: string): LockHolder | null {
  return readLock(path.join(dir, 'lock'));
}

/**
 * The status a run has: a RUNNING record whose process is gone (killed with -9, the machine
 * went down) is KILLED; it resumes like one.
 */
export function effectiveStatus(dir: string, record: RunRecord): RunStatus {
  return record.status === 'RUNNING' && !runLockHolder(dir) ? 'KILLED' : record.status;
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
    try {
      fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
    } catch (e) {
      throw diskError(e) ?? e;
    }
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
    writeFileAtomic(this.file(name), content);
  }

  readRecord(): RunRecord {
    return readJsonFile<RunRecord>(this.file('run.json'), 'run.json');
  }

  /**
   * Take the run's lock (RUN_DIR/lock, created atomically): one process trains or resumes a
   * run at a time. Refused, naming the holder, while another live process has it.
   */
  lock(): void {
    const holder = this.tryLock();
    if (holder) {
      throw new UserError(
        `this run is in use by process ${holder.pid} on ${holder.host} (training or resuming it); wait for it to end, or stop it (Ctrl-C, kill ${holder.pid}) and resume then`,
        this.dir,
      );
    }
  }

  /** Take the run's lock as `lock` does, or return who holds it (and take nothing). */
  tryLock(): LockHolder | null {
    const holder = takeLock(this.file('lock'));
    if (holder) return holder;
    // the lock is ours: temporary files a killed process left (run.json.tmp-*, a checkpoint's .tmp) go
    for (const dir of [this.dir, path.join(this.dir, 'checkpoints')]) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) if (/\.tmp(-[^/]*)?$/.test(n)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
    }
    return null;
  }

  unlock(): void {
    releaseLock(this.file('lock'));
  }

  writeRecord(rec: RunRecord): void {
    this.writeAtomic('run.json', JSON.stringify(rec, null, 2) + '\n');
  }

  appendMetrics(line: Record<string, number>): void {
    try {
      fs.appendFileSync(this.file('metrics.jsonl'), JSON.stringify(line) + '\n');
    } catch (e) {
      throw diskError(e, this.file('metrics.jsonl')) ?? e;
    }
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
