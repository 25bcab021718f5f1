import { UserError } from '../common/errors.js';
import { mnistSource } from './mnist.js';
import { fashionMnistSource } from './fashion-mnist.js';
import { cifar10Source } from './cifar10.js';
import { cifar100Source } from './cifar100.js';
import { folderSource } from './folder.js';
import { syntheticSource } from './synthetic.js';
import type { DatasetSource } from './source.js';

const SOURCES: readonly DatasetSource[] = [mnistSource, fashionMnistSource, cifar10Source, cifar100Source, folderSource, syntheticSource];

export const DATASET_NAMES = SOURCES.map((s) => s.name) as [string, ...string[]];

export function listSources(): readonly DatasetSource[] {
  return SOURCES;
}

export function getSource(name: string): DatasetSource {
  const s = SOURCES.find((x) => x.name === name);
  if (!s) throw new UserError(`unknown dataset '${name}'; expected one of: ${DATASET_NAMES.join(', ')}`);
  return s;
}
