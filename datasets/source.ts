import type { ImageDataset } from './types.js';

/** What a loader needs besides its own name; all of it comes from `dataset.*` in the config. */
export interface LoadOptions {
  /** Directory (or file) the user points at; each source has a default. */
  path?: string;
  cacheDir: string;
  /** cifar100 only: 'fine' (100 classes) or 'coarse' (20 superclasses). */
  labelMode?: 'fine' | 'coarse';
  /** folder and synthetic: image size [height, width] and channels. */
  imageSize?: [number, number];
  channels?: 1 | 3;
  /** folder: fraction held out as test when there is no train/ and test/ split. */
  testFraction?: number;
  /** synthetic: examples per split and classes. */
  trainCount?: number;
  testCount?: number;
  numClasses?: number;
  seed?: number;
}

export interface Located {
  found: boolean;
  /** Where the files are (or would be looked for). */
  path: string;
  /** Human-readable: how to get the data when it is missing. */
  howToGet: string;
}

export interface DatasetSource {
  readonly name: string;
  readonly description: string;
  locate(opts: LoadOptions): Promise<Located>;
  load(opts: LoadOptions): Promise<ImageDataset>;
  /** Downloads or installs what can be got on this machine; returns the path. */
  fetch?(opts: LoadOptions): Promise<string>;
}
