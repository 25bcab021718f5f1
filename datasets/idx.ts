import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../common/errors.js';

/** IDX (LeCun's MNIST format): magic 0x0000 0x08 ndim, big-endian dims, uint8 data. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Uint8Array, what: string): IdxArray {
  const bytes = buf[0] === 0x1f && buf[1] === 0x8b ? new Uint8Array(gunzipSync(buf)) : buf;
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new UserError(`${what}: not an IDX file (bad magic number)`);
  }
  if (bytes[2] !== 0x08) {
    throw new UserError(`${what}: IDX element type 0x${bytes[2].toString(16)} is not supported (expected 0x08, unsigned byte)`);
  }
  const ndim = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * ndim) throw new UserError(`${what}: IDX header truncated`);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (bytes.length - offset !== size) {
    throw new UserError(
      `${what}: IDX data has ${bytes.length - offset} bytes, header says ${size} (${dims.join('x')}); the file is truncated or corrupt`,
    );
  }
  return { dims, data: bytes.subarray(offset) };
}

export async function readIdx(path: string): Promise<IdxArray> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseIdx(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}
