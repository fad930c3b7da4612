import * as fs from 'fs';
import * as os from 'os';

export interface LockHolder {
  pid: number;
  host: string;
}

/**
 * Take a lock file (created exclusively, holding {pid, host}); returns null when taken,
 * or who holds it. A lock left by a process that is gone (same host, pid not alive) is
 * taken over; one held on another host is respected.
 */
export function takeLock(file: string): LockHolder | null {
  const me = { pid: process.pid, host: os.hostname() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      return null;
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e;
    }
    let holder: LockHolder | null = null;
    try {
      holder = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      /* half-written or gone: treat as stale */
    }
    if (holder && holder.pid === me.pid && holder.host === me.host) return null;
    if (holder && (holder.host !== me.host || alive(holder.pid))) return holder;
    fs.rmSync(file, { force: true });
  }
  return null;
}

/** Remove a lock file this process holds. */
export function releaseLock(file: string): void {
  try {
    const holder = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (holder.pid === process.pid && holder.host === os.hostname()) fs.rmSync(file, { force: true });
  } catch {
    /* not ours or gone */
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e.code === 'EPERM';
  }
}
