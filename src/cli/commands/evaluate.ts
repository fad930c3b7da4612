import { Args, Flags } from '@oclif/core';
import { BaseCommand, setFlag } from '../base';
import { formatPublished } from '../../config/metrics';

export default class Evaluate extends BaseCommand {
  static summary =
    'Evaluate a stored run on the test split at its best (or last) checkpoint, while it trains, is stopped or after it finished';
  static description =
    "For a long run stopped on the way (KILLED, PAUSED; resumable as before): the test metrics its config's evaluators give at the best checkpoint train.select chose so far (--checkpoint last: the last epoch's), with its published numbers. The run's recorded config, seed, data and backend; the evaluators' own streams of the run seed, so a FINISHED run gives its recorded test metrics. --set changes what is measured (eval, published, data.labelled: e.g. other evaluators on a finished model), written beside the run's own evaluation (…-set-<hash>). Written to RUN_DIR/evaluations/<checkpoint>-epoch-NNNN/ (metrics.json and artifacts); run.json is not changed. A run that is training (its lock held by a live process) is evaluated on a copy of its checkpoint, taken while it trains on (the two share the CPU); run_status says RUNNING.";
  static examples = [
    '<%= config.bin %> evaluate runs/mnist-sdgm/20261205-220254-20493b',
    '<%= config.bin %> evaluate RUN_DIR --checkpoint last --json',
    "<%= config.bin %> evaluate RUN_DIR --set data.labelled=100 --set 'eval=[{kind: latent-classifier, classifier: tsvm}]'",
  ];
  static args = {
    run: Args.string({ description: 'A run directory (runs/<experiment>/<runId>)', required: true }),
  };
  static flags = {
    checkpoint: Flags.string({
      description: "Which parameters: best (train.select's epoch so far; the default when the config selects) or last",
      options: ['best', 'last'],
    }),
    backend: Flags.string({ description: 'Backend (default: the one the run trained on)' }),
    set: setFlag,
    json: Flags.boolean({ description: 'Print the result as JSON on the last stdout line', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'No progress lines', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Evaluate);
    const { evaluateCheckpoint } = await import('../../run/evaluate-checkpoint');
    const r = await evaluateCheckpoint(args.run, {
      checkpoint: flags.checkpoint as 'best' | 'last' | undefined,
      backend: flags.backend,
      overrides: flags.set,
      log: flags.quiet ? undefined : (m) => process.stderr.write(m + '\n'),
    });
    if (flags.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
      return;
    }
    const at = r.selected ? ` (${r.selected.metric} ${r.selected.value.toFixed(4)})` : '';
    const width = Math.max(...Object.keys(r.metrics).map((k) => k.length), 10);
    process.stdout.write(
      [
        `run ${r.run_id}: ${r.run_status} after ${r.epochs_completed} epochs`,
        `${r.checkpoint} checkpoint: epoch ${r.epoch}${at}`,
        ...Object.entries(r.metrics).map(([k, v]) => `  ${k.padEnd(width)}  ${Number.isInteger(v) ? v : v.toFixed(4)}`),
        ...r.published.map(
          (p) =>
            `published ${p.metric}: ${formatPublished(p)}, measured ${p.measured === null ? '-' : p.measured.toFixed(4)}: ${p.verdict}`,
        ),
        `written to ${r.dir}`,
      ].join('\n') + '\n',
    );
  }
}
