import { gzipSync } from 'node:zlib';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIdx } from '../../datasets/idx.js';
import { idxFamilySource } from '../../datasets/mnist.js';
import { tempDir } from '../helpers/tmp.js';
import { idx } from '../helpers/fixtures.js';

describe('IDX parser', () => {
  const pixels = Uint8Array.from({ length: 3 * 28 * 28 }, (_, i) => i % 251);

  test('reads dims and data, raw and gzipped alike', () => {
    const raw = idx([3, 28, 28], pixels);
    for (const buf of [raw, new Uint8Array(gzipSync(raw))]) {
      const a = parseIdx(buf, 'x');
      expect(a.dims).toEqual([3, 28, 28]);
      expect(Array.from(a.data.subarray(0, 5))).toEqual([0, 1, 2, 3, 4]);
      expect(a.data.length).toBe(pixels.length);
    }
  });

  test('rejects a truncated file with a message naming it', () => {
    const raw = idx([3, 28, 28], pixels).subarray(0, 1000);
    expect(() => parseIdx(raw, 'train-images')).toThrow(/train-images: IDX data has 984 bytes, header says 2352.*truncated/);
  });

  test('rejects a non-IDX file and a non-byte element type', () => {
    expect(() => parseIdx(new Uint8Array([1, 2, 3, 4, 5]), 'f')).toThrow(/not an IDX file/);
    const bad = idx([2], new Uint8Array(2));
    bad[2] = 0x0d;
    expect(() => parseIdx(bad, 'f')).toThrow(/element type 0xd is not supported/);
  });

  test('an MNIST-family directory loads into train/test splits', async () => {
    const t = await tempDir();
    try {
      const img = (n: number) =>
        idx(
          [n, 28, 28],
          Uint8Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256),
        );
      const lab = (n: number) =>
        idx(
          [n],
          Uint8Array.from({ length: n }, (_, i) => i % 10),
        );
      await writeFile(join(t.path, 'train-images-idx3-ubyte.gz'), gzipSync(img(20)));
      await writeFile(join(t.path, 'train-labels-idx1-ubyte.gz'), gzipSync(lab(20)));
      await writeFile(join(t.path, 't10k-images-idx3-ubyte'), img(5));
      await writeFile(join(t.path, 't10k-labels-idx1-ubyte'), lab(5));
      const src = idxFamilySource({
        name: 'fixture',
        description: '',
        classNames: [...'0123456789'],
        defaultDir: () => t.path,
        howToGet: 'n/a',
      });
      const ds = await src.load({ cacheDir: t.path });
      expect(ds.shape).toEqual([28, 28, 1]);
      expect(ds.train.count).toBe(20);
      expect(ds.test.count).toBe(5);
      expect(Array.from(ds.test.labels)).toEqual([0, 1, 2, 3, 4]);
      await mkdir(join(t.path, 'empty'));
      await expect(src.load({ cacheDir: t.path, path: join(t.path, 'empty') })).rejects.toThrow(
        /dataset 'fixture' not found at .*empty[\s\S]*How to get it/,
      );
    } finally {
      await t.cleanup();
    }
  });

  test('labels and images that disagree in count are an error', async () => {
    const t = await tempDir();
    try {
      await writeFile(join(t.path, 'train-images-idx3-ubyte'), idx([4, 28, 28], new Uint8Array(4 * 784)));
      await writeFile(join(t.path, 'train-labels-idx1-ubyte'), idx([3], new Uint8Array(3)));
      await writeFile(join(t.path, 't10k-images-idx3-ubyte'), idx([1, 28, 28], new Uint8Array(784)));
      await writeFile(join(t.path, 't10k-labels-idx1-ubyte'), idx([1], new Uint8Array(1)));
      const src = idxFamilySource({ name: 'fixture', description: '', classNames: ['a', 'b'], defaultDir: () => t.path, howToGet: 'n/a' });
      await expect(src.load({ cacheDir: t.path })).rejects.toThrow(/3 labels for 4 images/);
    } finally {
      await t.cleanup();
    }
  });
});
