import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as jpeg from 'jpeg-js';
import { ConfigPath, definePlugin, Override, Type, type OptionsOf } from '../registry/define';
import { commonDataOptions, finishDataSet } from './dataset';
import { UserError, suggestion } from '../errors';
import { readDataFile } from './files';
import { Split } from '../contracts';

const celebaOptions = {
  path: ConfigPath('Directory with img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt'),
  attributes: Type.Array(Type.String(), {
    minItems: 1,
    maxItems: 4,
    default: ['Male', 'Smiling'],
    description: 'Binary attributes whose combinations are the classes',
  }),
  size: Type.Integer({ minimum: 8, default: 64, description: 'Output image side' }),
  crop: Type.Integer({ minimum: 8, default: 148, description: 'Centre crop side before resizing' }),
  max_images: Type.Optional(
    Type.Integer({ minimum: 1, description: 'Load at most this many images per split (decoding all 202,599 takes a while)' }),
  ),
  ...commonDataOptions,
  binarize: Override(commonDataOptions.binarize, { default: 'none' }),
};
export type CelebaOptions = OptionsOf<typeof celebaOptions>;

const WHERE_TO_GET =
  'download CelebA "Align&Cropped Images" (img_align_celeba/), list_attr_celeba.txt and list_eval_partition.txt from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into one directory and set data.path to it';

function readText(file: string): string {
  return readDataFile(file, 'CelebA file', WHERE_TO_GET).toString('utf8');
}

/**
 * list_attr_celeba.txt: a count line, a line of attribute names, then per image its file
 * name and one 1 or -1 per attribute. Returns the class of each image (2·a1 + a2 ... over
 * the chosen attributes); every malformed line is an error naming its line number.
 */
export function parseCelebaAttributes(text: string, file: string, attributes: string[]): Map<string, number> {
  const lines = text.split(/\r?\n/);
  const content = lines.map((l, i) => ({ l: l.trim(), n: i + 1 })).filter((x) => x.l);
  if (content.length < 2) {
    throw new UserError(
      `expected a count line, a line of attribute names, then one line per image; the file has ${content.length} non-empty line${content.length === 1 ? '' : 's'}`,
      file,
    );
  }
  const names = content[1].l.split(/\s+/);
  const cols = attributes.map((a) => {
    const i = names.indexOf(a);
    if (i < 0) throw new UserError(`attribute '${a}' is not in ${path.basename(file)}${suggestion(a, names)}`, 'data.attributes');
    return i;
  });
  const labels = new Map<string, number>();
  for (const { l, n } of content.slice(2)) {
    const f = l.split(/\s+/);
    if (f.length !== names.length + 1)
      throw new UserError(`line ${n}: ${f.length - 1} attribute values for ${f[0]}, but the header names ${names.length}`, file);
    labels.set(
      f[0],
      cols.reduce((c, col) => {
        const v = f[1 + col];
        if (v !== '1' && v !== '-1')
          throw new UserError(`line ${n}: attribute ${names[col]} of ${f[0]} is '${v}'; values are 1 or -1`, file);
        return 2 * c + (v === '1' ? 1 : 0);
      }, 0),
    );
  }
  return labels;
}

/** list_eval_partition.txt: per image its file name and 0 (train), 1 (validation) or 2 (test). */
export function parseCelebaPartition(text: string, file: string): Record<'train' | 'test', string[]> {
  const parts: Record<'train' | 'test', string[]> = { train: [], test: [] };
  text.split(/\r?\n/).forEach((line, i) => {
    const f = line.trim().split(/\s+/);
    if (!f[0]) return;
    if (f.length !== 2 || !['0', '1', '2'].includes(f[1])) {
      throw new UserError(
        `line ${i + 1}: expected 'FILE PARTITION' with partition 0 (train), 1 (validation) or 2 (test), got '${line.trim()}'`,
        file,
      );
    }
    (f[1] === '2' ? parts.test : parts.train).push(f[0]);
  });
  return parts;
}

/** Centre crop of `crop`×`crop`, then bilinear resize to size×size; RGB in [0, 1], HWC. */
export function cropResize(rgba: Uint8Array, w: number, h: number, crop: number, size: number, out: Float32Array, offset: number): void {
  const c = Math.min(crop, w, h);
  const x0 = (w - c) / 2;
  const y0 = (h - c) / 2;
  const scale = c / size;
  for (let i = 0; i < size; i++) {
    const sy = Math.min(h - 1, Math.max(0, y0 + (i + 0.5) * scale - 0.5));
    const yA = Math.floor(sy);
    const yB = Math.min(h - 1, yA + 1);
    const fy = sy - yA;
    for (let j = 0; j < size; j++) {
      const sx = Math.min(w - 1, Math.max(0, x0 + (j + 0.5) * scale - 0.5));
      const xA = Math.floor(sx);
      const xB = Math.min(w - 1, xA + 1);
      const fx = sx - xA;
      for (let ch = 0; ch < 3; ch++) {
        const p = (yy: number, xx: number) => rgba[(yy * w + xx) * 4 + ch];
        const v = (1 - fy) * ((1 - fx) * p(yA, xA) + fx * p(yA, xB)) + fy * ((1 - fx) * p(yB, xA) + fx * p(yB, xB));
        out[offset + (i * size + j) * 3 + ch] = v / 255;
      }
    }
  }
}

/**
 * CelebA aligned faces with classes from binary attributes: with [Male, Smiling] the
 * class is 2·male + smiling (0 female not smiling … 3 male smiling), as G-VAE's 4-class
 * setting. The official partition gives train (0, plus validation 1) and test (2).
 */
export const celebaDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'celeba',
  description: 'CelebA aligned faces from a local directory (not shipped), centre-cropped and resized; classes from binary attributes',
  options: celebaOptions,
  create(o, ctx) {
    const dir = path.resolve(ctx.baseDir, o.path);
    const attrFile = path.join(dir, 'list_attr_celeba.txt');
    const labels = parseCelebaAttributes(readText(attrFile), attrFile, o.attributes);
    const partFile = path.join(dir, 'list_eval_partition.txt');
    const parts = parseCelebaPartition(readText(partFile), partFile);
    const size = o.size;
    const dim = size * size * 3;
    const hash = crypto.createHash('sha256');
    hash.update(JSON.stringify(o.attributes));
    const load = (files: string[]): Split => {
      const list = o.max_images ? files.slice(0, o.max_images) : files;
      const x = new Float32Array(list.length * dim);
      const y = new Int32Array(list.length);
      list.forEach((f, i) => {
        const file = path.join(dir, 'img_align_celeba', f);
        let buf: Buffer;
        try {
          buf = fs.readFileSync(file);
        } catch {
          throw new UserError(`image listed in ${path.basename(partFile)} is missing; ${WHERE_TO_GET}`, file);
        }
        hash.update(buf);
        let img: { width: number; height: number; data: Uint8Array };
        try {
          img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
        } catch (e) {
          throw new UserError(`not a readable JPEG: ${(e as Error).message}`, file);
        }
        cropResize(img.data, img.width, img.height, o.crop, size, x, i * dim);
        const label = labels.get(f);
        if (label === undefined) throw new UserError(`no attributes for ${f}`, attrFile);
        y[i] = label;
      });
      return { x, y, n: list.length };
    };
    const train = load(parts.train);
    const test = load(parts.test);
    return finishDataSet(
      {
        name: 'celeba',
        shape: [size, size, 3],
        dim,
        classes: 2 ** o.attributes.length,
        train,
        test,
        sha256: hash.digest('hex'),
        source: dir,
      },
      o,
      ctx.rng,
      'data (celeba)',
    );
  },
});
