import { cp, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../../common/errors.js';
import { replaceDirAtomic } from '../../common/atomic-write.js';
import { exists } from '../../datasets/fs-util.js';
import type { StageContext } from '../context.js';
import { fingerprint } from '../run-dir.js';

/**
 * `train.from: <run>`: this run starts from another run's trained model (in
 * the same outDir) instead of training its own, so methods compared in a
 * table prune the very same weights. The checkpoint is copied (atomically)
 * and the source's training fingerprint is inherited: a retrained source
 * invalidates the prune and later stages here.
 */
export async function adoptTrained(ctx: StageContext, from: string): Promise<void> {
  const { run, logger } = ctx;
  const source = resolve(dirname(run.path), from);
  const where = `${run.file('config.yaml')}: train.from`;
  if (source === run.path) throw new UserError(`${where}: "${from}" is this run itself`);
  let state: { stages?: Record<string, { fingerprint: string; result: Record<string, unknown> }> };
  try { state = JSON.parse(await readFile(join(source, 'state.json'), 'utf8')); } catch {
    throw new UserError(`${where}: no run "${from}" in ${dirname(run.path)} (expected ${join(source, 'state.json')}); run its config first`);
  }
  const done = state.stages?.train;
  if (!done || !(await exists(join(source, 'train', 'best', 'model.json')))) throw new UserError(`${where}: run "${from}" has not finished training; run its config first`);
  const fp = fingerprint('from', from, done.fingerprint);
  ctx.fingerprints.train = fp;
  const mine = run.completed('train', fp);
  if (mine && await exists(run.file('train', 'best', 'model.json'))) {
    logger.info(`train: from run ${from} (already copied)`);
    ctx.summary.train = mine.result;
    return;
  }
  await replaceDirAtomic(run.file('train', 'best'), (tmp) => cp(join(source, 'train', 'best'), tmp, { recursive: true }));
  const result = { ...done.result, from, checkpoint: run.file('train', 'best') };
  logger.info(`train: from run ${from} (its best checkpoint, ${String(done.result.epochs)} epochs)`);
  ctx.summary.train = result;
  await run.markDone('train', fp, result);
}
