import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../../common/errors.js';
import { exists } from '../../datasets/fs-util.js';
import type { StageContext } from '../context.js';
import { finishedEntry, ZOO_PREFIX } from '../zoo/store.js';

export interface TrainedSource {
  /** The source run's directory. */
  path: string;
  /** Its best checkpoint. */
  checkpoint: string;
  /** Its finished train stage: the fingerprint ties this run's stages to that training. */
  done: { fingerprint: string; result: Record<string, unknown> };
}

/**
 * Another run of the same outDir, or a zoo entry (`zoo:<name>`), whose
 * trained model this run starts from (`train.from`, `train.init`); `key`
 * names the config key in errors.
 */
export async function trainedSource(ctx: StageContext, name: string, key: string, pruned = false): Promise<TrainedSource> {
  const { run } = ctx;
  if (name.startsWith(ZOO_PREFIX)) {
    const e = await finishedEntry(name.slice(ZOO_PREFIX.length), `${run.file('config.yaml')}: ${key}`);
    const p = e.provenance;
    // The weights' hash joins the fingerprint: a replaced zoo entry invalidates what was computed from the old one.
    return {
      path: e.dir,
      checkpoint: e.dir,
      done: {
        fingerprint: `${p.trainFingerprint}:${p.weightsSha256}`,
        result: { ...p.metrics, epochs: p.epochs, bestEpoch: p.bestEpoch, zoo: p.name, commit: p.commit },
      },
    };
  }
  const path = resolve(dirname(run.path), name);
  const where = `${run.file('config.yaml')}: ${key}`;
  if (path === run.path) throw new UserError(`${where}: "${name}" is this run itself`);
  let state: { stages?: Record<string, { fingerprint: string; result: Record<string, unknown> }> };
  try {
    state = JSON.parse(await readFile(join(path, 'state.json'), 'utf8'));
  } catch {
    throw new UserError(`${where}: no run "${name}" in ${dirname(run.path)} (expected ${join(path, 'state.json')}); run its config first`);
  }
  const done = state.stages?.train;
  const checkpoint = join(path, 'train', 'best');
  if (!done || !(await exists(join(checkpoint, 'model.json'))))
    throw new UserError(`${where}: run "${name}" has not finished training; run its config first`);
  if (!pruned) return { path, checkpoint, done };
  const prune = state.stages?.prune;
  const prunedCheckpoint = join(path, 'prune', 'best');
  if (!prune || !(await exists(join(prunedCheckpoint, 'model.json'))))
    throw new UserError(
      `${where} with train.fromPruned: run "${name}" has not finished pruning; run its config (with a prune section) first`,
    );
  // A masking method's zeros would grow back in the next method's fine-tuning (its masks are not carried over): lowrank only.
  if (prune.result.method !== 'lowrank')
    throw new UserError(
      `${where} with train.fromPruned: run "${name}" pruned by ${String(prune.result.method)}; only a lowrank run's model (factorised, no masks to hold) can be pruned again`,
    );
  // The pruned model's figures stand for the training's; its fingerprint covers both stages.
  return {
    path,
    checkpoint: prunedCheckpoint,
    done: {
      fingerprint: `${done.fingerprint}:${prune.fingerprint}`,
      result: { ...done.result, testLoss: prune.result.testLoss, testAccuracy: prune.result.testAccuracy, prunedBy: prune.result.method },
    },
  };
}
