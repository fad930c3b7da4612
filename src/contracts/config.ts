import type { PluginOptions } from './options';

/** A loss weight as written: a number or a schedule plugin. */
export type WeightSpec = number | PluginOptions;

/** Which direction of a metric is better. */
export type Mode = 'min' | 'max';

/** One entry of `published:` (mode filled in from the metric name when not given). */
export interface PublishedEntry {
  metric: string;
  value: number;
  pm?: number;
  mode: Mode;
  source: string;
  note?: string;
}

/** The experiment config as a validated, defaulted YAML file gives it (config/schema.ts builds its schema). */
export interface ExperimentConfig {
  experiment: string;
  seed: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  /** Absent: auto (no default, so configs without it keep their hash). */
  device?: 'auto' | 'cpu' | 'gpu';
  plugins: string[];
  data: PluginOptions;
  model: PluginOptions;
  /** Loss weights by name: c1, c2, alpha and those model plugins declare (registry/weights.ts). */
  loss: Record<string, WeightSpec>;
  train: {
    epochs: number;
    batch_size: number;
    optimizer: PluginOptions;
    log_every: number;
    steps_per_epoch?: number;
    labelled_per_batch: number;
    labelled_draw: 'cycle' | 'replacement';
    clip?: { norm?: number; value?: number };
    weight_decay: number;
    /** Stochastic weight averaging from this epoch (1-based) on (src/train/average.ts). */
    swa?: { from_epoch: number };
    checkpoint_keep: number;
    compile: 'auto' | 'off' | 'xla';
    draws: 'host' | 'graph';
    /** Where a compiled step keeps the state between steps (unset: session). */
    step_state?: 'session' | 'fed';
    /** Model selection on validation (mode filled in from the metric name when not given). */
    select?: { metric: string; mode: Mode };
  };
  eval: PluginOptions[];
  published?: PublishedEntry[];
  tracking: PluginOptions[];
}

/** How a measured value compares with a published one (config/metrics.ts verdict). */
export type Verdict = 'within' | 'better' | 'worse' | 'missing';

/** One published entry against the run's measurement (run.json `published`). */
export interface PublishedComparison extends PublishedEntry {
  measured: number | null;
  verdict: Verdict;
}
