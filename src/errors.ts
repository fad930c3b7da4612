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
  /** The one line a user sees. */
  line(): string {
    return this.where ? `${this.where}: ${this.message}` : this.message;
  }
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

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/** "did you mean 'x'? (allowed: a, b, c)" */
export function suggestion(word: string, allowed: string[]): string {
  const m = closeMatch(word, allowed);
  const list = allowed.length ? ` (allowed: ${allowed.join(', ')})` : '';
  return (m ? `; did you mean '${m}'?` : '') + list;
}
