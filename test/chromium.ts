/**
 * Test setup for the browser tests: a real headless Chromium (Debian's `chromium` package).
 *
 * - ensureChromium() installs the package with apt-get the first time (as the MLflow tests
 *   install MLflow from PyPI) and throws with the reason when it cannot: a browser test
 *   then fails, it is never skipped.
 * - Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: the
 *   protocol's JSON messages, NUL-terminated, on file descriptors 3 and 4), so no port, no
 *   WebSocket client and no npm browser driver are needed. It runs in its own process
 *   group and is stopped by its PID (the group) in close(), and on exit.
 * - renderPage(url) opens a page, waits for it to load (and for `waitFor`, a JavaScript
 *   expression, to be true), and returns its text, every <img> with whether it loaded,
 *   the console errors and uncaught exceptions, every URL it requested, and a full-page
 *   PNG screenshot.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import type { Readable, Writable } from 'stream';
import { installOnce, killGroup, trackGroup } from './processes';

export const CHROMIUM_CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome'];

/** The Chromium binary on PATH (CHROMIUM overrides), or null. */
export function findChromium(): string | null {
  const names = process.env.CHROMIUM ? [process.env.CHROMIUM] : CHROMIUM_CANDIDATES;
  for (const n of names) {
    if (path.isAbsolute(n)) {
      if (fs.existsSync(n)) return n;
      continue;
    }
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      const p = path.join(dir, n);
      if (dir && fs.existsSync(p)) return p;
    }
  }
  return null;
}

/**
 * The Chromium binary, installed with `apt-get install chromium` when missing (one
 * installer at a time across test files: a lock directory). Throws with the reason
 * (no apt-get, not root, the install's last lines) when it cannot be had.
 */
export async function ensureChromium(log: (m: string) => void = () => {}): Promise<string> {
  await installOnce(
    path.join(os.tmpdir(), 'elbo-chromium-install.lock'),
    () => findChromium() !== null,
    () => {
      if (spawnSync('apt-get', ['--version']).status !== 0)
        throw new Error(
          "Chromium is not installed and apt-get is not available: install Debian's chromium package (or set CHROMIUM to a Chromium binary)",
        );
      if (process.getuid && process.getuid() !== 0)
        throw new Error(
          'Chromium is not installed and installing it needs root: run apt-get install chromium (or set CHROMIUM to a Chromium binary)',
        );
      log('installing chromium with apt-get (first time only)');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      for (const args of [
        ['update', '-qq'],
        ['install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=600', 'chromium'],
      ]) {
        const r = spawnSync('apt-get', args, { encoding: 'utf8', env, timeout: 15 * 60_000 });
        if (r.status !== 0)
          throw new Error(
            `apt-get ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stderr || r.stdout || '').slice(-3000)}`,
          );
      }
    },
  );
  const bin = findChromium();
  if (!bin) throw new Error('apt-get install chromium succeeded but no chromium binary is on PATH');
  return bin;
}

/** An exception as the DevTools protocol reports it. */
interface ExceptionDetails {
  text: string;
  exception?: { description?: string };
}

/** The results of the DevTools protocol commands sent here, as far as they are read. */
interface Results {
  'Target.createTarget': { targetId: string };
  'Target.attachToTarget': { sessionId: string };
  'Page.navigate': { errorText?: string };
  'Runtime.evaluate': { result: { value?: unknown }; exceptionDetails?: ExceptionDetails };
  'Page.captureScreenshot': { data: string };
}
type Result<M extends string> = M extends keyof Results ? Results[M] : unknown;

/** The parameters of the DevTools protocol events listened to here, as far as they are read. */
interface Events {
  'Runtime.consoleAPICalled': { type: string; args: { value?: unknown; description?: string }[] };
  'Runtime.exceptionThrown': { exceptionDetails: ExceptionDetails };
  'Log.entryAdded': { entry: { level: string; text: string; url?: string } };
  'Network.requestWillBeSent': { request: { url: string } };
  'Page.loadEventFired': object;
}

/** A message from the browser: a command's reply (id) or an event (method). */
interface Message {
  id?: number;
  result?: unknown;
  error?: { message: string; data?: string };
  method?: string;
  params?: unknown;
  sessionId?: string;
}

type Handler<P = unknown> = (params: P, sessionId?: string) => void;

/** One headless Chromium and a DevTools protocol connection to it over a pipe. */
export class Chromium {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; method: string }>();
  private listeners = new Map<string, Set<Handler<never>>>();
  private exited: Promise<void>;
  private stderr = '';

  private constructor(
    private proc: ChildProcess,
    readonly profile: string,
  ) {
    const input = proc.stdio[3] as Writable;
    const output = proc.stdio[4] as Readable;
    input.on('error', () => {});
    let buf = Buffer.alloc(0);
    output.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let end: number;
      while ((end = buf.indexOf(0)) >= 0) {
        const msg: Message = JSON.parse(buf.subarray(0, end).toString('utf8'));
        buf = buf.subarray(end + 1);
        this.dispatch(msg);
      }
    });
    proc.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) =>
      proc.on('exit', () => {
        for (const p of this.pending.values()) p.reject(new Error(`chromium exited while waiting for ${p.method}:\n${this.stderr}`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  /** The PID of the browser process (the leader of its process group). */
  get pid(): number {
    return this.proc.pid!;
  }

  /** Start headless Chromium (installed first when missing) with a fresh profile. */
  static async launch(opts: { width?: number; height?: number } = {}): Promise<Chromium> {
    const bin = await ensureChromium();
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'elbo-chromium-'));
    const args = [
      '--headless',
      '--remote-debugging-pipe',
      '--no-sandbox', // tests run as root in CI
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      '--mute-audio',
      '--force-device-scale-factor=1',
      `--window-size=${opts.width ?? 1280},${opts.height ?? 900}`,
      `--user-data-dir=${profile}`,
      'about:blank',
    ];
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true });
    trackGroup(proc);
    const c = new Chromium(proc, profile);
    const started = await withTimeout(
      Promise.race([c.send('Browser.getVersion').then(() => true), c.exited.then(() => false)]),
      60_000,
      '',
    ).catch(() => false);
    if (!started) {
      await c.close();
      throw new Error(`chromium (${bin}) did not start:\n${c.stderr}`);
    }
    return c;
  }

  private dispatch(msg: Message): void {
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}${msg.error.data ? ` (${msg.error.data})` : ''}`));
      else p.resolve(msg.result);
    } else if (msg.method) {
      // each handler was added (on) for this event's params
      for (const h of this.listeners.get(msg.method) ?? []) h(msg.params as never, msg.sessionId);
    }
  }

  /** Send a DevTools protocol command (to a page when sessionId is given). */
  send<M extends string>(method: M, params: object = {}, sessionId?: string): Promise<Result<M>> {
    const id = this.nextId++;
    const msg = JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params });
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      (this.proc.stdio[3] as Writable).write(msg + '\0');
    }) as Promise<Result<M>>;
  }

  /** Listen to a protocol event; returns the function that stops listening. */
  on<E extends keyof Events>(method: E, h: Handler<Events[E]>): () => void {
    const set = this.listeners.get(method) ?? new Set();
    set.add(h);
    this.listeners.set(method, set);
    return () => set.delete(h);
  }

  /** Open `url` in a new tab and wait for its load event (and `waitFor`); see renderPage. */
  async render(url: string, opts: RenderOptions = {}): Promise<RenderedPage> {
    const timeout = opts.timeoutMs ?? 30_000;
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const mine =
      <P>(h: Handler<P>): Handler<P> =>
      (p, s) =>
        s === sessionId && h(p);
    let loaded!: () => void;
    const loadFired = new Promise<void>((r) => (loaded = r));
    const off = [
      this.on(
        'Runtime.consoleAPICalled',
        mine((p) => p.type === 'error' && consoleErrors.push(p.args.map((a) => a.value ?? a.description ?? '').join(' '))),
      ),
      this.on(
        'Runtime.exceptionThrown',
        mine((p) => consoleErrors.push(p.exceptionDetails.exception?.description ?? p.exceptionDetails.text)),
      ),
      this.on(
        'Log.entryAdded',
        mine((p) => p.entry.level === 'error' && consoleErrors.push(`${p.entry.text}${p.entry.url ? ` (${p.entry.url})` : ''}`)),
      ),
      this.on(
        'Network.requestWillBeSent',
        mine((p) => requests.push(p.request.url)),
      ),
      this.on(
        'Page.loadEventFired',
        mine(() => loaded()),
      ),
    ];
    try {
      const width = opts.width ?? 1280;
      await Promise.all(['Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable'].map((m) => this.send(m, {}, sessionId)));
      await this.send(
        'Emulation.setDeviceMetricsOverride',
        { width, height: opts.height ?? 900, deviceScaleFactor: 1, mobile: false },
        sessionId,
      );
      const nav = await this.send('Page.navigate', { url }, sessionId);
      if (nav.errorText) throw new Error(`could not open ${url}: ${nav.errorText}`);
      await withTimeout(loadFired, timeout, `${url} did not finish loading in ${timeout} ms`);
      const evaluate = async <T = unknown>(expression: string): Promise<T> => {
        const r = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId);
        if (r.exceptionDetails)
          throw new Error(`evaluating in ${url}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
        return r.result.value as T;
      };
      // every image finished (loaded or failed), then the page's own condition
      const ready = `(${opts.waitFor ?? 'true'}) && [...document.images].every((i) => i.complete)`;
      const t0 = Date.now();
      while (!(await evaluate(ready))) {
        if (Date.now() - t0 > timeout)
          throw new Error(`${url}: ${opts.waitFor ? `waitFor (${opts.waitFor})` : 'images'} not ready after ${timeout} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const page = await evaluate<Pick<RenderedPage, 'title' | 'text' | 'images'> & { height: number }>(`({
        title: document.title,
        text: document.body ? document.body.innerText : '',
        images: [...document.images].map((i) => ({ src: i.currentSrc || i.src, alt: i.alt, loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth, height: i.naturalHeight })),
        height: Math.ceil(document.documentElement.scrollHeight),
      })`);
      const height = Math.min(page.height, opts.maxHeight ?? 16_000);
      await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
      const shot = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: false }, sessionId);
      return {
        url,
        title: page.title,
        text: page.text,
        images: page.images,
        consoleErrors,
        requests,
        screenshotPng: Buffer.from(shot.data, 'base64'),
      };
    } finally {
      off.forEach((f) => f());
      await this.send('Target.closeTarget', { targetId }).catch(() => {});
    }
  }

  /** Stop the browser: Browser.close, then its process group by PID if it is still there. */
  async close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.send('Browser.close').catch(() => {});
      const done = await withTimeout(this.exited, 5000, '').then(
        () => true,
        () => false,
      );
      if (!done) {
        killGroup(this.proc, 'SIGKILL');
        await this.exited;
      }
    }
    // helpers the browser started may outlive it by a moment
    killGroup(this.proc, 'SIGKILL');
    fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 3 });
  }
}

export interface RenderOptions {
  /** A JavaScript expression polled until true after the load event (e.g. for pages that render with scripts). */
  waitFor?: string;
  timeoutMs?: number;
  /** Viewport width (the screenshot's width) and initial height. */
  width?: number;
  height?: number;
  /** The screenshot is cut at this height in pixels (default 16000). */
  maxHeight?: number;
}

export interface RenderedPage {
  url: string;
  title: string;
  /** document.body.innerText. */
  text: string;
  images: { src: string; alt: string; loaded: boolean; width: number; height: number }[];
  /** console.error calls, uncaught exceptions and browser log errors (failed loads, blocked requests). */
  consoleErrors: string[];
  /** Every URL the page requested, the page's own first. */
  requests: string[];
  /** The whole page (up to maxHeight) as PNG. */
  screenshotPng: Buffer;
}

/** Render one page in a Chromium started for it and stopped afterwards. */
export async function renderPage(url: string, opts: RenderOptions = {}): Promise<RenderedPage> {
  const browser = await Chromium.launch({ width: opts.width, height: opts.height });
  try {
    return await browser.render(url, opts);
  } finally {
    await browser.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
