import { defaultCacheDir } from '../../common/paths.js';
import { prepareData, type PreparedData } from '../../datasets/prepare.js';
import { getSource } from '../../datasets/registry.js';
import type { DatasetConfig } from '../config-schema.js';
import type { ImageDataset } from '../../datasets/types.js';
import type { StageContext } from '../context.js';
import type { Logger } from '../../common/log.js';
import { loadOnFirstUse } from '../../datasets/first-use.js';

/** The dataset as its source loads it (no split or normalisation), from a config's dataset section. */
export function loadRaw(d: DatasetConfig, pathOverride?: string, logger?: Logger): Promise<ImageDataset> {
  return loadOnFirstUse(
    getSource(d.name),
    {
      path: pathOverride ?? d.path,
      cacheDir: d.cacheDir ?? defaultCacheDir(),
      labelMode: d.labelMode,
      imageSize: d.imageSize,
      channels: d.channels,
      testFraction: d.testFraction,
      trainCount: d.trainCount,
      testCount: d.testCount,
      numClasses: d.numClasses,
      seed: d.seed,
    },
    logger,
  );
}

export async function loadPrepared(d: DatasetConfig, logger?: Logger): Promise<PreparedData> {
  const ds = await loadRaw(d, undefined, logger);
  return prepareData(ds, {
    normalize: d.normalize,
    validation: d.validation,
    seed: d.seed,
    trainLimit: d.trainLimit,
    validationLimit: d.validationLimit,
    testLimit: d.testLimit,
  });
}

/** Loads and prepares the dataset (every run: nothing to resume, it is read-only). */
export async function dataStage(ctx: StageContext): Promise<void> {
  const t0 = performance.now();
  const data = await loadPrepared(ctx.config.dataset, ctx.logger);
  ctx.data = data;
  ctx.results.dataset = {
    name: data.name,
    source: data.source,
    synthetic: data.synthetic,
    shape: data.shape,
    numClasses: data.numClasses,
    train: data.train.count,
    validation: data.validation.count,
    test: data.test.count,
    normalization: data.normalization,
  };
  ctx.logger.info(
    `dataset ${data.name}${data.synthetic ? ' (SYNTHETIC, tests only)' : ''}: ${data.train.count} train, ${data.validation.count} validation, ${data.test.count} test, shape ${data.shape.join('x')} from ${data.source} (${((performance.now() - t0) / 1000).toFixed(1)}s)`,
  );
}
