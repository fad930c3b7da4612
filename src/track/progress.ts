/**
 * The training progress line on stderr: epoch, batch, loss terms, samples/s, ETA.
 * On a terminal it redraws in place (at most 10 times a second); elsewhere (CI, files)
 * it prints one line per epoch.
 *
 * On a terminal (and not under --verbose) every line fits its width (80 columns when it does
 * not say): the epoch lines keep what matters most (formatEpochLine) and the other lines
 * (the run's header, the class histogram, warnings) wrap at spaces (wrapText). Elsewhere,
 * and with --verbose, the lines are written whole.
 */
export class Progress {
  private last = 0;
  private readonly tty: boolean;
  private readonly verbose: boolean;
  private toldShortened = false;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
    o: { verbose?: boolean } = {},
  ) {
    this.tty = !!stream.isTTY && !process.env.CI;
    this.verbose = !!o.verbose;
  }

  /** The columns the lines fit in: the terminal's (80 when it does not say); null (whole lines) off a terminal or with --verbose. */
  get columns(): number | null {
    return this.tty && !this.verbose ? this.stream.columns || 80 : null;
  }

  update(p: ProgressState): void {
    if (!this.enabled || !this.tty) return;
    const now = Date.now();
    if (now - this.last < 100 && p.step < p.steps) return;
    this.last = now;
    const cols = this.stream.columns || 80;
    const line = formatProgressLine(p, cols);
    this.stream.write(`\r${line}\x1b[K`);
  }

  /** End of an epoch: a permanent line. */
  epochDone(epoch: number, epochs: number, metrics: Record<string, number>, seconds: number): void {
    if (!this.enabled) return;
    const columns = this.columns;
    const line = formatEpochLine(epoch, epochs, metrics, seconds, columns);
    if (columns !== null && !this.toldShortened && line !== formatEpochLine(epoch, epochs, metrics, seconds, null)) {
      this.toldShortened = true;
      this.message(
        `(epoch lines shortened to the terminal's ${columns} columns: every metric is in metrics.jsonl, and on screen with --verbose)`,
      );
    }
    this.stream.write((this.tty ? '\r\x1b[K' : '') + line + '\n');
  }

  /** A line of its own; on a terminal, wrapped at its width (see wrapText). */
  message(text: string): void {
    if (!this.enabled) return;
    const columns = this.columns;
    this.stream.write((this.tty ? '\r\x1b[K' : '') + (columns === null ? text : wrapText(text, columns - 1)) + '\n');
  }
}

/**
 * The line `elbo run` prints at the end of an epoch: `epoch 3/100`, its train/ and val/
 * metrics, samples/s and the epoch's seconds. With `columns` (a terminal), at most
 * `columns - 1` characters: the names shortened (train/ left out, accuracy as acc), then
 * samples/s dropped, then the metrics other than the loss, the ELBO (val/elbo, else
 * train/elbo), the accuracy (val/, else train/) and the validation loss, from the last;
 * then val/ as v/ and epoch as ep, and those four from the last. The epoch and the time
 * stay; only a terminal too narrow even for them is cut.
 */
export function formatEpochLine(
  epoch: number,
  epochs: number,
  metrics: Record<string, number>,
  seconds: number,
  columns: number | null = null,
): string {
  const shown = Object.entries(metrics).filter(
    ([k]) => (k.startsWith('train/') || k.startsWith('val/')) && !k.endsWith('samples_per_sec') && !k.endsWith('epoch_time_s'),
  );
  const rate = `${Math.round(metrics['train/samples_per_sec'] ?? 0)} samples/s`;
  const time = `${seconds.toFixed(1)}s`;
  const line = (terms: [string, number][], withRate: boolean, rename = (k: string) => k, ep = 'epoch') =>
    [`${ep} ${epoch}/${epochs}`, formatTerms(Object.fromEntries(terms.map(([k, v]) => [rename(k), v])))].filter(Boolean).join(' ') +
    (withRate ? ` | ${rate}` : '') +
    ` | ${time}`;
  const full = line(shown, true);
  if (columns === null) return full;
  const max = Math.max(1, columns - 1);
  if (full.length <= max) return full;
  const keys = shown.map(([k]) => k);
  const pick = (...c: string[]) => c.find((k) => keys.includes(k));
  const lossKey = pick('train/loss') ?? keys.find((k) => k.startsWith('train/'));
  const first = [lossKey, pick('val/elbo', 'train/elbo'), pick('val/accuracy', 'train/accuracy'), pick('val/loss')].filter(
    (k): k is string => !!k,
  );
  // the others, dropped from the last
  const others = keys.filter((k) => !first.includes(k));
  const kept = (ks: string[]) => shown.filter(([k]) => ks.includes(k));
  const short = (k: string) => k.replace(/^train\//, '').replace(/accuracy$/, 'acc');
  const tiny = (k: string) => short(k).replace(/^val\//, 'v/');
  const candidates = [line(shown, true, short)];
  for (let n = others.length; n >= 0; n--) candidates.push(line(kept([...first, ...others.slice(0, n)]), false, short));
  for (let n = first.length; n >= 1; n--) candidates.push(line(kept(first.slice(0, n)), false, tiny, 'ep'));
  const fits = candidates.find((c) => c.length <= max);
  return fits ?? candidates[candidates.length - 1].slice(0, max);
}

/**
 * `text` as lines of at most `width` characters, broken at spaces. A parenthesis stays with
 * the word before it (`0:4972 (9.9%)`, `mnist (60000 train / 10000 test)`) unless it is too
 * long for a line of its own. Continuation lines are indented under the text after a short
 * leading label (`classes in train: `, `warning: `), else by two spaces. A word longer than
 * a line (a path) stays whole.
 */
export function wrapText(text: string, width: number): string {
  if (text.length <= width || text.includes('\n')) return text;
  const label = /^[^:()]{1,24}: /.exec(text)?.[0].length ?? 0;
  const indent = label && label <= width / 3 ? label : 2;
  // units: a word and the parenthesised words after it
  const words = text.split(' ');
  const units: string[] = [];
  let depth = 0;
  for (const w of words) {
    if (units.length && (depth > 0 || w.startsWith('('))) units[units.length - 1] += ' ' + w;
    else units.push(w);
    depth = Math.max(0, depth + (w.match(/\(/g)?.length ?? 0) - (w.match(/\)/g)?.length ?? 0));
  }
  const room = width - indent;
  const pieces = units.flatMap((u) => (u.length > room ? u.split(' ') : [u]));
  const lines: string[] = [];
  let cur = '';
  for (const p of pieces) {
    const prefix = lines.length ? ' '.repeat(indent) : '';
    if (cur && (prefix + cur + ' ' + p).length > width) {
      lines.push(prefix + cur);
      cur = p;
    } else cur = cur ? `${cur} ${p}` : p;
  }
  lines.push((lines.length ? ' '.repeat(indent) : '') + cur);
  return lines.join('\n');
}

export function formatTerms(terms: Record<string, number>): string {
  return Object.entries(terms)
    .filter(([k]) => !k.endsWith('samples_per_sec') && !k.endsWith('epoch_time_s'))
    .map(([k, v]) => `${k} ${Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4)}`)
    .join(' ');
}

export function formatDuration(s: number): string {
  if (!isFinite(s)) return '?';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

export interface ProgressState {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  terms: Record<string, number>;
  samplesPerSec: number;
  etaSec: number;
}

/**
 * The progress line, at most `columns - 1` characters (the last column would wrap on some
 * terminals). Kept whatever the width: epoch, step, the loss, samples/s and the ETA. Given up
 * first, in this order: the loss terms other than the loss (from the last), the bar's width,
 * the bar, then the words are abbreviated; only a terminal too narrow even for that is cut.
 */
export function formatProgressLine(p: ProgressState, columns = 80): string {
  const max = Math.max(1, columns - 1);
  const terms = Object.entries(p.terms).filter(([k]) => !k.endsWith('samples_per_sec') && !k.endsWith('epoch_time_s'));
  const lossKey = terms.find(([k]) => k === 'loss' || k.endsWith('/loss'))?.[0] ?? terms[0]?.[0];
  const loss = terms.filter(([k]) => k === lossKey);
  const others = terms.filter(([k]) => k !== lossKey);
  const bar = (width: number) => {
    const filled = Math.round((width * p.step) / Math.max(1, p.steps));
    return '█'.repeat(filled) + '░'.repeat(width - filled);
  };
  const rate = Math.round(p.samplesPerSec);
  const eta = formatDuration(p.etaSec);
  const full = (t: [string, number][], width: number) =>
    [`epoch ${p.epoch}/${p.epochs}`, width ? bar(width) : '', `${p.step}/${p.steps}`, formatTerms(Object.fromEntries(t))]
      .filter(Boolean)
      .join(' ') + ` | ${rate} samples/s | ETA ${eta}`;
  const candidates: string[] = [];
  for (let n = others.length; n >= 0; n--) candidates.push(full([...loss, ...others.slice(0, n)], 20));
  candidates.push(full(loss, 10), full(loss, 0));
  const lossText = formatTerms(Object.fromEntries(loss));
  candidates.push(`ep ${p.epoch}/${p.epochs} ${p.step}/${p.steps} ${lossText} | ${rate}/s | ETA ${eta}`.replace('  ', ' '));
  candidates.push(`${p.epoch}/${p.epochs} ${p.step}/${p.steps} ${lossText.replace(/^\S+ /, '')} ${rate}/s ${eta}`);
  const fits = candidates.find((c) => c.length <= max);
  return fits ?? candidates[candidates.length - 1].slice(0, max);
}
