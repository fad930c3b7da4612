/**
 * What the test setups that start real services share (test/mlflow-server.ts,
 * test/chromium.ts): child processes in their own process group, stopped by PID (the
 * group) and killed when the test process exits; and installing a service's software
 * once while test files run in parallel.
 */
import type { ChildProcess } from 'child_process';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) killGroup(p, 'SIGKILL');
});

/** Kill `p`'s whole process group (p must have been spawned with detached: true). */
export function killGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (p.pid) process.kill(-p.pid, sig);
  } catch {
    /* gone */
  }
}

/** Kill `p`'s process group when the test process exits, unless it has exited by then. */
export function trackGroup(p: ChildProcess): void {
  live.add(p);
  p.on('exit', () => live.delete(p));
}

/** One installer at a time: the same as the code's venv installs (src/util/venv.ts). */
export { installOnce } from '../src/util/venv';
