import * as fs from 'fs';
import { PNG } from 'pngjs';

/**
 * A small line plot as PNG (no font or canvas dependency): series of (x, mean ± std)
 * points with error bars, numeric tick labels drawn with a 3×5 digit font. Series are
 * told apart by colour; the legend (colour → series name) is returned for the caller to
 * print, since the PNG has digits only.
 */
export interface Series {
  name: string;
  points: { x: number; y: number; std: number }[];
}

const COLOURS: [number, number, number][] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
];
export const COLOUR_NAMES = ['blue', 'orange', 'green', 'red', 'purple', 'brown', 'pink', 'grey'];

// 3×5 glyphs, rows top to bottom, 3 bits each (4 = left pixel)
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 1, 1], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2], '-': [0, 0, 7, 0, 0], '+': [0, 2, 7, 2, 0], e: [0, 7, 7, 4, 7], ' ': [0, 0, 0, 0, 0],
};

export function writeLinePlot(file: string, series: Series[], opts: { width?: number; height?: number; logX?: boolean } = {}): void {
  const W = opts.width ?? 640;
  const H = opts.height ?? 420;
  const png = new PNG({ width: W, height: H });
  png.data.fill(255);
  const set = (x: number, y: number, c: [number, number, number]) => {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    const o = (y * W + x) * 4;
    png.data[o] = c[0];
    png.data[o + 1] = c[1];
    png.data[o + 2] = c[2];
    png.data[o + 3] = 255;
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]) => {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) set(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c);
  };
  const text = (s: string, x: number, y: number, scale = 2) => {
    [...s].forEach((ch, i) => {
      const g = GLYPHS[ch] ?? GLYPHS[' '];
      g.forEach((row, r) => {
        for (let b = 0; b < 3; b++) if (row & (4 >> b)) for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) set(x + (i * 4 + b) * scale + dx, y + r * scale + dy, [0, 0, 0]);
      });
    });
  };
  const pts = series.flatMap((s) => s.points);
  const fx = (x: number) => (opts.logX ? Math.log10(x) : x);
  let [x0, x1] = [Math.min(...pts.map((p) => fx(p.x))), Math.max(...pts.map((p) => fx(p.x)))];
  let [y0, y1] = [Math.min(...pts.map((p) => p.y - p.std)), Math.max(...pts.map((p) => p.y + p.std))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.08;
  y0 -= pad;
  y1 += pad;
  const L = 80;
  const R = W - 20;
  const T = 20;
  const B = H - 40;
  const px = (x: number) => L + ((fx(x) - x0) / (x1 - x0)) * (R - L - 20) + 10;
  const py = (y: number) => B - ((y - y0) / (y1 - y0)) * (B - T);
  const axis: [number, number, number] = [0, 0, 0];
  line(L, T, L, B, axis);
  line(L, B, R, B, axis);
  const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    line(L - 4, py(v), L, py(v), axis);
    text(fmt(v), 4, py(v) - 5);
  }
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  for (const v of xs) {
    line(px(v), B, px(v), B + 4, axis);
    text(fmt(v), px(v) - 8, B + 10);
  }
  series.forEach((s, k) => {
    const c = COLOURS[k % COLOURS.length];
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    sorted.forEach((p, i) => {
      for (let d = -3; d <= 3; d++) line(px(p.x) - 3, py(p.y) + d, px(p.x) + 3, py(p.y) + d, c);
      line(px(p.x), py(p.y - p.std), px(p.x), py(p.y + p.std), c);
      line(px(p.x) - 5, py(p.y - p.std), px(p.x) + 5, py(p.y - p.std), c);
      line(px(p.x) - 5, py(p.y + p.std), px(p.x) + 5, py(p.y + p.std), c);
      if (i) line(px(sorted[i - 1].x), py(sorted[i - 1].y), px(p.x), py(p.y), c);
    });
  });
  fs.writeFileSync(file, PNG.sync.write(png));
}
