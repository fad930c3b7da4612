import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { withLockSync } from '../util/lock';
import { ensureVenvTool } from '../util/venv';
import { elboRoot } from '../runtime/fingerprint';
import { UserError, type Caught } from '../errors';
import { writeFileAtomic } from '../util/write-atomic';

/**
 * A Bayesian search: `random:`'s smarter sibling. Optuna (installed from PyPI into
 * .venv-optuna the first time, like the MLflow tests' server) proposes each trial through
 * its command line, `optuna ask`, given the trials told so far (`optuna tell`); the study
 * lives in a journal file or an SQLite database in the sweep directory.
 *
 *   sweep:
 *     search:
 *       kind: optuna
 *       trials: 12
 *       sampler: tpe            # or random
 *       seed: 0
 *       metric: val/elbo        # told back: its value at the last epoch
 *       mode: max
 *       space: { train.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}, model.latent: {choice: [2, 8, 32]} }
 *
 * The sweep has `trials` cells; cell i is the i-th trial asked, its overrides what Optuna
 * proposed. A cell is asked for when it is about to run, under the sweep's trials lock
 * (trials.json records each cell's trial), so SLURM array tasks ask in turn. The sampler
 * gets the seed plus the cell's index (each `optuna ask` is a fresh process: one seed for
 * all would draw the same startup trial every time), so a search is determined by its
 * seed and the order in which trials are told.
 */
export interface Search {
  kind: 'optuna';
  trials: number;
  sampler: 'tpe' | 'random';
  seed: number;
  /** Trials TPE draws at random before it models the results (Optuna's n_startup_trials). */
  startup_trials: number;
  metric: string;
  mode: 'max' | 'min';
  /** The study's storage, relative to the sweep directory: *.db is SQLite, anything else a journal file. */
  storage: string;
  space: Record<string, Distribution>;
}

/** One swept value's distribution, as `random:` and `search:` spaces write it. */
export type Distribution =
  { uniform: [number, number] } | { log_uniform: [number, number] } | { int: [number, number] } | { choice: unknown[] };

/** Optuna, pinned. */
export const OPTUNA_VERSION = '5.0.0';

/** One asked trial: the cell it is, Optuna's trial number, what it proposed, and whether it was told. */
export interface Trial {
  number: number;
  params: Record<string, unknown>;
  told?: 'complete' | 'fail';
  /** The cell it made (label, run name, resolved-config hash), once resolved: what sweep.json lists. */
  cell?: { label: string; name: string; config_sha256: string };
}

/** Optuna's distributions for `space` (the syntax of random:). A choice of non-scalars is offered as JSON strings. */
export function optunaSpace(space: Record<string, Distribution>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(space)) {
    if ('uniform' in d)
      out[k] = { name: 'FloatDistribution', attributes: { low: d.uniform[0], high: d.uniform[1], log: false, step: null } };
    else if ('log_uniform' in d)
      out[k] = { name: 'FloatDistribution', attributes: { low: d.log_uniform[0], high: d.log_uniform[1], log: true, step: null } };
    else if ('int' in d) out[k] = { name: 'IntDistribution', attributes: { low: d.int[0], high: d.int[1], log: false, step: 1 } };
    else
      out[k] = {
        name: 'CategoricalDistribution',
        attributes: { choices: scalarChoices(d.choice) ? d.choice : d.choice.map((c) => JSON.stringify(c)) },
      };
  }
  return out;
}

const scalarChoices = (c: unknown[]) => c.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v));

/** Optuna's proposal as config values (JSON-string choices decoded). */
export function fromOptuna(space: Record<string, Distribution>, params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(space).map(([k, d]) => [k, 'choice' in d && !scalarChoices(d.choice) ? JSON.parse(String(params[k])) : params[k]]),
  );
}

/** The study of a sweep directory: trials.json (cell → trial) under locks/trials.lock, and the optuna CLI. */
export class Study {
  private bin = '';
  private readonly file: string;
  private readonly lock: string;

  constructor(
    readonly dir: string,
    readonly name: string,
    readonly s: Search,
    /** Where the search is given, for messages (the sweep file). */
    private readonly where = 'sweep.search',
  ) {
    this.file = path.join(dir, 'trials.json');
    this.lock = path.join(dir, 'locks', 'trials.lock');
  }

  /** Optuna's command line, installed into .venv-optuna when it is not there; the study created. */
  async open(log: (m: string) => void): Promise<void> {
    const venv = process.env.ELBO_OPTUNA_VENV ?? path.join(elboRoot(), '.venv-optuna');
    try {
      this.bin = (await ensureVenvTool({ venv, pkg: 'optuna', version: OPTUNA_VERSION, bin: 'optuna', log })).bin;
    } catch (e) {
      // the step that failed, and the last words of its output
      const [step, ...rest] = String((e as Caught)?.message ?? e)
        .trim()
        .split('\n')
        .filter((l) => l.trim());
      const why = [step.replace(/:$/, ''), ...rest.slice(-1)].join(': ');
      throw new UserError(
        `optuna is not installed and could not be installed (${why}); install it by hand: python3 -m venv ${venv} && ${venv}/bin/pip install optuna==${OPTUNA_VERSION}`,
        this.where,
      );
    }
    fs.mkdirSync(path.dirname(this.lock), { recursive: true });
    withLockSync(this.lock, () =>
      this.optuna(['create-study', '--direction', this.s.mode === 'max' ? 'maximize' : 'minimize', '--skip-if-exists']),
    );
  }

  private storage(): string[] {
    const file = path.resolve(this.dir, this.s.storage);
    return /\.(db|sqlite3?)$/.test(file)
      ? ['--storage', `sqlite:///${file}`]
      : ['--storage', file, '--storage-class', 'JournalFileBackend'];
  }

  private optuna(args: string[]): string {
    const r = spawnSync(this.bin, [args[0], ...this.storage(), '--study-name', this.name, ...args.slice(1)], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (r.status !== 0) {
      const last = (r.stderr || r.stdout || r.error?.message || '')
        .trim()
        .split('\n')
        .filter((l) => l.trim())
        .pop();
      throw new UserError(
        `optuna ${args[0]} failed: ${last ?? `exit ${r.status}`}`,
        path.relative(process.cwd(), path.resolve(this.dir, this.s.storage)),
      );
    }
    return r.stdout;
  }

  read(): Record<number, Trial> {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch {
      return {}; // none asked yet (written by rename: never half)
    }
  }

  private write(t: Record<number, Trial>): void {
    writeFileAtomic(this.file, JSON.stringify(t, null, 2) + '\n');
  }

  /** Cell `cell`'s trial: the one asked for it before, else a new one asked now (under the lock). */
  trial(cell: number): Trial {
    return withLockSync(this.lock, () => {
      const t = this.read();
      if (t[cell]) return t[cell];
      const sampler = this.s.sampler === 'tpe' ? 'TPESampler' : 'RandomSampler';
      const kwargs = { seed: this.s.seed + cell, ...(this.s.sampler === 'tpe' ? { n_startup_trials: this.s.startup_trials } : {}) };
      const out = this.optuna([
        'ask',
        '--sampler',
        sampler,
        '--sampler-kwargs',
        JSON.stringify(kwargs),
        '--search-space',
        JSON.stringify(optunaSpace(this.s.space)),
        '-f',
        'json',
      ]);
      const asked = JSON.parse(out.trim().split('\n').pop()!);
      t[cell] = { number: asked.number, params: fromOptuna(this.s.space, asked.params) };
      this.write(t);
      return t[cell];
    });
  }

  /** Record the cell a trial made (what every process's sweep.json shows for it). */
  describe(cell: number, made: NonNullable<Trial['cell']>): void {
    withLockSync(this.lock, () => {
      const t = this.read();
      if (!t[cell]) return;
      t[cell].cell = made;
      this.write(t);
    });
  }

  /** Tell Optuna how cell `cell`'s trial ended (null: it failed); once. */
  tell(cell: number, value: number | null): void {
    withLockSync(this.lock, () => {
      const t = this.read();
      if (!t[cell] || t[cell].told) return;
      const ok = value !== null && Number.isFinite(value);
      this.optuna([
        'tell',
        '--trial-number',
        String(t[cell].number),
        ...(ok ? ['--values', String(value), '--state', 'complete'] : ['--state', 'fail']),
        '--skip-if-finished',
      ]);
      t[cell].told = ok ? 'complete' : 'fail';
      this.write(t);
    });
  }
}

export const SEARCH_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'trials', 'space'],
  description: "A Bayesian search (random:'s smarter sibling): Optuna proposes each cell's values given the results so far",
  properties: {
    kind: { const: 'optuna', description: 'optuna: Optuna through its command line (installed into .venv-optuna the first time)' },
    trials: { type: 'integer', minimum: 1, maximum: 10_000, description: 'Cells (trials) to run' },
    sampler: {
      enum: ['tpe', 'random'],
      default: 'tpe',
      description: "tpe: Optuna's Tree-structured Parzen Estimator; random: uniform draws",
    },
    seed: { type: 'integer', minimum: 0, default: 0, description: "The sampler's seed (cell i asks with seed + i)" },
    startup_trials: { type: 'integer', minimum: 1, default: 10, description: 'tpe: trials drawn at random before TPE models the results' },
    metric: {
      type: 'string',
      pattern: '^[A-Za-z0-9_./-]+$',
      default: 'val/elbo',
      description: "The metric told back: its value at the trial's last epoch",
    },
    mode: { enum: ['max', 'min'], default: 'max', description: 'max: maximize the metric; min: minimize it' },
    storage: {
      type: 'string',
      default: 'optuna.journal',
      pattern: '^[^/]',
      description: 'The study, in the sweep directory: NAME.db is SQLite, any other name a journal file',
    },
  },
} as const;
