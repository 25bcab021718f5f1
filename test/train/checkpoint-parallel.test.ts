import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { loadModel, saveCheckpoint, loadCheckpointState, loadOptimizerState } from '../../train/checkpoint.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { applyGradients, computeGradients } from '../../train/step.js';
import { makeGradientSource } from '../../train/parallel/pool.js';
import { syntheticSource } from '../../datasets/synthetic.js';
import { batchLabels, batchPixels, prepareData } from '../../datasets/prepare.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('checkpoints', () => {
  test('a saved model (custom layers included) reloads with identical outputs, optimizer state and state.json', async () => {
    const t = await tempDir();
    try {
      const m = buildModel(modelSchema.parse({ name: 'lenet5', conv1: 8, conv2: 8, groups: 2, hidden: 8 }), {
        inputShape: [28, 28, 1],
        numClasses: 10,
      });
      const opt = tf.train.adam(0.01);
      const x = tf.randomNormal([3, 28, 28, 1]);
      opt.minimize(() => tf.mean(tf.square(m.predict(x) as tf.Tensor)) as tf.Scalar);
      await saveCheckpoint(`${t.path}/ck`, m, { epoch: 4, note: 'x' }, opt);
      const back = await loadModel(`${t.path}/ck`);
      const d = tf.max(tf.abs(tf.sub(m.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor))).dataSync()[0];
      expect(d).toBe(0);
      expect((await loadCheckpointState(`${t.path}/ck`))?.epoch).toBe(4);
      const opt2 = tf.train.adam(0.01);
      expect(await loadOptimizerState(`${t.path}/ck`, opt2)).toBe(true);
      const w1 = await opt.getWeights(),
        w2 = await opt2.getWeights();
      expect(w2.length).toBe(w1.length);
      expect(Array.from(w2[1].tensor.dataSync())).toEqual(Array.from(w1[1].tensor.dataSync()));
    } finally {
      await t.cleanup();
    }
  });

  test('a corrupt weights file is a clear error', async () => {
    const t = await tempDir();
    try {
      const m = buildModel(modelSchema.parse({ name: 'mlp', hidden: [4] }), { inputShape: [4, 4, 1], numClasses: 3 });
      await saveCheckpoint(`${t.path}/ck`, m, { epoch: 1 });
      const { truncate } = await import('node:fs/promises');
      await truncate(`${t.path}/ck/weights.bin`, 10);
      await expect(loadModel(`${t.path}/ck`)).rejects.toThrow(/weights.bin: 10 bytes, model.json describes \d+; the checkpoint is corrupt/);
    } finally {
      await t.cleanup();
    }
  });
});

describe('update step', () => {
  test('decoupled weight decay shrinks kernels by (1 - lr·wd) and leaves biases alone', () => {
    const m = buildModel(modelSchema.parse({ name: 'mlp', hidden: [4] }), { inputShape: [2, 2, 1], numClasses: 3 });
    const before = m.trainableWeights.map((w) => Float32Array.from(w.read().dataSync()));
    const zeros = m.trainableWeights.map((w) => tf.zeros(w.shape as number[]));
    applyGradients(m, tf.train.sgd(0.1), zeros, 1, { clipNorm: null, weightDecay: 0.5, learningRate: 0.1 });
    m.trainableWeights.forEach((w, i) => {
      const after = w.read().dataSync();
      const factor = w.shape.length >= 2 ? 0.95 : 1;
      after.forEach((v, j) => expect(v).toBeCloseTo(before[i][j] * factor, 6));
    });
  });
});

describe('data-parallel gradients', () => {
  test('2 workers give the full-batch gradient (sum over shards equals one thread)', async () => {
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 32, testCount: 4, imageSize: [12, 12], channels: 1 });
    const data = prepareData(ds, { normalize: 'standard', validation: 0, seed: 1 });
    const model = buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 8 }), { inputShape: data.shape, numClasses: 10 });
    const idx = Int32Array.from({ length: 16 }, (_, i) => i);
    const b = { xs: batchPixels(data.train, idx, data.shape, data.normalization), labels: batchLabels(data.train, idx), count: 16 };
    const local = computeGradients({ model, task: 'classification', numClasses: 10, shape: data.shape }, b);
    const pool = (await makeGradientSource({ model, data, task: 'classification', workers: 2, backend: 'wasm' }))!;
    try {
      const par = await pool.gradients({ ...b, xs: b.xs.slice(), labels: b.labels.slice() });
      expect(par.lossSum).toBeCloseTo(local.lossSum, 3);
      expect(par.correct).toBe(local.correct);
      par.grads.forEach((g, i) => {
        const diff = tf.max(tf.abs(tf.sub(g, local.grads[i]))).dataSync()[0];
        const scale = tf.max(tf.abs(local.grads[i])).dataSync()[0];
        expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(scale, 1e-6));
      });
    } finally {
      await pool.close!();
    }
  });

  test("activation range penalty: only out-of-range activations change the gradient, the reported loss stays the task's, workers apply it too", async () => {
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 32, testCount: 4, imageSize: [12, 12], channels: 1 });
    const data = prepareData(ds, { normalize: 'standard', validation: 0, seed: 1 });
    const model = buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 8, activation: 'quadratic' }), {
      inputShape: data.shape,
      numClasses: 10,
    });
    const idx = Int32Array.from({ length: 16 }, (_, i) => i);
    const b = () => ({ xs: batchPixels(data.train, idx, data.shape, data.normalization), labels: batchLabels(data.train, idx), count: 16 });
    const base = { model, task: 'classification' as const, numClasses: 10, shape: data.shape };
    const plain = computeGradients(base, b());
    const loose = computeGradients({ ...base, rangePenalty: { bound: 1e9, weight: 1 } }, b());
    const tight = computeGradients({ ...base, rangePenalty: { bound: 0.01, weight: 1 } }, b());
    const maxDiff = (a: tf.Tensor[], c: tf.Tensor[]) => Math.max(...a.map((g, i) => tf.max(tf.abs(tf.sub(g, c[i]))).dataSync()[0]));
    expect(maxDiff(plain.grads, loose.grads)).toBe(0);
    expect(maxDiff(plain.grads, tight.grads)).toBeGreaterThan(1e-4);
    expect(tight.lossSum).toBeCloseTo(plain.lossSum, 4);
    const pool = (await makeGradientSource({
      model,
      data,
      task: 'classification',
      workers: 2,
      backend: 'wasm',
      rangePenalty: { bound: 0.01, weight: 1 },
    }))!;
    try {
      const par = await pool.gradients(b());
      expect(maxDiff(par.grads, tight.grads)).toBeLessThan(1e-4 * Math.max(1, ...tight.grads.map((g) => tf.max(tf.abs(g)).dataSync()[0])));
    } finally {
      await pool.close!();
    }
  });
});
