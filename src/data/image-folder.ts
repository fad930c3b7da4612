import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { ConfigPath, definePlugin, Enum, Type, type OptionsOf } from '../registry/define';
import { UserError, type Caught } from '../errors';
import { readDataFile } from './files';
import { OwnDataSet, RawPart, finishOwnDataSet, ownDataOptions } from './own';
import type { PluginContext } from '../contracts';

const imageFolderOptions = {
  root: ConfigPath('Directory with one subfolder per class, each holding .png/.jpg/.jpeg images (root/<class>/*.png)'),
  test_root: Type.Optional(
    ConfigPath(
      "A second directory in the same layout as the test split (its class folders a subset of root's); default: test_fraction of root",
    ),
  ),
  size: Type.Integer({
    minimum: 1,
    default: 32,
    description: 'Every image is resized to size×size (stretched: the aspect ratio is not kept)',
  }),
  channels: Enum([1, 3], {
    default: 3,
    description: '1: grey (ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B, as PIL\'s convert("L")); 3: RGB. Alpha is ignored',
  }),
  resize: Enum(['bilinear', 'nearest'], {
    default: 'bilinear',
    description: 'bilinear (pixel centres aligned, no antialiasing: downscale by large factors beforehand) or nearest',
  }),
  ...ownDataOptions,
};
export type ImageFolderOptions = OptionsOf<typeof imageFolderOptions>;

const WHERE = 'data (image-folder)';
const IMAGE = /\.(png|jpe?g)$/i;
const LAYOUT = 'put the images in one folder per class: ROOT/<class>/*.png|jpg|jpeg';

/** Decode a PNG or JPEG (by its bytes, not its name) to RGBA; the error names the file. */
export function decodeImage(buf: Buffer, file: string): { width: number; height: number; data: Uint8Array } {
  if (buf.length === 0) throw new UserError('not a readable image: the file is empty', file);
  const isPng = buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47;
  const isJpeg = buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  try {
    if (isPng) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (isJpeg) return jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
  } catch (e) {
    throw new UserError(`not a readable ${isPng ? 'PNG' : 'JPEG'}: ${String((e as Caught)?.message ?? e).split('\n')[0]}`, file);
  }
  throw new UserError(
    `not a PNG or JPEG image (it starts with bytes ${[...buf.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
    file,
  );
}

/**
 * RGBA pixels (w×h) to size×size×channels values in [0, 1]: grey by ITU-R 601 luma (a pixel
 * with R = G = B keeps its value exactly), then bilinear (pixel centres aligned; the same
 * size gives the pixels unchanged) or nearest-neighbour resampling.
 */
export function resizeImage(
  rgba: Uint8Array,
  w: number,
  h: number,
  size: number,
  channels: 1 | 3,
  mode: 'bilinear' | 'nearest',
  out: Float32Array,
  offset: number,
): void {
  const src = new Float32Array(w * h * channels);
  for (let p = 0; p < w * h; p++) {
    const r = rgba[p * 4];
    const g = rgba[p * 4 + 1];
    const b = rgba[p * 4 + 2];
    if (channels === 3) {
      src[p * 3] = r;
      src[p * 3 + 1] = g;
      src[p * 3 + 2] = b;
    } else src[p] = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
  }
  const sy = h / size;
  const sx = w / size;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      for (let c = 0; c < channels; c++) {
        let v: number;
        if (mode === 'nearest') {
          const yy = Math.min(h - 1, Math.floor((i + 0.5) * sy));
          const xx = Math.min(w - 1, Math.floor((j + 0.5) * sx));
          v = src[(yy * w + xx) * channels + c];
        } else {
          const fy0 = Math.min(h - 1, Math.max(0, (i + 0.5) * sy - 0.5));
          const fx0 = Math.min(w - 1, Math.max(0, (j + 0.5) * sx - 0.5));
          const yA = Math.floor(fy0);
          const xA = Math.floor(fx0);
          const yB = Math.min(h - 1, yA + 1);
          const xB = Math.min(w - 1, xA + 1);
          const fy = fy0 - yA;
          const fx = fx0 - xA;
          const p = (yy: number, xx: number) => src[(yy * w + xx) * channels + c];
          v = (1 - fy) * ((1 - fx) * p(yA, xA) + fx * p(yA, xB)) + fy * ((1 - fx) * p(yB, xA) + fx * p(yB, xB));
        }
        out[offset + (i * size + j) * channels + c] = Math.min(1, Math.max(0, v / 255));
      }
    }
  }
}

/** The class folders of a root (sorted by name, hidden ones skipped) and their images (sorted). */
export function listClasses(root: string, what: string): { name: string; dir: string; files: string[] }[] {
  let entries: fs.Dirent[];
  try {
    if (!fs.statSync(root).isDirectory())
      throw new UserError(`${what} is a file; give the directory that holds one subfolder per class`, root);
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (e) {
    if (e instanceof UserError) throw e;
    const err = e as Caught;
    if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR') throw new UserError(`${what} not found; ${LAYOUT}`, root);
    throw new UserError(`cannot read ${what}: ${err?.message ?? e}`, root);
  }
  const isDir = (e: fs.Dirent) =>
    e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(root, e.name), { throwIfNoEntry: false })?.isDirectory());
  const classes = entries
    .filter((e) => !e.name.startsWith('.') && isDir(e))
    .map((e) => e.name)
    .sort();
  if (!classes.length) {
    const images = entries.filter((e) => IMAGE.test(e.name)).length;
    throw new UserError(`no class subfolders${images ? ` (${images} images lie in the folder itself)` : ''}; ${LAYOUT}`, root);
  }
  return classes.map((name) => {
    const dir = path.join(root, name);
    const all = fs.readdirSync(dir).filter((f) => !f.startsWith('.'));
    const files = all.filter((f) => IMAGE.test(f) && fs.statSync(path.join(dir, f)).isFile()).sort();
    if (!files.length) {
      throw new UserError(
        `empty class folder: no .png, .jpg or .jpeg images${all.length ? ` (it holds ${all.length} other entr${all.length === 1 ? 'y' : 'ies'}, e.g. ${all[0]})` : ''}; ${LAYOUT}`,
        dir,
      );
    }
    return { name, dir, files };
  });
}

/**
 * Your own images, one folder per class: classes in sorted folder-name order (class i is the
 * i-th name; the names are the data set's labelValues), each image resized to size×size with
 * 1 or 3 channels, values ÷255 in [0, 1].
 */
export function loadImageFolder(o: ImageFolderOptions, ctx: PluginContext): OwnDataSet {
  const hash = crypto.createHash('sha256');
  const channels = o.channels as 1 | 3;
  const dim = o.size * o.size * channels;
  const read = (root: string, what: string, known?: string[]): RawPart => {
    const classes = listClasses(root, what);
    if (known) {
      const stray = classes.find((c) => !known.includes(c.name));
      if (stray) throw new UserError(`class folder '${stray.name}' is not among the training classes (${known.join(', ')})`, stray.dir);
    }
    const n = classes.reduce((s, c) => s + c.files.length, 0);
    const x = new Float32Array(n * dim);
    const labels: string[] = [];
    for (const c of classes) {
      for (const f of c.files) {
        const file = path.join(c.dir, f);
        const buf = readDataFile(file, 'image');
        hash.update(`${c.name}/${f}\0`);
        hash.update(buf);
        const img = decodeImage(buf, file);
        resizeImage(img.data, img.width, img.height, o.size, channels, o.resize, x, labels.length * dim);
        labels.push(c.name);
      }
    }
    return { x, labels, n };
  };
  const root = path.resolve(ctx.baseDir, o.root);
  const train = read(root, 'image folder');
  const testRoot = o.test_root ? path.resolve(ctx.baseDir, o.test_root) : null;
  const test = testRoot ? read(testRoot, 'test image folder', [...new Set(train.labels as string[])]) : null;
  return finishOwnDataSet({
    name: 'image-folder',
    where: WHERE,
    shape: [o.size, o.size, channels],
    dim,
    train,
    test,
    testFraction: o.test_fraction,
    noun: 'images',
    sha256: hash.digest('hex'),
    source: `${root}${testRoot ? ` + ${testRoot}` : ` (test: ${o.test_fraction} of the images)`}; ${o.resize} to ${o.size}×${o.size}×${channels}, ÷255`,
    minmax: false,
    opts: o,
    ctx,
  });
}

export const imageFolderDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'image-folder',
  description: 'Your own images: root/<class>/*.png|jpg|jpeg, classes in sorted folder-name order, resized to size×size, grey or RGB, ÷255',
  options: imageFolderOptions,
  create: (o, ctx): OwnDataSet => loadImageFolder(o, ctx),
});
