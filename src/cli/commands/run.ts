import { Args, Flags } from '@oclif/core';
import { BaseCommand, setFlag } from '../base';
import { runExperiment } from '../../experiment';
import { UserError } from '../../errors';

export default class Run extends BaseCommand {
  static summary = 'Train and evaluate the experiment a config describes';
  static description =
    'Trains with the run seed, writes runs/<experiment>/<runId>/ (config.yaml, run.json, metrics.jsonl, checkpoints/, artifacts/) and prints the test metrics. Exit 0 only when the run finished; 130 when interrupted (resume with --resume).';
  static examples = [
    '<%= config.bin %> run configs/quickstart.yaml',
    '<%= config.bin %> run configs/quickstart.yaml --set model.latent=32 --set train.epochs=2 --seed 3',
    '<%= config.bin %> run --resume runs/quickstart/20261122-101500-a1b2c3',
  ];
  static args = { config: Args.string({ description: 'YAML config file', required: false }) };
  static flags = {
    set: setFlag,
    seed: Flags.integer({ description: 'Run seed (same as --set seed=N)', min: 0 }),
    backend: Flags.string({ description: 'TensorFlow.js backend: auto, tensorflow, wasm or cpu' }),
    'runs-dir': Flags.string({ description: 'Root of the local run store (default: runs)' }),
    resume: Flags.string({ description: 'Continue an interrupted or failed run from its last checkpoint' }),
    'tracking-uri': Flags.string({
      description: 'Also track the run in this MLflow server (http://host:port); default: MLFLOW_TRACKING_URI. See elbo sync',
    }),
    json: Flags.boolean({ description: 'Print the result as one JSON object on the last line of stdout', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'No progress output on stderr', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Run);
    if (args.config && flags.resume) throw new UserError('give either a config or --resume RUN_DIR, not both', '--resume');
    const result = await runExperiment({
      config: args.config,
      overrides: flags.set,
      seed: flags.seed,
      backend: flags.backend,
      runsDir: flags['runs-dir'],
      resume: flags.resume,
      progress: !flags.quiet,
      trackingUri: flags['tracking-uri'],
    });
    if (flags.json) {
      process.stdout.write(JSON.stringify(result) + '\n');
    } else {
      const lines = [`run ${result.status.toLowerCase()}: ${result.runDir}`];
      if (result.error) lines.push(result.error);
      const shown = Object.entries(result.metrics).filter(([k]) => k.startsWith('test/') || k.startsWith('val/elbo'));
      for (const [k, v] of shown) lines.push(`  ${k.padEnd(28)} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    if (result.status === 'KILLED') this.exit(130);
    if (result.status !== 'FINISHED') this.exit(1);
  }
}
