import * as fs from 'fs';
import { UserError, type Caught } from '../errors';

/**
 * Read a data file named by a config: a missing file, a directory, a file that cannot be
 * read (permissions, a name too long) are one-line errors at the file, with `hint` saying
 * where to get the data.
 */
export function readDataFile(file: string, what: string, hint = ''): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    const err = e as Caught;
    if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR') throw new UserError(`${what} not found${hint ? `; ${hint}` : ''}`, file);
    throw new UserError(`cannot read ${what}: ${err?.message ?? e}`, file);
  }
  if (stat.isDirectory()) throw new UserError(`${what} is a directory; give the file itself${hint ? ` (${hint})` : ''}`, file);
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read ${what}: ${(e as Caught)?.message ?? e}`, file);
  }
}

/** Largest value of an integer array, without spreading it into arguments (a million labels would overflow the stack). */
export function maxOf(a: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

/**
 * Labels must be class indices 0..C−1 with every class present in the data set (training
 * and test together): a label far above the others (200 and 255 among 0..9) would make
 * hundreds of empty classes. Returns C; the error names the first label out of line.
 */
export function checkClassIndices(parts: { labels: ArrayLike<number>; file: string }[]): number {
  const seen = new Set<number>();
  for (const p of parts) for (let i = 0; i < p.labels.length; i++) seen.add(p.labels[i]);
  if (!seen.size) return 0;
  const values = [...seen].sort((a, b) => a - b);
  const classes = values[values.length - 1] + 1;
  if (values.length === classes) return classes;
  // the first label above a gap is the one out of line
  const gapAt = values.findIndex((v, i) => v !== i);
  const bad = values[gapAt];
  for (const p of parts) {
    for (let i = 0; i < p.labels.length; i++) {
      if (p.labels[i] === bad) {
        const shown = values.length > 12 ? `${values.slice(0, 10).join(', ')}, … ${values[values.length - 1]}` : values.join(', ');
        throw new UserError(
          `label ${bad} (row ${i}) is not a class index: labels must be 0..C−1 with every class present, but ${gapAt === 0 ? '0' : `${values[gapAt - 1] + 1}`}${bad - 1 > (gapAt === 0 ? 0 : values[gapAt - 1] + 1) ? `..${bad - 1}` : ''} never occur (labels found: ${shown})`,
          p.file,
        );
      }
    }
  }
  return classes;
}
