import * as fs from 'fs';

/**
 * The pieces of a report page: plain HTML with its style inline and every image embedded
 * as a data: URI, so the file opens from file:// (or as an MLflow artifact) with nothing
 * else: no script, no network (its Content-Security-Policy allows neither).
 */

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A table: the header cells, then rows of cells (already HTML: escape text with esc). */
export function table(head: string[], rows: string[][], cls = ''): string {
  return `<div class="wide"><table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

/** Two-column key/value table (values already HTML). */
export function facts(rows: [string, string][]): string {
  return `<table class="facts"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`;
}

/**
 * A PNG file as an embedded figure with a caption, shown at half its pixel width (the
 * figures are drawn at twice their SVG size, for sharp text on dense screens).
 */
export function figure(file: string, caption: string): string {
  const png = fs.readFileSync(file);
  const width = Math.round(png.readUInt32BE(16) / 2); // the IHDR chunk's width
  return `<figure><img src="data:image/png;base64,${png.toString('base64')}" width="${width}" alt="${esc(caption)}"><figcaption>${esc(caption)}</figcaption></figure>`;
}

/** A number as a report shows it: 4 significant digits beyond the integer part. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : v.toFixed(a >= 100 ? 2 : 4);
}

/** A verdict (within, better, worse, missing) as a coloured label. */
export function verdictBadge(v: string): string {
  return `<span class="verdict ${esc(v)}">${esc(v)}</span>`;
}

const STYLE = `
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; margin: 0 auto; max-width: 1240px; padding: 16px 24px 48px; color: #1b1b1b; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f3f3; }
table.facts th { background: #f7f7f7; font-weight: 600; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.wide { overflow-x: auto; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 8px 10px; font-size: 12px; overflow-x: auto; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #555; margin-top: 2px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; color: #fff; background: #777; }
.status.FINISHED { background: #2e7d32; } .status.FAILED { background: #c62828; } .status.KILLED, .status.RUNNING { background: #ef6c00; }
.verdict { padding: 0 6px; border-radius: 8px; font-size: 12px; font-weight: 600; }
.verdict.within { background: #c8e6c9; } .verdict.better { background: #bbdefb; } .verdict.worse { background: #ffcdd2; } .verdict.missing { background: #eee; }
footer { margin-top: 32px; font-size: 12px; color: #777; }
`;

/** The whole page. */
export function page(title: string, body: string, footer: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<footer>${footer}</footer>
</body>
</html>
`;
}
