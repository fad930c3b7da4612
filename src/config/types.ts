/** The validated, defaulted config (see schema.ts; plugin options are typed by each plugin). */
export interface PluginOptions {
  kind: string;
  [key: string]: any;
}

/** A loss weight as written: a number or a schedule plugin. */
export type WeightSpec = number | PluginOptions;

export interface ExperimentConfig {
  experiment: string;
  seed: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  plugins: string[];
  data: PluginOptions;
  model: PluginOptions;
  loss: { c1: WeightSpec; c2: WeightSpec; alpha: WeightSpec };
  train: {
    epochs: number;
    batch_size: number;
    optimizer: PluginOptions;
    log_every: number;
    steps_per_epoch?: number;
    labelled_per_batch: number;
    checkpoint_keep: number;
    compile: 'auto' | 'off';
  };
  eval: PluginOptions[];
  tracking: PluginOptions[];
}
