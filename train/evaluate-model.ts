import * as tf from '@tensorflow/tfjs';
import { batchIndices, batchLabels, batchPixels, type Normalization } from '../datasets/prepare.js';
import type { Split } from '../datasets/types.js';
import type { Task } from './zoo/common.js';

export interface SplitMetrics {
  loss: number;
  /** Classification only. */
  accuracy?: number;
  count: number;
}

/** Loss for one batch (mean over the batch); classification also counts correct argmaxes. */
export function batchLoss(
  task: Task,
  out: tf.Tensor,
  xs: tf.Tensor,
  labels: tf.Tensor1D,
  numClasses: number,
): { loss: tf.Scalar; correct?: tf.Scalar } {
  if (task === 'reconstruction') {
    return { loss: tf.losses.meanSquaredError(tf.reshape(xs, out.shape), out) as tf.Scalar };
  }
  const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, numClasses), out) as tf.Scalar;
  const correct = tf.sum(tf.cast(tf.equal(tf.argMax(out, -1), labels), 'float32')) as tf.Scalar;
  return { loss, correct };
}

/** Plaintext (tfjs) loss and accuracy of `model` on a whole split, in batches. */
export async function evaluateSplit(
  model: tf.LayersModel,
  split: Split,
  o: {
    task: Task;
    normalization: Normalization;
    shape: readonly [number, number, number];
    numClasses: number;
    batchSize: number;
  },
): Promise<SplitMetrics> {
  let lossSum = 0,
    correct = 0;
  for (const idx of batchIndices(split.count, o.batchSize)) {
    const [l, c] = tf.tidy(() => {
      const xs = tf.tensor4d(batchPixels(split, idx, o.shape, o.normalization), [idx.length, ...o.shape]);
      const ys = tf.tensor1d(batchLabels(split, idx), 'int32');
      const out = model.predict(xs) as tf.Tensor;
      const r = batchLoss(o.task, out, xs, ys, o.numClasses);
      return [tf.mul(r.loss, idx.length), r.correct ?? tf.scalar(0)];
    });
    lossSum += (await l.data())[0];
    correct += (await c.data())[0];
    tf.dispose([l, c]);
  }
  const n = Math.max(split.count, 1);
  return { loss: lossSum / n, accuracy: o.task === 'classification' ? correct / n : undefined, count: split.count };
}
