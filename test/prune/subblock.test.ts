import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts } from '../../plan/cost.js';
import type { Plan } from '../../plan/plan.js';
import { mapSteps } from '../../plan/provenance.js';
import { convSubBlocks, denseSubBlocks, residualShortcuts, stepOfLayer } from '../../prune/subblocks.js';
import { applyMasks, kernelValues, maskSparsity } from '../../prune/masks.js';
import { selectMagnitude, selectSubBlocks, selectSubBlocksPerLayer } from '../../prune/select.js';
import { syntheticSource } from '../../datasets/synthetic.js';
import { prepareData } from '../../datasets/prepare.js';
import { fit } from '../../train/fit.js';
import { trainSchema } from '../../train/options.js';
import { tempDir } from '../helpers/tmp.js';
import { silentLogger } from '../../common/log.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** A small LeNet-5 (conv2 16→16 in 2 groups) compiled with power-of-two blocks. */
function setup(seed: number) {
  const m = withSeededRandom(seed, () =>
    buildModel(modelSchema.parse({ name: 'lenet5', conv1: 16, conv2: 16, groups: 2, hidden: 8 }), {
      inputShape: [12, 12, 1],
      numClasses: 4,
    }),
  );
  const compile = () => compileChain(lowerModel(m), { channelBlocks: 'pow2' });
  return { m, compile, plan: compile() };
}
const mulPlainOf = (plan: Plan, step: string) => planCounts(plan).perStep.find((s) => s.name === step)!.counts.mulPlain;

describe('SpENCNN sub-blocks', () => {
  test('the sub-blocks of a conv are exactly its plan diagonals and partition its kernel', () => {
    const { m, plan } = setup(1);
    const step = stepOfLayer(plan, ['conv2']).get('conv2')!;
    expect(step).toBe('linear2');
    const { blocks } = convSubBlocks(m.getLayer('conv2') as GroupedConv2D, plan, step);
    expect(blocks.length).toBe(mulPlainOf(plan, step));
    const all = blocks.flatMap((b) => b.weights).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: kernelValues(m, 'conv2').length }, (_, i) => i));
    // Dense layers: one sub-block per diagonal of the hybrid product.
    const fc = denseSubBlocks(m.getLayer('fc1'), plan, 'linear3');
    expect(fc.blocks.length).toBe(mulPlainOf(plan, 'linear3'));
    expect(fc.blocks.flatMap((b) => b.weights).sort((a, b) => a - b)).toEqual(
      Array.from({ length: kernelValues(m, 'fc1').length }, (_, i) => i),
    );
    // The first convolution reads the client's input copies: one sub-block per (output ciphertext, tap).
    const first = convSubBlocks(m.getLayer('conv1') as GroupedConv2D, plan, 'linear1');
    expect(first.blocks.length).toBe(mulPlainOf(plan, 'linear1'));
    expect(first.blocks.flatMap((b) => b.weights).sort((a, b) => a - b)).toEqual(
      Array.from({ length: kernelValues(m, 'conv1').length }, (_, i) => i),
    );
    m.dispose();
  });

  test('layers with no activation between them compile into one step, which says so, and sub-block pruning refuses to split it', () => {
    const m = tf.sequential({ name: 'two-dense' });
    m.add(tf.layers.flatten({ inputShape: [4, 4, 1], name: 'flatten' }));
    m.add(tf.layers.dense({ units: 6, name: 'fc1' }));
    m.add(tf.layers.dense({ units: 3, name: 'fc2' }));
    const plan = compileChain(lowerModel(m), {});
    expect(mapSteps(plan).map((s) => s.layers)).toEqual([['fc1', 'fc2']]);
    expect(() => stepOfLayer(plan, ['fc1'])).toThrow('prune: layer fc1 is compiled into plan step linear1 together with fc2');
    expect(() => stepOfLayer(plan, ['fc3'])).toThrow('prune: layer fc3 is in no step of the plan');
    m.dispose();
  });

  test("first-conv sub-blocks in every channel geometry (a strided conv, multiplexed or not) are the plan's diagonals", () => {
    const m = withSeededRandom(7, () =>
      buildModel(modelSchema.parse({ name: 'cryptonets', filters: 12, hidden: 8 }), { inputShape: [16, 16, 1], numClasses: 3 }),
    );
    for (const channelBlocks of ['tight', 'pow2', 'mux'] as const) {
      const plan = compileChain(lowerModel(m), { channelBlocks });
      if (channelBlocks === 'mux') expect(plan.steps[0].out.desc).toContain('4 channels per block');
      const { blocks } = convSubBlocks(m.getLayer('conv1') as GroupedConv2D, plan, 'linear1');
      expect([channelBlocks, blocks.length]).toEqual([channelBlocks, mulPlainOf(plan, 'linear1')]);
    }
    m.dispose();
  });

  test('pruned sub-blocks are whole (block-aligned masks) and plaintext multiplications fall by exactly the blocks pruned', () => {
    const { m, plan, compile } = setup(2);
    const layers = [convSubBlocks(m.getLayer('conv2') as GroupedConv2D, plan, 'linear2')];
    const kernels = new Map([['conv2', kernelValues(m, 'conv2')]]);
    const masks = selectSubBlocks(layers, kernels, 0.5);
    const mask = masks.get('conv2')!;
    expect(maskSparsity(masks)).toBeGreaterThanOrEqual(0.5);
    const prunedBlocks = layers[0].blocks.filter((b) => b.weights.every((i) => mask[i] === 0));
    for (const b of layers[0].blocks) expect(new Set(b.weights.map((i) => mask[i])).size).toBe(1);
    applyMasks(m, masks);
    const after = compile();
    expect(mulPlainOf(after, 'linear2')).toBe(mulPlainOf(plan, 'linear2') - prunedBlocks.length);
    // Whole channel-shift classes went, so rotations fall too.
    expect(planCounts(after).perStep[3].counts.rotate).toBeLessThan(planCounts(plan).perStep[3].counts.rotate);
    m.dispose();
  });

  test('several layers: each is pruned to the target on its own (no layer emptied because its weights are small)', () => {
    const { m, plan } = setup(4);
    const names = ['conv1', 'conv2'];
    const layers = names.map((n, i) => convSubBlocks(m.getLayer(n) as GroupedConv2D, plan, `linear${i + 1}`));
    // conv1's weights shrunk 100x: ranked across layers, it would go first.
    const kernels = new Map(names.map((n) => [n, kernelValues(m, n).map((w) => (n === 'conv1' ? w / 100 : w))]));
    const global = selectSubBlocks(layers, kernels, 0.3);
    const sparsityOf = (masks: Map<string, Float32Array>, n: string) => maskSparsity(new Map([[n, masks.get(n)!]]));
    expect(sparsityOf(global, 'conv1')).toBeGreaterThan(0.6);
    const per = selectSubBlocksPerLayer(layers, kernels, 0.3);
    for (const n of names) {
      expect(sparsityOf(per, n)).toBeGreaterThanOrEqual(0.3);
      expect(sparsityOf(per, n)).toBeLessThan(0.6);
      // Each layer's choice is exactly what pruning it alone would choose.
      expect(per.get(n)).toEqual(selectSubBlocks([layers[names.indexOf(n)]], new Map([[n, kernels.get(n)!]]), 0.3).get(n));
    }
    m.dispose();
  });

  test('a ResNet: shortcut projections join the next step (no step of their own); main-path sub-blocks prune exactly their multiplications', () => {
    const m = withSeededRandom(23, () =>
      buildModel(
        modelSchema.parse({
          name: 'resnet20',
          depth: 8,
          width: 4,
          activation: 'quadratic',
          quadraticInit: { alpha: 0.3, beta: 0.5, c: 0.1 },
        }),
        { inputShape: [8, 8, 3], numClasses: 5 },
      ),
    );
    const compile = () => compileChain(lowerModel(m), { channelBlocks: 'pow2', refresh: { levels: 7, maskBits: 8 } });
    const plan = compile();
    // depth 8: conv1, three blocks of two 3x3 convs, 1x1 projections into stages 2 and 3, the classifier.
    const shortcuts = residualShortcuts(plan);
    expect(shortcuts.size).toBe(2);
    for (const n of shortcuts) expect((m.getLayer(n) as GroupedConv2D).kernelSize).toBe(1);
    expect(() => stepOfLayer(plan, [...shortcuts])).toThrow(/residual input of plan step linear\d+ \(a shortcut projection\)/);
    const main = m.layers
      .filter((l) => (l instanceof GroupedConv2D || l.getClassName() === 'Dense') && !shortcuts.has(l.name))
      .map((l) => l.name);
    const stepOf = stepOfLayer(plan, main);
    // Every other weight layer is a linear step of its own, in network order.
    expect([...stepOf.values()]).toEqual(plan.steps.filter((s) => s.kind === 'linear').map((s) => s.name));
    // The second conv of stage 2 reads the projection as its residual input.
    const convs = [...stepOf.keys()].filter((n) => m.getLayer(n) instanceof GroupedConv2D);
    const layers = convs.slice(1).map((n) => convSubBlocks(m.getLayer(n) as GroupedConv2D, plan, stepOf.get(n)!));
    const kernels = new Map(convs.slice(1).map((n) => [n, kernelValues(m, n)]));
    const masks = selectSubBlocksPerLayer(layers, kernels, 0.4);
    const pruned = layers.reduce((a, l) => a + l.blocks.filter((b) => b.weights.every((i) => masks.get(l.layer)![i] === 0)).length, 0);
    expect(pruned).toBeGreaterThan(0);
    applyMasks(m, masks);
    expect(planCounts(compile()).total.mulPlain).toBe(planCounts(plan).total.mulPlain - pruned);
    m.dispose();
  });

  test('at extreme sparsity every output ciphertext keeps a sub-block, so the plan still compiles', () => {
    const { m, plan, compile } = setup(5);
    const layers = [convSubBlocks(m.getLayer('conv2') as GroupedConv2D, plan, 'linear2')];
    const masks = selectSubBlocks(layers, new Map([['conv2', kernelValues(m, 'conv2')]]), 0.99);
    const mask = masks.get('conv2')!;
    const outs = new Set(layers[0].blocks.map((b) => b.key.split(':')[0]));
    for (const j of outs)
      expect(layers[0].blocks.some((b) => b.key.startsWith(`${j}:`) && b.weights.some((i) => mask[i] !== 0))).toBe(true);
    applyMasks(m, masks);
    expect(() => compile()).not.toThrow();
    m.dispose();
  });

  test('dense sub-blocks: pruning them removes exactly their plaintext multiplications', () => {
    const { m, plan, compile } = setup(6);
    const layers = [denseSubBlocks(m.getLayer('fc1'), plan, 'linear3')];
    const masks = selectSubBlocks(layers, new Map([['fc1', kernelValues(m, 'fc1')]]), 0.5);
    const mask = masks.get('fc1')!;
    const pruned = layers[0].blocks.filter((b) => b.weights.every((i) => mask[i] === 0)).length;
    expect(pruned).toBeGreaterThan(0);
    applyMasks(m, masks);
    expect(mulPlainOf(compile(), 'linear3')).toBe(mulPlainOf(plan, 'linear3') - pruned);
    m.dispose();
  });

  test('unstructured magnitude pruning at the same sparsity saves (almost) no plaintext multiplication', () => {
    const { m, plan, compile } = setup(3);
    const masks = selectMagnitude(new Map([['conv2', kernelValues(m, 'conv2')]]), 0.5);
    expect(maskSparsity(masks)).toBeCloseTo(0.5, 2);
    applyMasks(m, masks);
    expect(mulPlainOf(compile(), 'linear2')).toBeGreaterThanOrEqual(0.95 * mulPlainOf(plan, 'linear2'));
    m.dispose();
  });

  test('fine-tuning with the masks held keeps every pruned weight at exactly zero (SYNTHETIC data)', async () => {
    const { m, plan } = setup(4);
    const masks = selectSubBlocks(
      [convSubBlocks(m.getLayer('conv2') as GroupedConv2D, plan, 'linear2')],
      new Map([['conv2', kernelValues(m, 'conv2')]]),
      0.4,
    );
    applyMasks(m, masks);
    const ds = await syntheticSource.load({ cacheDir: '', trainCount: 64, testCount: 8, imageSize: [12, 12], channels: 1, numClasses: 4 });
    const data = prepareData(ds, { normalize: 'standard', validation: 0.25, seed: 1 });
    const t = await tempDir();
    try {
      const before = kernelValues(m, 'conv2').slice();
      const r = await fit({
        model: m,
        data,
        task: 'classification',
        cfg: trainSchema.parse({ epochs: 2, batchSize: 16, learningRate: 0.01 }),
        dir: t.path,
        logger: silentLogger,
        backend: 'wasm',
        masks,
      });
      // The best checkpoint (what export reads) as well as the live model.
      expect(
        r.model
          .getLayer('conv2')
          .getWeights()[0]
          .dataSync()
          .every((v, i) => masks.get('conv2')![i] !== 0 || v === 0),
      ).toBe(true);
      const w = kernelValues(m, 'conv2'),
        mask = masks.get('conv2')!;
      let moved = 0;
      w.forEach((v, i) => {
        if (mask[i] === 0) expect(Math.abs(v)).toBe(0);
        else if (v !== before[i]) moved++;
      });
      expect(moved).toBeGreaterThan(0);
    } finally {
      await t.cleanup();
      m.dispose();
    }
  });
});
