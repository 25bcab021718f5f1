import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { Rng } from '../common/rng.js';
import { DivergenceError } from '../common/errors.js';
import { recoverReplacedDir } from '../common/atomic-write.js';
import type { Logger } from '../common/log.js';
import { batchIndices, batchLabels, batchPixels, type PreparedData } from '../datasets/prepare.js';
import { loadCheckpointState, loadModel, loadOptimizerState, saveCheckpoint } from './checkpoint.js';
import { evaluateSplit, type SplitMetrics } from './evaluate-model.js';
import { writeMetricsCsv, type EpochMetrics } from './metrics-csv.js';
import { writeTrainingCurves } from './curves.js';
import { makeEngine } from './engine.js';
import type { BackendName } from './backend.js';
import type { KernelMasks } from './kernel-masks.js';
import { learningRateAt } from './optimizer.js';
import type { TrainConfig } from './options.js';
import { epochProgress } from './progress.js';
import { assertFinite, type StepInput } from './step.js';
import type { Task } from './zoo/common.js';

export interface FitOptions {
  model: tf.LayersModel;
  data: PreparedData;
  task: Task;
  cfg: TrainConfig;
  /** Holds last/ and best/ checkpoints and metrics.csv. */
  dir: string;
  logger: Logger;
  /** The backend initBackend chose (onnx, or the tfjs backend). */
  backend: BackendName;
  /** Kernels held at these masks after every optimizer step (pruning's fine-tuning). */
  masks?: KernelMasks;
}

interface TrainState {
  epoch: number;
  history: EpochMetrics[];
  bestEpoch: number;
  bestScore: number | null;
  /** The loss of the run's first step: the explosion guard's yardstick, kept so a resumed run judges by the same one. */
  firstLoss?: number;
  [k: string]: unknown;
}

export interface FitResult {
  history: EpochMetrics[];
  bestEpoch: number;
  /** The model with the best validation weights loaded. */
  model: tf.LayersModel;
  resumedFrom: number;
  /** The engine that ran: 'onnx', or the tfjs backend (also when onnx fell back). */
  backend: string;
}

/** Higher is better: validation accuracy for classifiers, -loss for autoencoders. */
const score = (task: Task, m: SplitMetrics) => (task === 'classification' ? m.accuracy! : -m.loss);

export async function fit(o: FitOptions): Promise<FitResult> {
  const { model, data, task, cfg, logger } = o;
  const lastDir = join(o.dir, 'last'),
    bestDir = join(o.dir, 'best');
  // A checkpoint an interrupted run was replacing is finished or put back first (never a silent restart from epoch 1).
  await recoverReplacedDir(lastDir);
  await recoverReplacedDir(bestDir);
  const engine = await makeEngine({ model, data, task, cfg, backend: o.backend, masks: o.masks, logger });
  // Gradient workers are threads and sessions hold native memory: close them on every path (a failed resume, a divergence).
  let state: TrainState = { epoch: 0, history: [], bestEpoch: -1, bestScore: null };
  let resumedFrom = 0;
  try {
    const saved = (await loadCheckpointState(lastDir)) as TrainState | undefined;
    if (saved) {
      const restored = await loadModel(lastDir);
      model.setWeights(restored.getWeights());
      restored.dispose();
      await engine.reload();
      await loadOptimizerState(lastDir, engine.optimizerState);
      state = saved;
      logger.info(`resuming training at epoch ${state.epoch + 1}/${cfg.epochs} from ${lastDir}`);
    }
    resumedFrom = state.epoch;

    const explosion = explosionGuard(state);
    const evalSplit = data.validation.count > 0 ? data.validation : data.test;
    const evalName = data.validation.count > 0 ? 'val' : 'test';
    const steps = Math.ceil(data.train.count / cfg.batchSize);

    for (let epoch = state.epoch; epoch < cfg.epochs; epoch++) {
      const t0 = performance.now();
      // A fresh RNG per epoch from (seed, epoch): a resumed run shuffles exactly as an uninterrupted one.
      const rng = new Rng(cfg.seed * 1000003 + epoch);
      const bar = epochProgress(`epoch ${epoch + 1}/${cfg.epochs}`, steps, logger);
      let lossSum = 0,
        correct = 0,
        seen = 0,
        step = 0,
        lr = learningRateAt(cfg, epoch),
        dataMs = 0;
      const batches = batchIndices(data.train.count, cfg.batchSize, rng)[Symbol.iterator]();
      // Batches are prepared between steps, in the order an uninterrupted run draws its RNG; their time is reported.
      const prepare = (): StepInput | undefined => {
        const t = performance.now();
        const it = batches.next();
        if (it.done) return undefined;
        const idx = it.value;
        const b = {
          xs: batchPixels(data.train, idx, data.shape, data.normalization, { ...cfg.augment, rng }),
          labels: batchLabels(data.train, idx),
          count: idx.length,
        };
        dataMs += performance.now() - t;
        return b;
      };
      for (let b = prepare(); b;) {
        lr = learningRateAt(cfg, epoch + step / steps);
        const pending = engine.step(b, lr);
        const next = prepare();
        const g = await pending;
        assertFinite(g.lossSum, `epoch ${epoch + 1}, step ${step + 1}`);
        explosion.check(g.lossSum / b.count, `epoch ${epoch + 1}, step ${step + 1}`);
        lossSum += g.lossSum;
        correct += g.correct;
        seen += b.count;
        step++;
        bar.update(step, { loss: lossSum / seen, acc: task === 'classification' ? correct / seen : undefined });
        b = next;
      }
      bar.stop();
      const trainSeconds = (performance.now() - t0) / 1000;
      await engine.sync();
      const val = engine.evaluate
        ? await engine.evaluate(evalSplit, { normalization: data.normalization, batchSize: cfg.evalBatchSize })
        : await evaluateSplit(model, evalSplit, {
            task,
            normalization: data.normalization,
            shape: data.shape,
            numClasses: data.numClasses,
            batchSize: cfg.evalBatchSize,
          });
      assertFinite(val.loss, `epoch ${epoch + 1} ${evalName} evaluation`);
      const row: EpochMetrics = {
        // The rate of the epoch's last step: its first would read 1% of the rate for a warm-up epoch.
        epoch: epoch + 1,
        learningRate: lr,
        trainLoss: lossSum / seen,
        trainAccuracy: task === 'classification' ? correct / seen : undefined,
        valLoss: val.loss,
        valAccuracy: val.accuracy,
        seconds: +((performance.now() - t0) / 1000).toFixed(2),
        msPerStep: +((trainSeconds * 1000) / steps).toFixed(2),
        dataMsPerStep: +(dataMs / steps).toFixed(2),
      };
      state.history.push(row);
      const s = score(task, val);
      const improved = state.bestScore === null || s > state.bestScore;
      if (improved) {
        state.bestScore = s;
        state.bestEpoch = epoch + 1;
      }
      state.epoch = epoch + 1;
      // best/ first: if interrupted between the two writes, last/ (older) is replayed and best/ stays consistent.
      if (improved)
        await saveCheckpoint(bestDir, model, { epoch: epoch + 1, [`${evalName}Loss`]: val.loss, [`${evalName}Accuracy`]: val.accuracy });
      await saveCheckpoint(lastDir, model, state, engine.optimizerState);
      await writeMetricsCsv(join(o.dir, 'metrics.csv'), state.history);
      // A picture of the same numbers; a failure to draw it never stops the training.
      await writeTrainingCurves(join(o.dir, 'curves'), state.history, `${model.name}: training curves`).catch((e) =>
        logger.warn(`train: curves not drawn: ${(e as Error).message}`),
      );
      logger.info(
        `epoch ${epoch + 1}/${cfg.epochs}: train loss ${row.trainLoss.toFixed(4)}` +
          (row.trainAccuracy !== undefined ? ` acc ${(100 * row.trainAccuracy).toFixed(2)}%` : '') +
          `, ${evalName} loss ${val.loss.toFixed(4)}` +
          (val.accuracy !== undefined ? ` acc ${(100 * val.accuracy).toFixed(2)}%` : '') +
          `, ${row.seconds}s (${row.msPerStep} ms/step, batches ${row.dataMsPerStep} ms of it)${improved ? ' *best' : ''}`,
      );
    }
  } finally {
    await engine.close();
  }

  const best = await loadModel(state.bestEpoch > 0 ? bestDir : lastDir);
  model.setWeights(best.getWeights());
  best.dispose();
  return { history: state.history, bestEpoch: state.bestEpoch, model, resumedFrom, backend: engine.name };
}

/**
 * A finite loss can still mean a dead model (Adam at a learning rate of 10
 * reaches 1e15 within two steps and stays there): the loss of the run's first
 * step, before any update, is the yardstick (kept in the checkpoint state),
 * and a batch 10,000 times worse (and above 1) stops the training.
 */
function explosionGuard(state: { firstLoss?: number }): { check(loss: number, where: string): void } {
  return {
    check(loss, where) {
      const ref = state.firstLoss;
      if (ref === undefined) {
        state.firstLoss = loss;
        return;
      }
      if (loss > 1 && loss > 1e4 * ref) {
        throw new DivergenceError(
          `training diverged: the loss rose to ${loss.toExponential(2)} at ${where}, ${(loss / ref).toExponential(1)} times its first step's (${ref.toPrecision(3)}). ` +
            'Try a lower train.learningRate, train.warmupEpochs, train.clipNorm, or model.batchNorm: true. No checkpoint was written for this epoch.',
        );
      }
    },
  };
}
