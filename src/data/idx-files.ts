import * as path from 'path';
import * as crypto from 'crypto';
import { ConfigPath, definePlugin, Type, type OptionsOf } from '../registry/define';
import { commonDataOptions, finishDataSet, type CommonDataOptions } from './dataset';
import { readIdxImages } from './idx';
import { checkClassIndices } from './files';
import { UserError } from '../errors';
import { type PluginContext, DataSet } from '../contracts';

const idxFilesOptions = {
  train_images: ConfigPath('IDX file of training images (n × rows × cols bytes)'),
  train_labels: Type.Optional(ConfigPath('IDX file of training labels (optional)')),
  test_images: ConfigPath('IDX file of test images'),
  test_labels: Type.Optional(ConfigPath('IDX file of test labels (optional)')),
  ...commonDataOptions,
};
export type IdxFilesOptions = OptionsOf<typeof idxFilesOptions>;

/** Load a data set from IDX files (MNIST's format); shared by the `mnist` plugin. */
export function loadIdxDataSet(
  name: string,
  files: { train_images: string; train_labels?: string; test_images: string; test_labels?: string },
  opts: CommonDataOptions,
  ctx: PluginContext,
): DataSet {
  const hash = crypto.createHash('sha256');
  const abs = (f?: string) => (f ? path.resolve(ctx.baseDir, f) : undefined);
  const train = readIdxImages(abs(files.train_images)!, abs(files.train_labels), hash);
  const test = readIdxImages(abs(files.test_images)!, abs(files.test_labels), hash);
  if (train.shape.join('×') !== test.shape.join('×')) {
    throw new UserError(`test images are ${test.shape.join('×')} but training images are ${train.shape.join('×')}`, abs(files.test_images));
  }
  // labels are class indices 0..C−1, every class present (not 200 and 255 among 0..9)
  const labelled = [
    ...(train.split.y ? [{ labels: train.split.y, file: abs(files.train_labels)! }] : []),
    ...(test.split.y ? [{ labels: test.split.y, file: abs(files.test_labels)! }] : []),
  ];
  const classes = checkClassIndices(labelled);
  return finishDataSet(
    {
      name,
      shape: train.shape,
      dim: train.dim,
      classes,
      train: train.split,
      test: test.split,
      sha256: hash.digest('hex'),
      source: abs(files.train_images)!,
    },
    opts,
    ctx.rng,
    `data (${name})`,
  );
}

export const idxDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'idx',
  description: 'Images (and labels) from IDX files, the format of the original MNIST distribution',
  options: idxFilesOptions,
  create: (o, ctx) => loadIdxDataSet('idx', o, o, ctx),
});
