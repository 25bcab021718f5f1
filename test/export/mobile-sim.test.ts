import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import type { BlockSpec } from '../../train/zoo/blocks.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { serializePlan } from '../../export/artifact.js';
import { planCounts } from '../../plan/cost.js';
import { planDepth, type LinearStep, type Plan } from '../../plan/plan.js';
import { blockLevels } from '../../plan/provenance.js';
import { withSeededRandom } from '../../train/seeded.js';
import { Rng } from '../../common/rng.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';

/**
 * HEMET's blocks compiled and run on the slot simulator against the tfjs
 * model, on random small shapes and random weights (tests only): depthwise
 * convolutions, channel concatenation (a Fire module's two expand branches
 * in one step), and a mobile block's depthwise → pointwise pair with no
 * activation between, split (two steps) or fused (one).
 */
beforeAll(async () => {
  await initBackend('wasm');
});

/** Batch-norm statistics away from the identity, so folding them is exercised. */
function perturbBatchNorm(model: tf.LayersModel, seed: number): void {
  for (const l of model.layers.filter((x) => x.getClassName() === 'BatchNormalization'))
    l.setWeights(
      l
        .getWeights()
        .map((w, i) => tf.tidy(() => tf.add(w, tf.mul(tf.randomUniform(w.shape, 0.1, 0.5, 'float32', seed), i === 3 ? 1 : 0.5)))),
    );
}

/** The plan on the simulator against tfjs on one random input; static counts = simulator counts. */
function expectSimulatesModel(plan: Plan, model: tf.LayersModel, shape: number[], seed: number): void {
  const x = tf.randomNormal([1, ...shape], 0, 1, 'float32', seed);
  const ref = (model.predict(x) as tf.Tensor).dataSync();
  const { y, sim } = simulate(plan, x.dataSync());
  expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
  const { total } = planCounts(plan);
  for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch'] as const)
    expect([k, sim.counts[k]]).toEqual([k, total[k]]);
}

/** Random block lists of 2–3 blocks (conv, Fire, mobile with and without its middle activation), random widths. */
function randomBlocks(r: Rng): BlockSpec[] {
  return Array.from({ length: 2 + r.int(2) }, (_, i): BlockSpec => {
    const pool = i === 0 && r.int(2) === 1;
    const kind = r.int(4);
    if (kind === 0) return { kind: 'conv', filters: 2 + r.int(3), kernelSize: 3, pool };
    if (kind === 1) return { kind: 'fire', squeeze: 1 + r.int(3), expand: 1 + r.int(3), pool };
    return { kind: 'mobile', filters: 2 + r.int(3), middleActivation: kind === 2, pool };
  });
}

function randomSqueezenet(seed: number) {
  const r = new Rng(seed);
  const H = 4 + r.int(5),
    C = 2 + r.int(2);
  const blocks = randomBlocks(r);
  const cfg = modelSchema.parse({
    name: 'squeezenet',
    blocks,
    batchNorm: r.int(2) === 1,
    activation: r.int(2) ? 'square' : 'quadratic',
    quadraticInit: { alpha: 0.2 + r.next(), beta: r.next() - 0.5, c: r.next() - 0.5 },
  });
  const model = withSeededRandom(seed, () => buildModel(cfg, { inputShape: [H, H, C], numClasses: 2 + r.int(3) }));
  perturbBatchNorm(model, seed);
  return { model, shape: [H, H, C], blocks };
}

/** Levels a block costs: conv 2, Fire 4, mobile 4 with its middle activation, else 3 split and 2 fused. */
function expectedLevels(b: BlockSpec, fused: boolean): number {
  if (b.kind === 'conv') return 2;
  if (b.kind === 'fire' || b.middleActivation) return 4;
  return fused ? 2 : 3;
}

describe('HEMET blocks on the slot simulator', () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'random block list %i: simulator = tfjs, split and fused; depth per block as the blocks say',
    (seed) => {
      const { model, shape, blocks } = randomSqueezenet(seed);
      try {
        for (const factorized of ['split', 'fused'] as const) {
          const plan = compileChain(lowerModel(model), { factorized });
          expectSimulatesModel(plan, model, shape, seed);
          const depth = blockLevels(plan);
          expect(depth.map((d) => [d.block, d.levels])).toEqual([
            ...blocks.map((b, i) => [`${b.kind}${i + 1}`, expectedLevels(b, factorized === 'fused')]),
            ['classifier', 1],
          ]);
          expect(depth.reduce((a, d) => a + d.levels, 0)).toBe(planDepth(plan));
          const pairs = blocks.flatMap((b, i) => (b.kind === 'mobile' && !b.middleActivation ? [`mobile${i + 1}`] : []));
          expect((plan.factorized ?? []).map((f) => [f.layers, f.fused])).toEqual(
            pairs.map((n) => [[`${n}_dw`, `${n}_pw`], factorized === 'fused']),
          );
        }
      } finally {
        model.dispose();
      }
    },
  );

  test("a Fire module's expand branches are one linear step holding both layers; the manifest's depth per block", () => {
    const model = withSeededRandom(3, () =>
      buildModel(modelSchema.parse({ name: 'squeezenet', blocks: [{ kind: 'fire', squeeze: 2, expand: 3 }] }), {
        inputShape: [6, 6, 3],
        numClasses: 3,
      }),
    );
    try {
      const plan = compileChain(lowerModel(model));
      const linears = plan.steps.filter((s): s is LinearStep => s.kind === 'linear').map((s) => s.layers);
      expect(linears).toEqual([['fire1_squeeze'], ['fire1_expand1x1', 'fire1_expand3x3'], ['classifier']]);
      expectSimulatesModel(plan, model, [6, 6, 3], 3);
      // The export's manifest reports the depth per block.
      expect(serializePlan(plan, {}).manifest.depthPerBlock).toEqual([
        { block: 'fire1', levels: 4 },
        { block: 'classifier', levels: 1 },
      ]);
    } finally {
      model.dispose();
    }
  });

  test('concatenations of any parts: three branches reading two tensors (one as a residual input), and vectors', () => {
    const model = withSeededRandom(5, () => {
      const conv = (x: tf.SymbolicTensor, name: string, filters: number, kernelSize = 3) =>
        new GroupedConv2D({ name, filters, kernelSize, padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const act = (x: tf.SymbolicTensor, name: string) =>
        new PolyActivation({ name, kind: 'quadratic', init: { alpha: 0.3, beta: 0.5, c: 0.1 } }).apply(x) as tf.SymbolicTensor;
      const cat = (xs: tf.SymbolicTensor[], name: string) => tf.layers.concatenate({ name }).apply(xs) as tf.SymbolicTensor;
      const x = tf.input({ shape: [5, 5, 2] });
      const a1 = act(conv(x, 'ca', 3), 'a1');
      const a2 = act(conv(a1, 'cb', 2), 'a2');
      const a3 = act(cat([conv(a2, 'cc', 2), conv(a1, 'cd', 1, 1), conv(a2, 'ce', 3, 1)], 'cat1'), 'a3');
      const h = tf.layers.flatten({ name: 'flat' }).apply(a3) as tf.SymbolicTensor;
      const d = tf.layers.dense({ name: 'fd', units: 4 }).apply(h) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: tf.layers.dense({ name: 'out', units: 3 }).apply(cat([h, d], 'cat2')) as tf.SymbolicTensor });
    });
    try {
      const plan = compileChain(lowerModel(model));
      expectSimulatesModel(plan, model, [5, 5, 2], 5);
      const steps = plan.steps.filter((s): s is LinearStep => s.kind === 'linear');
      // cc and ce read a2 (the step's input), cd reads a1 (its residual input); cat2 is [I; fd] of a3, composed into out.
      expect(steps.map((s) => [s.layers, s.skip?.layers])).toEqual([
        [['ca'], undefined],
        [['cb'], undefined],
        [['cc', 'ce'], ['cd']],
        [['fd', 'out'], undefined],
      ]);
    } finally {
      model.dispose();
    }
  });

  test.each([
    [1, 6, 3, 1, 'same'],
    [2, 7, 4, 2, 'same'],
    [3, 8, 2, 2, 'valid'],
    [4, 9, 5, 1, 1],
  ] as const)(
    'depthwise conv %i (H %i, C %i, stride %i, padding %s): simulator = tfjs; only kernel-offset diagonals',
    (seed, H, C, stride, padding) => {
      const model = withSeededRandom(seed, () => {
        const m = tf.sequential();
        m.add(new GroupedConv2D({ name: 'dw', filters: C, kernelSize: 3, strides: stride, padding, groups: C, inputShape: [H, H, C] }));
        m.add(new PolyActivation({ name: 'act', kind: 'quadratic', init: { alpha: 0.4, beta: 0.3, c: 0.1 } }));
        m.add(tf.layers.flatten());
        m.add(tf.layers.dense({ name: 'fc', units: 3 }));
        return m;
      });
      try {
        const plan = compileChain(lowerModel(model), { channelBlocks: 'pow2', bsgs: false });
        expectSimulatesModel(plan, model, [H, H, C], seed);
        // Channel c reads only channel c, at the same place in the same ciphertext: every diagonal is a kernel offset.
        const dw = plan.steps.find((s): s is LinearStep => s.kind === 'linear' && s.layers?.[0] === 'dw')!;
        dw.outputs.forEach((o, j) => {
          const terms = o.giants.flatMap((g) => g.terms.map((t) => ({ input: t.input, k: g.giant + t.baby })));
          expect(new Set(terms.map((t) => t.input))).toEqual(new Set([j]));
          expect(new Set(terms.map((t) => t.k)).size).toBeLessThanOrEqual(9);
        });
      } finally {
        model.dispose();
      }
    },
  );

  test('a factorised pair with an activation or another weight layer between its convolutions is refused by name', () => {
    const build = (between: 'act' | 'conv') => {
      const m = tf.sequential();
      m.add(new GroupedConv2D({ name: 'dw', filters: 2, kernelSize: 3, groups: 2, inputShape: [4, 4, 2] }));
      m.add(
        between === 'act'
          ? new PolyActivation({ name: 'act', kind: 'square' })
          : new GroupedConv2D({ name: 'mid', filters: 2, kernelSize: 1 }),
      );
      m.add(new GroupedConv2D({ name: 'pw', filters: 3, kernelSize: 1, factorOf: 'dw' }));
      m.add(tf.layers.flatten());
      return m;
    };
    for (const [between, reads] of [
      ['act', 'no weight layer'],
      ['conv', 'the output of mid'],
    ] as const) {
      const m = build(between);
      expect(() => lowerModel(m)).toThrow(`layer pw: completes the factorised pair of dw (factorOf) but reads ${reads}`);
      m.dispose();
    }
  });

  test('merged and unmerged quadratic activations (maxQuadraticShift) agree on a Fire and a mobile block', () => {
    const model = withSeededRandom(11, () =>
      buildModel(
        modelSchema.parse({
          name: 'squeezenet',
          activation: 'quadratic',
          quadraticInit: { alpha: 0.3, beta: 0.7, c: -0.2 },
          blocks: [
            { kind: 'fire', squeeze: 2, expand: 2, pool: true },
            { kind: 'mobile', filters: 3, middleActivation: false },
          ],
        }),
        { inputShape: [6, 6, 2], numClasses: 3 },
      ),
    );
    perturbBatchNorm(model, 11);
    try {
      const merged = compileChain(lowerModel(model), { factorized: 'split' });
      const unmerged = compileChain(lowerModel(model, { maxQuadraticShift: 0 }), { factorized: 'split' });
      expect(unmerged.steps.filter((s) => s.kind === 'square' && s.linear !== undefined)).toHaveLength(3);
      expect(merged.steps.filter((s) => s.kind === 'square' && s.linear !== undefined)).toHaveLength(0);
      expect(planDepth(unmerged)).toBe(planDepth(merged));
      for (const plan of [merged, unmerged]) expectSimulatesModel(plan, model, [6, 6, 2], 11);
    } finally {
      model.dispose();
    }
  });
});
