import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../common/log.js';
import { UserError } from '../common/errors.js';
import type { PreparedData } from '../datasets/prepare.js';
import type { BackendName } from './backend.js';
import { applyKernelMasks, type KernelMasks } from './kernel-masks.js';
import { OnnxEngine } from './onnx/engine.js';
import { UnsupportedLayerError } from './onnx/layers.js';
import { loadOnnxRuntime } from './onnx/runtime.js';
import { makeOptimizer, setLearningRate } from './optimizer.js';
import type { TrainConfig } from './options.js';
import { makeGradientSource } from './parallel/pool.js';
import { applyGradients, computeGradients } from './step.js';
import type { Task } from './zoo/common.js';

export type { OptimizerState } from './checkpoint.js';

export type { GradientSource, TrainEngine } from './engine-types.js';
import type { GradientSource, TrainEngine } from './engine-types.js';

export interface EngineOptions {
  model: tf.LayersModel;
  data: PreparedData;
  task: Task;
  cfg: TrainConfig;
  backend: BackendName;
  masks?: KernelMasks;
  logger: Logger;
}

/** The tfjs path: gradients by tfjs (sharded over worker threads when workers > 1), the update by a tfjs optimizer. */
async function tfjsEngine(o: EngineOptions, backend: BackendName): Promise<TrainEngine> {
  const { model, data, task, cfg } = o;
  const optimizer = makeOptimizer(cfg);
  const ctx = { model, task, numClasses: data.numClasses, shape: data.shape, rangePenalty: cfg.rangePenalty };
  const pool = await makeGradientSource({ model, data, task, workers: cfg.workers, backend, rangePenalty: cfg.rangePenalty });
  const source: GradientSource = pool ?? { gradients: async (b) => computeGradients(ctx, b) };
  return {
    name: backend,
    optimizerState: optimizer,
    async step(b, lr) {
      const g = await source.gradients(b);
      if (!Number.isFinite(g.lossSum)) {
        tf.dispose(g.grads);
        return { lossSum: g.lossSum, correct: g.correct };
      }
      setLearningRate(optimizer, lr);
      applyGradients(model, optimizer, g.grads, b.count, { clipNorm: cfg.clipNorm, weightDecay: cfg.weightDecay, learningRate: lr });
      if (o.masks) applyKernelMasks(model, o.masks);
      await source.afterUpdate?.();
      return { lossSum: g.lossSum, correct: g.correct };
    },
    async sync() {},
    async reload() {
      await source.afterUpdate?.();
    },
    async close() {
      await source.close?.();
      optimizer.dispose();
    },
  };
}

/**
 * The engine for `backend`: onnx where onnxruntime-node loads and every layer
 * of the model has an onnx rule (with backend auto, a model it cannot express
 * falls back to tfjs, and the log says why), tfjs otherwise.
 */
export async function makeEngine(o: EngineOptions): Promise<TrainEngine> {
  if (o.backend !== 'onnx') return tfjsEngine(o, o.backend);
  const { ort, reason } = await loadOnnxRuntime();
  if (!ort) throw new UserError(`train.backend onnx: onnxruntime-node does not load here (${reason}); use train.backend: wasm`);
  try {
    return await OnnxEngine.create({
      ort,
      model: o.model,
      task: o.task,
      numClasses: o.data.numClasses,
      shape: o.data.shape,
      cfg: o.cfg,
      masks: o.masks,
    });
  } catch (e) {
    if (!(e instanceof UnsupportedLayerError)) throw e;
    if (o.cfg.backend === 'onnx') throw new UserError(`train.backend onnx: ${e.message}; use train.backend: wasm`);
    o.logger.warn(`train: ${e.message}; training on wasm instead`);
    return tfjsEngine(o, tf.getBackend() as BackendName);
  }
}
