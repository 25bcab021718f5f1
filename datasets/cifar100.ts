import { join } from 'node:path';
import { exists, missingDataset } from './fs-util.js';
import { readCifarBinary } from './cifar-binary.js';
import type { DatasetSource, LoadOptions, Located } from './source.js';
import type { ImageDataset } from './types.js';

const HOW =
  'download the official CIFAR-100 binary version (cifar-100-binary with train.bin and test.bin) and set dataset.path to its directory';

async function resolveDir(opts: LoadOptions): Promise<string | undefined> {
  const base = opts.path ?? join(opts.cacheDir, 'cifar100');
  for (const d of [base, join(base, 'cifar-100-binary')]) {
    if ((await exists(join(d, 'train.bin'))) && (await exists(join(d, 'test.bin')))) return d;
  }
  return undefined;
}

export const cifar100Source: DatasetSource = {
  name: 'cifar100',
  description: 'CIFAR-100, 50k/10k 32x32 RGB, fine (100) or coarse (20) labels (official binary version, from a path)',
  async locate(opts): Promise<Located> {
    const dir = await resolveDir(opts);
    return { found: !!dir, path: dir ?? opts.path ?? join(opts.cacheDir, 'cifar100'), howToGet: HOW };
  },
  async load(opts): Promise<ImageDataset> {
    const dir = await resolveDir(opts);
    if (!dir) throw missingDataset('cifar100', opts.path ?? join(opts.cacheDir, 'cifar100'), HOW);
    // Each record: coarse label byte, fine label byte, 3072 pixel bytes.
    const labelIndex = opts.labelMode === 'coarse' ? 0 : 1;
    const numClasses = opts.labelMode === 'coarse' ? 20 : 100;
    const train = await readCifarBinary([join(dir, 'train.bin')], 2, labelIndex);
    const test = await readCifarBinary([join(dir, 'test.bin')], 2, labelIndex);
    const classNames = Array.from({ length: numClasses }, (_, i) => String(i));
    return {
      name: 'cifar100',
      shape: [32, 32, 3],
      numClasses,
      classNames,
      train,
      test,
      source: `${dir} (${opts.labelMode ?? 'fine'} labels)`,
    };
  },
};
