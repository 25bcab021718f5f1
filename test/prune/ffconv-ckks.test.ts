import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts } from '../../plan/cost.js';
import { stepLevels } from '../../plan/plan.js';
import { expectPlanMatchesModel } from '../helpers/ckks-triple.js';

/**
 * Factorised convolutions under real CKKS, for every layout choice: split
 * with channel blocks, with one channel per ciphertext between the halves
 * (reads) or after the 1×1 half too (both), and fused. tfjs ≈ simulator ≈
 * node-seal, and static, simulator and node-seal op counts equal.
 */
/** A small VGG (convs 1→4→6) whose conv2 is factorised to rank 2, seeded. */
const factorisedVgg = (seed: number) =>
  withSeededRandom(seed, () =>
    buildModel(
      modelSchema.parse({
        name: 'vgg5',
        filters: [4, 6],
        groups: [1, 1],
        batchNorm: false,
        activation: 'quadratic',
        factorize: { layers: ['conv2'], rank: 2 },
      }),
      { inputShape: [8, 8, 1], numClasses: 3 },
    ),
  );

const choices = [
  ['split', 'none'],
  ['split', 'reads'],
  ['split', 'both'],
  ['fused', 'none'],
] as const;
test.each(choices)(
  'factorised conv, %s / ConvPack %s: tfjs ≈ simulator ≈ node-seal, identical op counts',
  async (factorized, convPack) => {
    await initBackend('wasm');
    const model = factorisedVgg(5);
    const plan = compileChain(lowerModel(model), { factorized, convPack, channelBlocks: 'pow2' });
    const oneToOne = plan.steps.findIndex((s) => s.name === 'linear3');
    if (convPack === 'both') expect(planCounts(plan).perStep[oneToOne].counts.rotate).toBe(0);
    expect(plan.factorized?.[0].fused).toBe(factorized === 'fused');
    await expectPlanMatchesModel(plan, model, [8, 8, 1], 6);
  },
  300_000,
);

test('export.weightBits: linear steps rescale by weightBits primes, squares by scale-sized ones (fewer modulus bits for the same levels); tfjs ≈ simulator ≈ node-seal', async () => {
  await initBackend('wasm');
  const model = factorisedVgg(6);
  {
    const o = { factorized: 'split', channelBlocks: 'pow2', scaleBits: 40 } as const;
    const uniform = compileChain(lowerModel(model), o);
    const mixed = compileChain(lowerModel(model), { ...o, weightBits: 24 });
    const bits = mixed.params.coeffModulusBits,
      levels = stepLevels(mixed);
    const kinds = mixed.steps.map((s, i) => (s.kind === 'linear' || s.kind === 'square' ? `${s.kind}:${bits[levels[i]]}` : undefined));
    expect(kinds.filter((k) => k?.startsWith('linear')).every((k) => k === 'linear:24')).toBe(true);
    expect(kinds.filter((k) => k?.startsWith('square')).every((k) => k === 'square:40')).toBe(true);
    // Fewer modulus bits for the same levels: what lets a deeper plan stay at its N.
    expect(bits.reduce((a, b) => a + b, 0)).toBeLessThan(uniform.params.coeffModulusBits.reduce((a, b) => a + b, 0));
    expect(planCounts(mixed).total).toEqual(planCounts(uniform).total);
    await expectPlanMatchesModel(mixed, model, [8, 8, 1], 6); // disposes the model
  }
}, 300_000);
