import * as fs from 'fs';
import * as os from 'os';

export interface LockHolder {
  pid: number;
  host: string;
}

/**
 * A lock is a lease: its holder touches the file (its mtime is the heartbeat) every
 * HEARTBEAT_MS while it holds it. A lock of a process on another host (a cluster node
 * sharing the file system) whose heartbeat is older than staleMs() is stale: that host
 * went down or the process hangs. On this host, a lock is stale when its process is gone.
 */
export function staleMs(): number {
  const s = Number(process.env.ELBO_LEASE_STALE_S);
  return (Number.isFinite(s) && s > 0 ? s : 120) * 1000;
}

const held = new Set<string>();
let heartbeat: NodeJS.Timeout | null = null;

function beat(): void {
  const now = new Date();
  for (const file of held) {
    try {
      const h = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (h.pid === process.pid && h.host === os.hostname()) fs.utimesSync(file, now, now);
      else held.delete(file); // taken over: not ours any more
    } catch {
      held.delete(file);
    }
  }
  if (!held.size && heartbeat) {
    clearInterval(heartbeat);
    heartbeat = null;
  }
}

function hold(file: string): void {
  held.add(file);
  if (!heartbeat) {
    heartbeat = setInterval(beat, Math.max(50, Math.min(30_000, staleMs() / 4)));
    heartbeat.unref();
  }
}

/** Whether a holder still holds its lock file: a live process on this host, or a recent heartbeat from another. */
function live(file: string, holder: LockHolder): boolean {
  if (holder.host === os.hostname()) return alive(holder.pid);
  try {
    return Date.now() - fs.statSync(file).mtimeMs <= staleMs();
  } catch {
    return false;
  }
}

/**
 * Take a lock file (created exclusively, holding {pid, host}); returns null when taken,
 * or who holds it. A stale lock (see staleMs) is taken over; while it holds the lock, this
 * process keeps its heartbeat going.
 */
export function takeLock(file: string): LockHolder | null {
  const holder = takeLockOnce(file);
  if (!holder) hold(file);
  return holder;
}

function takeLockOnce(file: string): LockHolder | null {
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
    if (holder && live(file, holder)) return holder;
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
    if (moved && (moved.pid !== holder?.pid || moved.host !== holder?.host) && live(aside, moved)) {
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
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Who holds a lock file, when a live process (or one on another host with a recent heartbeat) does; null for none or a stale one. */
export function readLock(file: string): LockHolder | null {
  let holder: LockHolder | null = null;
  try {
    holder = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  if (!holder || typeof holder.pid !== 'number') return null;
  return live(file, holder) ? holder : null;
}

/** Remove a lock file this process holds. */
export function releaseLock(file: string): void {
  held.delete(file);
  if (!held.size && heartbeat) {
    clearInterval(heartbeat);
    heartbeat = null;
  }
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
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Run `fn` holding a lock file, waiting while another process holds it (a short critical
 * section: a read-modify-write of a file that several processes share). Gives up after
 * `timeoutMs`, naming the holder.
 */
export function withLockSync<T>(file: string, fn: () => T, timeoutMs = 60_000): T {
  const t0 = Date.now();
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 5; ; wait = Math.min(200, wait * 2)) {
    const holder = takeLock(file);
    if (!holder) break;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`${file}: held by process ${holder.pid} on ${holder.host} for over ${Math.round(timeoutMs / 1000)} s`);
    Atomics.wait(sleeper, 0, 0, wait);
  }
  try {
    return fn();
  } finally {
    releaseLock(file);
  }
}
