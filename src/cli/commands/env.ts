import { Flags } from '@oclif/core';
import { BaseCommand } from '../base';

export default class Env extends BaseCommand {
  static summary = 'Describe this machine for elbo: versions, backends, devices, CUDA libraries, threads';
  static description =
    "What a bug report needs (like python -m torch.utils.collect_env): elbo's version and git commit, Node, OS, CPU, memory, the TensorFlow.js packages, the native builds there are and their TensorFlow version, the backend auto picks and why, the devices TensorFlow computes on (a GPU only when the GPU build uses one), the CUDA 12 / cuDNN 9 libraries the GPU build needs, and the thread settings. TensorFlow is loaded only with --load, or to ask the GPU build whether it uses a GPU nvidia-smi lists.";
  static examples = ['<%= config.bin %> env', '<%= config.bin %> env --json', '<%= config.bin %> env --load'];
  static flags = {
    json: Flags.boolean({ description: 'Print the report as one JSON object', default: false }),
    load: Flags.boolean({
      description: 'Load the backend auto picks, to confirm it loads and read what it reports (slower)',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Env);
    const { envReport, formatEnv } = await import('../../runtime/environment');
    const report = await envReport({ load: flags.load });
    process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : formatEnv(report));
  }
}
