import * as path from 'path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base';
import { findRun, mlflowState, shortNumber, fit, sweepCellOf, runPace } from '../../runs';
import { formatDuration } from '../../../track/progress';
import type { RunRecord } from '../../../contracts';
import { storedEvaluations, evaluationLine } from '../../../run/evaluate-checkpoint';

export default class RunsShow extends BaseCommand {
  static summary = 'Show one run: what ran (config, data, seed, backend, git), how it ended, its final metrics and its MLflow run';
  static examples = ['<%= config.bin %> runs show 20261130-172119-b3d931', '<%= config.bin %> runs show b3d931', '<%= config.bin %> runs show runs/quickstart/20261130-172119-b3d931 --json'];
  static args = { run: Args.string({ description: 'A run id (or its end), or a run directory', required: true }) };
  static flags = {
    'runs-dir': Flags.string({ description: 'Root of the local run store (where a run id is looked up)', default: 'runs' }),
    json: Flags.boolean({ description: 'Print the run record (run.json) with its directory, status and MLflow state as JSON', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RunsShow);
    const r = findRun(flags['runs-dir'], args.run, (m) => process.stderr.write(`warning: ${m}\n`));
    const mlflow = mlflowState(r.dir);
    const cell = sweepCellOf(r);
    const evaluations = storedEvaluations(r.dir);
    const pace = r.status === 'RUNNING' ? runPace(r.dir, r.record) : null;
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({
          ...r.record,
          ...(cell ? { sweep: cell } : {}),
          dir: r.dir,
          status: r.status,
          recorded_status: r.record.status,
          mlflow,
          evaluations,
          ...(pace ? { pace: { epoch_s: pace.epochS, left_s: pace.leftS } } : {}),
        }) + '\n',
      );
      return;
    }
    const rec = r.record;
    const shownPath = (p: string) => {
      const rel = path.relative(process.cwd(), p);
      return rel && !rel.startsWith('..') ? rel : p;
    };
    const shownDir = shownPath(r.dir);
    const rows: [string, string][] = [
      ['run', `${rec.run_id} (${rec.experiment})`],
      ...(cell ? [['setting', `${cell.label || cell.short} (cell ${cell.cell} of sweep ${cell.name}, ${shownPath(cell.dir)})`] as [string, string]] : []),
      ['status', `${r.status}${r.status !== rec.status ? ` (recorded ${rec.status}; its process is gone: elbo run --resume ${shownDir})` : ''}${rec.error ? `: ${rec.error}` : ''}`],
      ['epochs', `${rec.epochs_completed}/${rec.epochs_planned}, ${rec.global_step} steps${rec.duration_s !== null ? ` in ${formatDuration(rec.duration_s)}` : ''}`],
      ...paceRows(rec, r.status, pace),
      ['started', `${rec.start_time}${rec.end_time ? `, ended ${rec.end_time}` : ''}`],
      ['config', `${rec.config_file} (sha256 ${rec.config_sha256.slice(0, 12)})`],
      ...(rec.config_bases?.length ? [['extends', rec.config_bases.map(shownPath).join(', ')] as [string, string]] : []),
      ['data', `${rec.data.name}: ${rec.data.train} train / ${rec.data.val} val / ${rec.data.test} test (sha256 ${rec.data.sha256.slice(0, 12)})`],
      ['seed', String(rec.seed)],
      ['backend', `${rec.backend.name} ${rec.backend.version ?? ''}${rec.backend.device ? `, device ${rec.backend.device}` : ''}`.trim()],
    ];
    const git = rec.fingerprint?.git;
    if (git?.commit) rows.push(['git', `${git.commit.slice(0, 12)}${git.branch ? ` on ${git.branch}` : ''}${git.dirty ? ' (uncommitted changes)' : ''}`]);
    if (rec.resumes?.length) {
      // trained on past a planned end (--resume --set train.epochs=N): from → to, each time
      const on = rec.resumes.flatMap((x) => (x.epochs ? [`train.epochs ${x.epochs.from} → ${x.epochs.to} at epoch ${x.from_epoch}`] : []));
      rows.push([
        'resumed',
        `${rec.resumes.length} time${rec.resumes.length === 1 ? '' : 's'}, last from epoch ${rec.resumes.at(-1)!.from_epoch}${on.length ? `; ${on.join(', ')}` : ''}`,
      ]);
    }
    // the runs its model was built on (m1m2's M1): how it came (trained first, reused, named)
    for (const [name, dep] of Object.entries(rec.depends_on ?? {}))
      rows.push([`uses ${name}`, `run ${dep.run_id} (${dep.how}), ${shownPath(dep.run_dir)}`]);
    for (const [k, v] of Object.entries(rec.tags ?? {})) rows.push([`tag ${k}`, v]);
    if (rec.note) rows.push(['note', rec.note]);
    if (rec.evaluated_on) rows.push(['evaluated', `the ${rec.evaluated_on.checkpoint} checkpoint (epoch ${rec.evaluated_on.epoch})`]);
    // elbo evaluate's, made while the run was stopped or after it
    for (const e of evaluations) rows.push(['evaluation', evaluationLine(e)]);
    if (mlflow) rows.push(['mlflow', `${mlflow.run_id ?? 'not created yet'} on ${mlflow.tracking_uri} (${mlflow.experiment})${mlflow.pending ? `; ${mlflow.pending} events not sent${mlflow.waiting ? ` (${mlflow.waiting})` : ''}: elbo sync ${shownDir}` : ''}`]);
    rows.push(['dir', shownDir]);
    const metrics = Object.entries(rec.metrics ?? {}).sort(([a], [b]) => a.localeCompare(b));
    const label = 12;
    const out = rows.map(([k, v]) => wrap(`${k.padEnd(label)}${v}`, 80, label));
    if (metrics.length) {
      out.push('metrics');
      const kw = Math.min(44, Math.max(...metrics.map(([k]) => k.length)));
      for (const [k, v] of metrics) out.push(`  ${fit(k, kw).padEnd(kw)}  ${shortNumber(v)}`);
    }
    process.stdout.write(out.join('\n') + '\n');
  }
}

/**
 * The epoch train.select chose (the best so far while training) and, while the run trains,
 * its pace and the time left at it.
 */
function paceRows(rec: RunRecord, status: string, pace: ReturnType<typeof runPace>): [string, string][] {
  const rows: [string, string][] = [];
  const sel = rec.selected;
  if (sel)
    rows.push([
      status === 'RUNNING' ? 'best so far' : 'selected',
      `${sel.metric} ${shortNumber(sel.value)} at epoch ${sel.epoch} (train.select, ${sel.mode})`,
    ]);
  if (pace)
    rows.push([
      'pace',
      `${Math.round(pace.epochS)} s an epoch (median of the last 10); ${rec.epochs_planned - rec.epochs_completed} to go, about ${formatDuration(pace.leftS)}`,
    ]);
  return rows;
}

/** One "label  value" line wrapped at `width`, continuation lines indented under the value. */
function wrap(line: string, width: number, indent: number): string {
  if (line.length <= width) return line;
  const words = line.slice(indent).split(' ');
  const lines: string[] = [];
  let cur = line.slice(0, indent);
  for (const w of words) {
    if (cur.trim() && cur.length + w.length + 1 > width && cur.length > indent) {
      lines.push(cur.trimEnd());
      cur = ' '.repeat(indent);
    }
    cur += (cur.length > indent ? ' ' : '') + w;
  }
  lines.push(cur.trimEnd());
  // a single word longer than the line (a path) stays whole
  return lines.join('\n');
}
