import * as fs from 'fs';
import * as os from 'os';
import { diskError } from './disk-errors';

/**
 * Write `file` whole or not at all: into a temporary file beside it (named by host and
 * process, so writers on nodes that share the file system never write the same one), then
 * renamed into place. A reader sees the old content or the new, never half of it.
 */
export function writeFileAtomic(file: string, content: string | Uint8Array): void {
  const tmp = `${file}.tmp-${os.hostname()}-${process.pid}`;
  try {
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, file);
  } catch (e) {
    // a full disk leaves no half-written temporary file behind
    fs.rmSync(tmp, { force: true });
    throw diskError(e, file) ?? e;
  }
}
