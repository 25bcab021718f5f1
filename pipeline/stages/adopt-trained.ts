import { cp } from 'node:fs/promises';
import { replaceDirAtomic } from '../../common/atomic-write.js';
import { exists } from '../../datasets/fs-util.js';
import type { StageContext } from '../context.js';
import { trainResultSchema } from '../stage-results.js';
import { fingerprint } from '../run-dir.js';
import { trainedSource } from './trained-source.js';
import { ZOO_PREFIX } from '../zoo/store.js';

/**
 * `train.from: <run>`: this run starts from another run's trained model (in
 * the same outDir) instead of training its own, so methods compared in a
 * table prune the very same weights. The checkpoint is copied (atomically)
 * and the source's training fingerprint is inherited: a retrained source
 * invalidates the prune and later stages here. With `train.fromPruned`, the
 * source run's pruned model instead (a second method pruning what a first left).
 */
export async function adoptTrained(ctx: StageContext, from: string, pruned = false): Promise<void> {
  const { run, logger } = ctx;
  const { checkpoint, done } = await trainedSource(ctx, from, 'train.from', pruned);
  const source = from.startsWith(ZOO_PREFIX) ? from : `run ${from}`;
  const fp = pruned ? fingerprint('from', from, 'pruned', done.fingerprint) : fingerprint('from', from, done.fingerprint);
  ctx.fingerprints.train = fp;
  const mine = run.finished('train', fp);
  if (mine && (await exists(run.file('train', 'best', 'model.json')))) {
    logger.info(`train: from ${source} (already copied)`);
    ctx.results.train = mine;
    return;
  }
  await replaceDirAtomic(run.file('train', 'best'), (tmp) => cp(checkpoint, tmp, { recursive: true }));
  const result = trainResultSchema.parse({ ...done.result, from, checkpoint: run.file('train', 'best') });
  logger.info(
    pruned
      ? `train: from ${source}'s pruned model (${String(done.result.prunedBy)})`
      : `train: from ${source} (its best checkpoint, ${String(done.result.epochs)} epochs)`,
  );
  ctx.results.train = result;
  await run.markDone('train', fp, result);
}
