/**
 * Writes oclif.manifest.json at the package root (run by `npm run build` after tsc).
 *
 * With the manifest, `elbo --help` and every command's start-up read the commands' ids,
 * flags and help from one JSON file instead of loading every command module (and what
 * each imports) first; only the command that runs is loaded. It is what the `oclif
 * manifest` tool writes, made here with @oclif/core's own Plugin loader so that no extra
 * dev tool is needed. A stale manifest (commands changed without a build) is rebuilt by
 * `npm run build`; `node dist/src/cli/manifest.js --remove` deletes it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Plugin } from '@oclif/core';

export async function writeManifest(root: string): Promise<string> {
  const file = path.join(root, 'oclif.manifest.json');
  if (fs.existsSync(file)) fs.unlinkSync(file);
  const plugin = new Plugin({ root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true });
  await plugin.load();
  const { commands, version } = plugin.manifest;
  if (!Object.keys(commands).length) throw new Error(`no commands found under ${root}`);
  fs.writeFileSync(file, JSON.stringify({ commands, version }, null, 2) + '\n');
  return file;
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..', '..', '..');
  if (process.argv.includes('--remove')) {
    fs.rmSync(path.join(root, 'oclif.manifest.json'), { force: true });
  } else {
    writeManifest(root).then(
      (f) => process.stdout.write(`wrote ${path.relative(process.cwd(), f) || f}\n`),
      (e) => {
        process.stderr.write(`manifest: ${e?.message ?? e}\n`);
        process.exit(1);
      },
    );
  }
}
