import { Flags } from '@oclif/core';
import { BaseCommand } from '../base';
import { createRegistry } from '../../builtins';
import { buildSchema, editorSchema } from '../../config/schema';

export default class Schema extends BaseCommand {
  static summary = "Print the config's JSON Schema (for editors' YAML language servers)";
  static description =
    'Assembled from every registered plugin. In VS Code with the YAML extension: elbo schema > elbo.schema.json, then start a config with "# yaml-language-server: $schema=./elbo.schema.json".';
  static flags = {
    plugin: Flags.string({
      description: 'Also include this third-party plugin (path or package); repeatable',
      multiple: true,
      default: [],
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Schema);
    const registry = createRegistry();
    for (const p of flags.plugin) registry.loadPlugin(p, process.cwd(), `--plugin ${p}`);
    process.stdout.write(JSON.stringify(editorSchema(buildSchema(registry)), null, 2) + '\n');
  }
}
