import * as path from 'path';
import { Command, Errors, Flags } from '@oclif/core';
import { UserError } from '../errors';

/**
 * Shared behaviour of every command: user errors print as one line each
 * (`where: message`) and exit 1; anything else is a bug: one line, and the stack with
 * --verbose.
 */
export abstract class BaseCommand extends Command {
  static baseFlags = {
    verbose: Flags.boolean({ description: 'Show stack traces of internal errors', default: false }),
  };

  override async init(): Promise<void> {
    // --verbose also keeps TensorFlow's own C++ log lines (read when the native backend loads)
    if (this.argv.includes('--verbose')) process.env.ELBO_TF_LOG ??= '1';
    await super.init();
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<any> {
    // oclif's own exits (this.exit, --help) pass through
    if (err.oclif?.exit !== undefined && !(err instanceof UserError)) {
      if ((err as any).code === 'EEXIT') throw err;
    }
    const verbose = this.argv.includes('--verbose');
    if (err instanceof UserError) {
      process.stderr.write(err.line() + '\n');
      if (verbose && err.stack) process.stderr.write(err.stack + '\n');
      this.exit(err.exitCode);
    }
    // oclif's parse errors (unknown flag, missing arg, a flag value it cannot read) are usage
    // errors; they carry `oclif` (a message that merely reads like one, e.g. JSON.parse's
    // "Expected ...", does not make an error a usage error)
    if ((err as any).oclif || err instanceof Errors.CLIError) {
      process.stderr.write(`${this.id}: ${err.message.split('\n')[0]}; see 'elbo ${this.id} --help'\n`);
      this.exit(2);
    }
    process.stderr.write(`internal error: ${err.message}${verbose ? '' : ' (run with --verbose for the stack trace)'}\n`);
    if (verbose && err.stack) process.stderr.write(err.stack + '\n');
    this.exit(1);
  }
}

/** Repeatable `--set key.path=value`. */
export const setFlag = Flags.string({
  char: 's',
  description: 'Override a config value: key.path=value (value parsed as YAML); repeatable',
  multiple: true,
  default: [],
});

/** A path as the user would type it: relative below the current directory, else absolute. */
export function shownPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : path.resolve(p);
}
