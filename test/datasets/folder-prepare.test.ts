import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { folderSource } from '../../datasets/folder.js';
import { syntheticSource } from '../../datasets/synthetic.js';
import { batchIndices, batchPixels, prepareData } from '../../datasets/prepare.js';
import { Rng } from '../../common/rng.js';
import { tempDir } from '../helpers/tmp.js';

async function writeImage(path: string, rgb: [number, number, number], size = 20) {
  await sharp({ create: { width: size, height: size + 4, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toFile(path);
}

describe('folder dataset', () => {
  test('one sub-folder per class, resized, split by testFraction', async () => {
    const t = await tempDir();
    try {
      for (const [cls, rgb] of [
        ['cat', [255, 0, 0]],
        ['dog', [0, 0, 255]],
      ] as const) {
        await mkdir(join(t.path, cls));
        for (let i = 0; i < 5; i++) await writeImage(join(t.path, cls, `${i}.png`), rgb as [number, number, number]);
      }
      const ds = await folderSource.load({ path: t.path, cacheDir: t.path, imageSize: [8, 8], channels: 3, testFraction: 0.2, seed: 3 });
      expect(ds.classNames).toEqual(['cat', 'dog']);
      expect(ds.shape).toEqual([8, 8, 3]);
      expect(ds.train.count + ds.test.count).toBe(10);
      expect(ds.test.count).toBe(2);
      // Every image keeps its class colour after resizing.
      for (const s of [ds.train, ds.test])
        for (let i = 0; i < s.count; i++) {
          const r = s.images[i * 192],
            b = s.images[i * 192 + 2];
          expect(s.labels[i] === 0 ? r > 200 && b < 50 : b > 200 && r < 50).toBe(true);
        }
    } finally {
      await t.cleanup();
    }
  });

  test('train/ and test/ sub-directories, greyscale', async () => {
    const t = await tempDir();
    try {
      for (const split of ['train', 'test'])
        for (const cls of ['a', 'b', 'c']) {
          await mkdir(join(t.path, split, cls), { recursive: true });
          await writeImage(join(t.path, split, cls, 'x.png'), [cls === 'a' ? 250 : 10, 10, 10]);
        }
      const ds = await folderSource.load({ path: t.path, cacheDir: t.path, imageSize: [6, 6], channels: 1 });
      expect(ds.shape).toEqual([6, 6, 1]);
      expect([ds.train.count, ds.test.count]).toEqual([3, 3]);
      expect(Array.from(ds.test.labels)).toEqual([0, 1, 2]);
    } finally {
      await t.cleanup();
    }
  });

  test('a non-directory path and too few classes are clear errors', async () => {
    const t = await tempDir();
    try {
      await expect(folderSource.load({ path: join(t.path, 'nope'), cacheDir: t.path })).rejects.toThrow(/nope is not a directory/);
      await mkdir(join(t.path, 'only'));
      await expect(folderSource.load({ path: t.path, cacheDir: t.path })).rejects.toThrow(/found 1 class sub-folders, need at least 2/);
    } finally {
      await t.cleanup();
    }
  });
});

describe('prepareData', () => {
  test('seeded split is reproducible and disjoint; standard normalisation centres the data', async () => {
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 100, testCount: 10, imageSize: [4, 4], channels: 1, seed: 5 });
    const a = prepareData(ds, { normalize: 'standard', validation: 0.2, seed: 9 });
    const b = prepareData(ds, { normalize: 'standard', validation: 0.2, seed: 9 });
    const c = prepareData(ds, { normalize: 'standard', validation: 0.2, seed: 10 });
    expect(a.validation.count).toBe(20);
    expect(a.train.count).toBe(80);
    expect(Array.from(a.validation.labels)).toEqual(Array.from(b.validation.labels));
    expect(Array.from(a.validation.images)).not.toEqual(Array.from(c.validation.images));
    const all = batchPixels(
      a.train,
      Int32Array.from({ length: 80 }, (_, i) => i),
      a.shape,
      a.normalization,
    );
    const mean = all.reduce((s, v) => s + v, 0) / all.length;
    const sd = Math.sqrt(all.reduce((s, v) => s + (v - mean) ** 2, 0) / all.length);
    expect(Math.abs(mean)).toBeLessThan(1e-4);
    expect(Math.abs(sd - 1)).toBeLessThan(1e-3);
  });

  test('validationLimit caps the validation examples and leaves training as it was', async () => {
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 100, testCount: 10, imageSize: [4, 4], channels: 1, seed: 5 });
    const full = prepareData(ds, { normalize: 'unit', validation: 0.2, seed: 9 });
    const capped = prepareData(ds, { normalize: 'unit', validation: 0.2, seed: 9, validationLimit: 7 });
    expect(capped.validation.count).toBe(7);
    expect(Array.from(capped.validation.labels)).toEqual(Array.from(full.validation.labels).slice(0, 7));
    expect(capped.train.count).toBe(80);
    expect(Array.from(capped.train.images)).toEqual(Array.from(full.train.images));
    // A cap above the held-out count changes nothing.
    expect(prepareData(ds, { normalize: 'unit', validation: 0.2, seed: 9, validationLimit: 50 }).validation.count).toBe(20);
  });

  test('augmentation shifts with zero fill and flips horizontally; off means identity', () => {
    // One 3x3 grey image with distinct pixels 10..90; unit normalisation keeps values readable (v/255).
    const split = { images: Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90]), labels: Int32Array.from([0]), count: 1 };
    const norm = { kind: 'unit' as const, mean: [0], std: [1] };
    const px = (a: Float32Array) => Array.from(a, (v) => Math.round(v * 255));
    expect(px(batchPixels(split, [0], [3, 3, 1], norm))).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const seen = new Set<string>();
    const rng = new Rng(4);
    for (let i = 0; i < 200; i++) seen.add(px(batchPixels(split, [0], [3, 3, 1], norm, { shift: 1, flip: true, rng })).join(','));
    // Shifted right by one: left column zero-filled.
    expect(seen.has('0,10,20,0,40,50,0,70,80')).toBe(true);
    // Flipped, unshifted.
    expect(seen.has('30,20,10,60,50,40,90,80,70')).toBe(true);
    // 3x3 shifts x 2 flips, all distinct for this image.
    expect(seen.size).toBe(18);
  });

  test('batches cover every example once, last one short', () => {
    const seen: number[] = [];
    const sizes: number[] = [];
    for (const b of batchIndices(10, 4, new Rng(1))) {
      seen.push(...b);
      sizes.push(b.length);
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(seen.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('a label outside the class range is an error naming the index', async () => {
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 10, testCount: 3, imageSize: [2, 2], channels: 1, numClasses: 3 });
    const bad = { ...ds, test: { ...ds.test, labels: Int32Array.from([0, 7, 1]) } };
    expect(() => prepareData(bad, { normalize: 'unit', validation: 0, seed: 1 })).toThrow(/test label 7 at index 1 is outside 0..2/);
  });
});
