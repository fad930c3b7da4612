import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { ConfigPath, definePlugin, Override, type OptionsOf } from '../registry/define';
import { commonDataOptions, finishDataSet } from './dataset';
import { UserError } from '../errors';
import { readDataFile } from './files';
import { Split } from '../contracts';

const cifar10Options = {
  path: ConfigPath('The cifar-10-batches-bin directory'),
  ...commonDataOptions,
  binarize: Override(commonDataOptions.binarize, { default: 'none' }),
};
export type Cifar10Options = OptionsOf<typeof cifar10Options>;

const TRAIN = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
const TEST = ['test_batch.bin'];
const RECORD = 1 + 3072;
const WHERE_TO_GET =
  'download the "CIFAR-10 binary version" (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and set data.path to the cifar-10-batches-bin directory';

/**
 * CIFAR-10 from its binary distribution: records of one label byte and 3,072 pixel bytes
 * (1,024 red, then green, then blue, row-major 32×32). Stored here as [32, 32, 3] (HWC)
 * in [0, 1].
 */
export function readCifarFiles(files: string[], hash: crypto.Hash): Split {
  const bufs = files.map((f) => {
    const b = readDataFile(f, 'CIFAR-10 batch file', WHERE_TO_GET);
    if (b.length === 0) throw new UserError('empty file: a CIFAR-10 binary batch holds 10,000 records of 3,073 bytes', f);
    if (b.length % RECORD !== 0) throw new UserError(`not a CIFAR-10 binary batch: ${b.length} bytes is not a multiple of ${RECORD}`, f);
    hash.update(b);
    return b;
  });
  const n = bufs.reduce((s, b) => s + b.length / RECORD, 0);
  const x = new Float32Array(n * 3072);
  const y = new Int32Array(n);
  let row = 0;
  bufs.forEach((b, fi) => {
    for (let r = 0; r < b.length / RECORD; r++, row++) {
      const o = r * RECORD;
      const label = b[o];
      if (label > 9) throw new UserError(`label ${label} in record ${r} (byte ${o}) is not a CIFAR-10 class (0-9)`, files[fi]);
      y[row] = label;
      for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) x[row * 3072 + p * 3 + c] = b[o + 1 + c * 1024 + p] / 255;
    }
  });
  return { x, y, n };
}

export const cifar10DatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'cifar10',
  description: 'CIFAR-10, 32×32×3, 50k/10k, from the binary distribution in a local directory (not shipped)',
  options: cifar10Options,
  create(o, ctx) {
    const dir = path.resolve(ctx.baseDir, o.path);
    if (!fs.existsSync(dir)) throw new UserError(`CIFAR-10 directory not found; ${WHERE_TO_GET}`, dir);
    const hash = crypto.createHash('sha256');
    const train = readCifarFiles(
      TRAIN.map((f) => path.join(dir, f)),
      hash,
    );
    const test = readCifarFiles(
      TEST.map((f) => path.join(dir, f)),
      hash,
    );
    return finishDataSet(
      { name: 'cifar10', shape: [32, 32, 3], dim: 3072, classes: 10, train, test, sha256: hash.digest('hex'), source: dir },
      o,
      ctx.rng,
      'data (cifar10)',
    );
  },
});
