/**
 * A user error: bad config, data file, plugin or flag. It is printed as one line
 * (`where: message`) and exits non-zero; anything else is a bug and shows its stack
 * with --verbose.
 */
export class UserError extends Error {
  /** `file:line:col`, a path, or a flag such as `--set model.latent=3`. */
  readonly where?: string;
  readonly exitCode: number;
  constructor(message: string, where?: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.where = where;
    this.exitCode = exitCode;
  }
  /** The one line a user sees (control characters escaped, very long words shortened: oneLine). */
  line(): string {
    return oneLine(this.where ? `${this.where}: ${this.message}` : this.message);
  }
}

/**
 * A value a `catch` caught, for reading its fields: usually an Error (from Node, with a
 * `code`), but anything can be thrown, so every field may be missing, and so may the value.
 */
export type Caught = Partial<NodeJS.ErrnoException> | null | undefined;

/** Longest run of non-space characters an error line shows whole. */
export const LONGEST_WORD = 300;

/**
 * Text that stays one line in a terminal, however it was made: control characters (a newline
 * in a --set value, ESC or CR from a data file, which a terminal would act on) are shown as
 * escapes (\n, \r, \x1b), and a run of more than LONGEST_WORD non-space characters (a user
 * value echoed back) keeps its first 120 characters, then '…' and its length.
 */
export function oneLine(s: string): string {
  const escaped = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return escaped.replace(
    new RegExp(`\\S{${LONGEST_WORD + 1},}`, 'g'),
    (w) => `${w.slice(0, 120)}… (${w.length.toLocaleString('en')} characters)`,
  );
}

/** Several user errors at once (e.g. every problem in a config). */
export class UserErrors extends UserError {
  readonly errors: UserError[];
  constructor(errors: UserError[]) {
    super(errors.map((e) => e.line()).join('\n'));
    this.errors = errors;
  }
  override line(): string {
    return this.errors.map((e) => e.line()).join('\n');
  }
}

/** Closest candidate by edit distance, if it is close enough to be a likely typo. */
export function closeMatch(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return bestD <= limit ? best : undefined;
}

/** Optimal-string-alignment distance: edits, with a swap of neighbours counted as one. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** "did you mean 'x'? (allowed: a, b, c)" */
export function suggestion(word: string, allowed: string[]): string {
  const m = closeMatch(word, allowed);
  const list = allowed.length ? ` (allowed: ${allowed.join(', ')})` : '';
  return (m ? `; did you mean '${m}'?` : '') + list;
}
