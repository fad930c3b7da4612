import type { PluginOptions } from '../registry/types';

/** Plugin options as a config holds them (each plugin types its own: see definePlugin). */
export type { PluginOptions };

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
    checkpoint_keep: number;
    compile: 'auto' | 'off';
    draws: 'host' | 'graph';
    /** Model selection on validation (mode filled in from the metric name when not given). */
    select?: { metric: string; mode: Mode };
  };
  eval: PluginOptions[];
  published?: PublishedEntry[];
  tracking: PluginOptions[];
}
