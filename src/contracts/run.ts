import type { BackendInfo } from '../runtime/backend';
import type { Fingerprint } from '../runtime/fingerprint';
import type { PublishedComparison } from './config';

/**
 * What a run records (run.json) and how it ends: what trackers receive, and what a model
 * built on another run (m1m2's M1) gets back from it.
 */

/** PAUSED: stopped on purpose after the epoch `elbo run --pause-at` named (a sweep's early-stopping rung); resumable. */
export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED' | 'PAUSED';

/** run.json: everything needed to know what ran, where, and how it ended. */
export interface RunRecord {
  run_id: string;
  experiment: string;
  status: RunStatus;
  seed: number;
  backend: BackendInfo;
  fingerprint: Fingerprint;
  config_file: string;
  /**
   * The base configs config_file extends (absolute paths, in the order merged); absent when it
   * extends none. config.yaml holds the composed config, so they are for reading only.
   */
  config_bases?: string[];
  /** Relative paths in the config (data, plugins) resolve against this directory. */
  config_dir: string;
  config_sha256: string;
  data: { name: string; source: string; sha256: string; train: number; val: number; test: number };
  start_time: string;
  end_time: string | null;
  /**
   * Seconds the run's processes spent on it: start to end, a resumed run's time from each
   * resume on added to what it had (`resumes[].trained_s`), the time it sat stopped not counted.
   */
  duration_s: number | null;
  epochs_completed: number;
  epochs_planned: number;
  global_step: number;
  error: string | null;
  /** `elbo run --tag K=V` (repeatable): the user's labels for the run (also MLflow tags). */
  tags?: Record<string, string>;
  /** `elbo run --note TEXT`: what the run is for, in the user's words (also in MLflow's run description). */
  note?: string;
  /** A sweep cell's run: which sweep (its name and directory), which cell, and the setting it ran (elbo runs list and show say it). */
  sweep?: SweepCellLabel;
  /**
   * Every resume: when, from which epoch, on which backend, and the status the run had then
   * (a RUNNING run whose process was gone is recorded KILLED, with `recovered` saying so);
   * `epochs`: train.epochs changed by `--resume RUN_DIR --set train.epochs=N` (trained on).
   */
  resumes: {
    time: string;
    from_epoch: number;
    backend: string;
    previous_status?: RunStatus;
    recovered?: string;
    epochs?: { from: number; to: number };
    /** The run's duration_s before this resume (for a run killed hard: to its last metrics line). */
    trained_s?: number;
  }[];
  /** How the training step ran, per batch shape (one TensorFlow graph, or eager kernels and why). */
  step_modes?: StepMode[];
  /** train.select: the best epoch so far (at the end: the selected one) and its metric value. */
  selected?: Selected;
  /**
   * Which parameters the test metrics were measured on: the best checkpoint (train.select) or the
   * last epoch; `swa_epochs`: train.swa's average of that many epochs' ends.
   */
  evaluated_on?: { checkpoint: 'best' | 'last'; epoch: number; swa_epochs?: number };
  /** The config's `published:` entries with the measured value and a verdict (within, better, worse, missing). */
  published?: PublishedComparison[];
  /** Runs the model was built on, by role (m1m2: its M1), and whether they were reused or trained for this run. */
  depends_on?: Record<string, RunDependency>;
  metrics: Record<string, number>;
}

/**
 * A sweep cell, as its run records it: the sweep's name and directory, the cell's index, its
 * `label` (every swept value: model.latent=8 seed=0) and its `short` name (latent=8,seed=0).
 */
export interface SweepCellLabel {
  name: string;
  dir: string;
  cell: number;
  label: string;
  short: string;
}

/**
 * Another run a model was built on, as run.json records it under `depends_on.NAME`; the
 * config gives it as `model.NAME` (a nested block) or `model.NAME_run` (a run directory), and
 * `elbo compare` reads a named run as the block it was trained from.
 */
export interface RunDependency {
  run_id: string;
  run_dir: string;
  config_sha256: string;
  /**
   * given: named in the config (m1m2's m1_run); reused: a finished run with the same
   * resolved config was found; trained: it was trained first, inside this run; resumed:
   * an unfinished one was continued.
   */
  how: 'given' | 'reused' | 'trained' | 'resumed';
}

/** The best epoch so far under train.select, as of a checkpoint. */
export interface Selected {
  metric: string;
  mode: 'min' | 'max';
  epoch: number;
  value: number;
}

/** How the step for one batch shape runs: one TensorFlow graph, or kernel by kernel. */
export interface StepMode {
  /**
   * Shapes the mode applies to: x, and the lengths of the model's step inputs (the last,
   * smaller batch of an epoch gets its own graph, as does each labelled count of M2).
   */
  batch: string;
  mode: 'graph' | 'eager';
  /** Why the step stays eager. */
  reason?: string;
  /** Kernels in the graph, and the time tracing, loading and checking it took. */
  kernels?: number;
  seconds?: number;
  /**
   * Where a compiled step keeps the parameters and optimizer state between steps: in its
   * TensorFlow session ('session', Adam's update fused), or fed in and returned ('fed').
   */
  state?: 'session' | 'fed';
  /** train.compile: xla: XLA compiled the graph's clusters. */
  xla?: true;
  /** Why the state is fed when the session was asked to keep it. */
  stateReason?: string;
}

/** How a run ended, as `runExperiment` resolves it (run.json has the same and more). */
export interface RunResult {
  runId: string;
  runDir: string;
  status: RunStatus;
  metrics: Record<string, number>;
  error?: string;
  /** Which parameters the test metrics come from (absent when the run ended before evaluating). */
  evaluatedOn?: { checkpoint: 'best' | 'last'; epoch: number };
  /** train.select: the selected epoch and its metric value. */
  selected?: Selected;
  /** The config's published numbers against the measured ones (FINISHED runs). */
  published?: PublishedComparison[];
}
