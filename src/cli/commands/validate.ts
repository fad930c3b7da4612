import { Args, Flags } from '@oclif/core';
import { BaseCommand, setFlag } from '../base';
import { loadConfig } from '../../config/load';
import { createRegistry } from '../../builtins';
import { isSweepFile, loadSweep, resolveCells, describeBases, earlyStopRungs } from '../../sweep/spec';
import { UserError, UserErrors, oneLine } from '../../errors';

export default class Validate extends BaseCommand {
  static summary = 'Check a config (or a sweep file and every config it expands to) without running it';
  static description =
    'Exit 0 when the config is valid; otherwise exit 1 with one line per problem on stderr: FILE:LINE:COL: message. With --json, one JSON object on stdout instead: {ok, file, kind, config_sha256 (a config) or cells (a sweep), problems: [{where, file, line, col, message}]} (file, line and col are null where a problem is not in a file, e.g. a --set flag).';
  static examples = [
    '<%= config.bin %> validate configs/quickstart.yaml --set train.epochs=1',
    '<%= config.bin %> validate configs/mnist/m2.yaml --json',
  ];
  static args = { config: Args.string({ description: 'YAML config file', required: true }) };
  static flags = {
    set: setFlag,
    json: Flags.boolean({ description: 'Machine-readable result on stdout (exit status as without it)', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Validate);
    if (!flags.json) return this.check(args.config, flags.set, false);
    try {
      await this.check(args.config, flags.set, true);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      const problems = (e instanceof UserErrors ? e.errors : [e]).map(problemOf);
      process.stdout.write(
        JSON.stringify({ ok: false, file: args.config, kind: isSweepFile(args.config) ? 'sweep' : 'config', problems }) + '\n',
      );
      this.exit(e.exitCode);
    }
  }

  private async check(file: string, set: string[], json: boolean): Promise<void> {
    if (isSweepFile(file)) {
      if (set.length) throw new UserError('--set does not apply to a sweep file; put shared overrides under its `set:`', `--set ${set[0]}`);
      const spec = loadSweep(file);
      const cells = resolveCells(spec);
      earlyStopRungs(spec, cells);
      if (json) process.stdout.write(JSON.stringify({ ok: true, file: file, kind: 'sweep', cells: cells.length, problems: [] }) + '\n');
      else
        process.stdout.write(
          `${file}: ok (sweep of ${cells.length} cells over ${describeBases(
            spec,
            cells.map((c) => c.cell),
          )})\n`,
        );
      return;
    }
    const loaded = loadConfig(file, set, createRegistry());
    if (json)
      process.stdout.write(
        JSON.stringify({
          ok: true,
          file: file,
          kind: 'config',
          config_sha256: loaded.sha256,
          model: loaded.config.model.kind,
          data: loaded.config.data.kind,
          problems: [],
        }) + '\n',
      );
    else
      process.stdout.write(
        `${file}: ok (${loaded.config.model.kind} on ${loaded.config.data.kind}, config sha256 ${loaded.sha256.slice(0, 12)})\n`,
      );
  }
}

/** One problem as JSON: its location split into file, line and column where it is `FILE:LINE:COL`. */
export function problemOf(e: UserError): {
  where: string | null;
  file: string | null;
  line: number | null;
  col: number | null;
  message: string;
} {
  const where = e.where ?? null;
  const m = where ? /^(.*):(\d+):(\d+)$/.exec(where) : null;
  // the message as the error line shows it (a long user value shortened)
  const message = oneLine(e.message);
  if (m) return { where, file: m[1], line: Number(m[2]), col: Number(m[3]), message };
  const isFile = !!where && !where.startsWith('-') && !where.includes(' ');
  return { where: where && oneLine(where), file: isFile ? where : null, line: null, col: null, message };
}
