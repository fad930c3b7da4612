import { Args, Flags } from '@oclif/core';
import * as fs from 'fs';
import { BaseCommand } from '../base';
import { UserError, type Caught } from '../../errors';
import { serveStatic } from '../../util/static-server';

export default class Serve extends BaseCommand {
  static summary = 'Serve a directory (an `elbo export` page) on this machine until stopped';
  static description =
    'A static HTTP server on 127.0.0.1 (browsers do not load model files into a page opened from file://). Prints the address; Ctrl-C stops it. Nothing leaves the machine: the page brings its own TensorFlow.js.';
  static examples = [
    '<%= config.bin %> serve runs/quickstart/20261122-101500-a1b2c3/export/tfjs',
    '<%= config.bin %> serve web-model --port 8080',
  ];
  static args = { dir: Args.string({ description: 'Directory to serve', required: true }) };
  static flags = { port: Flags.integer({ description: 'Port (0: any free one)', default: 8080, min: 0, max: 65535 }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Serve);
    if (!fs.existsSync(args.dir) || !fs.statSync(args.dir).isDirectory()) throw new UserError('not a directory', args.dir);
    const { url, close } = await serveStatic(args.dir, flags.port).catch((e: Caught) => {
      throw new UserError(
        e?.code === 'EADDRINUSE' ? `port ${flags.port} is in use; pick another with --port` : `cannot listen: ${e?.message ?? e}`,
        '--port',
      );
    });
    process.stdout.write(`serving ${args.dir} at ${url} (Ctrl-C stops)\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await close();
  }
}
