import type * as tfc from '@tensorflow/tfjs-core';
import type { PluginRegistry, SweepCellLabel } from '../contracts';

/** What `runExperiment` is asked (`elbo run`'s flags, and what API users and tests add). */
export interface RunOptions {
  /** Config file (not with `resume`). */
  config?: string;
  /** The config's YAML text, when it is not read from `config` (which then only names it). */
  text?: string;
  overrides?: string[];
  seed?: number;
  backend?: string;
  /** `--device`: auto, cpu or gpu, over the config's `device`. */
  device?: string;
  runsDir?: string;
  /** A run directory to continue from its last checkpoint. */
  resume?: string;
  /** Directory relative paths in the config resolve against (default: the config's own). */
  baseDir?: string;
  /** Progress output on stderr (default true). */
  progress?: boolean;
  /** Whole progress lines on a terminal too (`--verbose`; else they fit its width). */
  verbose?: boolean;
  registry?: PluginRegistry;
  /** Called after each epoch's checkpoint (API users, tests). */
  onEpoch?: (epoch: number, metrics: Record<string, number>, tf: typeof tfc) => void;
  /**
   * Stop after this epoch (its checkpoint written) and record PAUSED, without evaluating:
   * `--resume` continues it, with the same config (train.epochs) and so the same schedules.
   * What a sweep's early stopping runs a cell to at each rung. At or past train.epochs: no pause.
   */
  pauseAt?: number;
  /** Stop as if interrupted once this returns true (API users; the CLI uses SIGINT/SIGTERM). */
  shouldStop?: () => boolean;
  /** MLflow tracking server (--tracking-uri): turns the mlflow tracker on, overrides the config's tracking_uri. */
  trackingUri?: string;
  /** The user's labels for the run (`--tag K=V`), recorded in run.json and sent to MLflow as tags. */
  tags?: Record<string, string>;
  /** What the run is for (`--note TEXT`), recorded in run.json and in MLflow's run description. */
  note?: string;
  /** The sweep cell this run is (set by `elbo sweep` through ELBO_SWEEP_CELL): recorded in run.json, shown by elbo runs list and show. */
  sweepCell?: SweepCellLabel;
}
