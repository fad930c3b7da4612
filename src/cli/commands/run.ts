import * as fs from 'fs';
import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, setFlag, tagFlag, noteFlag, parseTags } from '../base';
import { shownPath } from '../../util/shown-path';
import { UserError } from '../../errors';
import type { RunRecord } from '../../contracts';
import { formatPublished } from '../../config/metrics';
import { alive } from '../../util/lock';
import { sweepCellFromEnv } from '../../track/run-store';

export default class Run extends BaseCommand {
  static summary = 'Train and evaluate the experiment a config describes';
  static description =
    'Trains with the run seed, writes runs/<experiment>/<runId>/ (config.yaml, run.json, metrics.jsonl, checkpoints/, artifacts/ with the learning curves and report.html) and prints the test metrics. Exit 0 when the run finished (or paused at --pause-at); 130 when interrupted (resume with --resume).';
  static examples = [
    '<%= config.bin %> run configs/quickstart.yaml',
    '<%= config.bin %> run configs/quickstart.yaml --set model.latent=32 --set train.epochs=2 --seed 3',
    '<%= config.bin %> run --resume runs/quickstart/20261122-101500-a1b2c3',
    '<%= config.bin %> run --resume runs/quickstart/20261122-101500-a1b2c3 --set train.epochs=20',
    '<%= config.bin %> run configs/quickstart.yaml --set train.epochs=1 --print-config',
    '<%= config.bin %> run configs/quickstart.yaml --tag purpose=baseline --tag ticket=42 --note "before the encoder change"',
  ];
  static args = { config: Args.string({ description: 'YAML config file', required: false }) };
  static flags = {
    set: setFlag,
    seed: Flags.integer({ description: 'Run seed (same as --set seed=N)', min: 0 }),
    backend: Flags.string({ description: 'TensorFlow.js backend: auto, tensorflow, wasm or cpu' }),
    device: Flags.string({
      description:
        "Where the tensorflow backend computes: auto, cpu or gpu (over the config's device). gpu refuses to start without the GPU build and a visible GPU (see elbo env)",
      options: ['auto', 'cpu', 'gpu'],
    }),
    'runs-dir': Flags.string({ description: 'Root of the local run store (default: runs)' }),
    resume: Flags.string({
      description:
        'Continue an interrupted, failed or paused run from its last checkpoint; with --set train.epochs=N, train a run (a finished one too) on to epoch N',
    }),
    'pause-at': Flags.integer({
      description:
        "Stop after this epoch, checkpointed and recorded PAUSED (exit 0), without the test evaluation; --resume continues it (what a sweep's early stopping does at each rung)",
      min: 1,
    }),
    'tracking-uri': Flags.string({
      description: 'Also track the run in this MLflow server (http://host:port); default: MLFLOW_TRACKING_URI. See elbo sync',
    }),
    json: Flags.boolean({ description: 'Print the result as one JSON object on the last line of stdout', default: false }),
    quiet: Flags.boolean({ char: 'q', description: 'No progress output on stderr', default: false }),
    tag: tagFlag('the run'),
    note: noteFlag('the run'),
    'print-config': Flags.boolean({
      description:
        'Print the fully resolved config (YAML, every default filled in, --set and --seed applied: what the run would record as config.yaml) and exit without training',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Run);
    if (args.config && flags.resume) throw new UserError('give either a config or --resume RUN_DIR, not both', '--resume');
    if (flags['print-config']) {
      process.stdout.write(await resolvedConfigYaml(args.config, flags.set, flags.seed, flags.resume));
      return;
    }
    // a cell of `elbo sweep`: stop (and record KILLED) when the sweep that started it is gone,
    // e.g. killed with -9, rather than train on unwatched; its rerun resumes the cell
    const sweepPid = Number(process.env.ELBO_SWEEP_PID);
    let checked = 0;
    let orphaned = false;
    const shouldStop =
      sweepPid > 0
        ? () => {
            if (!orphaned && Date.now() - checked > 500) {
              checked = Date.now();
              orphaned = !alive(sweepPid);
              if (orphaned)
                process.stderr.write(`the sweep that started this run (process ${sweepPid}) is gone: stopping after this step\n`);
            }
            return orphaned;
          }
        : undefined;
    // nobody may read stdout or stderr any more (the sweep that started this run is gone):
    // a write to the broken pipe must not crash the run before it records how it ended
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});
    const tags = parseTags(flags.tag);
    // training code (and TensorFlow.js, on first use) loads only when a run starts
    const { runExperiment } = await import('../../experiment');
    const start = () =>
      runExperiment({
        shouldStop,
        config: args.config,
        overrides: flags.set,
        seed: flags.seed,
        backend: flags.backend,
        device: flags.device,
        runsDir: flags['runs-dir'],
        resume: flags.resume,
        pauseAt: flags['pause-at'],
        progress: !flags.quiet,
        verbose: flags.verbose,
        sweepCell: sweepCellFromEnv(),
        trackingUri: flags['tracking-uri'],
        tags,
        note: flags.note,
      });
    let result: Awaited<ReturnType<typeof runExperiment>>;
    try {
      result = await start();
    } catch (e) {
      // a run that failed after it was created: its --json line too (stderr gets the error)
      const failedRun = (e as { runResult?: unknown }).runResult;
      if (flags.json && failedRun) process.stdout.write(JSON.stringify(failedRun) + '\n');
      throw e;
    }
    if (flags.json) {
      process.stdout.write(JSON.stringify(result) + '\n');
    } else {
      const lines = [`run ${result.status.toLowerCase()}: ${result.runDir}`];
      if (result.error) lines.push(result.error);
      const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(4));
      const on = result.evaluatedOn;
      const sel = result.selected;
      const val = result.metrics['val/elbo'];
      if (val !== undefined) lines.push(`  ${'val/elbo (last epoch)'.padEnd(28)} ${fmt(val)}`);
      if (on?.checkpoint === 'best' && sel)
        lines.push(`test metrics of the best checkpoint: epoch ${on.epoch} (${sel.metric} ${fmt(sel.value)}, ${sel.mode})`);
      else if (on) lines.push(`test metrics of the last epoch (${on.epoch})`);
      for (const [k, v] of Object.entries(result.metrics).filter(([k]) => k.startsWith('test/'))) lines.push(`  ${k.padEnd(28)} ${fmt(v)}`);
      if (result.published?.length) {
        lines.push(`measured against published (${on?.checkpoint === 'best' ? `best checkpoint, epoch ${on.epoch}` : 'last epoch'}):`);
        const rows = [
          ['metric', 'measured', 'published', 'verdict', 'source'],
          ...result.published.map((p) => [p.metric, p.measured === null ? '-' : fmt(p.measured), formatPublished(p), p.verdict, p.source]),
        ];
        const width = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) lines.push(`  ${r.map((c, i) => (i < 4 ? c.padEnd(width[i]) : c)).join('  ')}`);
      }
      const report = path.join(result.runDir, 'artifacts', 'report.html');
      if (fs.existsSync(report)) lines.push(`report: ${shownPath(report)}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    if (result.status === 'KILLED') this.exit(130);
    if (result.status !== 'FINISHED' && result.status !== 'PAUSED') this.exit(1);
  }
}

/** The resolved config `elbo run` would record, without loading TensorFlow or creating a run. */
async function resolvedConfigYaml(
  config: string | undefined,
  set: string[],
  seed: number | undefined,
  resume: string | undefined,
): Promise<string> {
  const { loadConfig } = await import('../../config/load');
  const { createRegistry } = await import('../../builtins');
  if (resume) {
    const { checkResumeOverrides } = await import('../../run/resume');
    checkResumeOverrides(set, seed);
    const { readJsonFile } = await import('../../track/run-store');
    const record = readJsonFile<RunRecord>(path.join(resume, 'run.json'), 'run.json');
    return loadConfig(path.join(resume, 'config.yaml'), set, createRegistry(), { baseDir: record.config_dir }).yaml;
  }
  if (!config) throw new UserError('give a config file (e.g. configs/quickstart.yaml) or --resume RUN_DIR', 'elbo run');
  return loadConfig(config, seed === undefined ? set : [...set, `seed=${seed}`], createRegistry()).yaml;
}
