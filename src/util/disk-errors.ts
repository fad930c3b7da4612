import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';

/**
 * A file-system failure that the user fixes, not a bug: the disk is full, the directory is
 * read-only or not ours, a directory vanished under the run. As one line naming the path
 * and what to do; null for anything else (which stays an internal error).
 */
export function diskError(e: unknown, file?: string): UserError | null {
  const err = e as NodeJS.ErrnoException | null;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string') return null;
  // (a failed write names no path: the caller says which file it was writing)
  const where = err.path ?? (err as { dest?: string }).dest ?? file;
  const fix: Record<string, string> = {
    ENOSPC: 'no space left on the device: free some space, or write elsewhere (runs: --runs-dir on another disk)',
    EDQUOT: 'the disk quota is used up: free some space, or write elsewhere (runs: --runs-dir DIR)',
    EROFS: 'the file system is read-only: write elsewhere (runs: --runs-dir DIR)',
    EACCES: 'permission denied: make the directory writable, or write elsewhere (runs: --runs-dir DIR)',
    EPERM: 'operation not permitted: make the directory writable, or write elsewhere (runs: --runs-dir DIR)',
    ENOENT: 'no such file or directory: check the path (during a run: was its directory moved or deleted while it was writing?)',
    EMFILE: 'too many open files: raise the limit (ulimit -n) or run fewer processes at once',
  };
  const code = err.code;
  // a recursive mkdir under a read-only or foreign directory fails as ENOENT: ask the nearest
  // directory that exists why
  if (code === 'ENOENT' && err.syscall === 'mkdir' && where) {
    let dir = path.dirname(where);
    while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    try {
      fs.accessSync(dir, fs.constants.W_OK);
      const probe = path.join(dir, `.elbo-write-test-${process.pid}`);
      fs.mkdirSync(probe);
      fs.rmdirSync(probe);
    } catch (why) {
      const c = (why as NodeJS.ErrnoException).code;
      if (c && fix[c]) return new UserError(`cannot mkdir: ${fix[c]}`, dir);
    }
  }
  const what = fix[code];
  if (!what || !where) return null;
  return new UserError(`${err.syscall ? `cannot ${err.syscall}: ` : ''}${what}`, where);
}
