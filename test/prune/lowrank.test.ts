import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { pointwiseOf } from '../../train/factorize.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { effectiveKernel, factorKernel, kernelMatrix, lowRankModel, roundRanks, svd } from '../../prune/lowrank.js';
import { pruneSchema } from '../../prune/options.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts, relativeCost } from '../../plan/cost.js';
import type { Plan } from '../../plan/plan.js';
import { mapSteps } from '../../plan/provenance.js';
import { Rng } from '../../common/rng.js';
import { loadExport, writeExport } from '../../export/artifact.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';
import { tempDir } from '../helpers/tmp.js';
import { join } from 'node:path';

beforeAll(async () => {
  await initBackend('wasm');
});

const randomArray = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.next() * 2 - 1);
};

/** ‖A − B‖_F² of two equal-length arrays. */
const sqDist = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  return d;
};

/** The kernel [d, d, C_in, C_out] the factors compute: Σ_j spatial[t, j] · pointwise[j, co]. */
function product(f: { spatial: Float32Array; pointwise: Float32Array }, rank: number, cout: number): Float64Array {
  const n = f.spatial.length / rank,
    k = new Float64Array(n * cout);
  for (let t = 0; t < n; t++)
    for (let co = 0; co < cout; co++)
      for (let j = 0; j < rank; j++) k[t * cout + co] += f.spatial[t * rank + j] * f.pointwise[j * cout + co];
  return k;
}

describe('low-rank factorisation by truncated SVD', () => {
  test.each([
    [3, 4, 6],
    [1, 4, 30],
    [5, 1, 16],
  ])('d %i, C_in %i, C_out %i: orthonormal factors, exact at full rank, Eckart–Young error below it', (d, cin, cout) => {
    const kernel = randomArray(d * d * cin * cout, d * 100 + cout);
    const n = d * d * cin,
      m = cout;
    const { u, s, v, k } = svd(kernelMatrix(kernel, cout), m, n);
    expect(k).toBe(Math.min(m, n));
    for (let i = 1; i < k; i++) expect(s[i]).toBeLessThanOrEqual(s[i - 1]);
    // UᵀU = VᵀV = I.
    for (let a = 0; a < k; a++)
      for (let b = 0; b < k; b++) {
        let uu = 0,
          vv = 0;
        for (let r = 0; r < m; r++) uu += u[r * k + a] * u[r * k + b];
        for (let t = 0; t < n; t++) vv += v[t * k + a] * v[t * k + b];
        expect(uu).toBeCloseTo(a === b ? 1 : 0, 10);
        expect(vv).toBeCloseTo(a === b ? 1 : 0, 10);
      }
    const total = sqDist(kernel, new Float32Array(kernel.length));
    const full = factorKernel(kernel, cout, k);
    expect(full.discarded).toBeCloseTo(0, 12);
    expect(maxAbsDiff(product(full, k, cout), kernel)).toBeLessThan(1e-5);
    for (const r of [1, Math.ceil(k / 2)]) {
      const f = factorKernel(kernel, cout, r);
      const expected = Array.from(s.slice(r)).reduce((a, x) => a + x * x, 0);
      expect(f.discarded).toBeCloseTo(expected, 10);
      // The truncation's error is exactly the discarded singular values' energy (float32 factors: relative 1e-5).
      expect(Math.abs(sqDist(product(f, r, cout), kernel) - expected) / total).toBeLessThan(1e-5);
      // Balanced split: both halves carry √s, so their largest entries are of one size.
      const peak = (a: Float32Array) => Math.max(...Array.from(a, Math.abs));
      expect(peak(f.spatial) / peak(f.pointwise)).toBeLessThan(10);
      expect(peak(f.pointwise) / peak(f.spatial)).toBeLessThan(10);
    }
  });

  test('a factorised model computes the original convolution at full rank and the truncated kernel below it; refactorising reads the pair', () => {
    const model = withSeededRandom(3, () => {
      const m = tf.sequential();
      m.add(new GroupedConv2D({ name: 'conv1', filters: 6, kernelSize: 3, strides: 2, padding: 1, inputShape: [9, 9, 4] }));
      m.add(new PolyActivation({ name: 'act1', kind: 'square' }));
      m.add(tf.layers.flatten({ name: 'flatten' }));
      m.add(tf.layers.dense({ name: 'fc1', units: 3 }));
      return m;
    });
    const conv = model.getLayer('conv1');
    conv.setWeights([conv.getWeights()[0], tf.randomNormal([6], 0, 1, 'float32', 4)]);
    const x = tf.randomNormal([2, 9, 9, 4], 0, 1, 'float32', 5);
    const ref = (model.predict(x) as tf.Tensor).dataSync();
    const full = lowRankModel(model, new Map([['conv1', 6]])).model;
    expect(full.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name)).toEqual([
      'conv1',
      'conv1_1x1',
      'act1',
      'flatten',
      'fc1',
    ]);
    expect(pointwiseOf(full, 'conv1')?.kernelSize).toBe(1);
    expect(maxAbsDiff((full.predict(x) as tf.Tensor).dataSync(), ref) / Math.max(...Array.from(ref, Math.abs))).toBeLessThan(1e-5);
    const low = lowRankModel(full, new Map([['conv1', 2]]));
    const f = factorKernel(effectiveKernel(model, 'conv1').kernel, 6, 2);
    expect(maxAbsDiff(effectiveKernel(low.model, 'conv1').kernel, product(f, 2, 6))).toBeLessThan(1e-5);
    expect(low.discarded.get('conv1')).toBeCloseTo(f.discarded, 4);
    expect((low.model.getLayer('conv1') as GroupedConv2D).filters).toBe(2);
    [model, full, low.model].forEach((m) => m.dispose());
  });

  test('round ranks fall evenly from the full rank to the target; lowrank takes prune.rank and only it does', () => {
    const p = pruneSchema.parse({ method: 'lowrank', rank: { conv1: 4, conv2: 2 }, steps: 3 });
    expect(
      [1, 2, 3].map((r) => [
        ...roundRanks(
          p,
          new Map([
            ['conv1', 16],
            ['conv2', 32],
          ]),
          r,
        ).values(),
      ]),
    ).toEqual([
      [12, 22],
      [8, 12],
      [4, 2],
    ]);
    expect(pruneSchema.safeParse({ method: 'lowrank', sparsity: 0.5 }).success).toBe(false);
    expect(pruneSchema.safeParse({ method: 'subblock', rank: 2 }).success).toBe(false);
    expect(pruneSchema.safeParse({ method: 'lowrank', rank: 2, sparsity: 0.5 }).success).toBe(false);
  });
});

/** The compiler's layer stamps, by step. */
const layersByStep = (plan: Plan) => Object.fromEntries(mapSteps(plan).map((s) => [s.name, s.layers]));

describe('factorised convolutions (model.factorize) in the HE plan', () => {
  const ctx = { inputShape: [8, 8, 3] as [number, number, number], numClasses: 4 };
  const base = { name: 'vgg5', filters: [8, 16], groups: [1, 1], batchNorm: true, activation: 'quadratic' } as const;

  test.each(['split', 'fused', 'auto'] as const)(
    'factorized: %s: simulator = tfjs, counts match; split is two linear steps with no square between; auto is the cheapest',
    (mode) => {
      const dense = withSeededRandom(7, () => buildModel(modelSchema.parse(base), ctx));
      const fact = withSeededRandom(7, () => buildModel(modelSchema.parse({ ...base, factorize: { layers: ['conv2'], rank: 2 } }), ctx));
      expect(fact.layers.map((l) => l.name).filter((n) => n.startsWith('conv'))).toEqual(['conv1', 'conv2', 'conv2_1x1']);
      // Non-trivial batch norm, so folding into the 1×1 half is exercised.
      const bn = fact.getLayer('bn2');
      bn.setWeights(bn.getWeights().map((w, i) => tf.add(w, tf.mul(tf.randomUniform(w.shape, 0.1, 0.5, 'float32', 8), i === 3 ? 1 : 0.5))));
      const chain = lowerModel(fact);
      const classifier = fact.layers[fact.layers.length - 1].name;
      expect(chain.linears.length).toBe(4);
      expect(chain.unsquared).toEqual([undefined, undefined, true, undefined]);
      const plan = compileChain(chain, { factorized: mode });
      const names = plan.steps.map((s) => s.name).filter((n) => !n.startsWith('pool'));
      if (mode === 'split') {
        expect(names).toEqual(['linear1', 'square1', 'linear2', 'linear3', 'square3', 'linear4']);
        expect(plan.factorized).toEqual([{ step: 'linear3', fused: false, layers: ['conv2', 'conv2_1x1'] }]);
        expect(layersByStep(plan)).toEqual({ linear1: ['conv1'], linear2: ['conv2'], linear3: ['conv2_1x1'], linear4: [classifier] });
      }
      if (mode === 'fused') {
        expect(names).toEqual(['linear1', 'square1', 'linear2', 'square2', 'linear3']);
        expect(plan.factorized).toEqual([{ step: 'linear2', fused: true, layers: ['conv2', 'conv2_1x1'] }]);
        // The fused step holds both halves' weights, and says so.
        expect(layersByStep(plan)).toEqual({ linear1: ['conv1'], linear2: ['conv2', 'conv2_1x1'], linear3: [classifier] });
      }
      const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 9);
      const ref = (fact.predict(x) as tf.Tensor).dataSync();
      const { y, sim } = simulate(plan, x.dataSync());
      expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
      const { total } = planCounts(plan);
      for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add'] as const) expect(sim.counts[k]).toBe(total[k]);
      const densePlan = compileChain(lowerModel(dense));
      expect(total.mul).toBe(planCounts(densePlan).total.mul);
      if (mode === 'split') expect(total.mulPlain).toBeLessThan(planCounts(densePlan).total.mulPlain);
      if (mode === 'auto') {
        const costs = (['split', 'fused'] as const).map((m) => relativeCost(compileChain(chain, { factorized: m })));
        expect(relativeCost(plan)).toBe(Math.min(...costs));
      }
      [dense, fact].forEach((m) => m.dispose());
    },
  );

  test.each(['reads', 'both'] as const)(
    'ConvPack %s: one channel per ciphertext between the halves; simulator = tfjs, counts match; the 1×1 step between channel-per-ciphertext layouts has no rotation',
    (pack) => {
      const fact = withSeededRandom(7, () => buildModel(modelSchema.parse({ ...base, factorize: { layers: ['conv2'], rank: 3 } }), ctx));
      const chain = lowerModel(fact);
      const plan = compileChain(chain, { factorized: 'split', convPack: pack });
      expect(plan.factorized).toEqual([{ step: 'linear3', fused: false, channelPerCiphertext: pack, layers: ['conv2', 'conv2_1x1'] }]);
      const at = (name: string) => plan.steps.findIndex((st) => st.name === name);
      // The d×d half writes its 3 channels to 3 ciphertexts; under `both` the 1×1 half writes 16.
      expect(plan.steps[at('linear2')].out.cts).toBe(3);
      expect(plan.steps[at('linear3')].out.cts).toBe(pack === 'both' ? 16 : 1);
      const per = planCounts(plan).perStep;
      if (pack === 'both') {
        expect(per[at('linear3')].counts.rotate).toBe(0);
        expect(per[at('linear3')].counts.mulPlain).toBe(3 * 16);
      }
      const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 9);
      const ref = (fact.predict(x) as tf.Tensor).dataSync();
      const { y, sim } = simulate(plan, x.dataSync());
      expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
      const { total } = planCounts(plan);
      for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add'] as const) expect(sim.counts[k]).toBe(total[k]);
      // Auto compiles none and reads (both only when asked), split and fused, and keeps the cheapest.
      const auto = compileChain(chain);
      const costs = (['none', 'reads'] as const).flatMap((p) =>
        (['split', 'fused'] as const).map((f) => relativeCost(compileChain(chain, { factorized: f, convPack: p }))),
      );
      expect(relativeCost(auto)).toBe(Math.min(...costs));
      fact.dispose();
    },
  );

  test("the export artifact keeps the plan's factorised-convolution record", async () => {
    const fact = withSeededRandom(7, () => buildModel(modelSchema.parse({ ...base, factorize: { layers: ['conv2'], rank: 2 } }), ctx));
    const plan = compileChain(lowerModel(fact), { factorized: 'split', convPack: 'reads' });
    const t = await tempDir();
    try {
      await writeExport(join(t.path, 'export'), plan, {});
      const { plan: back, manifest } = await loadExport(join(t.path, 'export'));
      expect(back.factorized).toEqual([{ step: 'linear3', fused: false, channelPerCiphertext: 'reads', layers: ['conv2', 'conv2_1x1'] }]);
      expect(manifest.factorized).toEqual(back.factorized);
      expect(planCounts(back).total).toEqual(planCounts(plan).total);
    } finally {
      await t.cleanup();
      fact.dispose();
    }
  });

  test("the cost model fuses a pair whose extra level costs more than its split saves (CryptoNets' 1→5 conv: N 8192 fused, 16384 split)", () => {
    const model = withSeededRandom(3, () =>
      buildModel(modelSchema.parse({ name: 'cryptonets', factorize: { layers: ['conv1'], rank: 2 } }), {
        inputShape: [28, 28, 1],
        numClasses: 10,
      }),
    );
    const chain = lowerModel(model);
    const o = { scaleBits: 29, headroomBits: 7 };
    const auto = compileChain(chain, o),
      split = compileChain(chain, { ...o, factorized: 'split' });
    expect(split.params.polyModulusDegree).toBe(16384);
    expect(auto.params.polyModulusDegree).toBe(8192);
    expect(auto.factorized).toEqual([{ step: 'linear1', fused: true, layers: ['conv1', 'conv1_1x1'] }]);
    expect(relativeCost(auto)).toBeLessThan(relativeCost(split));
    model.dispose();
  });
});
