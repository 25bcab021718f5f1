import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import { isDirectory } from './fs-util.js';
import { takeIndices, type ImageDataset, type Split } from './types.js';
import type { DatasetSource, LoadOptions, Located } from './source.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif']);
const HOW = 'set dataset.path to a directory with one sub-folder of images per class (optionally inside train/ and test/)';

async function classDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

async function listImages(dir: string, classes: string[]): Promise<{ file: string; label: number }[]> {
  const out: { file: string; label: number }[] = [];
  for (let c = 0; c < classes.length; c++) {
    const files = (await readdir(join(dir, classes[c]))).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
    for (const f of files) out.push({ file: join(dir, classes[c], f), label: c });
  }
  return out;
}

/** Decodes and resizes every image (a few at a time, sharp runs off the main thread). */
async function decodeAll(items: { file: string; label: number }[], h: number, w: number, ch: 1 | 3): Promise<Split> {
  const pixels = h * w * ch;
  const images = new Uint8Array(items.length * pixels);
  const labels = new Int32Array(items.length);
  const CONCURRENCY = 8;
  for (let start = 0; start < items.length; start += CONCURRENCY) {
    await Promise.all(
      items.slice(start, start + CONCURRENCY).map(async (it, k) => {
        const i = start + k;
        let img = sharp(it.file).resize(w, h, { fit: 'fill' }).removeAlpha();
        img = ch === 1 ? img.greyscale() : img.toColourspace('srgb');
        let data: Buffer;
        try {
          data = await img.raw().toBuffer();
        } catch (e) {
          throw new UserError(`cannot decode image ${it.file}: ${(e as Error).message}`);
        }
        if (data.length !== pixels) throw new UserError(`image ${it.file}: decoded to ${data.length} bytes, expected ${pixels}`);
        images.set(data, i * pixels);
        labels[i] = it.label;
      }),
    );
  }
  return { images, labels, count: items.length };
}

export const folderSource: DatasetSource = {
  name: 'folder',
  description: 'your own images: one sub-folder per class (optionally under train/ and test/), decoded and resized with sharp',
  async locate(opts): Promise<Located> {
    const path = opts.path ?? '(dataset.path not set)';
    return { found: !!opts.path && (await isDirectory(opts.path)), path, howToGet: HOW };
  },
  async load(opts: LoadOptions): Promise<ImageDataset> {
    if (!opts.path) throw new UserError(`dataset 'folder' needs dataset.path: ${HOW}`);
    if (!(await isDirectory(opts.path))) throw new UserError(`dataset.path ${opts.path} is not a directory: ${HOW}`);
    const [h, w] = opts.imageSize ?? [32, 32];
    const ch = opts.channels ?? 3;
    const pre = (await isDirectory(join(opts.path, 'train'))) && (await isDirectory(join(opts.path, 'test')));
    const trainDir = pre ? join(opts.path, 'train') : opts.path;
    const classes = await classDirs(trainDir);
    if (classes.length < 2) throw new UserError(`${trainDir}: found ${classes.length} class sub-folders, need at least 2`);
    let train: Split, test: Split;
    if (pre) {
      const testClasses = await classDirs(join(opts.path, 'test'));
      const unknown = testClasses.filter((c) => !classes.includes(c));
      if (unknown.length) throw new UserError(`${join(opts.path, 'test')}: classes ${unknown.join(', ')} are not in train/`);
      train = await decodeAll(await listImages(trainDir, classes), h, w, ch);
      const testItems = (await listImages(join(opts.path, 'test'), testClasses)).map((it) => ({
        ...it,
        label: classes.indexOf(testClasses[it.label]),
      }));
      test = await decodeAll(testItems, h, w, ch);
    } else {
      const all = await decodeAll(await listImages(trainDir, classes), h, w, ch);
      const frac = opts.testFraction ?? 0.2;
      const perm = new Rng(opts.seed ?? 0).permutation(all.count);
      const nTest = Math.max(1, Math.round(all.count * frac));
      test = takeIndices(all, perm.subarray(0, nTest), h * w * ch);
      train = takeIndices(all, perm.subarray(nTest), h * w * ch);
    }
    if (train.count === 0) throw new UserError(`${trainDir}: no images found (extensions: ${[...IMAGE_EXT].join(' ')})`);
    return { name: 'folder', shape: [h, w, ch], numClasses: classes.length, classNames: classes, train, test, source: opts.path };
  },
};
