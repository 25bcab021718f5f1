import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { regroupKernel, transferWeights } from '../../train/transfer-weights.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const ctx = { inputShape: [8, 8, 3] as const, numClasses: 5 };
const vgg = (groups: number[], seed: number) =>
  withSeededRandom(seed, () =>
    buildModel(modelSchema.parse({ name: 'vgg5', activation: 'quadratic', batchNorm: true, filters: [4, 8, 8], groups }), ctx),
  );

/** Zeroes the weights of a ungrouped conv kernel [k,k,cin,cout] that a `groups`-grouped conv does not have. */
function zeroOffDiagonal(layer: GroupedConv2D, groups: number) {
  const [w, ...rest] = layer.getWeights();
  const [kh, kw, cin, cout] = w!.shape as number[];
  const v = w!.dataSync().slice() as Float32Array;
  for (let p = 0; p < kh! * kw!; p++)
    for (let i = 0; i < cin!; i++)
      for (let o = 0; o < cout!; o++) {
        if (Math.floor((i * groups) / cin!) !== Math.floor((o * groups) / cout!)) v[(p * cin! + i) * cout! + o] = 0;
      }
  layer.setWeights([tf.tensor(v, w!.shape), ...rest]);
}

describe('train.init weight transfer', () => {
  test("regroupKernel keeps group g's weights on group g's input channels, from 1 or from coarser groups", () => {
    // k²=1, cin=4, cout=4: value = 10·input + output, so each kept weight says where it came from.
    const dense = Float32Array.from({ length: 16 }, (_, j) => 10 * Math.floor(j / 4) + (j % 4));
    // 2 groups: outputs 0,1 read inputs 0,1; outputs 2,3 read inputs 2,3.
    expect(Array.from(regroupKernel(dense, 1, 4, 4, 1, 2))).toEqual([0, 1, 22, 23, 10, 11, 32, 33]);
    // 4 groups from those 2: output o reads input o only.
    const g2 = regroupKernel(dense, 1, 4, 4, 1, 2);
    expect(Array.from(regroupKernel(g2, 1, 4, 4, 2, 4))).toEqual([0, 11, 22, 33]);
    expect(Array.from(regroupKernel(dense, 1, 4, 4, 1, 4))).toEqual([0, 11, 22, 33]);
    expect(() => regroupKernel(g2, 1, 4, 4, 2, 1)).toThrow(/not a multiple/);
  });

  test('a dense model whose off-diagonal conv blocks are zero computes the same function once regrouped', () => {
    const dense = vgg([1, 1, 1], 1),
      grouped = vgg([1, 2, 2], 2);
    for (const name of ['conv2', 'conv3']) zeroOffDiagonal(dense.getLayer(name) as GroupedConv2D, 2);
    const report = transferWeights(dense, grouped);
    expect(report.regrouped.map((r) => [r.layer, r.from, r.to, +r.keptEnergy.toFixed(6)])).toEqual([
      ['conv2', 1, 2, 1],
      ['conv3', 1, 2, 1],
    ]);
    expect(report.copied).toContain('conv1');
    const x = tf.randomNormal([3, ...ctx.inputShape], 0, 1, 'float32', 7);
    const a = dense.predict(x) as tf.Tensor,
      b = grouped.predict(x) as tf.Tensor;
    dense.dispose(); // the grouped model's weights outlive their source
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);
    expect(tf.max(tf.abs(grouped.predict(x) as tf.Tensor)).dataSync()[0]).toBeGreaterThan(0);
    grouped.dispose();
  });

  test('a kept-energy share below 1 is reported when the off-diagonal blocks are not zero', () => {
    const dense = vgg([1, 1, 1], 1),
      grouped = vgg([1, 2, 2], 2);
    const r = transferWeights(dense, grouped).regrouped.find((g) => g.layer === 'conv2')!;
    // Random weights: about half the squared norm sits on the diagonal blocks of 2 groups.
    expect(r.keptEnergy).toBeGreaterThan(0.3);
    expect(r.keptEnergy).toBeLessThan(0.7);
    dense.dispose();
    grouped.dispose();
  });

  test('a model that does not fit the source is refused, naming the layer and shapes', () => {
    const small = vgg([1, 1, 1], 1);
    const wide = withSeededRandom(3, () =>
      buildModel(
        modelSchema.parse({ name: 'vgg5', activation: 'quadratic', batchNorm: true, filters: [4, 16, 8], groups: [1, 1, 1] }),
        ctx,
      ),
    );
    expect(() => transferWeights(small, wide)).toThrow(
      /layer conv2: weight 0 has shape \[3, 3, 4, 8\] in the source and \[3, 3, 4, 16\] here/,
    );
    const coarse = vgg([1, 2, 2], 4),
      fine = vgg([1, 1, 1], 5);
    expect(() => transferWeights(coarse, fine)).toThrow(/layer conv2: cannot regroup 2 groups into 1/);
    const deeper = withSeededRandom(6, () =>
      buildModel(
        modelSchema.parse({ name: 'vgg5', activation: 'quadratic', batchNorm: true, filters: [4, 8, 8, 8], groups: [1, 1, 1, 1] }),
        ctx,
      ),
    );
    expect(() => transferWeights(small, deeper)).toThrow(/layer conv4 has no layer of that name in the source model/);
    [small, wide, coarse, fine, deeper].forEach((m) => m.dispose());
  });
});
