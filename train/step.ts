import * as tf from '@tensorflow/tfjs';
import { DivergenceError } from '../common/errors.js';
import { batchLoss } from './evaluate-model.js';
import { rangePenalty } from './layers/poly-activation.js';
import type { Task } from './zoo/common.js';

export interface StepInput {
  xs: Float32Array;
  labels: Int32Array;
  count: number;
}

export interface StepContext {
  model: tf.LayersModel;
  task: Task;
  numClasses: number;
  shape: readonly [number, number, number];
  /** Activation range penalty (train.rangePenalty): added to the loss, not to the reported loss. */
  rangePenalty?: { bound: number; weight: number };
}

/**
 * Loss and gradients of one (shard of a) batch, gradients in the order of
 * model.trainableWeights. Gradients are summed over the examples (not
 * averaged) so shards from several workers add up to the full-batch gradient.
 */
export function computeGradients(ctx: StepContext, b: StepInput): { lossSum: number; correct: number; grads: tf.Tensor[] } {
  const vars = ctx.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kept: tf.Tensor[] = [];
  let terms: tf.Tensor[] = [];
  const { value, grads } = tf.tidy(() => {
    const xs = tf.tensor4d(b.xs, [b.count, ...ctx.shape]);
    const ys = tf.tensor1d(b.labels, 'int32');
    return tf.variableGrads(() => {
      const rp = ctx.rangePenalty;
      rangePenalty.current = rp ? { bound: rp.bound, terms: [] } : null;
      let out: tf.Tensor;
      try {
        out = ctx.model.apply(xs, { training: true }) as tf.Tensor;
      } finally {
        terms = rangePenalty.current?.terms ?? [];
        rangePenalty.current = null;
      }
      const r = batchLoss(ctx.task, out, xs, ys, ctx.numClasses);
      if (r.correct) kept.push(tf.keep(r.correct));
      kept.push(tf.keep(r.loss));
      const total = rp && terms.length ? tf.add(r.loss, tf.mul(tf.addN(terms), rp.weight)) : r.loss;
      return tf.mul(total, b.count) as tf.Scalar;
    }, vars);
  });
  // The reported loss is the task's (without the penalty), so curves stay comparable.
  const taskLoss = kept[kept.length - 1];
  const lossSum = ctx.rangePenalty ? taskLoss.dataSync()[0] * b.count : value.dataSync()[0];
  const correct = kept.length > 1 ? kept[0].dataSync()[0] : 0;
  tf.dispose([value, ...kept, ...terms]);
  return { lossSum, correct, grads: vars.map((v) => grads[v.name]) };
}

/** Clips the list of gradients to a global L2 norm (in place: the inputs are disposed). */
export function clipByGlobalNorm(grads: tf.Tensor[], clipNorm: number | null): tf.Tensor[] {
  if (clipNorm === null) return grads;
  const norm = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
  if (!Number.isFinite(norm)) return grads; // reported as divergence by the caller
  if (norm <= clipNorm) return grads;
  const scaled = grads.map((g) => tf.mul(g, clipNorm / norm));
  tf.dispose(grads);
  return scaled;
}

export function assertFinite(loss: number, where: string): void {
  if (!Number.isFinite(loss)) {
    throw new DivergenceError(
      `training diverged: loss is ${loss} at ${where}. Polynomial activations amplify large values; ` +
        'try a lower train.learningRate, train.warmupEpochs, model.batchNorm: true, model.activation: quadratic, or a smaller train.clipNorm. ' +
        'No checkpoint was written for this epoch.',
    );
  }
}

export interface UpdateOptions {
  clipNorm: number | null;
  weightDecay: number;
  learningRate: number;
}

/** Applies mean gradients (sum / count) to the model's trainable weights, then decoupled weight decay to kernels. */
export function applyGradients(model: tf.LayersModel, optimizer: tf.Optimizer, summed: tf.Tensor[], count: number, o: UpdateOptions): void {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const mean = summed.map((g) => tf.div(g, count));
  tf.dispose(summed);
  const clipped = clipByGlobalNorm(mean, o.clipNorm);
  const map: tf.NamedTensorMap = {};
  vars.forEach((v, i) => {
    map[v.name] = clipped[i];
  });
  optimizer.applyGradients(map);
  tf.dispose(clipped);
  if (o.weightDecay > 0) {
    // Kernels only (rank >= 2): biases, BN and activation coefficients are not decayed.
    const factor = 1 - o.learningRate * o.weightDecay;
    tf.tidy(() => {
      for (const v of vars) if (v.rank >= 2) v.assign(tf.mul(v, factor));
    });
  }
}
