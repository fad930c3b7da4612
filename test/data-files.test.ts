import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { writeIdx } from '../src/data/idx';
import type { HyperspectralDataSet } from '../src/data/hyperspectral';
import { tmpDir, loadDataSet, dataSetError } from './helpers';
import { describeClasses } from '../src/run/train';

/**
 * Every broken data file is generated here and gives one expected line: FILE: message.
 * Datasets are created in-process through the registry (no training).
 */

const load = (dir: string, options: Record<string, unknown>) => loadDataSet<HyperspectralDataSet>(dir, options);
const error = dataSetError;

/** IDX files: images n×rows×cols (a constant grey) and labels. */
function idx(dir: string, name: string, dims: number[], labels?: number[]): void {
  const n = dims.reduce((a, b) => a * b, 1);
  writeIdx(path.join(dir, `${name}-images`), dims, new Uint8Array(n).fill(128));
  if (labels) writeIdx(path.join(dir, `${name}-labels`), [labels.length], Uint8Array.from(labels));
}
const IDX = {
  kind: 'idx',
  train_images: 'train-images',
  train_labels: 'train-labels',
  test_images: 'test-images',
  test_labels: 'test-labels',
};

test('hyperspectral: a directory as the path, an empty or NaN cell in the first row, 0x1F, exact large labels', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'spectra.csv'));
  assert.match(
    error(dir, { kind: 'hyperspectral', path: 'spectra.csv', test_fraction: 0.5, header: 'auto' }),
    /^DIR\/spectra\.csv: hyperspectral CSV is a directory; give the file itself/,
  );
  const csv = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  const opts = (p: string) => ({ kind: 'hyperspectral', path: p, test_fraction: 0.5, header: 'auto' });
  csv('empty-cell.csv', '0.1,,0.3,1\n0.2,0.2,0.2,2\n0.3,0.1,0.1,1\n0.5,0.5,0.5,2\n');
  assert.equal(error(dir, opts('empty-cell.csv')), "DIR/empty-cell.csv: line 1, column 2: '' is not a number (an empty cell)");
  csv('nan-cell.csv', '0.1,NaN,0.3,1\n0.2,0.2,0.2,2\n0.3,0.1,0.1,1\n0.5,0.5,0.5,2\n');
  assert.equal(error(dir, opts('nan-cell.csv')), "DIR/nan-cell.csv: line 1, column 2: 'NaN' is not a number");
  csv('hex.csv', 'b1,b2,label\n0.1,0x1F,1\n0.2,0.2,2\n');
  assert.equal(error(dir, opts('hex.csv')), "DIR/hex.csv: line 2, column 2: '0x1F' is not a number");
  // a real header is still recognised, and labels 2^32 and 10^12 are two distinct classes
  csv(
    'big.csv',
    'b1,b2,label\n' + Array.from({ length: 8 }, (_, i) => `${i / 10},${1 - i / 10},${i % 2 ? 4294967296 : 1e12}`).join('\n') + '\n',
  );
  const data: HyperspectralDataSet = load(dir, opts('big.csv'));
  assert.deepEqual(data.labelValues, [4294967296, 1e12]);
  assert.equal(data.classes, 2);
  assert.equal(data.train.n + data.test.n, 8);
});

test('hyperspectral: decimal commas, values beyond float32, escapes in echoed cells; a test class never seen in training is a warning', () => {
  const dir = tmpDir();
  const csv = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  const opts = (p: string) => ({ kind: 'hyperspectral', path: p, test_fraction: 0.5, header: 'auto' });
  // ';' separates the cells, so '0,5' is one cell with a decimal comma, not two numbers
  csv('comma.csv', '0,5;0,25;1\n0,1;0,2;2\n');
  assert.equal(
    error(dir, opts('comma.csv')),
    "DIR/comma.csv: line 1, column 1: '0,5' is not a number (a decimal comma: write decimal points, e.g. 0.5, or export the CSV with '.' as the decimal separator)",
  );
  csv('huge.csv', '0.1,1e39,1\n0.2,0.2,2\n0.3,0.3,1\n0.4,0.4,2\n');
  assert.equal(
    error(dir, opts('huge.csv')),
    "DIR/huge.csv: line 1, column 2: 1e39 is beyond float32's range (±3.4e38); rescale the band values",
  );
  // a terminal escape in a cell is shown escaped
  csv('esc.csv', '0.1,0.2,1\n0.1,\x1b[31m,1\n');
  assert.equal(error(dir, opts('esc.csv')), "DIR/esc.csv: line 2, column 2: '\\x1b[31m' is not a number");
  // tabs and semicolons still delimit
  csv('tabs.csv', Array.from({ length: 6 }, (_, i) => `${i / 10}\t${1 - i / 10}\t${i % 2}`).join('\n') + '\n');
  assert.equal(load(dir, opts('tabs.csv')).dim, 2);
  // class 7 only in the test file: loads, and describeClasses warns before training
  csv('train.csv', Array.from({ length: 6 }, (_, i) => `${i / 10},0.5,${i % 2}`).join('\n') + '\n');
  csv('test.csv', '0.1,0.5,0\n0.2,0.5,7\n0.3,0.5,7\n');
  const data = load(dir, { ...opts('train.csv'), test_path: 'test.csv' });
  const lines = describeClasses(data);
  assert.ok(
    lines.some((l) => /^warning: class 2 \(2 rows\) of the test split never occurs in the training split: no model can learn it/.test(l)),
    lines.join('\n'),
  );
  assert.ok(!describeClasses(load(dir, opts('train.csv'))).some((l) => l.startsWith('warning')), 'no warning when every class is seen');
});

test('celeba: empty and one-line attribute files, rows with missing columns, partitions other than 0/1/2', () => {
  const dir = tmpDir();
  const write = (attr: string, part = '000001.jpg 0\n000002.jpg 2\n') => {
    fs.writeFileSync(path.join(dir, 'list_attr_celeba.txt'), attr);
    fs.writeFileSync(path.join(dir, 'list_eval_partition.txt'), part);
  };
  const opts = { kind: 'celeba', path: '.', attributes: ['Male', 'Smiling'], size: 8, crop: 8 };
  write('');
  assert.equal(
    error(dir, opts),
    'DIR/list_attr_celeba.txt: expected a count line, a line of attribute names, then one line per image; the file has 0 non-empty lines',
  );
  write('2\n');
  assert.match(error(dir, opts), /^DIR\/list_attr_celeba\.txt: expected a count line, .*the file has 1 non-empty line$/);
  write('2\nMale Smiling Young\n000001.jpg 1 -1 1\n000002.jpg 1 -1\n');
  assert.equal(error(dir, opts), 'DIR/list_attr_celeba.txt: line 4: 2 attribute values for 000002.jpg, but the header names 3');
  write('2\nMale Smiling\n000001.jpg 1 0\n');
  assert.equal(error(dir, opts), "DIR/list_attr_celeba.txt: line 3: attribute Smiling of 000001.jpg is '0'; values are 1 or -1");
  write('2\nMale Smiling\n000001.jpg 1 -1\n000002.jpg -1 1\n', '000001.jpg 0\n000002.jpg 3\n');
  assert.equal(
    error(dir, opts),
    "DIR/list_eval_partition.txt: line 2: expected 'FILE PARTITION' with partition 0 (train), 1 (validation) or 2 (test), got '000002.jpg 3'",
  );
  fs.rmSync(path.join(dir, 'list_eval_partition.txt'));
  fs.mkdirSync(path.join(dir, 'list_eval_partition.txt'));
  assert.match(error(dir, opts), /^DIR\/list_eval_partition\.txt: CelebA file is a directory/);
});

test('cifar10: an empty test batch, and a bad label named in its own file', () => {
  const dir = tmpDir();
  const record = (label: number) => {
    const b = Buffer.alloc(3073, 100);
    b[0] = label;
    return b;
  };
  for (let i = 1; i <= 5; i++) fs.writeFileSync(path.join(dir, `data_batch_${i}.bin`), Buffer.concat([record(i), record(0)]));
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), Buffer.alloc(0));
  assert.equal(
    error(dir, { kind: 'cifar10', path: '.' }),
    'DIR/test_batch.bin: empty file: a CIFAR-10 binary batch holds 10,000 records of 3,073 bytes',
  );
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), record(3));
  fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), Buffer.concat([record(1), record(12)]));
  assert.equal(
    error(dir, { kind: 'cifar10', path: '.' }),
    'DIR/data_batch_3.bin: label 12 in record 1 (byte 3073) is not a CIFAR-10 class (0-9)',
  );
  fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), record(1));
  assert.equal(load(dir, { kind: 'cifar10', path: '.' }).train.n, 9);
});

test('idx: empty splits, mismatched image shapes, labels that are not class indices, and 300,000 labels', () => {
  const dir = tmpDir();
  idx(dir, 'train', [0, 4, 4], []);
  idx(dir, 'test', [2, 4, 4], [0, 1]);
  assert.match(error(dir, IDX), /^data \(idx\): the training split is empty \(0 examples in DIR\/train-images\); check the data files$/);
  idx(dir, 'train', [4, 4, 4], [0, 1, 0, 1]);
  idx(dir, 'test', [0, 4, 4], []);
  assert.match(error(dir, IDX), /^data \(idx\): the test split is empty/);
  idx(dir, 'test', [2, 16, 1], [0, 1]);
  assert.equal(error(dir, IDX), 'DIR/test-images: test images are 16×1×1 but training images are 4×4×1');
  // labels 200 and 255 among 0..3 would make 256 classes, and with labelled: N the message was about multiples of C
  idx(dir, 'train', [8, 4, 4], [0, 1, 2, 3, 200, 0, 1, 2]);
  idx(dir, 'test', [2, 4, 4], [3, 255]);
  assert.equal(
    error(dir, { ...IDX, labelled: 4 }),
    'DIR/train-labels: label 200 (row 4) is not a class index: labels must be 0..C−1 with every class present, but 4..199 never occur (labels found: 0, 1, 2, 3, 200, 255)',
  );
  // a labels file far past the arguments a spread can take
  const n = 300_000;
  idx(
    dir,
    'train',
    [n, 1, 1],
    Array.from({ length: n }, (_, i) => i % 10),
  );
  idx(
    dir,
    'test',
    [10, 1, 1],
    Array.from({ length: 10 }, (_, i) => i),
  );
  const data = load(dir, IDX);
  assert.equal(data.classes, 10);
  assert.equal(data.train.n, n);
});
