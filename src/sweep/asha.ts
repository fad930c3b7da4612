import * as fs from 'fs';
import * as path from 'path';
import { withLockSync } from '../util/lock';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/write-atomic';

/**
 * Early stopping for sweeps: asynchronous successive halving (ASHA; Li et al., "A System
 * for Massively Parallel Hyperparameter Tuning", MLSys 2020).
 *
 *   early_stop: { kind: asha, metric: val/elbo, mode: max, grace_epochs: 1, reduction_factor: 3, max_epochs: 9 }
 *
 * Rungs lie at grace·η^k epochs (below max_epochs) and at max_epochs. Every cell first
 * trains to the lowest rung and pauses there (its run checkpointed, recorded PAUSED). A
 * cell paused at rung k is promoted when its metric is among the top ⌊n_k/η⌋ of the n_k
 * cells recorded at rung k: its run is resumed from its checkpoint up to rung k+1. Whoever
 * looks for work (a worker of `elbo sweep`, a SLURM array task once its own cell is done)
 * takes, under the table's lock: a claimed cell whose process is gone, else the best
 * promotable cell of the highest rung, else a cell that has not started. A cell no one
 * promotes stays stopped early at its rung.
 *
 * `kind: sha` is synchronous successive halving: every cell reaches the lowest rung before
 * any is promoted, and promotions from a rung wait until no cell still trains towards it;
 * it spends the fewest epochs (the top 1/η of all cells, exactly), but under SLURM the task
 * that records a rung last runs all the promotions from it alone. A local sweep starts its
 * cells in an order drawn with early_stop.seed (ASHA assumes configurations arrive in random
 * order; a grid listed best-last would otherwise promote every cell).
 *
 * The rung table lives in the sweep directory (asha.json, written under locks/asha.lock),
 * so processes on several nodes decide alike. Given the seeds and the order in which
 * cells reach their rungs, every decision is determined (ties go to the lower cell index).
 */
export interface EarlyStop {
  /** asha: asynchronous (promote as soon as a cell ranks in the top 1/η so far); sha: synchronous (once every cell has reached the rung). */
  kind: 'asha' | 'sha';
  metric: string;
  mode: 'max' | 'min';
  grace_epochs: number;
  reduction_factor: number;
  /** The epochs of the top rung: every cell's train.epochs (default: the cells' train.epochs). */
  max_epochs?: number;
  /** The order in which a local sweep starts its cells: a permutation drawn with this seed (ASHA's configurations arrive in random order). */
  seed: number;
}

export const EARLY_STOP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  description:
    'Stop bad cells early: asynchronous successive halving (ASHA). Cells pause at rungs of grace_epochs·reduction_factor^k epochs and go on only when they rank in the top 1/reduction_factor there',
  properties: {
    kind: {
      enum: ['asha', 'sha'],
      description:
        'asha: asynchronous successive halving (a cell goes on as soon as it ranks in the top 1/η of those at its rung so far: for SLURM arrays and --parallel); sha: synchronous (promotions once every cell has reached the rung: fewest epochs, but the last cell to arrive waits for none and the others wait for it)',
    },
    metric: {
      type: 'string',
      pattern: '^[A-Za-z0-9_./-]+$',
      default: 'val/elbo',
      description: 'The per-epoch metric cells are ranked by at each rung (e.g. val/elbo)',
    },
    mode: { enum: ['max', 'min'], default: 'max', description: 'max: higher is better (an ELBO); min: lower is better (a loss)' },
    grace_epochs: {
      type: 'integer',
      minimum: 1,
      default: 1,
      description: 'Epochs every cell trains before it can be stopped: the lowest rung',
    },
    reduction_factor: {
      type: 'integer',
      minimum: 2,
      default: 3,
      description: 'η: the top 1/η of a rung is promoted, and each rung trains η times the epochs of the one below',
    },
    max_epochs: {
      type: 'integer',
      minimum: 2,
      description: "The top rung: sets every cell's train.epochs (default: the cells' train.epochs)",
    },
    seed: {
      type: 'integer',
      minimum: 0,
      default: 0,
      description:
        'A local sweep starts its cells in an order drawn with this seed (a grid in order, e.g. learning rates rising, would feed ASHA its cells worst first or best first)',
    },
  },
} as const;

/** The rungs' epochs: grace·η^k below max, then max. */
export function rungEpochs(grace: number, eta: number, max: number): number[] {
  const out: number[] = [];
  for (let r = grace; r < max; r *= eta) out.push(r);
  return [...out, max];
}

/** One cell in the rung table: the rung it trains (or trained) to, and its metric at each rung reached. */
export interface RungCell {
  target: number;
  values: Record<number, number>;
}

export interface RungTable {
  /** The sweep's cells (sweep.json's cells_sha256): a table of other cells is started afresh. */
  cells_sha256: string;
  metric: string;
  mode: 'max' | 'min';
  reduction_factor: number;
  rungs: number[];
  /** sha: promotions from a rung wait until all `total` cells have been there (or stopped below it). */
  sync?: { total: number };
  cells: Record<number, RungCell>;
}

export type AshaJob = { cell: number; rung: number };

/**
 * The cells paused at rung k that may go on to rung k+1: recorded there, not promoted yet,
 * and among the top ⌊n_k/η⌋ of the n_k cells recorded at rung k; best first.
 */
export function promotable(t: RungTable, k: number): number[] {
  if (k >= t.rungs.length - 1) return [];
  const sign = t.mode === 'max' ? -1 : 1;
  const at = Object.entries(t.cells)
    .filter(([, c]) => c.values[k] !== undefined)
    .map(([i, c]) => ({ cell: Number(i), value: c.values[k], target: c.target }))
    .sort((a, b) => sign * (a.value - b.value) || a.cell - b.cell);
  return at
    .slice(0, Math.floor(at.length / t.reduction_factor))
    .filter((c) => c.target === k)
    .map((c) => c.cell);
}

/**
 * What to run next (ASHA's get_job): a cell claimed earlier whose rung was never recorded
 * (its process is gone), else the best promotable cell of the highest rung, else the first
 * of `fresh` not in the table; `busy` cells (leased, failed here) are passed over.
 */
export function nextJob(t: RungTable, fresh: number[], busy: (cell: number) => boolean): AshaJob | null {
  for (const [i, c] of Object.entries(t.cells)) {
    if (c.values[c.target] === undefined && !busy(Number(i))) return { cell: Number(i), rung: c.target };
  }
  const start = fresh.find((i) => !(i in t.cells) && !busy(i));
  // synchronous: every cell starts before any is promoted
  if (t.sync && start !== undefined) return { cell: start, rung: 0 };
  for (let k = t.rungs.length - 2; k >= 0; k--) {
    if (t.sync && !rungComplete(t, k)) continue;
    const cell = promotable(t, k).find((i) => !busy(i));
    if (cell !== undefined) return { cell, rung: k + 1 };
  }
  return start === undefined ? null : { cell: start, rung: 0 };
}

/** Synchronous halving: every cell has started, and none still trains towards rung k or below. */
function rungComplete(t: RungTable, k: number): boolean {
  const cells = Object.values(t.cells);
  return cells.length === t.sync!.total && cells.every((c) => c.target > k || c.values[c.target] !== undefined);
}

/** Where a cell stands: finished (top rung), stopped early at a rung, or still training. */
export function cellStanding(t: RungTable, cell: number): { rung: number; epochs: number; stopped: boolean } | null {
  const c = t.cells[cell];
  if (!c) return null;
  const reached = Object.keys(c.values).map(Number);
  if (!reached.length) return null;
  const rung = Math.max(...reached);
  return { rung, epochs: t.rungs[rung], stopped: rung < t.rungs.length - 1 && c.target === rung };
}

/**
 * A cell's metric at each rung its run has reached, from the run's metrics.jsonl (one
 * line per epoch); a rung whose epoch lacks the metric is an error naming the metric.
 */
export function rungValues(t: RungTable, runDir: string): Record<number, number> {
  const file = path.join(runDir, 'metrics.jsonl');
  const lines: Record<string, number>[] = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l))
    : [];
  const out: Record<number, number> = {};
  t.rungs.forEach((epoch, k) => {
    const line = lines.find((l) => l.epoch === epoch);
    if (!line) return;
    const v = line[t.metric];
    if (typeof v !== 'number') {
      const have = Object.keys(line).filter((x) => x !== 'epoch' && x !== 'step' && x !== 'timestamp');
      throw new UserError(
        `'${t.metric}' is not among the metrics of epoch ${epoch} (${have.join(', ')}); name one of them`,
        'early_stop.metric',
      );
    }
    // a diverged value ranks last
    out[k] = Number.isFinite(v) ? v : t.mode === 'max' ? -Infinity : Infinity;
  });
  return out;
}

/** The rung table of a sweep directory, read and written only under its lock. */
export class Rungs {
  private readonly file: string;
  private readonly lock: string;

  constructor(
    readonly dir: string,
    private readonly fresh: Omit<RungTable, 'cells'>,
  ) {
    this.file = path.join(dir, 'asha.json');
    this.lock = path.join(dir, 'locks', 'asha.lock');
  }

  /** Run `fn` on the table under its lock; the table is written back when `fn` says so. */
  update<T>(fn: (t: RungTable) => { result: T; changed: boolean }): T {
    fs.mkdirSync(path.dirname(this.lock), { recursive: true });
    return withLockSync(this.lock, () => {
      const t = this.read();
      const { result, changed } = fn(t);
      if (changed) {
        writeFileAtomic(this.file, JSON.stringify(t, null, 2) + '\n');
      }
      return result;
    });
  }

  /** The table as it is now (a table of other cells or other rungs reads empty). */
  read(): RungTable {
    let t: RungTable | null = null;
    try {
      t = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch {
      t = null; // none yet (never half-written: renamed into place)
    }
    const same =
      t &&
      t.cells_sha256 === this.fresh.cells_sha256 &&
      JSON.stringify(t.rungs) === JSON.stringify(this.fresh.rungs) &&
      t.metric === this.fresh.metric &&
      t.mode === this.fresh.mode &&
      t.reduction_factor === this.fresh.reduction_factor &&
      JSON.stringify(t.sync) === JSON.stringify(this.fresh.sync);
    return same ? t! : { ...this.fresh, cells: {} };
  }

  /** Take the next job (see nextJob) and claim it; `take` takes the cell's lease (false: someone holds it). */
  claim(fresh: number[], busy: (cell: number) => boolean, take: (cell: number) => boolean): AshaJob | null {
    return this.update((t) => {
      const passed = new Set<number>();
      for (;;) {
        const job = nextJob(t, fresh, (i) => passed.has(i) || busy(i));
        if (!job) return { result: null, changed: false };
        if (!take(job.cell)) {
          passed.add(job.cell);
          continue;
        }
        t.cells[job.cell] = { values: t.cells[job.cell]?.values ?? {}, target: job.rung };
        return { result: job, changed: true };
      }
    });
  }

  /** Record the rungs a cell's run has reached (from its metrics.jsonl). */
  record(cell: number, runDir: string): { rung: number; epochs: number; stopped: boolean } | null {
    return this.update((t) => {
      const values = rungValues(t, runDir);
      const c = (t.cells[cell] ??= { target: 0, values: {} });
      c.values = { ...c.values, ...values };
      // a finished run (cached) has reached the top rung: its target is the highest rung it has
      c.target = Math.max(c.target, ...Object.keys(c.values).map(Number));
      return { result: cellStanding(t, cell), changed: true };
    });
  }
}

/**
 * The rungs of a sweep whose cells train `epochs` each (train.epochs of every cell, which
 * must agree): checked against the early_stop block.
 */
export function sweepRungs(es: EarlyStop, epochs: number[]): number[] {
  const distinct = [...new Set(epochs)];
  if (distinct.length > 1)
    throw new UserError(
      `the cells train for different numbers of epochs (${distinct.join(', ')}); give early_stop.max_epochs`,
      'early_stop',
    );
  const max = distinct[0];
  if (es.grace_epochs >= max)
    throw new UserError(
      `grace_epochs (${es.grace_epochs}) must be below max_epochs (${max}): with one rung nothing is stopped early`,
      'early_stop.grace_epochs',
    );
  return rungEpochs(es.grace_epochs, es.reduction_factor, max);
}
