import * as fs from 'fs';
import { PNG } from 'pngjs';

/**
 * Write images (values in [0,1], each h×w×c with c = 1 or 3) as one PNG grid with
 * `cols` columns and a 1-pixel gap.
 */
export function writeImageGrid(file: string, images: Float32Array[], shape: number[], cols: number): void {
  const [h, w, c] = shape.length === 3 ? shape : [shape[0], shape[1] ?? 1, 1];
  const rows = Math.ceil(images.length / cols);
  const gap = 1;
  const W = cols * (w + gap) + gap;
  const H = rows * (h + gap) + gap;
  const png = new PNG({ width: W, height: H });
  png.data.fill(255);
  images.forEach((img, k) => {
    const r0 = gap + Math.floor(k / cols) * (h + gap);
    const c0 = gap + (k % cols) * (w + gap);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const o = ((r0 + i) * W + (c0 + j)) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const v = img[(i * w + j) * c + (c === 3 ? ch : 0)];
          png.data[o + ch] = Math.max(0, Math.min(255, Math.round(v * 255)));
        }
        png.data[o + 3] = 255;
      }
  });
  fs.writeFileSync(file, PNG.sync.write(png));
}
