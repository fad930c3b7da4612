import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type * as tfc from '@tensorflow/tfjs-core';
import { createRegistry } from '../builtins';
import { loadConfig, restrictOverrides } from '../config/load';
import { comparePublished, modelTerms } from '../config/metrics';
import { UserError } from '../errors';
import { checkData, loadModelCheckpoint } from '../models/load-run';
import { Rng } from '../runtime/rng';
import { RunStore } from '../track/run-store';
import { writeFileAtomic } from '../util/write-atomic';
import { takeLock, releaseLock, type LockHolder } from '../util/lock';
import type { CheckpointManifest } from '../track/checkpoint';
import { buildData, buildRun, selectRunBackend } from './build';
import { evaluateRun } from './evaluate';
import type { PublishedComparison, RunStatus, PluginRegistry } from '../contracts';

/**
 * `elbo evaluate RUN_DIR`: the test evaluation of a stored run at one of its checkpoints,
 * while it trains, while it is stopped (KILLED, PAUSED, FAILED) or after it finished: what a
 * run of 1,000 epochs can say about its test error on the way (Lightning's `trainer.test(
 * ckpt_path="best")`). The run's recorded config, seed and data (its sha256 checked), on the backend
 * it ran on; every evaluator of its `eval:` list with the stream a finished run's own test
 * evaluation uses (`eval-<i>-<kind>` of the run seed), so a FINISHED run evaluated at the
 * checkpoint its record names gives its recorded test metrics exactly.
 *
 * With `overrides` (`--set`), what is measured changes and nothing else: the evaluators
 * (`eval`), the published numbers (`published`) and the training labels evaluators may read
 * (`data.labelled`: a VAE's latents under a transductive SVM with N labels, say). The
 * result then goes to `<checkpoint>-epoch-NNNN-set-<hash of the overrides>/`, beside the
 * run's own.
 *
 * The run itself is not changed: its run.json, metrics and checkpoints stay as they were,
 * and the run stays resumable. The result goes to RUN_DIR/evaluations/<checkpoint>-epoch-NNNN/
 * (metrics.json, written last and atomically, and the evaluators' artifacts). The run's lock
 * is held meanwhile, so that no resume starts under it; a run that trains (its lock held by a
 * live process) is evaluated on a copy of its checkpoint, beside it, and stays untouched.
 * One evaluation of a run at a time (RUN_DIR/evaluations/.lock).
 */
export interface CheckpointEvaluation {
  run_id: string;
  run_dir: string;
  /** The run's status when it was evaluated, and the epochs it had completed. */
  run_status: RunStatus;
  epochs_completed: number;
  /** best: the epoch train.select chose so far; last: the last epoch's checkpoint. */
  checkpoint: 'best' | 'last';
  epoch: number;
  /** train.select's metric at that epoch, when the checkpoint is the best one. */
  selected?: { metric: string; value: number; mode: string };
  backend: string;
  evaluated_at: string;
  seconds: number;
  /** The test metrics, `test/<name>` as a finished run records them. */
  metrics: Record<string, number>;
  /** The config's `published:` entries against these metrics. */
  published: PublishedComparison[];
  /** `--set` overrides of what was measured (eval, published, data.labelled), when given. */
  overrides?: string[];
  /** Where metrics.json and the artifacts are. */
  dir: string;
}

export interface EvaluateOptions {
  checkpoint?: 'best' | 'last';
  /** `--set KEY=VALUE` on eval, eval.*, published, published.* or data.labelled. */
  overrides?: string[];
  backend?: string;
  registry?: PluginRegistry;
  log?(message: string): void;
}

/** Evaluate a stored run on its test split at a checkpoint (see above). */
export async function evaluateCheckpoint(runDir: string, o: EvaluateOptions = {}): Promise<CheckpointEvaluation> {
  const dir = path.resolve(runDir);
  if (!fs.existsSync(path.join(dir, 'run.json'))) throw new UserError(`not a run directory (no run.json in ${dir})`, runDir);
  const store = RunStore.open(dir);
  // one evaluation of a run at a time (they write the same folders)
  const evaluations = path.join(store.dir, 'evaluations');
  fs.mkdirSync(evaluations, { recursive: true });
  const evaluating = path.join(evaluations, EVALUATE_LOCK);
  const other = takeLock(evaluating);
  if (other) {
    throw new UserError(
      `another elbo evaluate (process ${other.pid} on ${other.host}) is evaluating this run; wait for it to end`,
      store.dir,
    );
  }
  const training = store.tryLock();
  try {
    return await evaluateLocked(store, training, o);
  } finally {
    if (!training) store.unlock();
    fs.rmSync(path.join(evaluations, SNAPSHOT), { recursive: true, force: true });
    releaseLock(evaluating);
    removeIfEmpty(evaluations);
  }
}

/** An evaluation that failed before it wrote anything leaves no empty evaluations/ behind. */
function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // not empty
  }
}

/** Under RUN_DIR/evaluations/: the lock of the evaluation under way, and its copy of a live run's checkpoint. */
const EVALUATE_LOCK = '.lock';
const SNAPSHOT = '.snapshot';

async function evaluateLocked(store: RunStore, training: LockHolder | null, o: EvaluateOptions): Promise<CheckpointEvaluation> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const registry = o.registry ?? createRegistry();
  let record = store.readRecord();
  const overrides = o.overrides ?? [];
  checkEvaluateOverrides(overrides);
  const { config } = loadConfig(store.file('config.yaml'), overrides, registry, { baseDir: record.config_dir });
  const pick = () => pickCheckpoint(store, record.selected?.epoch, !!config.train.select, o.checkpoint);
  let picked: Picked;
  if (training) {
    // the run trains on beside us: its checkpoint is copied first (a new best epoch or the
    // pruning of old ones may remove it meanwhile), and read from the copy
    picked = snapshotCheckpoint(
      () => {
        record = store.readRecord();
        return pick();
      },
      path.join(store.dir, 'evaluations', SNAPSHOT),
    );
    log(`the run trains (process ${training.pid} on ${training.host}): a copy of its ${picked.which} checkpoint is evaluated`);
  } else picked = pick();
  const { which, epoch, checkpointDir } = picked;
  const backend = await selectRunBackend({ backend: o.backend }, config, registry, record);
  const tf: typeof tfc = (await import('../runtime/tf')).getTf();
  const rng = new Rng(config.seed);
  const ctx = { tf, registry, rng, baseDir: record.config_dir };
  const data = await buildData(config, ctx);
  checkData(record, data, store.dir);
  // a model built on another run (m1m2's M1) finds it in the same run store, by the run's own
  // config (what --set measures differently must not change which M1 that is); nothing is trained
  const own = overrides.length ? loadConfig(store.file('config.yaml'), [], registry, { baseDir: record.config_dir }).config : config;
  const parts = await buildRun(config, data, { ...ctx, runs: { dir: path.dirname(path.dirname(store.dir)), config: own } });
  const vars = loadModelCheckpoint(tf, parts.model, checkpointDir);
  const set = overrides.length ? `-set-${crypto.createHash('sha256').update(overrides.join('\n')).digest('hex').slice(0, 8)}` : '';
  const out = path.join(store.dir, 'evaluations', `${which}-epoch-${String(epoch).padStart(4, '0')}${set}`);
  fs.mkdirSync(out, { recursive: true });
  log(`evaluating ${store.runId}: ${which} checkpoint, epoch ${epoch} of ${record.epochs_completed} (${backend.name})`);
  try {
    const { metrics } = await evaluateRun(parts, {
      tf,
      data,
      rng,
      registry,
      config,
      modelTerms: modelTerms(config, registry),
      compile: config.train.compile,
      artifact: (n) => path.join(out, n),
      log,
      warn: (m) => log(`warning: ${m}`),
      stopping: () => false,
    });
    const result: CheckpointEvaluation = {
      run_id: store.runId,
      run_dir: store.dir,
      // recorded RUNNING by a process that is gone (its lock was free): it was killed
      run_status: record.status === 'RUNNING' && !training ? 'KILLED' : record.status,
      epochs_completed: record.epochs_completed,
      checkpoint: which,
      epoch,
      ...(which === 'best' && record.selected ? { selected: { ...record.selected } } : {}),
      backend: backend.name,
      evaluated_at: new Date().toISOString(),
      seconds: (Date.now() - t0) / 1000,
      metrics,
      published: comparePublished(config.published, metrics),
      ...(overrides.length ? { overrides } : {}),
      dir: out,
    };
    writeFileAtomic(path.join(out, 'metrics.json'), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    [...vars.values(), ...parts.optimizer.state.values()].forEach((v) => v.dispose());
  }
}

/**
 * What `elbo evaluate --set` may change: what is measured, never what was trained. The test
 * split's inputs are measured: data.binarize decides whether they are drawn or grey
 * (`--set data.binarize=training` classifies the grey test images of a run trained with
 * `dynamic`).
 */
function checkEvaluateOverrides(flags: readonly string[]): void {
  restrictOverrides(
    flags,
    (key) => /^(eval|published)(\.|$)/.test(key) || key === 'data.labelled' || key === 'data.binarize',
    (key) =>
      `elbo evaluate changes only what is measured: eval, published, data.labelled (the labels evaluators may read) and data.binarize (the test split drawn or grey); ${key} is the run's own`,
  );
}

interface Picked {
  which: 'best' | 'last';
  epoch: number;
  checkpointDir: string;
}

/** The checkpoint asked for (default: the best under train.select, else the last) and its directory. */
function pickCheckpoint(store: RunStore, bestEpoch: number | undefined, selects: boolean, asked: 'best' | 'last' | undefined): Picked {
  const which = asked ?? (selects ? 'best' : 'last');
  if (which === 'best') {
    if (!selects)
      throw new UserError('the run selects no best epoch (its config has no train.select); use --checkpoint last', '--checkpoint');
    if (bestEpoch === undefined) throw new UserError(`run ${store.dir} has no best epoch yet (no epoch finished)`, '--checkpoint');
    const dir = store.bestDir(bestEpoch);
    if (!fs.existsSync(path.join(dir, 'manifest.json'))) throw new UserError(`the best checkpoint (epoch ${bestEpoch}) is missing`, dir);
    return { which, epoch: bestEpoch, checkpointDir: dir };
  }
  const last = store.checkpoints().at(-1);
  if (!last) throw new UserError(`run ${store.dir} has no checkpoint (no epoch finished)`, '--checkpoint');
  return { which, epoch: last.epoch, checkpointDir: last.dir };
}

/**
 * A copy in `into` of the checkpoint `pick` names, for a run that trains meanwhile: its
 * checkpoints appear whole (written under a temporary name and renamed) but may be removed
 * at any moment (a new best epoch replaces the old one; old epochs are pruned). A copy that
 * loses a file to that, or whose weights do not fill its manifest, is taken again from what
 * `pick` names then.
 */
export function snapshotCheckpoint(pick: () => Picked, into: string, attempts = 20): Picked {
  for (let attempt = 1; ; attempt++) {
    const picked = pick();
    let why: string;
    let retry = true;
    try {
      const manifest = fs.readFileSync(path.join(picked.checkpointDir, 'manifest.json'));
      const weights = fs.readFileSync(path.join(picked.checkpointDir, 'weights.bin'));
      const { tensors } = JSON.parse(manifest.toString('utf8')) as CheckpointManifest;
      const floats = tensors.reduce((n, t) => Math.max(n, t.offset + t.length), 0);
      if (weights.length === 4 * floats) {
        fs.rmSync(into, { recursive: true, force: true });
        fs.mkdirSync(into, { recursive: true });
        fs.writeFileSync(path.join(into, 'weights.bin'), weights);
        fs.writeFileSync(path.join(into, 'manifest.json'), manifest);
        return { ...picked, checkpointDir: into };
      }
      why = 'weights.bin does not fill the manifest';
    } catch (e) {
      why = (e as Error).message;
      // only a file removed meanwhile is worth another try
      retry = (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
    if (!retry || attempt >= attempts)
      throw new UserError(
        `could not copy the ${picked.which} checkpoint (epoch ${picked.epoch}) of the training run: ${why}; try again`,
        picked.checkpointDir,
      );
  }
}

/** The evaluations `elbo evaluate` wrote into a run directory, by epoch then checkpoint (unreadable ones left out). */
export function storedEvaluations(runDir: string): CheckpointEvaluation[] {
  const root = path.join(runDir, 'evaluations');
  if (!fs.existsSync(root)) return [];
  const found: CheckpointEvaluation[] = [];
  for (const name of fs.readdirSync(root)) {
    if (name.startsWith('.')) continue; // the lock and copy of an evaluation under way
    try {
      found.push(JSON.parse(fs.readFileSync(path.join(root, name, 'metrics.json'), 'utf8')));
    } catch {
      // an evaluation stopped before it wrote its metrics.json
    }
  }
  return found.sort((a, b) => a.epoch - b.epoch || a.checkpoint.localeCompare(b.checkpoint));
}

/** One line for an evaluation: where, and its published metrics (else test/elbo, else its first test metric). */
export function evaluationLine(e: CheckpointEvaluation): string {
  const first = 'test/elbo' in e.metrics ? 'test/elbo' : Object.keys(e.metrics)[0];
  const shown = e.published.length
    ? e.published.map((p) => `${p.metric} ${p.measured === null ? '-' : p.measured.toFixed(4)}`)
    : first === undefined
      ? ['no test metrics']
      : [`${first} ${e.metrics[first].toFixed(4)}`];
  const set = e.overrides?.length ? ` with --set ${e.overrides.join(' ')}` : '';
  return `the ${e.checkpoint} checkpoint, epoch ${e.epoch} of ${e.epochs_completed} (${e.run_status})${set}: ${shown.join(', ')}`;
}
