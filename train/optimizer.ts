import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from './options.js';

export function makeOptimizer(cfg: TrainConfig): tf.Optimizer {
  switch (cfg.optimizer) {
    case 'sgd':
      return tf.train.sgd(cfg.learningRate);
    case 'momentum':
      return tf.train.momentum(cfg.learningRate, cfg.momentum);
    case 'adam':
      return tf.train.adam(cfg.learningRate);
  }
}

/** Learning rate for `epoch` (fractional: epoch + step/steps), from the configured schedule and warm-up. */
export function learningRateAt(cfg: TrainConfig, epoch: number): number {
  const base = cfg.learningRate;
  if (cfg.warmupEpochs > 0 && epoch < cfg.warmupEpochs) return base * Math.max(epoch / cfg.warmupEpochs, 0.01);
  switch (cfg.schedule) {
    case 'constant':
      return base;
    case 'step':
      return base * cfg.stepGamma ** Math.floor(epoch / cfg.stepEvery);
    case 'cosine': {
      const span = Math.max(cfg.epochs - cfg.warmupEpochs, 1e-9);
      const t = Math.min(Math.max((epoch - cfg.warmupEpochs) / span, 0), 1);
      return base * (0.01 + 0.99 * 0.5 * (1 + Math.cos(Math.PI * t)));
    }
  }
}

/** tfjs optimizers keep the rate in different places: SGD/momentum cache a scalar, Adam reads a field. */
export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}
