import { Command, Errors, Flags } from '@oclif/core';
import { UserError, oneLine } from '../errors';
import { diskError } from '../util/disk-errors';

/**
 * Shared behaviour of every command: user errors print as one line each
 * (`where: message`) and exit 1; anything else is a bug: one line, and the stack with
 * --verbose.
 */
export abstract class BaseCommand extends Command {
  static baseFlags = {
    verbose: Flags.boolean({
      description: 'Show stack traces of internal errors; elbo run: whole progress lines on a terminal too (else they fit its width)',
      default: false,
    }),
  };

  override async init(): Promise<void> {
    // --verbose also keeps TensorFlow's own C++ log lines (read when the native backend loads)
    if (this.argv.includes('--verbose')) process.env.ELBO_TF_LOG ??= '1';
    await super.init();
  }

  protected override async catch(err: Error & { exitCode?: number; code?: string; oclif?: { exit?: number } }): Promise<never> {
    // oclif's own exits (this.exit, --help) pass through
    if (err.oclif?.exit !== undefined && !(err instanceof UserError)) {
      if (err.code === 'EEXIT') throw err;
    }
    const verbose = this.argv.includes('--verbose');
    // a full disk, a read-only directory: the user's to fix, said as one line
    const disk = err instanceof UserError ? null : diskError(err);
    if (disk) {
      process.stderr.write(disk.line() + '\n');
      if (verbose && err.stack) process.stderr.write(err.stack + '\n');
      this.exit(1);
    }
    if (err instanceof UserError) {
      process.stderr.write(err.line() + '\n');
      if (verbose && err.stack) process.stderr.write(err.stack + '\n');
      this.exit(err.exitCode);
    }
    // oclif's parse errors (unknown flag, missing arg, a flag value it cannot read) are usage
    // errors; they carry `oclif` (a message that merely reads like one, e.g. JSON.parse's
    // "Expected ...", does not make an error a usage error)
    if (err.oclif || err instanceof Errors.CLIError) {
      const flags: Record<string, { char?: string }> = (this.constructor as typeof Command).flags ?? {};
      const short = Object.fromEntries(Object.entries(flags).flatMap(([name, f]) => (f.char ? [[`--${name}`, `-${f.char}`]] : [])));
      // the command as typed: oclif's id joins a topic and its command with ':' (runs:show)
      const id = (this.id ?? '').replace(/:/g, ' ');
      process.stderr.write(`${id}: ${usageLine(err.message, this.argv, short)}; see 'elbo ${id} --help'\n`);
      this.exit(2);
    }
    process.stderr.write(`internal error: ${oneLine(err.message)}${verbose ? '' : ' (run with --verbose for the stack trace)'}\n`);
    if (verbose && err.stack) process.stderr.write(err.stack + '\n');
    this.exit(1);
  }
}

/**
 * oclif's usage message as one line: "Parsing --seed \n\tExpected an integer but received: abc\n
 * See more help with --help" reads "--seed: expected an integer but received: abc"; a missing
 * argument reads "Missing 1 required arg: run: A run directory …".
 */
export function usageLine(message: string, argv: string[] = [], short: Record<string, string> = {}): string {
  const all = message.split('\n').map((l) => l.trim());
  // "Note: --set allows multiple values. Because of this you need to provide all arguments
  // before providing that flag. …": the argument was likely taken as a value of --set
  const note = all.find((l) => /^Note: (--\S+) allows multiple values/.test(l));
  const lines = all
    .filter((l) => l && !/^(See more help|Alternatively, you can use "--")/i.test(l) && l !== note)
    .map((l) => l.replace(/^(\S+) {2,}/, '$1: '));
  const flag = note && /^Note: (--\S+)/.exec(note)![1];
  // the flag as given: --set, --set=…, or its short form (-s, -sKEY=VALUE)
  const given = flag && argv.find((a) => a === flag || a.startsWith(`${flag}=`) || (short[flag] && a.startsWith(short[flag])));
  if (flag && given) lines.push(`(give the arguments before ${given.startsWith('--') ? flag : short[flag]}, or after --)`);
  const parsing = /^Parsing (\S+)$/.exec(lines[0] ?? '');
  if (parsing && lines.length > 1) {
    const why = lines.slice(1).join('; ');
    return `${parsing[1]}: ${why.charAt(0).toLowerCase()}${why.slice(1)}`;
  }
  return lines.join(' ');
}

/** Repeatable `--set key.path=value`. */
export const setFlag = Flags.string({
  char: 's',
  description: 'Override a config value: key.path=value (value parsed as YAML), or ~key.path to delete a key; repeatable',
  multiple: true,
  default: [],
});

/** Repeatable `--tag KEY=VALUE` of `what` (a run, every cell of a sweep). */
export const tagFlag = (what: string) =>
  Flags.string({
    description: `Label ${what}: KEY=VALUE, recorded in run.json (tags) and sent to MLflow as a tag; repeatable`,
    multiple: true,
    default: [],
  });

/** `--note TEXT` of `what`. */
export const noteFlag = (what: string) =>
  Flags.string({ description: `What ${what} is for, recorded in run.json (note) and in the MLflow run description` });

/**
 * `--tag KEY=VALUE` flags as a map (the last of a key wins). Keys follow MLflow's rules
 * (letters, digits, _ - . / and spaces, at most 250 characters); `mlflow.` and `elbo.` are
 * reserved for the tags elbo sets itself.
 */
export function parseTags(flags: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? '' : f.slice(0, eq).trim();
    if (eq < 0 || !key) throw new UserError('a tag is KEY=VALUE, e.g. --tag purpose=baseline', `--tag ${f}`);
    if (!/^[A-Za-z0-9_\-./ ]+$/.test(key) || key.length > 250)
      throw new UserError(`tag key '${key}' may hold only letters, digits, _ - . / and spaces (at most 250 characters)`, `--tag ${f}`);
    if (/^(mlflow|elbo)\./i.test(key))
      throw new UserError(
        `tag keys starting with '${key.split('.')[0]}.' are reserved for the tags elbo sets; choose another key`,
        `--tag ${f}`,
      );
    tags[key] = f.slice(eq + 1);
  }
  return tags;
}
