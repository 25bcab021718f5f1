import type * as tf from '@tensorflow/tfjs';
import type { Normalization } from '../datasets/prepare.js';
import type { Split } from '../datasets/types.js';
import type { OptimizerState } from './checkpoint.js';
import type { SplitMetrics } from './evaluate-model.js';
import type { StepInput } from './step.js';

/** The interfaces training engines implement (train/engine.ts makes one; each engine lives in its own module). */

/** Computes summed gradients for a batch: locally, or sharded over worker threads. */
export interface GradientSource {
  gradients(b: StepInput): Promise<{ lossSum: number; correct: number; grads: tf.Tensor[] }>;
  /** Called after the optimizer step, so replicas can take the new weights. */
  afterUpdate?(): Promise<void>;
  close?(): Promise<void>;
}

/**
 * Runs optimizer steps on a model. The tfjs model stays the model of record:
 * an engine that keeps weights elsewhere writes them back on sync(), and
 * takes them from the model again on reload().
 */
export interface TrainEngine {
  /** What ran: 'onnx' or the tfjs backend. */
  readonly name: string;
  /** One optimizer step on a batch: summed task loss and correct count (a non-finite loss leaves the weights unchanged). */
  step(b: StepInput, lr: number): Promise<{ lossSum: number; correct: number }>;
  sync(): Promise<void>;
  reload(): Promise<void>;
  readonly optimizerState: OptimizerState;
  /** Loss and accuracy on a split with the current weights, where the engine has a faster way than the tfjs model. */
  evaluate?(split: Split, o: { normalization: Normalization; batchSize: number }): Promise<SplitMetrics>;
  close(): Promise<void>;
}
