import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';

/**
 * The fast wasm gradient kernels (Conv2DBackpropFilter/Input, the depthwise
 * convolution's, broadcast batch-norm gradient) against the cpu backend's
 * stock implementations.
 */
type Case = { n: number; h: number; w: number; ci: number; co: number; k: number; s: number; pad: 'same' | 'valid' | number };
const CASES: Case[] = [
  { n: 2, h: 12, w: 12, ci: 3, co: 4, k: 5, s: 1, pad: 'same' },
  { n: 3, h: 13, w: 11, ci: 2, co: 5, k: 5, s: 2, pad: 'valid' },
  { n: 2, h: 8, w: 8, ci: 3, co: 4, k: 3, s: 2, pad: 'same' },
  { n: 2, h: 10, w: 10, ci: 4, co: 6, k: 5, s: 1, pad: 2 },
  { n: 1, h: 10, w: 9, ci: 1, co: 2, k: 3, s: 3, pad: 'same' },
  { n: 4, h: 28, w: 28, ci: 1, co: 5, k: 5, s: 2, pad: 'valid' },
  { n: 2, h: 7, w: 7, ci: 8, co: 8, k: 1, s: 2, pad: 'same' },
];

function pattern(shape: number[], f: (i: number) => number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, (_, i) => f(i)),
    shape,
  );
}

function relErr(a: Float32Array, b: Float32Array): number {
  let m = 0,
    n = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    n = Math.max(n, Math.abs(a[i]));
  }
  return m / Math.max(n, 1e-12);
}

async function convGrads(backend: 'cpu' | 'wasm', c: Case): Promise<[Float32Array, Float32Array]> {
  await initBackend(backend);
  const out = tf.tidy(() => {
    const x = pattern([c.n, c.h, c.w, c.ci], (i) => Math.sin(i * 1.3));
    const w = pattern([c.k, c.k, c.ci, c.co], (i) => Math.cos(i * 0.7));
    const pad =
      typeof c.pad === 'number'
        ? ([
            [0, 0],
            [c.pad, c.pad],
            [c.pad, c.pad],
            [0, 0],
          ] as [[number, number], [number, number], [number, number], [number, number]])
        : c.pad;
    // A non-uniform upstream gradient, so every output position matters.
    const f = (xx: tf.Tensor, ww: tf.Tensor) => {
      const y = tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.s, pad);
      return tf.sum(
        tf.mul(
          y,
          pattern(y.shape, (i) => Math.cos(i * 0.37)),
        ),
      );
    };
    const [gx, gw] = tf.grads(f)([x, w]);
    return [gx.dataSync() as Float32Array, gw.dataSync() as Float32Array];
  });
  return out as [Float32Array, Float32Array];
}

/** Depthwise convolutions (channel multiplier 1): stock wasm has no gradient kernels for them. */
const DEPTHWISE: Case[] = [
  { n: 2, h: 8, w: 8, ci: 3, co: 3, k: 3, s: 1, pad: 'same' },
  { n: 3, h: 9, w: 7, ci: 4, co: 4, k: 3, s: 2, pad: 'same' },
  { n: 2, h: 10, w: 10, ci: 2, co: 2, k: 5, s: 2, pad: 'valid' },
  { n: 1, h: 7, w: 7, ci: 5, co: 5, k: 3, s: 1, pad: 1 },
];

async function depthwiseGrads(backend: 'cpu' | 'wasm', c: Case): Promise<[Float32Array, Float32Array]> {
  await initBackend(backend);
  return tf.tidy(() => {
    const x = pattern([c.n, c.h, c.w, c.ci], (i) => Math.sin(i * 1.3));
    const w = pattern([c.k, c.k, c.ci, 1], (i) => Math.cos(i * 0.7));
    const f = (xx: tf.Tensor, ww: tf.Tensor) => {
      const y = tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.s, c.pad);
      return tf.sum(
        tf.mul(
          y,
          pattern(y.shape, (i) => Math.cos(i * 0.37)),
        ),
      );
    };
    const [gx, gw] = tf.grads(f)([x, w]);
    return [gx.dataSync() as Float32Array, gw.dataSync() as Float32Array] as [Float32Array, Float32Array];
  });
}

describe('wasm training kernels', () => {
  test.each(CASES)('conv2d gradients equal cpu: %o', async (c) => {
    const [cx, cw] = await convGrads('cpu', c);
    const [wx, ww] = await convGrads('wasm', c);
    expect(relErr(cx, wx)).toBeLessThan(1e-4);
    expect(relErr(cw, ww)).toBeLessThan(1e-4);
  });

  test.each(DEPTHWISE)('depthwise conv gradients equal cpu: %o', async (c) => {
    const [cx, cw] = await depthwiseGrads('cpu', c);
    const [wx, ww] = await depthwiseGrads('wasm', c);
    expect(relErr(cx, wx)).toBeLessThan(1e-4);
    expect(relErr(cw, ww)).toBeLessThan(1e-4);
  });

  test('average-pool gradient (broadcast when window = stride) and sums over leading axes equal cpu', async () => {
    const run = async (backend: 'cpu' | 'wasm') => {
      await initBackend(backend);
      return tf.tidy(() => {
        const out: Float32Array[] = [];
        // 8x8 pools evenly; 9x7 leaves a row and a column no window reads; 3-stride-2 windows overlap (stock kernel).
        for (const [h, w, k, s] of [
          [8, 8, 2, 2],
          [9, 7, 2, 2],
          [9, 9, 3, 2],
        ]) {
          const x = pattern([2, h, w, 3], (i) => Math.sin(i * 0.7));
          const f = (a: tf.Tensor) => {
            const y = tf.avgPool(a as tf.Tensor4D, k, s, 'valid');
            return tf.sum(
              tf.mul(
                y,
                pattern(y.shape, (i) => Math.cos(i * 0.3)),
              ),
            );
          };
          out.push(tf.grad(f)(x).dataSync() as Float32Array);
        }
        const t = pattern([3, 4, 5, 6], (i) => Math.sin(i * 0.11) * 3);
        out.push(tf.sum(t, [0, 1, 2]).dataSync() as Float32Array, tf.sum(t, [0, 1, 2], true).dataSync() as Float32Array);
        out.push(
          tf.sum(t, [1, 2]).dataSync() as Float32Array,
          tf.sum(t, -1).dataSync() as Float32Array,
          tf
            .sum(
              pattern([7, 2], (i) => i),
              0,
            )
            .dataSync() as Float32Array,
        );
        return out;
      });
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    expect(wasm.map((a) => a.length)).toEqual(cpu.map((a) => a.length));
    cpu.forEach((g, i) => expect(relErr(g, wasm[i])).toBeLessThan(1e-5));
  });

  test('batch-norm gradient (broadcast, no tile) equals cpu', async () => {
    const run = async (backend: 'cpu' | 'wasm') => {
      await initBackend(backend);
      return tf.tidy(() => {
        const x = pattern([3, 4, 4, 5], (i) => Math.sin(i * 0.9) * 2 + 0.3);
        const mean = pattern([5], (i) => 0.1 * i),
          variance = pattern([5], (i) => 0.5 + 0.2 * i);
        const scale = pattern([5], (i) => 1 + 0.1 * i),
          offset = pattern([5], (i) => -0.2 * i);
        const f = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.batchNorm(a, m, v, o, s, 1e-3),
              pattern([3, 4, 4, 5], (i) => Math.cos(i)),
            ),
          );
        return tf
          .grads(f)([x, mean, variance, scale, offset])
          .map((g) => g.dataSync() as Float32Array);
      });
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cpu.forEach((g, i) => expect(relErr(g, wasm[i])).toBeLessThan(1e-4));
  });

  test('the wasm backend can take a training step through every kernel', async () => {
    await initBackend('wasm');
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, strides: 2, padding: 'same' }),
        tf.layers.batchNormalization(),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3 }),
      ],
    });
    const opt = tf.train.sgd(0.1);
    const before = Float32Array.from(model.getWeights()[0].dataSync());
    const x = tf.randomNormal([4, 8, 8, 2]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3);
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
    const after = model.getWeights()[0].dataSync();
    expect(relErr(before, Float32Array.from(after))).toBeGreaterThan(1e-6);
    tf.dispose([x, y]);
    model.dispose();
    opt.dispose();
  });
});
