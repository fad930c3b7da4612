/**
 * Fault injection for tests: `ELBO_FAULT=PHASE@N:ACTION[,...]` makes a run hurt itself at an
 * exact point, so hard stops are tested without racing a timer.
 *
 *   PHASE   step@E        after the first training step of epoch E (1-based): mid-epoch
 *           checkpoint@E  after epoch E's checkpoint is renamed into place, before its
 *                         metrics line and run.json are written
 *           eval@I        before evaluator I (0-based) runs: during evaluation
 *           sweep-end@0   an `elbo sweep` whose cells have all ended, before it exits
 *   ACTION  kill          SIGKILL (kill -9: nothing runs after it)
 *           term          SIGTERM
 *           int2          two SIGINTs 10 ms apart (Ctrl-C twice)
 *           pause         say so on stderr ("fault: paused at PHASE@N") and wait until the run
 *                         is asked to stop (a signal, or the sweep that started it is gone)
 *
 * With ELBO_FAULT_ONCE=FILE, the faults hurt one process only: the first to reach one
 * creates FILE, and in every other process (the other tasks of a SLURM array, the attempt
 * after a requeue, a resume) no fault fires.
 *
 * Without ELBO_FAULT every call is a no-op.
 */
import * as fs from 'fs';

type Action = 'kill' | 'term' | 'int2' | 'pause';

function parse(spec: string | undefined): Map<string, Action> {
  const out = new Map<string, Action>();
  for (const part of (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(step|checkpoint|eval|sweep-end)@(\d+):(kill|term|int2|pause)$/.exec(part);
    if (!m) throw new Error(`ELBO_FAULT: cannot read '${part}' (PHASE@N:ACTION, e.g. checkpoint@2:kill)`);
    out.set(`${m[1]}@${m[2]}`, m[3] as Action);
  }
  return out;
}

let faults: Map<string, Action> | null = null;
let claimed = false;

/** Run the fault planned for `phase@n`, if any; `stopped` says when a paused run may go on. */
export async function faultPoint(phase: 'step' | 'checkpoint' | 'eval' | 'sweep-end', n: number, stopped: () => boolean): Promise<void> {
  faults ??= parse(process.env.ELBO_FAULT);
  const action = faults.get(`${phase}@${n}`);
  if (!action) return;
  faults.delete(`${phase}@${n}`);
  const once = process.env.ELBO_FAULT_ONCE;
  if (once && !claimed) {
    try {
      fs.writeFileSync(once, `${process.pid}\n`, { flag: 'wx' });
      claimed = true;
    } catch {
      faults.clear(); // another process had the faults
      return;
    }
  }
  switch (action) {
    case 'kill':
      process.kill(process.pid, 'SIGKILL');
      break;
    case 'term':
      process.kill(process.pid, 'SIGTERM');
      break;
    case 'int2':
      process.kill(process.pid, 'SIGINT');
      await new Promise((r) => setTimeout(r, 10));
      process.kill(process.pid, 'SIGINT');
      break;
    case 'pause':
      process.stderr.write(`fault: paused at ${phase}@${n}\n`);
      while (!stopped()) await new Promise((r) => setTimeout(r, 50));
      break;
  }
  // let the signal's handler run before the caller goes on
  await new Promise((r) => setTimeout(r, 20));
}
