import { Args } from '@oclif/core';
import { BaseCommand, setFlag } from '../base';
import { loadConfig } from '../../config/load';
import { createRegistry } from '../../registry/builtins';

export default class Validate extends BaseCommand {
  static summary = 'Check a config without running it';
  static description =
    'Exit 0 when the config is valid; otherwise exit 1 with one line per problem on stderr: FILE:LINE:COL: message.';
  static examples = ['<%= config.bin %> validate configs/quickstart.yaml --set train.epochs=1'];
  static args = { config: Args.string({ description: 'YAML config file', required: true }) };
  static flags = { set: setFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Validate);
    const loaded = loadConfig(args.config, flags.set, createRegistry());
    process.stdout.write(`${args.config}: ok (${loaded.config.model.kind} on ${loaded.config.data.kind}, config sha256 ${loaded.sha256.slice(0, 12)})\n`);
  }
}
