import * as path from 'path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parse as parseYamlValue } from 'yaml';
import { AJV_OPTIONS } from '../config/load';
import { UserError, UserErrors, suggestion } from '../errors';

/**
 * What an emitted SLURM array asks for: the sweep file's `slurm:` block, overridden by
 * `elbo sweep --emit slurm --slurm KEY=VALUE` (repeatable), both checked by this schema.
 *
 *   slurm:
 *     cpus_per_task: 2        # --cpus-per-task (the srun step gets the same)
 *     mem: 4G                 # --mem, per task
 *     time: "2:00:00"         # --time; the task is stopped and requeued signal_before s before it
 *     partition: gpu
 *     account: proj42
 *     qos: normal
 *     gpus: 1                 # --gpus (a count, or TYPE:COUNT)
 *     constraint: "a100|h100"
 *     throttle: 8             # --array=0-N%8: at most 8 tasks at once (default: no limit)
 *     signal_before: 180      # seconds before the time limit to stop (checkpoint) and requeue
 *     sbatch: ["--mail-type=END", "--exclusive"]   # more #SBATCH lines, as given
 */
export interface SlurmOptions {
  cpus_per_task: number;
  mem: string;
  time?: string;
  partition?: string;
  account?: string;
  qos?: string;
  gpus?: string | number;
  constraint?: string;
  throttle?: number;
  signal_before: number;
  sbatch: string[];
}

/** One word sbatch reads as it is: no space, quote, `#`, `$`, backslash or newline. */
const WORD = { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9_.:,=+@%/&|!*()\\[\\]-]+$' };
export const SLURM_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  description: 'What each SLURM array task asks for (elbo sweep --emit slurm; override with --slurm KEY=VALUE)',
  properties: {
    cpus_per_task: { type: 'integer', minimum: 1, default: 2, description: 'CPUs per task (sbatch --cpus-per-task)' },
    mem: { type: 'string', pattern: '^[0-9]+[KMGT]?$', default: '4G', description: 'Memory per task, e.g. 4G (sbatch --mem)' },
    time: {
      type: 'string',
      pattern: '^([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}$',
      description: 'Time limit per task: MINUTES, H:MM:SS or D-HH:MM:SS (sbatch --time)',
    },
    partition: { ...WORD, description: 'sbatch --partition' },
    account: { ...WORD, description: 'sbatch --account' },
    qos: { ...WORD, description: 'sbatch --qos' },
    gpus: { oneOf: [{ type: 'integer', minimum: 1 }, WORD], description: 'GPUs per task: a count or TYPE:COUNT (sbatch --gpus)' },
    constraint: { ...WORD, description: 'Node features (sbatch --constraint)' },
    throttle: { type: 'integer', minimum: 1, description: 'At most this many tasks at once (--array=0-N%K); default: no limit' },
    signal_before: {
      type: 'integer',
      minimum: 10,
      default: 180,
      description: 'Seconds before the time limit when a task stops (its run checkpointed, KILLED) and requeues itself',
    },
    sbatch: {
      type: 'array',
      default: [],
      items: { type: 'string', pattern: '^--[a-z][a-z-]*(=[^\\n\\r"\'$`\\\\]+)?$' },
      description: 'More #SBATCH options, each as --name or --name=value',
    },
  },
} as const;

let validator: ValidateFunction<SlurmOptions> | null = null;

/**
 * The options of the sweep file's `slurm:` block (already checked with the sweep file)
 * with `--slurm KEY=VALUE` flags on top; a bad flag is an error naming it.
 */
export function slurmOptions(block: Record<string, unknown> | undefined, flags: string[]): SlurmOptions {
  const out: Record<string, unknown> = { ...(block ?? {}) };
  const keys = Object.keys(SLURM_SCHEMA.properties);
  const problems: UserError[] = [];
  const where: Record<string, string> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    if (eq < 0 || !keys.includes(key)) {
      problems.push(new UserError(eq < 0 ? 'give KEY=VALUE' : `unknown SLURM option '${key}'${suggestion(key, keys)}`, `--slurm ${f}`));
      continue;
    }
    const raw = f.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = key === 'sbatch' ? [...((out.sbatch as string[]) ?? []), raw] : parseYamlValue(raw);
    } catch {
      /* a plain string */
    }
    // names and times stay strings (time: 10 is ten minutes, given as text)
    if (typeof value === 'number' && ['mem', 'time', 'partition', 'account', 'qos', 'constraint'].includes(key)) value = raw;
    out[key] = value;
    where[key] = `--slurm ${f}`;
  }
  if (problems.length) throw new UserErrors(problems);
  validator ??= new Ajv(AJV_OPTIONS).compile<SlurmOptions>(SLURM_SCHEMA);
  if (!validator(out)) {
    const e = validator.errors![0];
    const key = e.instancePath.split('/')[1] ?? '';
    throw new UserError(`slurm.${e.instancePath.slice(1).replace(/\//g, '.')} ${e.message}`, where[key] ?? "the sweep file's slurm block");
  }
  return out;
}

/** A word for bash: single-quoted (nothing inside is expanded). */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A path for an #SBATCH line, double-quoted (sbatch reads the quotes: spaces are fine). */
function sbatchPath(p: string, file: string, runsDir: string): string {
  // sbatch reads % as a file-name pattern (%A, %a) and has no escape for one % alone
  if (/["%\n\r]/.test(p))
    throw new UserError(
      'a runs directory whose path has a double quote, a % or a line break cannot be given to sbatch; use another one',
      `--runs-dir ${runsDir}`,
    );
  return `"${path.join(p, file)}"`;
}

/**
 * The SLURM job-array script whose task i runs cell i (`elbo sweep FILE --cell i`) in an
 * srun step. Cells share only the run store (a shared file system): each runs under a
 * lease, so a second submission of the script runs no cell twice. Near the time limit
 * (`signal_before`) the task stops its cell (checkpointed, KILLED) and requeues itself;
 * the next attempt resumes the cell. The log of every attempt is appended to one file.
 */
export function slurmScript(o: {
  name: string;
  sweepFile: string;
  dir: string;
  runsDir: string;
  cells: number;
  cellsSha256: string;
  slurm: SlurmOptions;
  /** `elbo sweep` flags the tasks get as they are (--backend, --tracking-uri, --tag, --note). */
  forward: string[];
  node: string;
  bin: string;
}): string {
  const s = o.slurm;
  const opt = (name: string, v: unknown) => (v === undefined ? [] : [`#SBATCH --${name}=${v}`]);
  const lines = [
    '#!/bin/bash',
    `# elbo sweep ${path.basename(o.sweepFile)}: ${o.cells} cells; array task i runs cell i.`,
    `# Submit with: sbatch ${shQuote(path.join(o.dir, 'sweep.slurm'))}`,
    `#SBATCH --job-name=elbo-${o.name}`,
    `#SBATCH --array=0-${o.cells - 1}${s.throttle ? `%${s.throttle}` : ''}`,
    `#SBATCH --output=${sbatchPath(o.dir, 'slurm-%A_%a.out', o.runsDir)}`,
    '#SBATCH --open-mode=append',
    '#SBATCH --ntasks=1',
    ...opt('cpus-per-task', s.cpus_per_task),
    ...opt('mem', s.mem),
    ...opt('time', s.time),
    ...opt('partition', s.partition),
    ...opt('account', s.account),
    ...opt('qos', s.qos),
    ...opt('gpus', s.gpus),
    ...opt('constraint', s.constraint),
    `#SBATCH --signal=B:USR1@${s.signal_before}`,
    '#SBATCH --requeue',
    ...s.sbatch.map((l) => `#SBATCH ${l}`),
    'set -uo pipefail',
    '# this task (JOB_TASK: the job id alone would name the whole array)',
    'task="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    `echo "elbo: task $task (job \${SLURM_JOB_ID}) on $(hostname), attempt $((\${SLURM_RESTART_COUNT:-0} + 1)), $(date -u +%Y-%m-%dT%H:%M:%SZ)"`,
    '# the sweep as emitted: a task whose cells changed since (an edited sweep file) refuses to run',
    `cells_sha256=${o.cellsSha256}`,
    '# elbo removes this file when the task has nothing left to do; kept, it asks for a requeue',
    `export ELBO_UNFINISHED_FILE=${shQuote(path.join(o.dir, 'tasks'))}/"unfinished-$task"`,
    'mkdir -p "$(dirname "$ELBO_UNFINISHED_FILE")" && : > "$ELBO_UNFINISHED_FILE"',
    `srun --ntasks=1 --cpus-per-task="\${SLURM_CPUS_PER_TASK:-1}" ${shQuote(o.node)} ${shQuote(o.bin)} sweep ${shQuote(o.sweepFile)} --cell "$SLURM_ARRAY_TASK_ID" --runs-dir ${shQuote(o.runsDir)} --cells-sha256 "$cells_sha256"${o.forward.map((f) => ` ${shQuote(f)}`).join('')} &`,
    'step=$!',
    '# near the time limit (--signal): the cell stops after its current step (checkpointed,',
    '# recorded KILLED), and the task goes back into the queue; its next attempt resumes it',
    'requeue() {',
    '  kill -0 "$step" 2>/dev/null || return 0  # the step has ended: nothing to stop',
    '  echo "elbo: the time limit is near: stopping cell $SLURM_ARRAY_TASK_ID and requeueing the task"',
    '  scancel --signal=TERM "$task"  # every job step of this task (not the batch script)',
    '  wait "$step"',
    '  # its cell may have ended just as the signal came: then there is nothing to resume',
    '  [ -e "$ELBO_UNFINISHED_FILE" ] || { echo "elbo: the cell had ended: not requeued"; exit 0; }',
    '  rm -f "$ELBO_UNFINISHED_FILE"',
    '  scontrol requeue "$task"',
    '  exit 0',
    '}',
    'trap requeue USR1',
    'wait "$step"',
    'rc=$?',
    'trap - USR1',
    'rm -f "$ELBO_UNFINISHED_FILE"',
    'echo "elbo: task $task ended (exit $rc), $(date -u +%Y-%m-%dT%H:%M:%SZ)"',
    'exit $rc',
  ];
  return lines.join('\n') + '\n';
}
