import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { Rng } from '../common/rng.js';
import type { Logger } from '../common/log.js';
import { batchIndices, batchLabels, batchPixels, type PreparedData } from '../datasets/prepare.js';
import { loadCheckpointState, loadModel, loadOptimizerState, saveCheckpoint } from './checkpoint.js';
import { evaluateSplit, type SplitMetrics } from './evaluate-model.js';
import { writeMetricsCsv, type EpochMetrics } from './metrics-csv.js';
import { learningRateAt, makeOptimizer, setLearningRate } from './optimizer.js';
import type { TrainConfig } from './options.js';
import { epochProgress } from './progress.js';
import { applyGradients, assertFinite, computeGradients, type StepInput } from './step.js';
import type { Task } from './zoo/common.js';

/** Computes summed gradients for a batch: locally, or sharded over worker threads. */
export interface GradientSource {
  gradients(b: StepInput): Promise<{ lossSum: number; correct: number; grads: tf.Tensor[] }>;
  /** Called after the optimizer step, so replicas can take the new weights. */
  afterUpdate?(): Promise<void>;
  close?(): Promise<void>;
}

export interface FitOptions {
  model: tf.LayersModel;
  data: PreparedData;
  task: Task;
  cfg: TrainConfig;
  /** Holds last/ and best/ checkpoints and metrics.csv. */
  dir: string;
  logger: Logger;
  /** Run after every optimizer step (pruning uses it to hold masks at zero). */
  afterStep?: (model: tf.LayersModel) => void;
  gradientSource?: GradientSource;
}

interface TrainState { epoch: number; history: EpochMetrics[]; bestEpoch: number; bestScore: number | null; [k: string]: unknown }

export interface FitResult {
  history: EpochMetrics[];
  bestEpoch: number;
  /** The model with the best validation weights loaded. */
  model: tf.LayersModel;
  resumedFrom: number;
}

/** Higher is better: validation accuracy for classifiers, -loss for autoencoders. */
const score = (task: Task, m: SplitMetrics) => (task === 'classification' ? m.accuracy! : -m.loss);

export async function fit(o: FitOptions): Promise<FitResult> {
  const { model, data, task, cfg, logger } = o;
  const lastDir = join(o.dir, 'last'), bestDir = join(o.dir, 'best');
  const optimizer = makeOptimizer(cfg);
  const ctx = { model, task, numClasses: data.numClasses, shape: data.shape, rangePenalty: cfg.rangePenalty };
  const local: GradientSource = { gradients: async (b) => computeGradients(ctx, b) };
  const source = o.gradientSource ?? local;

  let state: TrainState = { epoch: 0, history: [], bestEpoch: -1, bestScore: null };
  const saved = (await loadCheckpointState(lastDir)) as TrainState | undefined;
  if (saved) {
    const restored = await loadModel(lastDir);
    model.setWeights(restored.getWeights());
    restored.dispose();
    await loadOptimizerState(lastDir, optimizer);
    state = saved;
    await source.afterUpdate?.();
    logger.info(`resuming training at epoch ${state.epoch + 1}/${cfg.epochs} from ${lastDir}`);
  }
  const resumedFrom = state.epoch;

  const evalSplit = data.validation.count > 0 ? data.validation : data.test;
  const evalName = data.validation.count > 0 ? 'val' : 'test';
  const steps = Math.ceil(data.train.count / cfg.batchSize);

  // Gradient workers are threads: close them on every path (a divergence too), or the process never exits.
  try {
    for (let epoch = state.epoch; epoch < cfg.epochs; epoch++) {
      const t0 = performance.now();
      // A fresh RNG per epoch from (seed, epoch): a resumed run shuffles exactly as an uninterrupted one.
      const rng = new Rng(cfg.seed * 1000003 + epoch);
      const bar = epochProgress(`epoch ${epoch + 1}/${cfg.epochs}`, steps, logger);
      let lossSum = 0, correct = 0, seen = 0, step = 0, lr = learningRateAt(cfg, epoch);
      for (const idx of batchIndices(data.train.count, cfg.batchSize, rng)) {
        lr = learningRateAt(cfg, epoch + step / steps);
        setLearningRate(optimizer, lr);
        const aug = { ...cfg.augment, rng };
        const b: StepInput = { xs: batchPixels(data.train, idx, data.shape, data.normalization, aug), labels: batchLabels(data.train, idx), count: idx.length };
        const g = await source.gradients(b);
        assertFinite(g.lossSum, `epoch ${epoch + 1}, step ${step + 1}`);
        applyGradients(model, optimizer, g.grads, b.count, { clipNorm: cfg.clipNorm, weightDecay: cfg.weightDecay, learningRate: lr });
        o.afterStep?.(model);
        await source.afterUpdate?.();
        lossSum += g.lossSum; correct += g.correct; seen += b.count; step++;
        bar.update(step, { loss: lossSum / seen, acc: task === 'classification' ? correct / seen : undefined });
      }
      bar.stop();
      const trainSeconds = (performance.now() - t0) / 1000;
      const val = await evaluateSplit(model, evalSplit, { task, normalization: data.normalization, shape: data.shape, numClasses: data.numClasses, batchSize: cfg.evalBatchSize });
      assertFinite(val.loss, `epoch ${epoch + 1} ${evalName} evaluation`);
      const row: EpochMetrics = {
        // The rate of the epoch's last step: its first would read 1% of the rate for a warm-up epoch.
        epoch: epoch + 1, learningRate: lr, trainLoss: lossSum / seen,
        trainAccuracy: task === 'classification' ? correct / seen : undefined,
        valLoss: val.loss, valAccuracy: val.accuracy, seconds: +((performance.now() - t0) / 1000).toFixed(2),
        msPerStep: +((trainSeconds * 1000) / steps).toFixed(2),
      };
      state.history.push(row);
      const s = score(task, val);
      const improved = state.bestScore === null || s > state.bestScore;
      if (improved) { state.bestScore = s; state.bestEpoch = epoch + 1; }
      state.epoch = epoch + 1;
      // best/ first: if interrupted between the two writes, last/ (older) is replayed and best/ stays consistent.
      if (improved) await saveCheckpoint(bestDir, model, { epoch: epoch + 1, [`${evalName}Loss`]: val.loss, [`${evalName}Accuracy`]: val.accuracy });
      await saveCheckpoint(lastDir, model, state, optimizer);
      await writeMetricsCsv(join(o.dir, 'metrics.csv'), state.history);
      logger.info(`epoch ${epoch + 1}/${cfg.epochs}: train loss ${row.trainLoss.toFixed(4)}` +
        (row.trainAccuracy !== undefined ? ` acc ${(100 * row.trainAccuracy).toFixed(2)}%` : '') +
        `, ${evalName} loss ${val.loss.toFixed(4)}` + (val.accuracy !== undefined ? ` acc ${(100 * val.accuracy).toFixed(2)}%` : '') +
        `, ${row.seconds}s (${row.msPerStep} ms/step)${improved ? ' *best' : ''}`);
    }
  } finally {
    await source.close?.();
  }

  const best = await loadModel(state.bestEpoch > 0 ? bestDir : lastDir);
  model.setWeights(best.getWeights());
  best.dispose();
  optimizer.dispose();
  return { history: state.history, bestEpoch: state.bestEpoch, model, resumedFrom };
}
