import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync, SpawnSyncReturns } from 'child_process';
import { writeIdx } from '../src/data/idx';
import * as assert from 'node:assert/strict';
import { Rng } from '../src/runtime/rng';
import { loadConfig } from '../src/config/load';
import { createRegistry } from '../src/builtins';
import { UserError } from '../src/errors';
import { END_OF_TRAINING, type DataSet, type RunRecord, type RunResult, type RunStatus } from '../src/contracts';
import type { Cell } from '../src/sweep/spec';
import type { CellResult } from '../src/sweep/state';
import type { ComparisonRow } from '../src/sweep/compare';
import type { CheckpointEvaluation } from '../src/run/evaluate-checkpoint';
import type { SyncReport } from '../src/mlflow/tracker';
import type { mlflowState } from '../src/cli/runs';
import type * as tfc from '@tensorflow/tfjs-core';
import { runExperiment } from '../src/experiment';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'run.js');

/** The folders tmpDir made in this process (each test file runs in its own). */
const made: string[] = [];
let cleanupHooked = false;

/**
 * A fresh folder under the system's temporary directory, removed when this test file's
 * process exits (a suite used to leave gigabytes of runs behind). ELBO_TEST_KEEP=1 keeps
 * them, to look at what a failing test wrote.
 */
export function tmpDir(prefix = 'elbo-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  if (!cleanupHooked && process.env.ELBO_TEST_KEEP !== '1') {
    cleanupHooked = true;
    process.on('exit', () => {
      for (const d of made) {
        try {
          fs.rmSync(d, { recursive: true, force: true, maxRetries: 2 });
        } catch {
          // a folder something else still holds stays behind; the test's result stands
        }
      }
    });
  }
  return dir;
}

/** The problem lines of a config given as YAML text (FILE for its path), or [] when it is valid. */
export function configProblems(yaml: string, overrides: string[] = []): string[] {
  const dir = tmpDir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, yaml);
  try {
    loadConfig(file, overrides, createRegistry());
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack ?? e}`);
    return e
      .line()
      .split('\n')
      .map((l) => l.split(file).join('FILE').split(path.relative(process.cwd(), file)).join('FILE'));
  }
  return [];
}

/** A minimal valid config: MNIST and a VAE, everything else default. */
export const BASE_CONFIG = 'data: {kind: mnist}\nmodel:\n  kind: vae\n';

/**
 * A small labelled image data set in IDX files: 8×8 images of 4 classes (a bright row,
 * column or diagonal per class, plus noise), generated with a fixed seed.
 */
export function makeIdxData(dir: string, nTrain = 400, nTest = 100, seed = 7): Record<string, string> {
  const rng = new Rng(seed);
  const make = (n: number, name: string) => {
    const x = new Uint8Array(n * 64);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % 4;
      y[i] = c;
      const k = rng.int(8);
      for (let r = 0; r < 8; r++)
        for (let q = 0; q < 8; q++) {
          const on = c === 0 ? r === k : c === 1 ? q === k : c === 2 ? r === q : r + q === 7;
          const v = on ? 0.9 : 0.05;
          x[i * 64 + r * 8 + q] = Math.round(255 * Math.min(1, Math.max(0, v + 0.1 * rng.normal())));
        }
    }
    writeIdx(path.join(dir, `${name}-images-idx3-ubyte`), [n, 8, 8], x);
    writeIdx(path.join(dir, `${name}-labels-idx1-ubyte`), [n], y);
  };
  make(nTrain, 'train');
  make(nTest, 'test');
  return {
    train_images: path.join(dir, 'train-images-idx3-ubyte'),
    train_labels: path.join(dir, 'train-labels-idx1-ubyte'),
    test_images: path.join(dir, 'test-images-idx3-ubyte'),
    test_labels: path.join(dir, 'test-labels-idx1-ubyte'),
  };
}

/** A small, fast config on generated data (written next to the data). */
export function smallConfig(dir: string, extra = ''): string {
  const files = makeIdxData(dir);
  const file = path.join(dir, 'small.yaml');
  fs.writeFileSync(
    file,
    `experiment: small
seed: 1
data:
  kind: idx
  train_images: ${path.basename(files.train_images)}
  train_labels: ${path.basename(files.train_labels)}
  test_images: ${path.basename(files.test_images)}
  test_labels: ${path.basename(files.test_labels)}
  validation: 50
model:
  kind: vae
  latent: 4
  encoder: { kind: mlp, hidden: [32] }
  decoder: { kind: mlp, hidden: [32] }
train:
  epochs: 3
  batch_size: 50
eval:
  - kind: elbo
  - kind: iwae
    k: 8
  - kind: reconstructions
    n: 8
${extra}`,
  );
  return file;
}

export function elbo(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', ...opts.env },
    timeout: 120_000,
  });
}

/**
 * `elbo run CONFIG --runs-dir RUNS --json --set S…` for the settings S, then `extra`: asserts
 * exit 0; its last JSON line, stderr and run.json.
 */
export function runJson(config: string, runsDir: string, sets: string[], extra: string[] = []) {
  const r = elbo(['run', config, '--runs-dir', runsDir, '--json', ...sets.flatMap((v) => ['--set', v]), ...extra]);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson<RunOutput>(r.stdout);
  return { out, stderr: r.stderr, rec: JSON.parse(fs.readFileSync(path.join(out.runDir, 'run.json'), 'utf8')) };
}

// ---- what commands print on their last stdout line with --json (read with lastJson) ----

/** `elbo run --json` (a resumed or failed run's too). */
export type RunOutput = RunResult;

/** `elbo sweep --json`: the sweep's directory, FINISHED when every cell settled, each cell's record. */
export interface SweepOutput {
  dir: string;
  status: 'FINISHED' | 'FAILED';
  cells: CellResult[];
}

/** `elbo sweep --dry-run --json`: the cells that would run. */
export interface DryRunOutput {
  dir: string;
  cells: (Cell & { config_sha256: string; args: string[] })[];
}

/** `elbo validate --json`. */
export interface ValidateOutput {
  ok: boolean;
  file: string;
  kind: 'config' | 'sweep';
  config_sha256?: string;
  cells?: number;
  problems: { where: string; file: string | null; line: number | null; col: number | null; message: string }[];
}

/** `elbo runs list --json`: a row per run. */
export type ListedRunRow = Pick<
  RunRecord,
  'run_id' | 'experiment' | 'start_time' | 'epochs_completed' | 'epochs_planned' | 'sweep' | 'metrics'
> & {
  dir: string;
  status: RunStatus;
  tags: Record<string, string>;
};

/** `elbo runs show --json`: the record with its directory, the status read (and recorded), its evaluations, its pace while it runs. */
export type ShownRun = RunRecord & {
  dir: string;
  recorded_status: RunStatus;
  mlflow: ReturnType<typeof mlflowState>;
  evaluations: CheckpointEvaluation[];
  pace?: { epoch_s: number; left_s: number };
};

/** `elbo evaluate --json`. */
export type EvaluateOutput = CheckpointEvaluation;

/** `elbo compare --json`. */
export interface CompareOutput {
  keys: string[];
  metrics: string[];
  rows: ComparisonRow[];
}

/** `elbo audit --json`: each audited cell's reproduction, summed up. */
export interface AuditOutput {
  sweep: string;
  audited: number;
  passed: number;
  cells: {
    cell: number;
    label: string;
    passed: boolean;
    metrics_compared: number;
    max_abs_diff: number;
    fingerprint_diffs: string[];
    causes: string[];
    rerun: string | null;
  }[];
}

/** `elbo sync --json`. */
export interface SyncOutput {
  runs: SyncReport[];
}

/** One plugin's branch of a kind's slot in `elbo schema`'s output (definitions.KIND.oneOf[i]). */
export interface SchemaBranch {
  properties: { kind: { const: string } };
}

/** The JSON object on the last line of stdout (`elbo run --json`), as T: one of the outputs above. */
export function lastJson<T>(out: string): T {
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/**
 * A dataset plugin created from `options` over the files in `dir`, as a run creates it
 * (validation 0 and binarize none unless given), its draws from `seed`.
 */
export function loadDataSet<T extends DataSet = DataSet>(dir: string, options: Record<string, unknown>, seed = 0): T {
  if (typeof options.kind !== 'string') throw new Error('loadDataSet: options.kind names the dataset plugin');
  const registry = createRegistry();
  const given = { validation: 0, binarize: 'none', ...options, kind: options.kind };
  // the loaders read files and draw from rng; none computes with tf
  return registry.create('dataset', given, { registry, rng: new Rng(seed), baseDir: dir, tf: undefined as never }) as T;
}

/** The one line of the UserError that loadDataSet gives for `options`, with the directory shown as DIR. */
export function dataSetError(dir: string, options: Record<string, unknown>): string {
  try {
    loadDataSet(dir, options);
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack ?? e}`);
    const line = e.line();
    assert.equal(line.split('\n').length, 1, line);
    return line.split(dir).join('DIR');
  }
  assert.fail(`no error for ${JSON.stringify(options)}`);
}

/** A small generated data set (uniform values in [0, 1], labels i mod classes), the same split for train and test. */
export function tinyDataSet(o: { shape: number[]; n?: number; classes?: number; seed?: number }): DataSet {
  const rng = new Rng(o.seed ?? 11);
  const n = o.n ?? 12;
  const dim = o.shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n * dim }, () => rng.uniform());
  const y = o.classes ? Int32Array.from({ length: n }, (_, i) => i % o.classes!) : null;
  return {
    name: 'tiny',
    shape: o.shape,
    dim,
    classes: o.classes ?? 0,
    train: { x, y, n },
    val: null,
    test: { x, y, n },
    sha256: '',
    source: 'generated',
    binarize: 'none',
    labelled: null,
  };
}

/**
 * A toy binary image set of `n` rows of side × side pixels (each on with probability 0.6
 * from `rng`'s next uniforms, in order), labels i mod 3, the same split for train and test.
 */
export function binaryToyDataSet(rng: Rng, side: number, n: number): DataSet {
  const dim = side * side;
  const split = { x: rng.uniforms(n * dim).map((v) => (v < 0.4 ? 1 : 0)), y: Int32Array.from({ length: n }, (_, i) => i % 3), n };
  return {
    name: 'toy',
    shape: [side, side, 1],
    dim,
    classes: 3,
    train: split,
    val: null,
    test: split,
    sha256: '',
    source: 'generated',
    binarize: 'none',
    labelled: null,
  };
}

/** Metrics without the timings (*samples_per_sec, *time_s), which differ between identical runs. */
export function untimed(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([k]) => !/(samples_per_sec|time_s)$/.test(k)));
}

/** Every line of a run's metrics.jsonl (epochs and test), in order, as written. */
function metricsLines(runDir: string): Record<string, number>[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** Every line of a run's metrics.jsonl (epochs and test), in order, without its timestamp and timings. */
export function untimedLines(runDir: string): Record<string, number>[] {
  return metricsLines(runDir).map(({ timestamp, ...m }) => untimed(m));
}

/** A run's epoch lines of metrics.jsonl (those with an epoch), in order. */
export function epochLines(runDir: string): Record<string, number>[] {
  return metricsLines(runDir).filter((m) => m.epoch);
}

/** A tensor's values as a plain array. */
export const values = (v: tfc.Tensor): number[] => Array.from(v.dataSync());

/** Element-wise |a − b| ≤ tol·(1 + |b|), each mismatch named by `what` and its index. */
export function near(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

/** adgm/sdgm options for tiny models: MLPs of 5 tanh units, z of 2 and a of 3 dimensions; `extra` replaces any. */
export function tinyAdgmOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const net = { kind: 'mlp', hidden: [5], activation: 'tanh' };
  return {
    latent: 2,
    aux: 3,
    prior: { kind: 'gaussian', logvar_min: -30, logvar_max: 20 },
    encoder_a: net,
    classifier: net,
    encoder: net,
    decoder: net,
    decoder_a: net,
    likelihood: 'bernoulli',
    class_noise: 'independent',
    class_loss: 'sum',
    entropy_weight: 1,
    aux_logvar_min: -30,
    aux_logvar_max: 20,
    classify_samples: 10,
    aux_samples: 1,
    ...extra,
  };
}

/**
 * A short semi-supervised run of `model` (an override) on smallConfig's data: 20 labels, 10
 * in every batch, 12 epochs, Adam 3e-3, then `overrides` and `eval`. Asserts what every
 * semi-supervised model must do there: it finishes, lowers train/loss, logs `keys` from the
 * first epoch, classifies the test rows far better than chance (accuracy > 0.6 of 4 classes;
 * error_pct its complement) and writes the artifacts `files`.
 */
export async function shortSemiSupervisedRun(o: {
  model: string;
  overrides?: string[];
  eval: string;
  keys: string[];
  files: string[];
}): Promise<{ r: Awaited<ReturnType<typeof runExperiment>>; lines: Record<string, number>[] }> {
  const dir = tmpDir();
  const r = await runExperiment({
    config: smallConfig(dir),
    runsDir: path.join(dir, 'runs'),
    progress: false,
    overrides: [
      o.model,
      'data.labelled=20',
      'train.labelled_per_batch=10',
      'train.epochs=12',
      'train.optimizer={kind: adam, lr: 0.003}',
      ...(o.overrides ?? []),
      `eval=${o.eval}`,
    ],
  });
  assert.equal(r.status, 'FINISHED', r.error);
  const lines = epochLines(r.runDir);
  assert.ok(lines.at(-1)!['train/loss'] < lines[0]['train/loss'], `train/loss ${lines[0]['train/loss']} → ${lines.at(-1)!['train/loss']}`);
  for (const k of [
    'train/labelled',
    'train/unlabelled',
    'train/class',
    'train/entropy',
    'train/recon',
    'train/kl',
    'val/accuracy',
    ...o.keys,
  ])
    assert.ok(k in lines[0], k);
  const acc = r.metrics['test/accuracy'];
  assert.ok(acc > 0.6, `test accuracy ${acc} (chance 0.25)`);
  assert.ok(Math.abs(r.metrics['test/error_pct'] - 100 * (1 - acc)) < 1e-9, `error_pct ${r.metrics['test/error_pct']} (accuracy ${acc})`);
  for (const f of o.files) assert.ok(fs.existsSync(path.join(r.runDir, 'artifacts', f)), f);
  return { r, lines };
}

/** Where evaluation computes: the end of training, every schedule at its end value. */
export const EVAL = END_OF_TRAINING;

export const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);

/** `a` within `tol` of `b`, relative where |b| > 1, else absolute. */
export const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
