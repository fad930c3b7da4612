import * as path from 'path';

/** A path as messages show it and a user would type it: relative below the current directory, else absolute. */
export function shownPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : path.resolve(p);
}
