import * as fs from 'fs';
import * as path from 'path';

/**
 * Every figure elbo draws is a Vega-Lite spec (src/plot/figures.ts), compiled to Vega,
 * rendered to SVG by Vega's headless SVG renderer (no browser, no canvas) and rasterised
 * to PNG by resvg: FILE.png and FILE.svg side by side.
 *
 * Text is set in DejaVu Sans (Debian's fonts-dejavu-core); without it resvg falls back to
 * another installed sans font.
 */
export type VegaLiteSpec = Record<string, unknown>;

export const FONT = 'DejaVu Sans';

/** The look shared by every figure. */
export const CONFIG = {
  font: FONT,
  // none: fitToContent adds it after cropping
  background: null,
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: '#444', anchor: 'start', offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  // Vega overestimates text widths: a generous limit, or labels are cut early
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 1200 },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

/** Raster scale of the PNGs (the SVG is the exact one). */
export const ZOOM = 2;

type Vega = typeof import('vega');

interface Engines {
  vega: Vega;
  /** What is used of Vega-Lite (its own types resolve only under node16 module resolution, not this project's). */
  vegaLite: { compile(spec: object, options: { logger: ReturnType<Vega['logger']> }): { spec: Parameters<Vega['parse']>[0] } };
}
let engines: Promise<Engines> | null = null;

/**
 * Vega and Vega-Lite are ES modules only: load them with a real dynamic import() (the
 * compiled CommonJS would otherwise turn `import()` into `require()`), once per process.
 */
function loadEngines(): Promise<Engines> {
  // (the module's type is the caller's word: nothing checks it)
  const importEsm = new Function('specifier', 'return import(specifier)') as <T>(s: string) => Promise<T>;
  engines ??= Promise.all([importEsm<Vega>('vega'), importEsm<Engines['vegaLite']>('vega-lite')]).then(([vega, vegaLite]) => ({
    vega,
    vegaLite,
  }));
  return engines;
}

/** A Vega-Lite spec as SVG text (the shared CONFIG merged under the spec's own config). */
export async function toSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega, vegaLite } = await loadEngines();
  const full = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...spec,
    config: { ...CONFIG, ...((spec.config as object) ?? {}) },
  };
  // warnings about a spec's settings it drops (a log scale's zero) are not the user's to read
  const compiled = vegaLite.compile(full, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Debian's DejaVu Sans (fonts-dejavu-core): read directly, which is much faster than scanning every system font. */
const DEJAVU = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => path.join('/usr/share/fonts/truetype/dejavu', f));
let fonts: { fontFiles: string[]; loadSystemFonts: boolean } | null = null;

function resvg(svg: string) {
  // loaded here so that commands that draw nothing never load the native renderer
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  fonts ??= DEJAVU.every((f) => fs.existsSync(f))
    ? { fontFiles: DEJAVU, loadSystemFonts: false }
    : { fontFiles: [], loadSystemFonts: true };
  return new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: ZOOM },
    font: { ...fonts, defaultFontFamily: FONT, sansSerifFamily: FONT },
  });
}

/**
 * Vega sizes a figure from estimated text widths (it has no fonts in Node), which leaves
 * white space beside long titles: crop the SVG to what resvg measures with the real font,
 * plus a margin, on a white background.
 */
export function fitToContent(svg: string, margin = 6): string {
  // group backgrounds without fill or stroke are invisible but sized by the estimates: drop them
  svg = svg.replace(/<path class="background" aria-hidden="true" d="[^"]*"( pointer-events="none")?( opacity="1")?\/>/g, '');
  const box = resvg(svg).getBBox();
  const root = /<svg\b[^>]*>/.exec(svg);
  if (!box || !root) return svg;
  const x = Math.floor(box.x) - margin;
  const y = Math.floor(box.y) - margin;
  const w = Math.ceil(box.x + box.width) + margin - x;
  const h = Math.ceil(box.y + box.height) + margin - y;
  const tag = root[0]
    .replace(/\swidth="[^"]*"/, ` width="${w}"`)
    .replace(/\sheight="[^"]*"/, ` height="${h}"`)
    .replace(/\sviewBox="[^"]*"/, ` viewBox="${x} ${y} ${w} ${h}"`);
  return svg.replace(root[0], `${tag}<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="white"/>`);
}

/** SVG text as PNG bytes (white background, ZOOM× the SVG's size). */
export function svgToPng(svg: string): Buffer {
  return resvg(svg).render().asPng();
}

/**
 * Render a Vega-Lite spec to `file` (a .png path) and the SVG beside it (same name,
 * .svg). Returns both paths.
 */
export async function writeFigure(file: string, spec: VegaLiteSpec): Promise<{ png: string; svg: string }> {
  const svg = fitToContent(await toSvg(spec));
  const svgFile = file.replace(/\.png$/i, '') + '.svg';
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(svgFile, svg);
  fs.writeFileSync(file, svgToPng(svg));
  return { png: file, svg: svgFile };
}
