import { fileLogger } from '../common/log.js';
import { datasetSchema } from '../pipeline/config-schema.js';
import { loadRaw } from '../pipeline/stages/data-stage.js';

/** A dataset's test split as the commands that show or send single images read it: raw pixels (HWC bytes) and labels. */
export interface TestSplit {
  count: number;
  /** Values per image (H·W·C). */
  values: number;
  image(index: number): { pixels: Uint8Array; label: number };
}

/** The test split of dataset `name` (its default settings), from `datasetPath` or the default place. */
export async function testSplit(name: string, datasetPath?: string): Promise<TestSplit> {
  const { test } = await loadRaw(datasetSchema.parse({ name }), datasetPath, fileLogger());
  const values = test.images.length / test.count;
  return {
    count: test.count,
    values,
    image: (i) => ({ pixels: test.images.subarray(i * values, (i + 1) * values), label: test.labels[i] }),
  };
}
