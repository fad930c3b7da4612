import { Args } from '@oclif/core';
import { BaseCommand, setFlag } from '../base';
import { loadConfig } from '../../config/load';
import { createRegistry } from '../../registry/builtins';
import { isSweepFile, loadSweep, resolveCells, describeBases } from '../../sweep/spec';
import { UserError } from '../../errors';

export default class Validate extends BaseCommand {
  static summary = 'Check a config (or a sweep file and every config it expands to) without running it';
  static description =
    'Exit 0 when the config is valid; otherwise exit 1 with one line per problem on stderr: FILE:LINE:COL: message.';
  static examples = ['<%= config.bin %> validate configs/quickstart.yaml --set train.epochs=1'];
  static args = { config: Args.string({ description: 'YAML config file', required: true }) };
  static flags = { set: setFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Validate);
    if (isSweepFile(args.config)) {
      if (flags.set.length) throw new UserError('--set does not apply to a sweep file; put shared overrides under its `set:`', `--set ${flags.set[0]}`);
      const spec = loadSweep(args.config);
      const cells = resolveCells(spec);
      process.stdout.write(`${args.config}: ok (sweep of ${cells.length} cells over ${describeBases(spec, cells.map((c) => c.cell))})\n`);
      return;
    }
    const loaded = loadConfig(args.config, flags.set, createRegistry());
    process.stdout.write(`${args.config}: ok (${loaded.config.model.kind} on ${loaded.config.data.kind}, config sha256 ${loaded.sha256.slice(0, 12)})\n`);
  }
}
