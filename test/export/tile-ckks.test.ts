import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts } from '../../plan/cost.js';
import { CkksTriple, expectEquivalent } from '../helpers/ckks-triple.js';
import { maxAbsDiff } from '../helpers/simulate.js';

/**
 * Tile-tensor kernels under real CKKS: a small MLP whose second layer reads
 * along r after the first summed along c, so the plan holds both tile
 * orientations and a replicate step; with pruned tiles and a dead tile row.
 * tfjs ≈ simulator ≈ node-seal, identical op counts.
 */
test('tiled MLP with a replicate step and pruned tiles: tfjs ≈ simulator ≈ node-seal, identical op counts', async () => {
  await initBackend('wasm');
  const model = withSeededRandom(12, () =>
    buildModel(modelSchema.parse({ name: 'mlp', hidden: [40], activation: 'square' }), { inputShape: [6, 6, 1], numClasses: 5 }),
  );
  // Prune the first layer's weights from inputs 0..15: with 16-input tiles that is one whole tile, which then costs nothing.
  const fc1 = model.getLayer('fc1');
  const [k, b] = fc1.getWeights();
  const mask = tf.tensor2d(
    Array.from({ length: 36 * 40 }, (_, e) => (Math.floor(e / 40) < 16 ? 0 : 1)),
    [36, 40],
  );
  const masked = tf.mul(k, mask);
  fc1.setWeights([masked, b]);
  tf.dispose([masked, mask]);
  const params = { polyModulusDegree: 8192, coeffModulusBits: [40, 30, 30, 30, 30, 40], scaleBits: 30 };
  // First layer reads along c (16 per tile), outputs along r (256 per tile); the second reads along r: replicate first.
  const plan = compileChain(lowerModel(model), { tiles: { t1: 256, t2: 16, first: 'inner' }, params });
  expect(plan.steps.map((s) => s.kind)).toEqual(['linear', 'square', 'linear', 'linear']);
  expect(plan.steps[2].name).toBe('replicate1');
  // Layer 1: 3 input tiles (36 along 16) × 1 output tile (40 along 256), one pruned; the replicate mask; layer 2: 1 × 1.
  expect(planCounts(plan).total.mulPlain).toBe(2 + 1 + 1);
  const triple = await CkksTriple.open(plan);
  try {
    const x = tf.randomNormal([1, 6, 6, 1], 0, 1, 'float32', 12);
    const ref = (model.predict(x) as tf.Tensor).dataSync();
    const r = triple.infer(x.dataSync());
    expectEquivalent(r, ref, planCounts(plan).total);
    // Tighter than the shared 2e-2 for this shallow net.
    expect(maxAbsDiff(r.ckks, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-2);
    x.dispose();
  } finally {
    triple.close();
    model.dispose();
  }
}, 120_000);

/**
 * A CNN with every dense layer tiled (export.tileFirstDense): the rows step
 * (masks, rotations by whole rows of t2 slots) and both tile orientations
 * under real CKKS, with the first dense layer's tiles over one conv row pruned.
 */
test('CNN with its first dense layer tiled (rows step) and a pruned tile: tfjs ≈ simulator ≈ node-seal, identical op counts', async () => {
  await initBackend('wasm');
  const model = withSeededRandom(13, () =>
    buildModel(modelSchema.parse({ name: 'vgg5', filters: [2, 4], groups: [1, 1], dense: [12], activation: 'square', batchNorm: false }), {
      inputShape: [8, 8, 1],
      numClasses: 5,
    }),
  );
  // Rows of 16 slots: the conv output spans several, one input tile each.
  const S = compileChain(lowerModel(model), { tiles: 'auto', tileFirstDense: true, scaleBits: 30 }).slots;
  const o = { tiles: { t1: S / 16, t2: 16 }, tileFirstDense: true, scaleBits: 30 };
  const dense = compileChain(lowerModel(model), o);
  expect(dense.steps.map((s) => s.name)).toEqual([
    'linear1',
    'square1',
    'pool1',
    'linear2',
    'square2',
    'pool2',
    'rows2',
    'linear3',
    'square3',
    'replicate3',
    'linear4',
  ]);
  // Zero fc1's weights from the elements of the first conv row: that input tile and its rows ciphertext go.
  const rows = dense.steps[6];
  const firstRow = Array.from(rows.out.slotOf.keys()).filter((e) => Math.floor(rows.out.slotOf[e] / dense.slots) === 0);
  expect(rows.out.cts).toBeGreaterThan(1);
  const fc1 = model.getLayer('fc1');
  const [k, b] = fc1.getWeights();
  const [nIn, nOut] = k.shape;
  const mask = tf.tensor2d(
    Array.from({ length: nIn * nOut }, (_, e) => (firstRow.includes(Math.floor(e / nOut)) ? 0 : 1)),
    [nIn, nOut],
  );
  const masked = tf.mul(k, mask);
  fc1.setWeights([masked, b]);
  tf.dispose([masked, mask]);
  const plan = compileChain(lowerModel(model), o);
  const perStep = (p: typeof plan, n: string) => planCounts(p).perStep.find((s) => s.name === n)!.counts.mulPlain;
  expect(perStep(plan, 'linear3')).toBe(perStep(dense, 'linear3') - Math.ceil(12 / dense.tiles!.t1));
  // The row nothing reads any more is never masked or copied.
  expect(perStep(plan, 'rows2')).toBe(perStep(dense, 'rows2') - 1);
  expect(plan.steps[6].out.cts).toBe(rows.out.cts - 1);
  const triple = await CkksTriple.open(plan);
  try {
    const x = tf.randomNormal([1, 8, 8, 1], 0, 1, 'float32', 13);
    const ref = (model.predict(x) as tf.Tensor).dataSync();
    expectEquivalent(triple.infer(x.dataSync()), ref, planCounts(plan).total);
    x.dispose();
  } finally {
    triple.close();
    model.dispose();
  }
}, 180_000);
