/**
 * The training progress line on stderr: epoch, batch, loss terms, samples/s, ETA.
 * On a terminal it redraws in place (at most 10 times a second); elsewhere (CI, files)
 * it prints one line per epoch.
 */
export class Progress {
  private last = 0;
  private readonly tty: boolean;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
  ) {
    this.tty = !!stream.isTTY && !process.env.CI;
  }

  update(p: { epoch: number; epochs: number; step: number; steps: number; terms: Record<string, number>; samplesPerSec: number; etaSec: number }): void {
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
    const shown = Object.fromEntries(
      Object.entries(metrics).filter(([k]) => k.startsWith('train/') || k.startsWith('val/')).map(([k, v]) => [k, v]),
    );
    const line = `epoch ${epoch}/${epochs} ${formatTerms(shown)} | ${Math.round(metrics['train/samples_per_sec'] ?? 0)} samples/s | ${seconds.toFixed(1)}s`;
    this.stream.write((this.tty ? '\r\x1b[K' : '') + line + '\n');
  }

  message(text: string): void {
    if (!this.enabled) return;
    this.stream.write((this.tty ? '\r\x1b[K' : '') + text + '\n');
  }
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
    [`epoch ${p.epoch}/${p.epochs}`, width ? bar(width) : '', `${p.step}/${p.steps}`, formatTerms(Object.fromEntries(t))].filter(Boolean).join(' ') +
    ` | ${rate} samples/s | ETA ${eta}`;
  const candidates: string[] = [];
  for (let n = others.length; n >= 0; n--) candidates.push(full([...loss, ...others.slice(0, n)], 20));
  candidates.push(full(loss, 10), full(loss, 0));
  const lossText = formatTerms(Object.fromEntries(loss));
  candidates.push(`ep ${p.epoch}/${p.epochs} ${p.step}/${p.steps} ${lossText} | ${rate}/s | ETA ${eta}`.replace('  ', ' '));
  candidates.push(`${p.epoch}/${p.epochs} ${p.step}/${p.steps} ${lossText.replace(/^\S+ /, '')} ${rate}/s ${eta}`);
  const fits = candidates.find((c) => c.length <= max);
  return fits ?? candidates[candidates.length - 1].slice(0, max);
}
