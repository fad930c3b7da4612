import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UserError } from '../src/errors';
import { npyBytes, npyHeader, npzBytes } from '../src/data/npy';
import { readIdx } from '../src/data/idx';
import { bundledMnistDir } from '../src/data/mnist';
import type { OwnDataSet } from '../src/data/own';
import { runExperiment } from '../src/experiment';
import { tmpDir, loadDataSet, dataSetError } from './helpers';
import type { RunResult } from '../src/contracts';

/** How a run ended, or THROWN: it was refused before it began. */
type Outcome = Omit<RunResult, 'status'> & { status: RunResult['status'] | 'THROWN' };

/**
 * "Your own data": the npy, csv and image-folder data sets on files generated here; each
 * broken file gives one expected line (FILE: message, the directory shown as DIR).
 */

const load = (dir: string, options: Record<string, unknown>, seed = 0) => loadDataSet<OwnDataSet>(dir, options, seed);
const error = dataSetError;

const write = (dir: string, name: string, bytes: Buffer | string) => {
  fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
  fs.writeFileSync(path.join(dir, name), bytes);
};

/** An .npy whose header is written by hand (dtypes and versions npyBytes does not write). */
function rawNpy(dict: string, body: Buffer, version = 1): Buffer {
  return Buffer.concat([npyHeader(dict, version), body]);
}

test('npy: images and labels from .npy (versions 1-3), vectors from .npz (stored and deflated, x/y and x_train/x_test), unlabelled arrays', () => {
  const dir = tmpDir();
  // 20 grey 3×2 images, bytes i*12+j; labels 9, 3, 5 (remapped to 2, 0, 1)
  const n = 20;
  const pixels = Uint8Array.from({ length: n * 6 }, (_, i) => (i * 7) % 256);
  const labels = Array.from({ length: n }, (_, i) => [9, 3, 5][i % 3]);
  write(dir, 'x.npy', npyBytes('|u1', [n, 3, 2], pixels));
  write(dir, 'y.npy', npyBytes('<i8', [n], labels));
  const d = load(dir, { kind: 'npy', train: 'x.npy', train_labels: 'y.npy', test_fraction: 0.25 });
  assert.deepEqual(d.shape, [3, 2, 1]);
  assert.equal(d.dim, 6);
  assert.equal(d.classes, 3);
  assert.deepEqual(d.labelValues, [3, 5, 9]);
  assert.equal(d.test.n, 5);
  assert.equal(d.train.n, 15);
  // each example keeps its label: example k has first byte (k*6*7)%256 and label labels[k]
  for (const s of [d.train, d.test])
    for (let i = 0; i < s.n; i++) {
      const k = [...Array(n).keys()].find(
        (k) => Math.fround(pixels[k * 6] / 255) === s.x[i * 6] && Math.fround(pixels[k * 6 + 1] / 255) === s.x[i * 6 + 1],
      )!;
      assert.ok(k !== undefined);
      assert.equal(d.labelValues[s.y![i]], labels[k], `row ${i}`);
    }
  assert.match(d.sha256, /^[0-9a-f]{64}$/);
  // the same split with the same seed, another with another seed
  assert.deepEqual(load(dir, { kind: 'npy', train: 'x.npy', train_labels: 'y.npy', test_fraction: 0.25 }).test.y, d.test.y);
  assert.notDeepEqual(load(dir, { kind: 'npy', train: 'x.npy', train_labels: 'y.npy', test_fraction: 0.25 }, 5).test.x, d.test.x);
  // format versions 2 and 3 read the same array
  for (const v of [2, 3] as const) {
    write(dir, `v${v}.npy`, npyBytes('|u1', [n, 3, 2], pixels, { version: v }));
    assert.deepEqual(load(dir, { kind: 'npy', train: `v${v}.npy`, train_labels: 'y.npy', test_fraction: 0.25 }).train.x, d.train.x);
  }
  // vectors in an .npz (deflated) with y, and a test .npz (stored): float values as stored
  const vec = (k: number) => Float32Array.from({ length: k * 4 }, (_, i) => (i % 11) / 10);
  write(
    dir,
    'train.npz',
    npzBytes({
      x: npyBytes('<f4', [12, 4], vec(12)),
      y: npyBytes(
        '<i4',
        [12],
        Array.from({ length: 12 }, (_, i) => i % 2),
      ),
    }),
  );
  write(dir, 'test.npz', npzBytes({ x: npyBytes('<f8', [6, 4], vec(6)), y: npyBytes('|u1', [6], [1, 0, 1, 0, 1, 1]) }, 'stored'));
  const z = load(dir, { kind: 'npy', train: 'train.npz', test: 'test.npz' });
  assert.deepEqual([z.shape, z.dim, z.classes, z.train.n, z.test.n], [[1, 4, 1], 4, 2, 12, 6]);
  assert.deepEqual(z.train.x, vec(12));
  assert.deepEqual(Array.from(z.test.y!), [1, 0, 1, 0, 1, 1]);
  // Keras' layout: one archive with x_train, y_train, x_test, y_test, named as train and test
  write(
    dir,
    'keras.npz',
    npzBytes({
      x_train: npyBytes('|u1', [8, 2, 2], new Uint8Array(32).fill(255)),
      y_train: npyBytes('<i8', [8], [0, 1, 2, 3, 0, 1, 2, 3]),
      x_test: npyBytes('|u1', [4, 2, 2], new Uint8Array(16)),
      y_test: npyBytes('<i8', [4], [3, 2, 1, 0]),
    }),
  );
  const k = load(dir, { kind: 'npy', train: 'keras.npz', test: 'keras.npz' });
  assert.deepEqual([k.train.n, k.test.n, k.classes, k.train.x[0], k.test.x[0]], [8, 4, 4, 1, 0]);
  // N×H×W×3 floats without labels: classes 0, no y; the label-reading options refuse clearly
  write(
    dir,
    'rgb.npy',
    npyBytes(
      '<f8',
      [10, 2, 2, 3],
      Float64Array.from({ length: 120 }, (_, i) => i / 119),
    ),
  );
  const u = load(dir, { kind: 'npy', train: 'rgb.npy', test_fraction: 0.3 });
  assert.deepEqual([u.shape, u.classes, u.train.y, u.test.y, u.labelValues, u.train.n, u.test.n], [[2, 2, 3], 0, null, null, [], 7, 3]);
  assert.equal(error(dir, { kind: 'npy', train: 'rgb.npy', labelled: 2 }), 'data (npy): labelled needs labels, but this data set has none');
  // scale minmax: every feature spans [0, 1] over the training split
  write(
    dir,
    'wide.npy',
    npyBytes(
      '<f4',
      [10, 2],
      Float32Array.from({ length: 20 }, (_, i) => (i % 2 ? 1000 : -5) * (i + 1)),
    ),
  );
  const mm = load(dir, { kind: 'npy', train: 'wide.npy', scale: 'minmax', test_fraction: 0.2 });
  assert.ok(mm.train.x.every((v) => v >= 0 && v <= 1) && mm.train.x.includes(0) && mm.train.x.includes(1));
  assert.deepEqual(mm.normalisation!.min.length, 2);
});

test('npy: every broken file gives one line naming the file (and the entry, array or label)', () => {
  const dir = tmpDir();
  const x = npyBytes('<f4', [4, 2], [0, 0.5, 1, 0.25, 0.5, 0.5, 0, 1]);
  write(dir, 'ok.npy', x);
  const e = (file: string, bytes: Buffer | string, extra: Record<string, unknown> = {}) => {
    write(dir, file, bytes);
    return error(dir, { kind: 'npy', train: file, test: 'ok.npy', ...extra });
  };
  assert.equal(
    error(dir, { kind: 'npy', train: 'missing.npy' }),
    'DIR/missing.npy: NumPy file not found; write it with numpy.save (.npy) or numpy.savez (.npz)',
  );
  assert.equal(e('text.npy', '1,2,3\n'), 'DIR/text.npy: not an .npy file (no \\x93NUMPY magic); write arrays with numpy.save(f, arr)');
  const v4 = rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }", x.subarray(64));
  v4[6] = 4;
  assert.equal(e('v4.npy', v4), 'DIR/v4.npy: NPY format version 4.0 is not supported (1.0, 2.0 and 3.0 are)');
  assert.equal(
    e('fortran.npy', npyBytes('<f4', [4, 2], new Float32Array(8), { fortran: true })),
    'DIR/fortran.npy: the array is in Fortran (column-major) order; save a C-order copy: np.save(f, np.ascontiguousarray(arr))',
  );
  assert.equal(
    e('be.npy', rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (4, 2), }", Buffer.alloc(32))),
    "DIR/be.npy: dtype >f4 is big-endian; convert it, e.g. arr.astype('<f4')",
  );
  assert.equal(
    e('str.npy', rawNpy("{'descr': '<U3', 'fortran_order': False, 'shape': (4, 2), }", Buffer.alloc(96))),
    "DIR/str.npy: dtype <U3 is not supported (supported: <f4, <f8, |u1, |i1, |b1, <u2, <i2, <i4, <u4, <i8); convert it, e.g. arr.astype('float32')",
  );
  assert.equal(
    e('obj.npy', rawNpy("{'descr': '|O', 'fortran_order': False, 'shape': (4, 2), }", Buffer.alloc(64))),
    'DIR/obj.npy: an object array (pickled Python objects) is not supported; save a numeric array',
  );
  assert.equal(
    e('cut.npy', x.subarray(0, x.length - 3)),
    'DIR/cut.npy: the header says shape (4, 2) of <f4, 32 bytes of data, but the file holds 29 (truncated)',
  );
  assert.equal(
    e('v3.npy', rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }", Buffer.alloc(40), 3)),
    'DIR/v3.npy: the header says shape (4, 2) of <f4, 32 bytes of data, but the file holds 40',
  );
  assert.equal(
    e('flat.npy', npyBytes('<f4', [8], new Float32Array(8))),
    'DIR/flat.npy: the examples are an array of shape (8); need N×D vectors, N×H×W grey or N×H×W×C images',
  );
  // values outside [0, 1], NaN: the example and the value's index
  assert.equal(
    e(
      'big.npy',
      npyBytes(
        '<f4',
        [4, 2, 3],
        Float32Array.from({ length: 24 }, (_, i) => (i === 17 ? 1.5 : 0.5)),
      ),
    ),
    'DIR/big.npy: example 2, value [1, 2]: 1.5 is outside [0, 1] after scale: auto (none); use scale: max (÷255 for 8-bit values) or scale: minmax',
  );
  assert.equal(
    e('nan.npy', npyBytes('<f8', [4, 2], [0, 0, 0, NaN, 0, 0, 0, 0])),
    'DIR/nan.npy: example 1, value [1]: NaN is not a finite number; remove or impute it',
  );
  assert.equal(
    e('int.npy', npyBytes('<i8', [4, 2], [0, 1, 300, 2, 0, 0, 0, 0]), { scale: 'max' }),
    'DIR/int.npy: example 1, value [0]: 300 is outside [0, 1] after scale: max (÷255); use scale: minmax (per feature, by the training split)',
  );
  // labels
  write(dir, 'ok-y.npy', npyBytes('<i4', [4], [0, 1, 0, 1]));
  assert.equal(
    e('short-y.npy', npyBytes('<i4', [3], [0, 1, 0]), { train: 'ok.npy', train_labels: 'short-y.npy', test_labels: 'ok-y.npy' }),
    'DIR/short-y.npy: labels of shape (3) do not match 4 examples in ok.npy; need N integers (shape (4,))',
  );
  assert.equal(
    e('half-y.npy', npyBytes('<f8', [4], [0, 1, 0.5, 1]), { train: 'ok.npy', train_labels: 'half-y.npy', test_labels: 'ok-y.npy' }),
    'DIR/half-y.npy: label 2 is 0.5, not an integer class label',
  );
  assert.equal(
    error(dir, { kind: 'npy', train: 'ok.npy', train_labels: 'ok-y.npy', test: 'ok.npy' }),
    'DIR/ok.npy: the training data has labels (ok-y.npy) but the test data has none; give test_labels (or y in the test .npz)',
  );
  // .npz: a missing array, an unsupported method, a damaged entry, a truncated archive
  const npz = npzBytes({ x, y: npyBytes('<i4', [4], [0, 1, 0, 1]) }, 'stored');
  assert.equal(e('keys.npz', npz, { x_key: 'images' }), "DIR/keys.npz: no array 'images' in the archive (it holds: x, y); set data.x_key");
  const bz = Buffer.from(npz);
  bz.writeUInt16LE(12, 8); // local header
  bz.writeUInt16LE(12, bz.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 10); // central directory
  assert.equal(
    e('bzip2.npz', bz),
    "DIR/bzip2.npz: entry 'x.npy': compression method 12 (bzip2) is not supported: only stored and deflate (numpy.savez, numpy.savez_compressed)",
  );
  const bad = Buffer.from(npz);
  bad[30 + 'x.npy'.length + 70] ^= 0xff; // a data byte of x.npy
  assert.equal(e('crc.npz', bad), "DIR/crc.npz: entry 'x.npy': CRC mismatch; the archive is damaged");
  assert.equal(
    e('cut.npz', npz.subarray(0, npz.length - 30)),
    'DIR/cut.npz: not a readable .npz: no zip end-of-central-directory record (the file is truncated, or not a zip archive)',
  );
  const inner = npzBytes({ x: npyBytes('<f4', [4, 2], new Float32Array(8), { fortran: true }) });
  assert.equal(
    e('inner.npz', inner),
    "DIR/inner.npz: array 'x' (x.npy): the array is in Fortran (column-major) order; save a C-order copy: np.save(f, np.ascontiguousarray(arr))",
  );
});

test('csv: label column by name, index and none; class names; delimiters, decimal commas, headers; scale none/max/minmax; shape', () => {
  const dir = tmpDir();
  const rows = Array.from({ length: 10 }, (_, i) => [i / 10, 1 - i / 10, (i * 3) % 7, ['setosa', 'virginica'][i % 2]]);
  write(dir, 'iris.csv', 'a,b,c,species\n' + rows.map((r) => r.join(',')).join('\n') + '\n');
  const named = load(dir, { kind: 'csv', path: 'iris.csv', label_column: 'species', test_fraction: 0.3 });
  assert.deepEqual(
    [named.dim, named.shape, named.classes, named.labelValues, named.train.n, named.test.n],
    [3, [1, 3, 1], 2, ['setosa', 'virginica'], 7, 3],
  );
  // the default label column is the last; class names without a header are not taken for one
  write(dir, 'noheader.csv', rows.map((r) => r.join(',')).join('\n') + '\n');
  const last = load(dir, { kind: 'csv', path: 'noheader.csv' });
  assert.equal(last.train.n + last.test.n, 10);
  assert.deepEqual(last.labelValues, ['setosa', 'virginica']);
  // label first (index 0), integers, ';' and decimal commas, scale none keeps the values
  write(dir, 'first.csv', 'label;x1;x2\n' + Array.from({ length: 6 }, (_, i) => `${10 * (i % 3)};0,${i};0,5`).join('\n') + '\n');
  const first = load(dir, { kind: 'csv', path: 'first.csv', label_column: 0, decimal: ',', scale: 'none', test_fraction: 0.5 });
  assert.deepEqual([first.labelValues, first.dim], [[0, 10, 20], 2]);
  assert.deepEqual(
    Array.from(first.train.x).concat(Array.from(first.test.x)).sort(),
    [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5].map(Math.fround),
  );
  // unlabelled, tabs, no header, pixel values ÷255, an image shape
  write(dir, 'pixels.tsv', Array.from({ length: 5 }, (_, i) => [0, 51, 255, 102 * (i % 2)].join('\t')).join('\n') + '\n');
  const px = load(dir, {
    kind: 'csv',
    path: 'pixels.tsv',
    label_column: 'none',
    delimiter: 'tab',
    header: false,
    scale: 'max',
    shape: [2, 2],
    test_fraction: 0.2,
  });
  assert.deepEqual([px.classes, px.train.y, px.shape, px.dim], [0, null, [2, 2, 1], 4]);
  assert.deepEqual(Array.from(px.train.x.subarray(0, 3)), [0, 0.2, 1].map(Math.fround));
  // a test file; minmax by the training split, the test split clipped
  write(dir, 'train.csv', '1,100,0\n3,300,1\n2,200,0\n');
  write(dir, 'test.csv', '4,0,1\n');
  const mm = load(dir, { kind: 'csv', path: 'train.csv', test_path: 'test.csv' });
  assert.deepEqual(Array.from(mm.test.x), [1, 0]);
  assert.deepEqual(mm.normalisation, { min: [1, 100], max: [3, 300] });
});

test('csv: every broken file gives one line', () => {
  const dir = tmpDir();
  const e = (name: string, text: string, extra: Record<string, unknown> = {}) => {
    write(dir, name, text);
    return error(dir, { kind: 'csv', path: name, ...extra });
  };
  assert.equal(
    e('typo.csv', 'a,b,label\n0,1,2\n', { label_column: 'lable' }),
    "DIR/typo.csv: line 1: no column named 'lable' in the header; did you mean 'label'? (allowed: a, b, label)",
  );
  assert.equal(
    e('range.csv', '0,1,2\n', { label_column: 3 }),
    'DIR/range.csv: label_column 3 is out of range: line 1 has 3 columns (label_column counts from 0, or from -1 at the end: 0..2 or -3..-1)',
  );
  assert.equal(
    e('nohead.csv', '0,1,2\n', { label_column: 'label' }),
    "DIR/nohead.csv: label_column 'label' names a column, but the file has no header line (set header: true, or give the column's index from 0)",
  );
  assert.equal(
    e('comma.csv', '0,5;0,25;1\n0,1;0,2;2\n'),
    "DIR/comma.csv: line 1, column 1: '0,5' is not a number (a decimal comma: set decimal: ',' (with ';' or tabs between cells), or write decimal points, e.g. 0.5)",
  );
  assert.equal(
    e('point.csv', '0.5;0.25;1\n', { decimal: ',' }),
    "DIR/point.csv: line 1, column 1: '0.5' is not a number (a decimal point, but decimal is ','; set decimal: '.')",
  );
  assert.equal(
    e('commas.csv', '0,1,2\n', { decimal: ',', delimiter: ',' }),
    "DIR/commas.csv: line 1: with decimal: ',' the cells must be separated by ';' or tabs (set delimiter)",
  );
  assert.equal(e('ragged.csv', '0,1,a\n0,1\n'), 'DIR/ragged.csv: line 2: 2 columns, but the first row has 3 (features + label)');
  assert.equal(
    e('none.csv', '0.5,1.5\n0.2,0.1\n', { scale: 'none', label_column: 'none' }),
    'DIR/none.csv: line 1, column 2: 1.5 is outside [0, 1] after scale: none; use scale: max (÷255 for 8-bit values) or scale: minmax',
  );
  assert.equal(e('label.csv', 'x,y\n0.5,a\n0.2,\n'), 'DIR/label.csv: line 3, column 2: the label is empty');
  assert.equal(
    e('float.csv', '0.5,1\n0.2,1.5\n'),
    'DIR/float.csv: line 2: the label (last column) must be an integer or a class name, got 1.5',
  );
  assert.equal(
    e('empty.csv', 'a,b\n'),
    'DIR/empty.csv: no data rows; write one example per row: the feature values and a label column (e.g. pandas: df.to_csv(f, index=False))',
  );
  assert.equal(
    e('shape.csv', '0,1,2\n1,1,1\n', { shape: [2, 2] }),
    'DIR/shape.csv: data.shape 2×2 = 4 values, but each row has 2 features',
  );
});

/** A PNG of w×h RGBA pixels from a function of (x, y). */
function png(w: number, h: number, f: (x: number, y: number) => [number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [r, g, b] = f(x, y);
      p.data.set([r, g, b, 255], (y * w + x) * 4);
    }
  return PNG.sync.write(p);
}

test('image-folder: classes in sorted folder order, PNG and JPEG, grey and RGB, bilinear and nearest resizing, test_root or test_fraction', () => {
  const dir = tmpDir();
  // classes 'cat', 'dog', 'zebra' (written out of order); 4×4 images, grey levels by class
  const grey = { cat: 40, dog: 120, zebra: 200 } as Record<string, number>;
  for (const c of ['zebra', 'cat', 'dog'])
    for (let i = 0; i < 4; i++)
      write(
        dir,
        `train/${c}/${i}.png`,
        png(4, 4, (x) => [grey[c] + x, grey[c] + x, grey[c] + x]),
      );
  write(dir, 'train/cat/notes.txt', 'ignored');
  write(dir, 'train/dog/photo.JPG', Buffer.from(jpeg.encode({ width: 4, height: 4, data: Buffer.alloc(64, 120) }, 100).data));
  const d = load(dir, { kind: 'image-folder', root: 'train', size: 4, channels: 1, test_fraction: 0.25 });
  assert.deepEqual([d.shape, d.classes, d.labelValues, d.train.n + d.test.n, d.test.n], [[4, 4, 1], 3, ['cat', 'dog', 'zebra'], 13, 3]);
  // at the same size the grey values are kept exactly (÷255), and each image keeps its class
  for (const s of [d.train, d.test])
    for (let i = 0; i < s.n; i++) {
      const c = d.labelValues[s.y![i]] as string;
      assert.ok(
        Math.abs(s.x[i * 16 + 1] * 255 - (grey[c] + 1)) < 1e-3 || (c === 'dog' && Math.abs(s.x[i * 16] * 255 - 120) < 2),
        `${c}: ${s.x[i * 16 + 1] * 255}`,
      );
    }
  // 4×4 → 2×2: bilinear averages neighbouring columns (x 0.5 → 40.5), nearest picks one (x 1 → 41)
  const half = (resize: string) =>
    load(dir, { kind: 'image-folder', root: 'train/../train', size: 2, channels: 1, resize, test_root: 'train' });
  const cat0 = (ds: OwnDataSet) => Math.round(ds.train.x[0] * 255 * 100) / 100;
  assert.equal(cat0(half('bilinear')), 40.5);
  assert.equal(cat0(half('nearest')), 41);
  // RGB, and a test root whose classes are a subset
  write(
    dir,
    'test/dog/a.png',
    png(8, 8, () => [255, 0, 51]),
  );
  const rgb = load(dir, { kind: 'image-folder', root: 'train', test_root: 'test', size: 2, channels: 3 });
  assert.deepEqual(
    [rgb.shape, rgb.test.n, Array.from(rgb.test.y!), Array.from(rgb.test.x.subarray(0, 3))],
    [[2, 2, 3], 1, [1], [1, 0, 0.2].map(Math.fround)],
  );
  assert.equal(rgb.train.n, 13);
});

test('image-folder: an unreadable image, an empty class folder, no class subfolders, a stray test class: one line each', () => {
  const dir = tmpDir();
  write(
    dir,
    'flat/a.png',
    png(2, 2, () => [0, 0, 0]),
  );
  assert.equal(
    error(dir, { kind: 'image-folder', root: 'flat' }),
    'DIR/flat: no class subfolders (1 images lie in the folder itself); put the images in one folder per class: ROOT/<class>/*.png|jpg|jpeg',
  );
  assert.equal(
    error(dir, { kind: 'image-folder', root: 'nowhere' }),
    'DIR/nowhere: image folder not found; put the images in one folder per class: ROOT/<class>/*.png|jpg|jpeg',
  );
  write(
    dir,
    'data/a/1.png',
    png(2, 2, () => [0, 0, 0]),
  );
  write(dir, 'data/b/readme.md', 'x');
  assert.equal(
    error(dir, { kind: 'image-folder', root: 'data' }),
    'DIR/data/b: empty class folder: no .png, .jpg or .jpeg images (it holds 1 other entry, e.g. readme.md); put the images in one folder per class: ROOT/<class>/*.png|jpg|jpeg',
  );
  write(dir, 'data/b/2.png', 'not an image at all');
  assert.equal(
    error(dir, { kind: 'image-folder', root: 'data' }),
    'DIR/data/b/2.png: not a PNG or JPEG image (it starts with bytes 6e 6f 74 20)',
  );
  write(dir, 'data/b/2.png', png(2, 2, () => [9, 9, 9]).subarray(0, 40));
  assert.match(error(dir, { kind: 'image-folder', root: 'data' }), /^DIR\/data\/b\/2\.png: not a readable PNG: /);
  write(dir, 'data/b/2.png', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]));
  assert.match(error(dir, { kind: 'image-folder', root: 'data' }), /^DIR\/data\/b\/2\.png: not a readable JPEG: /);
  write(
    dir,
    'data/b/2.png',
    png(2, 2, () => [9, 9, 9]),
  );
  write(
    dir,
    'test/c/1.png',
    png(2, 2, () => [0, 0, 0]),
  );
  assert.equal(
    error(dir, { kind: 'image-folder', root: 'data', test_root: 'test' }),
    "DIR/test/c: class folder 'c' is not among the training classes (a, b)",
  );
});

test('MNIST saved as .npy trains to the same numbers as the bundled loader', async () => {
  const dir = tmpDir();
  const mnist = bundledMnistDir();
  // the bundled loader: train = the 60,000 train-images in file order, test = the 10,000 t10k-images
  for (const [name, file] of [
    ['x_train', 'train-images-idx3-ubyte'],
    ['y_train', 'train-labels-idx1-ubyte'],
    ['x_test', 't10k-images-idx3-ubyte'],
    ['y_test', 't10k-labels-idx1-ubyte'],
  ]) {
    const a = readIdx(path.join(mnist, file));
    write(dir, `${name}.npy`, name.startsWith('x') ? npyBytes('|u1', a.dims, a.data) : npyBytes('<i8', a.dims, a.data));
  }
  const body = (data: string) => `experiment: npy-mnist
seed: 3
data:
${data}
  validation: 1000
  max_train: 300
model:
  kind: vae
  latent: 4
  encoder: { kind: mlp, hidden: [16] }
  decoder: { kind: mlp, hidden: [16] }
train:
  epochs: 1
  batch_size: 100
eval:
  - kind: elbo
published: []
`;
  // mnist's defaults: binarize dynamic, validation 10,000 (set the same for both here)
  write(dir, 'bundled.yaml', body('  kind: mnist'));
  write(
    dir,
    'npy.yaml',
    body(
      '  kind: npy\n  train: x_train.npy\n  train_labels: y_train.npy\n  test: x_test.npy\n  test_labels: y_test.npy\n  binarize: dynamic',
    ),
  );
  const run = (cfg: string) =>
    runExperiment({ config: path.join(dir, cfg), runsDir: path.join(dir, 'runs'), overrides: [], progress: false });
  const a = await run('bundled.yaml');
  const b = await run('npy.yaml');
  assert.equal(a.status, 'FINISHED', a.error);
  assert.equal(b.status, 'FINISHED', b.error);
  const rec = (r: typeof a) => JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8')).data;
  const [ra, rb] = [rec(a), rec(b)];
  assert.deepEqual([rb.train, rb.val, rb.test], [ra.train, ra.val, ra.test]);
  assert.deepEqual([rb.train, rb.val, rb.test], [300, 1000, 10000]);
  assert.notEqual(rb.sha256, ra.sha256, 'the sha256 is over the files read');
  assert.ok(Number.isFinite(a.metrics['test/elbo']));
  assert.equal(b.metrics['test/elbo'], a.metrics['test/elbo']);
  assert.equal(b.metrics['val/elbo'], a.metrics['val/elbo']);
});

test('unlabelled own data: a VAE trains, the models and evaluators that need labels refuse with one clear line', async () => {
  const dir = tmpDir();
  write(
    dir,
    'x.npy',
    npyBytes(
      '<f4',
      [40, 6],
      Float32Array.from({ length: 240 }, (_, i) => (i % 13) / 12),
    ),
  );
  const cfg = (model: string, evals = '[{kind: elbo}]') => {
    const block =
      model === 'classifier'
        ? '{kind: classifier}'
        : `{kind: ${model}, latent: 2, encoder: {kind: mlp, hidden: [8]}, decoder: {kind: mlp, hidden: [8]}}`;
    write(
      dir,
      `${model}.yaml`,
      `experiment: unlabelled\nseed: 1\ndata: {kind: npy, train: x.npy, test_fraction: 0.25}\nmodel: ${block}\ntrain: {epochs: 1, batch_size: 10}\neval: ${evals}\npublished: []\n`,
    );
    return path.join(dir, `${model}.yaml`);
  };
  const run = async (file: string) => {
    try {
      return await runExperiment({ config: file, runsDir: path.join(dir, 'runs'), overrides: [], progress: false });
    } catch (e) {
      // a refused run: its message, no run or metrics
      return { status: 'THROWN', error: e instanceof UserError ? e.line() : String(e) } as Outcome;
    }
  };
  const vae = await run(cfg('vae'));
  assert.equal(vae.status, 'FINISHED', vae.error);
  assert.ok(Number.isFinite(vae.metrics['test/elbo']));
  const m2 = await run(cfg('m2'));
  assert.notEqual(m2.status, 'FINISHED');
  assert.match(m2.error!, /needs a data set with class labels \(C ≥ 2\); 'npy' has none/);
  const cls = await run(cfg('classifier'));
  assert.notEqual(cls.status, 'FINISHED');
  assert.match(cls.error!, /^model \(classifier\): .*label/);
  assert.equal(cls.error!.split('\n').length, 1);
  const probe = await run(cfg('vae', '[{kind: elbo}, {kind: latent-classifier}]'));
  assert.notEqual(probe.status, 'FINISHED');
  assert.match(probe.error!, /the latent classifier needs class labels, but this data set has none/);
});
