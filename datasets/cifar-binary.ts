import { readFile } from 'node:fs/promises';
import { UserError } from '../common/errors.js';
import type { Split } from './types.js';

const PIXELS = 32 * 32;

/**
 * Parses the official CIFAR binary format: per record `labelBytes` label
 * bytes, then 3072 bytes of planar RGB (1024 R, 1024 G, 1024 B). Pixels are
 * converted to interleaved HWC. `labelIndex` picks which label byte to keep
 * (CIFAR-100: 0 = coarse, 1 = fine).
 */
export function parseCifarBinary(buf: Uint8Array, labelBytes: number, labelIndex: number, what: string): Split {
  const rec = labelBytes + 3 * PIXELS;
  if (buf.length === 0 || buf.length % rec !== 0) {
    throw new UserError(
      `${what}: ${buf.length} bytes is not a whole number of ${rec}-byte CIFAR records; the file is truncated or not CIFAR binary`,
    );
  }
  const count = buf.length / rec;
  const images = new Uint8Array(count * 3 * PIXELS);
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const base = n * rec;
    labels[n] = buf[base + labelIndex];
    const src = base + labelBytes;
    const dst = n * 3 * PIXELS;
    for (let p = 0; p < PIXELS; p++) {
      images[dst + 3 * p] = buf[src + p];
      images[dst + 3 * p + 1] = buf[src + PIXELS + p];
      images[dst + 3 * p + 2] = buf[src + 2 * PIXELS + p];
    }
  }
  return { images, labels, count };
}

export async function readCifarBinary(paths: string[], labelBytes: number, labelIndex: number): Promise<Split> {
  const parts: Split[] = [];
  for (const p of paths) {
    let buf: Buffer;
    try {
      buf = await readFile(p);
    } catch (e) {
      throw new UserError(`cannot read ${p}: ${(e as Error).message}`);
    }
    parts.push(parseCifarBinary(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), labelBytes, labelIndex, p));
  }
  return concatSplits(parts);
}

export function concatSplits(parts: Split[]): Split {
  if (parts.length === 1) return parts[0];
  const count = parts.reduce((a, s) => a + s.count, 0);
  const images = new Uint8Array(parts.reduce((a, s) => a + s.images.length, 0));
  const labels = new Int32Array(count);
  let io = 0,
    lo = 0;
  for (const s of parts) {
    images.set(s.images, io);
    io += s.images.length;
    labels.set(s.labels, lo);
    lo += s.count;
  }
  return { images, labels, count };
}
