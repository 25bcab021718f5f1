import * as tf from '@tensorflow/tfjs';
import { rm } from 'node:fs/promises';
import { UserError } from '../../common/errors.js';
import { availableParallelism } from 'node:os';
import { initBackend } from '../../train/backend.js';
import { loadModel } from '../../train/checkpoint.js';
import { evaluateSplit } from '../../train/evaluate-model.js';
import { fit } from '../../train/fit.js';
import type { TrainConfig } from '../../train/options.js';
import { buildModel, taskOf, type ModelConfig } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import type { StageContext } from '../context.js';
import { trainResultSchema, type TrainResult } from '../stage-results.js';
import { fingerprint } from '../run-dir.js';
import { adoptTrained } from './adopt-trained.js';
import { trainedSource, type TrainedSource } from './trained-source.js';
import { transferWeights, type TransferReport } from '../../train/transfer-weights.js';
import { exists } from '../../datasets/fs-util.js';
import { finishedEntryFor, resumableEntry } from '../zoo/store.js';
import { adoptFromZoo, seedFromZoo } from '../zoo/publish.js';

/** The parts of the config that change what training computes (not how fast or how long). */
function trainInputs(ctx: StageContext, model: ModelConfig, train: TrainConfig, init?: TrainedSource) {
  const { epochs: _e, workers: _w, backend: _b, evalBatchSize: _v, ...rest } = train;
  // A retrained init source changes what this training starts from.
  return { dataset: ctx.config.dataset, model, train: rest, ...(init ? { initTraining: init.done.fingerprint } : {}) };
}

type Tree = { [k: string]: unknown };
const isTree = (v: unknown): v is Tree => !!v && typeof v === 'object' && !Array.isArray(v);

/** The dotted keys where two config trees differ. */
function changedKeys(a: Tree, b: Tree, prefix = ''): string[] {
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  const out: string[] = [];
  for (const k of keys) {
    const x = a?.[k],
      y = b?.[k];
    if (isTree(x) && isTree(y)) out.push(...changedKeys(x, y, `${prefix}${k}.`));
    else if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${prefix}${k}`);
  }
  return out;
}

export function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
}

/** `trained`: the run must already hold this training (a command that only exports or evaluates never trains). */
export async function trainStage(ctx: StageContext, o: { fresh: boolean; trained?: boolean; fromScratch?: boolean }): Promise<void> {
  const { config, run, logger } = ctx;
  if (!config.model) throw new UserError(`${run.file('config.yaml')}: the train stage needs a model section`);
  const modelCfg = config.model,
    trainCfg = config.train!;
  if (trainCfg.from) return adoptTrained(ctx, trainCfg.from, trainCfg.fromPruned);
  const init = trainCfg.init ? await trainedSource(ctx, trainCfg.init, 'train.init') : undefined;
  const inputs = trainInputs(ctx, modelCfg, trainCfg, init);
  const fp = fingerprint(inputs);
  ctx.fingerprints.train = fp;
  const started = run.record('train.started');
  if (started && started.fingerprint !== fp) {
    if (!o.fresh) {
      const changed = changedKeys(started.result, inputs);
      throw new UserError(
        `${run.path} holds training from a different config (changed: ${changed.join(', ') || 'unknown'}). ` +
          'Re-run with --fresh to discard it, or give the run another name.',
      );
    }
  }
  if (o.fresh || (started && started.fingerprint !== fp)) {
    await rm(run.file('train'), { recursive: true, force: true });
    await run.invalidate('train');
  }
  const done = run.finished('train', fp);
  if (done && done.epochs >= trainCfg.epochs) {
    logger.info(`train: already complete (${done.epochs} epochs, best epoch ${done.bestEpoch}); skipped`);
    ctx.results.train = done;
    return;
  }
  const adopted = o.fromScratch || o.fresh ? undefined : await finishedInZoo(ctx, fp);
  if (adopted) {
    ctx.results.train = adopted;
    await run.markDone('train', fp, adopted);
    return;
  }
  if (o.trained) {
    throw new UserError(
      `${run.path} has no finished training for its config` +
        `${done ? ` (${done.epochs} of ${trainCfg.epochs} epochs)` : started ? ' (it was interrupted)' : ''}; finish it first: heprune run ${run.file('config.yaml')}`,
    );
  }
  await run.markDone('train.started', fp, inputs);
  if (!o.fresh) await resumeFromZoo(ctx, fp);

  const backend = await initBackend(trainCfg.backend); // already chosen by the runner: returns it
  const data = ctx.data!;
  const task = taskOf(modelCfg);
  const model = withSeededRandom(trainCfg.seed, () => buildModel(modelCfg, { inputShape: data.shape, numClasses: data.numClasses }));
  const params = countParams(model);
  const initReport = init ? await initFrom(ctx, model, init) : undefined;
  logger.info(
    `train: ${modelCfg.name} (${params} parameters, ${'activation' in modelCfg ? `${modelCfg.activation} activations` : `from ${modelCfg.file}`}) on backend ${backend}${backend === 'onnx' ? ` (onnxruntime-node, ${availableParallelism()} threads)` : `, ${trainCfg.workers} worker(s)`}`,
  );
  const t0 = performance.now();
  const result = await fit({ model, data, task, cfg: trainCfg, dir: run.file('train'), logger, backend });
  const test = await evaluateSplit(result.model, data.test, {
    task,
    normalization: data.normalization,
    shape: data.shape,
    numClasses: data.numClasses,
    batchSize: trainCfg.evalBatchSize,
  });
  const steps = result.history.slice(result.resumedFrom);
  const summary: TrainResult = {
    model: modelCfg.name,
    parameters: params,
    backend: result.backend,
    workers: trainCfg.workers,
    epochs: result.history.length,
    bestEpoch: result.bestEpoch,
    resumedFromEpoch: result.resumedFrom,
    testLoss: test.loss,
    testAccuracy: test.accuracy,
    testCount: test.count,
    ...(task === 'reconstruction' ? { testMse: test.loss } : {}),
    ...(initReport ? { init: { run: trainCfg.init, regrouped: initReport.regrouped } } : {}),
    meanMsPerStep: steps.length ? +(steps.reduce((a, h) => a + h.msPerStep, 0) / steps.length).toFixed(2) : null,
    trainSeconds: +((performance.now() - t0) / 1000).toFixed(1),
    checkpoint: run.file('train', 'best'),
  };
  logger.info(
    `train: test ${task === 'classification' ? `accuracy ${(100 * test.accuracy!).toFixed(2)}%` : `MSE ${test.loss.toExponential(4)}`} (${test.count} images, best epoch ${result.bestEpoch})`,
  );
  model.dispose();
  ctx.results.train = summary;
  await run.markDone('train', fp, summary);
}

/**
 * This very training (same fingerprint), finished and published to the zoo
 * with at least the epochs asked for, is adopted instead of redone: the
 * entry's model becomes this run's best checkpoint and its recorded test
 * figures this stage's result (`--from-scratch` trains anyway). Only for a
 * run with no training of its own under way.
 */
async function finishedInZoo(ctx: StageContext, fp: string): Promise<TrainResult | undefined> {
  const { run, logger, config } = ctx;
  if (await exists(run.file('train', 'last', 'state.json'))) return undefined;
  const entry = await finishedEntryFor(fp);
  if (!entry || entry.provenance.epochs < config.train!.epochs) return undefined;
  await adoptFromZoo(entry.name, run.file('train'));
  const p = entry.provenance;
  logger.info(
    `train: this training is the zoo's finished entry ${entry.name} (${p.epochs} epochs, ${p.commit}): adopted, not redone (--from-scratch trains it here)`,
  );
  return trainResultSchema.parse({
    ...p.metrics,
    epochs: p.epochs,
    bestEpoch: p.bestEpoch,
    zoo: entry.name,
    commit: p.commit,
    checkpoint: run.file('train', 'best'),
  });
}

/**
 * A training begun on another machine and published to the zoo unfinished
 * (heprune zoo publish) continues here: its checkpoints seed this run's
 * train/, which fit() then resumes. Only for a run with no checkpoint of its own.
 */
async function resumeFromZoo(ctx: StageContext, fp: string): Promise<void> {
  if (await exists(ctx.run.file('train', 'last', 'state.json'))) return;
  const entry = await resumableEntry(fp);
  if (!entry) return;
  await seedFromZoo(entry.name, ctx.run.file('train'));
  ctx.logger.info(
    `train: continuing zoo entry ${entry.name}'s training (epoch ${entry.provenance.epochs} of ${entry.provenance.epochsPlanned} done, ${entry.provenance.commit})`,
  );
}

/** Sets the model's weights from the init source's trained model (a resumed run then loads its own checkpoint over them). */
async function initFrom(ctx: StageContext, model: tf.LayersModel, init: TrainedSource): Promise<TransferReport> {
  const source = await loadModel(init.checkpoint);
  try {
    const report = transferWeights(source, model);
    const regrouped = report.regrouped.map(
      (r) => `${r.layer} ${r.from}→${r.to} groups (${(100 * r.keptEnergy).toFixed(1)}% of its kernel's squared norm kept)`,
    );
    ctx.logger.info(
      `train: starting from run ${ctx.config.train!.init}'s weights${regrouped.length ? `; regrouped ${regrouped.join(', ')}` : ''}`,
    );
    return report;
  } catch (e) {
    throw new UserError(
      `${ctx.run.file('config.yaml')}: train.init: run ${ctx.config.train!.init}'s model does not fit this model: ${(e as Error).message}`,
    );
  } finally {
    source.dispose();
  }
}

/** The trained model of a run (best validation checkpoint). */
export async function trainedModel(ctx: StageContext): Promise<tf.LayersModel> {
  return loadModel(ctx.run.file('train', 'best'));
}
