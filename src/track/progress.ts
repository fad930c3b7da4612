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
    const width = 20;
    const filled = Math.round((width * p.step) / p.steps);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const line =
      `epoch ${p.epoch}/${p.epochs} ${bar} ${p.step}/${p.steps} ` +
      formatTerms(p.terms) +
      ` | ${Math.round(p.samplesPerSec)} samples/s | ETA ${formatDuration(p.etaSec)}`;
    const cols = this.stream.columns ?? 120;
    this.stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}\x1b[K`);
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
