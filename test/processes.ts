/**
 * What the test setups that start real services share (test/mlflow-server.ts,
 * test/chromium.ts): child processes in their own process group, stopped by PID (the
 * group) and killed when the test process exits; and installing a service's software
 * once while test files run in parallel.
 */
import * as fs from 'fs';
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

/**
 * Run `install` unless `ready()`, one installer at a time across processes (a lock
 * directory; one older than 15 minutes is from a killed installer). Returns whether this
 * process installed.
 */
export async function installOnce(lock: string, ready: () => boolean, install: () => void): Promise<boolean> {
  if (ready()) return false;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e;
      if (Date.now() - fs.statSync(lock).mtimeMs > 15 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1000));
      if (ready()) return false;
    }
  }
  try {
    if (ready()) return false;
    install();
    return true;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}
