import * as path from 'path';
import * as zlib from 'zlib';
import * as crypto from 'crypto';
import { ConfigPath, definePlugin, Type, type OptionsOf } from '../registry/define';
import { UserError, type Caught } from '../errors';
import { readDataFile } from './files';
import { OwnDataSet, RawPart, finishOwnDataSet, ownDataOptions, scaleAndCheck, scaleOption, checkLabelsPaired } from './own';
import type { PluginContext } from '../contracts';

/**
 * NumPy's .npy (format versions 1, 2, 3) and .npz (a zip of .npy files, stored or deflated)
 * for the `npy` data set: little-endian numbers in C order.
 */

/** The dtypes read, as NumPy writes them in the header ('descr'). */
const DTYPES: Record<string, { size: number; read: (b: ArrayBuffer, n: number) => ArrayLike<number> | BigInt64Array }> = {
  '<f4': { size: 4, read: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { size: 8, read: (b, n) => new Float64Array(b, 0, n) },
  '|u1': { size: 1, read: (b, n) => new Uint8Array(b, 0, n) },
  '|i1': { size: 1, read: (b, n) => new Int8Array(b, 0, n) },
  '|b1': { size: 1, read: (b, n) => new Uint8Array(b, 0, n) },
  '<u2': { size: 2, read: (b, n) => new Uint16Array(b, 0, n) },
  '<i2': { size: 2, read: (b, n) => new Int16Array(b, 0, n) },
  '<i4': { size: 4, read: (b, n) => new Int32Array(b, 0, n) },
  '<u4': { size: 4, read: (b, n) => new Uint32Array(b, 0, n) },
  '<i8': { size: 8, read: (b, n) => new BigInt64Array(b, 0, n) },
};
const SUPPORTED = '<f4, <f8, |u1, |i1, |b1, <u2, <i2, <i4, <u4, <i8';

export interface NpyArray {
  dtype: string;
  shape: number[];
  /** The values as numbers (int64 converted; `unsafe` is the first not exactly representable, or -1). */
  data: ArrayLike<number>;
  unsafe: number;
}

/**
 * Parse one .npy file. `file` is where errors point, `what` the array's name inside an .npz
 * ("array 'x' (x.npy): "), or ''.
 */
export function parseNpy(buf: Buffer, file: string, what = ''): NpyArray {
  const fail = (m: string): never => {
    throw new UserError(`${what}${m}`, file);
  };
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    if (buf[0] === 0x50 && buf[1] === 0x4b) fail('this is a zip archive (an .npz), not an .npy array');
    fail('not an .npy file (no \\x93NUMPY magic); write arrays with numpy.save(f, arr)');
  }
  const major = buf[6];
  const minor = buf[7];
  if (major !== 1 && major !== 2 && major !== 3) fail(`NPY format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`);
  const headerStart = major === 1 ? 10 : 12;
  if (buf.length < headerStart) fail('the NPY header is truncated');
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataStart = headerStart + headerLen;
  if (buf.length < dataStart) fail(`the NPY header is truncated (it says ${headerLen} bytes, the file holds ${buf.length - headerStart})`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, dataStart);
  if (/['"]descr['"]\s*:\s*\[/.test(header))
    fail('a structured array (record dtype) is not supported; save a plain numeric array, e.g. np.save(f, arr.astype("float32"))');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    fail(`malformed NPY header (no descr, fortran_order or shape): ${header.trim().slice(0, 120)}`);
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^\d+L?$/.test(s) ? parseInt(s, 10) : fail(`malformed shape (${shapeText}) in the NPY header`)));
  const dtype = descr === '<b1' || descr === '=b1' ? '|b1' : descr === '<u1' || descr === '=u1' ? '|u1' : descr!;
  const spec = DTYPES[dtype];
  if (!spec) {
    if (/^>/.test(dtype) && DTYPES[`<${dtype.slice(1)}`])
      fail(`dtype ${dtype} is big-endian; convert it, e.g. arr.astype('<${dtype.slice(1)}')`);
    if (dtype === '|O') fail('an object array (pickled Python objects) is not supported; save a numeric array');
    fail(`dtype ${dtype} is not supported (supported: ${SUPPORTED}); convert it, e.g. arr.astype('float32')`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortran === 'True' && shape.filter((d) => d > 1).length > 1) {
    fail(`the array is in Fortran (column-major) order; save a C-order copy: np.save(f, np.ascontiguousarray(arr))`);
  }
  const bytes = count * spec.size;
  const held = buf.length - dataStart;
  if (held !== bytes) {
    fail(
      `the header says shape (${shape.join(', ')}) of ${dtype}, ${bytes.toLocaleString('en')} bytes of data, but the file holds ${held.toLocaleString('en')}` +
        (held < bytes ? ' (truncated)' : ''),
    );
  }
  // a copy into its own buffer: aligned for the typed array whatever the offset in the file
  const ab = new ArrayBuffer(bytes);
  new Uint8Array(ab).set(buf.subarray(dataStart, dataStart + bytes));
  const raw = spec.read(ab, count);
  let unsafe = -1;
  let data: ArrayLike<number>;
  if (raw instanceof BigInt64Array) {
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = Number(raw[i]);
      if (unsafe < 0 && !Number.isSafeInteger(out[i])) unsafe = i;
    }
    data = out;
  } else data = raw;
  return { dtype, shape, data, unsafe };
}

/** One entry of a zip archive's central directory. */
interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The entries of a zip archive (ZIP64 sizes and offsets included, as numpy.savez writes them). */
export function zipEntries(buf: Buffer, file: string): ZipEntry[] {
  const fail = (m: string): never => {
    throw new UserError(m, file);
  };
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a readable .npz: no zip end-of-central-directory record (the file is truncated, or not a zip archive)');
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    const z = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    if (z + 56 > buf.length || buf.readUInt32LE(z) !== 0x06064b50) fail('not a readable .npz: a damaged ZIP64 end record');
    count = Number(buf.readBigUInt64LE(z + 32));
    cdOffset = Number(buf.readBigUInt64LE(z + 48));
  }
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) fail(`not a readable .npz: central directory entry ${k + 1} is damaged`);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    let compressedSize = buf.readUInt32LE(p + 20);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let localOffset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extra field: the 64-bit values of the fields that are 0xFFFFFFFF, in this order
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) {
          size = Number(buf.readBigUInt64LE(q));
          q += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = Number(buf.readBigUInt64LE(q));
          q += 8;
        }
        if (localOffset === 0xffffffff) localOffset = Number(buf.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    entries.push({ name, method, flags, crc, compressedSize, size, localOffset });
    p = end + commentLen;
  }
  return entries;
}

/** The bytes of one zip entry (stored or deflated; the CRC checked). */
export function zipEntryData(buf: Buffer, entry: ZipEntry, file: string): Buffer {
  const fail = (m: string): never => {
    throw new UserError(`entry '${entry.name}': ${m}`, file);
  };
  if (entry.flags & 1) fail('is encrypted; save the arrays with numpy.savez (no password)');
  const h = entry.localOffset;
  if (h + 30 > buf.length || buf.readUInt32LE(h) !== 0x04034b50) fail('its local header is damaged (the archive is truncated?)');
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  if (start + entry.compressedSize > buf.length)
    fail(`the archive is truncated (${entry.compressedSize} bytes from byte ${start}, the file has ${buf.length})`);
  const raw = buf.subarray(start, start + entry.compressedSize);
  let out: Buffer;
  if (entry.method === 0) out = raw;
  else if (entry.method === 8) {
    try {
      out = zlib.inflateRawSync(raw);
    } catch (e) {
      return fail(`cannot inflate (${(e as Caught)?.message ?? e}); the archive is damaged`);
    }
  } else {
    const names: Record<number, string> = { 9: 'deflate64', 12: 'bzip2', 14: 'lzma', 93: 'zstandard', 95: 'xz' };
    return fail(
      `compression method ${entry.method}${names[entry.method] ? ` (${names[entry.method]})` : ''} is not supported: only stored and deflate (numpy.savez, numpy.savez_compressed)`,
    );
  }
  if (out.length !== entry.size) fail(`holds ${out.length} bytes, the directory says ${entry.size}; the archive is damaged`);
  if (crc32(out) !== entry.crc) fail('CRC mismatch; the archive is damaged');
  return out;
}

/** A file's bytes, and whether it is an .npz (a zip: by content, not by its name). */
export function readNpyOrNpz(file: string, hash?: crypto.Hash): { buf: Buffer; npz: boolean } {
  const buf = readDataFile(file, 'NumPy file', 'write it with numpy.save (.npy) or numpy.savez (.npz)');
  hash?.update(buf);
  return { buf, npz: (buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50) || (buf.length >= 22 && buf.readUInt32LE(0) === 0x06054b50) };
}

/** Array `key` of an .npz (the entry `key.npy`), or null when the archive has none. */
export function npzArray(buf: Buffer, file: string, key: string, entries = zipEntries(buf, file)): NpyArray | null {
  const entry = entries.find((e) => e.name === `${key}.npy`) ?? entries.find((e) => e.name === key);
  if (!entry) return null;
  return parseNpy(zipEntryData(buf, entry, file), file, `array '${key}' (${entry.name}): `);
}

/** The array names of an .npz. */
export function npzKeys(entries: ZipEntry[]): string[] {
  return entries.map((e) => e.name.replace(/\.npy$/, ''));
}

/** An .npy header around the dictionary text `dict`, padded to 64 bytes as numpy writes it. */
export function npyHeader(dict: string, version: number): Buffer {
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = Buffer.alloc(total, 0x20);
  header[0] = 0x93;
  header.write('NUMPY', 1, 'latin1');
  header[6] = version;
  header[7] = 0;
  if (version === 1) header.writeUInt16LE(total - pre, 8);
  else header.writeUInt32LE(total - pre, 8);
  header.write(dict, pre, 'latin1');
  header[total - 1] = 0x0a;
  return header;
}

/** Write an .npy file, version 1.0 (for generated test data and exports). */
export function npyBytes(
  dtype: '<f4' | '<f8' | '|u1' | '<i4' | '<i8' | '<u2' | '|b1',
  shape: number[],
  data: ArrayLike<number>,
  opts: { fortran?: boolean; version?: 1 | 2 | 3 } = {},
): Buffer {
  const dict = `{'descr': '${dtype}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const header = npyHeader(dict, opts.version ?? 1);
  const n = data.length;
  let body: Buffer;
  if (dtype === '<f4') body = Buffer.from(Float32Array.from(data).buffer);
  else if (dtype === '<f8') body = Buffer.from(Float64Array.from(data).buffer);
  else if (dtype === '|u1' || dtype === '|b1') body = Buffer.from(Uint8Array.from(data).buffer);
  else if (dtype === '<i4') body = Buffer.from(Int32Array.from(data).buffer);
  else if (dtype === '<u2') body = Buffer.from(Uint16Array.from(data).buffer);
  else body = Buffer.from(BigInt64Array.from({ length: n }, (_, i) => BigInt(data[i])).buffer);
  return Buffer.concat([header, body]);
}

/** Write a zip of .npy entries (an .npz), each stored or deflated (for generated test data). */
export function npzBytes(arrays: Record<string, Buffer>, method: 'stored' | 'deflate' = 'deflate'): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [key, bytes] of Object.entries(arrays)) {
    const name = Buffer.from(`${key}.npy`, 'utf8');
    const data = method === 'deflate' ? zlib.deflateRawSync(bytes) : bytes;
    const crc = crc32(bytes);
    const m = method === 'deflate' ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(bytes.length, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(m, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(bytes.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    central.push(cd, name);
    offset += 30 + name.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(arrays).length, 8);
  end.writeUInt16LE(Object.keys(arrays).length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cdBytes, end]);
}

const npyOptions = {
  train: ConfigPath('Training examples: an .npy array (N×D vectors, N×H×W grey or N×H×W×C images), or an .npz holding x (and y)'),
  train_labels: Type.Optional(
    ConfigPath('Training labels: an .npy of N integers (or an .npz holding y); default: y of the train .npz, else none'),
  ),
  test: Type.Optional(
    ConfigPath('Test examples in the same form (an .npz may be the train file itself: x_test/y_test); default: test_fraction of train'),
  ),
  test_labels: Type.Optional(ConfigPath('Test labels, as train_labels')),
  x_key: Type.Optional(
    Type.String({
      description: 'Array of the examples in an .npz (default: x, else x_train in the train file and x_test in the test file)',
    }),
  ),
  y_key: Type.Optional(
    Type.String({ description: 'Array of the labels in an .npz (default: y, else y_train / y_test; absent: unlabelled)' }),
  ),
  scale: scaleOption(['auto', 'none', 'max', 'minmax'], 'auto', 'the stored values'),
  ...ownDataOptions,
};
export type NpyOptions = OptionsOf<typeof npyOptions>;

const WHERE = 'data (npy)';

/** One side (train or test) read: examples, labels, dtype and the per-example shape. */
interface NpySide extends RawPart {
  shape: number[];
  dtype: string;
  file: string;
}

/** Examples and labels of one split from the files named in the options. */
function readSide(o: NpyOptions, baseDir: string, which: 'train' | 'test', hash: crypto.Hash): NpySide {
  const file = path.resolve(baseDir, (which === 'train' ? o.train : o.test)!);
  const { buf, npz } = readNpyOrNpz(file, hash);
  let x: NpyArray;
  let y: NpyArray | null = null;
  let yFile = file;
  const labelsOption = which === 'train' ? o.train_labels : o.test_labels;
  if (npz) {
    const entries = zipEntries(buf, file);
    const keys = npzKeys(entries);
    const xKey = o.x_key ?? (keys.includes('x') ? 'x' : `x_${which}`);
    const got = npzArray(buf, file, xKey, entries);
    if (!got) throw new UserError(`no array '${xKey}' in the archive (it holds: ${keys.join(', ') || 'nothing'}); set data.x_key`, file);
    x = got;
    if (!labelsOption) {
      const yKey = o.y_key ?? (keys.includes('y') ? 'y' : `y_${which}`);
      y = npzArray(buf, file, yKey, entries);
      if (!y && o.y_key)
        throw new UserError(
          `no array '${o.y_key}' in the archive (it holds: ${keys.join(', ')}); set data.y_key, or leave it out for unlabelled data`,
          file,
        );
    }
  } else {
    x = parseNpy(buf, file);
    if (o.x_key) throw new UserError('data.x_key names an array of an .npz, but this is an .npy file', file);
  }
  if (labelsOption) {
    yFile = path.resolve(baseDir, labelsOption);
    const l = readNpyOrNpz(yFile, hash);
    if (l.npz) {
      const entries = zipEntries(l.buf, yFile);
      const yKey = o.y_key ?? (npzKeys(entries).includes('y') ? 'y' : `y_${which}`);
      y = npzArray(l.buf, yFile, yKey, entries);
      if (!y) throw new UserError(`no array '${yKey}' in the archive (it holds: ${npzKeys(entries).join(', ')}); set data.y_key`, yFile);
    } else y = parseNpy(l.buf, yFile);
  }
  if (x.shape.length < 2 || x.shape.length > 4) {
    throw new UserError(`the examples are an array of shape (${x.shape.join(', ')}); need N×D vectors, N×H×W grey or N×H×W×C images`, file);
  }
  const [n, ...rest] = x.shape;
  const shape = rest.length === 1 ? [1, rest[0], 1] : rest.length === 2 ? [...rest, 1] : rest;
  const xs = x.dtype === '<f4' ? (x.data as Float32Array) : Float32Array.from(x.data);
  let labels: Float64Array | null = null;
  if (y) {
    const ok = y.shape.length === 1 || (y.shape.length === 2 && y.shape[1] === 1);
    if (!ok || y.shape[0] !== n) {
      throw new UserError(
        `labels of shape (${y.shape.join(', ')}) do not match ${n} examples in ${path.basename(file)}; need N integers (shape (${n},))`,
        yFile,
      );
    }
    if (y.unsafe >= 0) throw new UserError(`label ${y.unsafe}: beyond 2^53, not an exact integer`, yFile);
    labels = Float64Array.from(y.data);
    const bad = labels.findIndex((v) => !Number.isInteger(v));
    if (bad >= 0) throw new UserError(`label ${bad} is ${labels[bad]}, not an integer class label`, yFile);
  }
  return { x: xs, labels, n, shape, dtype: x.dtype, file, labelFile: y ? yFile : undefined };
}

/**
 * Your own arrays from NumPy files. Examples: N×D (vectors, shape [1, D, 1]), N×H×W (grey,
 * [H, W, 1]) or N×H×W×C; labels N integers remapped to 0..C−1 in sorted order (optional).
 * scale auto: |u1 ÷255 and <u2 ÷65535, others as stored; every value is checked to lie in
 * [0, 1] after scaling (scale minmax: per feature by the final training split instead).
 */
export function loadNpy(o: NpyOptions, ctx: PluginContext): OwnDataSet {
  const hash = crypto.createHash('sha256');
  const scaleOf = (s: NpySide): { divisor: number; name: string } => {
    const scale = o.scale === 'auto' ? (s.dtype === '|u1' || s.dtype === '<u2' ? 'max' : 'none') : o.scale;
    return { divisor: scale === 'max' ? (s.dtype === '<u2' ? 65535 : 255) : 1, name: o.scale === 'auto' ? `auto (${scale})` : scale };
  };
  // each file's values scaled and checked as it is read (its errors before any comparison of the files)
  const scaled = (s: NpySide): NpySide => {
    if (o.scale === 'minmax') return s;
    const { divisor, name } = scaleOf(s);
    const per = s.shape;
    const x = scaleAndCheck(
      s.x,
      per.reduce((a, b) => a * b, 1),
      divisor,
      name,
      s.file,
      (row, col) => {
        const index =
          per[0] === 1 && per[2] === 1
            ? [col]
            : [Math.floor(col / (per[1] * per[2])), Math.floor(col / per[2]) % per[1], ...(per[2] > 1 ? [col % per[2]] : [])];
        return `example ${row}, value [${index.join(', ')}]`;
      },
    );
    return { ...s, x };
  };
  const train = scaled(readSide(o, ctx.baseDir, 'train', hash));
  const test = o.test ? scaled(readSide(o, ctx.baseDir, 'test', hash)) : null;
  if (test && test.shape.join('×') !== train.shape.join('×')) {
    throw new UserError(
      `test examples are ${test.shape.join('×')} but training examples are ${train.shape.join('×')} (${path.basename(train.file)})`,
      test.file,
    );
  }
  checkLabelsPaired(
    train,
    test,
    train.labelFile ? path.basename(train.labelFile) : 'train_labels, or y in the .npz',
    'test_labels (or y in the test .npz)',
    test?.file ?? '',
  );
  const dim = train.shape.reduce((a, b) => a * b, 1);
  const described =
    o.scale === 'minmax'
      ? 'features min-max scaled to [0,1] by the training split'
      : scaleOf(train).divisor > 1
        ? `values ÷${scaleOf(train).divisor}`
        : 'values as stored';
  return finishOwnDataSet({
    name: 'npy',
    where: WHERE,
    shape: train.shape,
    dim,
    train,
    test,
    testFraction: o.test_fraction,
    noun: 'examples',
    sha256: hash.digest('hex'),
    source: `${train.file}${test ? ` + ${test.file}` : ` (test: ${o.test_fraction} of the examples)`}; ${train.dtype}, ${described}`,
    minmax: o.scale === 'minmax',
    opts: o,
    ctx,
  });
}

export const npyDatasetPlugin = definePlugin({
  kind: 'dataset',
  name: 'npy',
  description:
    'Your own arrays from NumPy .npy/.npz files: N×D vectors or N×H×W(×C) images, optional integer labels; scaled to [0,1] (auto: uint8 ÷255)',
  options: npyOptions,
  create: (o, ctx): OwnDataSet => loadNpy(o, ctx),
});
