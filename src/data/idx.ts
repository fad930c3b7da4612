import * as fs from 'fs';
import * as crypto from 'crypto';
import { UserError } from '../errors';
import { readDataFile, maxOf } from './files';

/**
 * Reader for the IDX format of the original MNIST files: a big-endian header
 * (0, 0, type code, number of dimensions, then each dimension as uint32) followed by
 * the values. Only unsigned bytes (0x08) are used by the image data sets.
 */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Buffer, where: string): IdxArray {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) {
    throw new UserError('not an IDX file (bad magic number); expected e.g. train-images-idx3-ubyte, uncompressed', where);
  }
  const type = buf[2];
  const ndim = buf[3];
  if (type !== 0x08) throw new UserError(`IDX value type 0x${type.toString(16)} is not supported (only unsigned bytes, 0x08)`, where);
  if (buf.length < 4 + 4 * ndim) throw new UserError('IDX header is truncated', where);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (buf.length !== offset + count) {
    throw new UserError(
      `IDX file holds ${buf.length - offset} values but its header says ${dims.join('×')} = ${count}; the file is truncated or not uncompressed`,
      where,
    );
  }
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + offset, count) };
}

export function readIdx(file: string, hash?: crypto.Hash): IdxArray {
  const buf = readDataFile(file, 'data file');
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    throw new UserError('file is gzip-compressed; gunzip it first', file);
  }
  hash?.update(buf);
  return parseIdx(buf, file);
}

/** Images (n × rows × cols, bytes) and optional labels as a Split with values in [0, 1]. */
export function readIdxImages(imagesFile: string, labelsFile: string | undefined, hash?: crypto.Hash) {
  const images = readIdx(imagesFile, hash);
  if (images.dims.length < 2)
    throw new UserError(`expected an image array (n × rows × cols), got dims ${images.dims.join('×')}`, imagesFile);
  const [n, ...shape] = images.dims;
  const dim = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
  let y: Int32Array | null = null;
  let classes = 0;
  if (labelsFile) {
    const labels = readIdx(labelsFile, hash);
    if (labels.dims.length !== 1 || labels.dims[0] !== n) {
      throw new UserError(`labels (${labels.dims.join('×')}) do not match ${n} images in ${imagesFile}`, labelsFile);
    }
    y = Int32Array.from(labels.data);
    classes = y.length ? maxOf(y) + 1 : 0;
  }
  return { split: { x, y, n }, shape: shape.length === 2 ? [...shape, 1] : shape, dim, classes };
}

/** Write an IDX file of unsigned bytes (for generated test data and exports). */
export function writeIdx(file: string, dims: number[], data: Uint8Array): void {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  fs.writeFileSync(file, Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}
