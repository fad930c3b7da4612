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
  for (let attempt = 0; attempt < 5; attempt++) {
    if (create(file, me)) return null;
    let holder: LockHolder | null = null;
    try {
      holder = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      /* half-written or gone: treat as stale */
    }
    if (holder && holder.pid === me.pid && holder.host === me.host) return null;
    if (holder && (holder.host !== me.host || alive(holder.pid))) return holder;
    // stale: move it aside (rename is atomic: of two processes taking it over, one moves
    // it); had another process taken the lock meanwhile, put its lock back
    const aside = `${file}.stale-${me.pid}-${attempt}`;
    try {
      fs.renameSync(file, aside);
    } catch {
      continue;
    }
    let moved: LockHolder | null = null;
    try {
      moved = JSON.parse(fs.readFileSync(aside, 'utf8'));
    } catch {
      /* half-written: stale */
    }
    if (moved && (moved.pid !== holder?.pid || moved.host !== holder?.host) && (moved.host !== me.host || alive(moved.pid))) {
      try {
        fs.linkSync(aside, file);
      } catch {
        /* someone else holds it now */
      }
      fs.rmSync(aside, { force: true });
      return moved;
    }
    fs.rmSync(aside, { force: true });
  }
  // still not ours after several tries: someone keeps taking it
  return readLock(file) ?? { pid: 0, host: `unknown (${file} could not be taken)` };
}

/**
 * Create the lock file with its content in one step: written to a temporary file, then
 * hard-linked into place (link fails when the name exists), so no reader ever sees it empty.
 * Where hard links are not supported, an exclusive create.
 */
function create(file: string, me: LockHolder): boolean {
  const tmp = `${file}.${me.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(me));
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e: any) {
    if (e.code === 'EEXIST') return false;
    if (e.code !== 'EPERM' && e.code !== 'ENOTSUP' && e.code !== 'EXDEV') throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
    return true;
  } catch (e: any) {
    if (e.code === 'EEXIST') return false;
    throw e;
  }
}

/** Who holds a lock file, when a live process (or one on another host) does; null for none or a stale one. */
export function readLock(file: string): LockHolder | null {
  let holder: LockHolder | null = null;
  try {
    holder = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  if (!holder || typeof holder.pid !== 'number') return null;
  return holder.host !== os.hostname() || alive(holder.pid) ? holder : null;
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

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e.code === 'EPERM';
  }
}
