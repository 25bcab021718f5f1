import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import type { BlockSpec } from '../../train/zoo/blocks.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { expectPlanMatchesModel } from '../helpers/ckks-triple.js';

/**
 * A tiny Fire module and a tiny mobile block (random weights, random input:
 * tests only) under real CKKS at N=8192 — a 30-bit scale with 4 bits of
 * headroom (their outputs stay below 1) fits their 3–5 levels: tfjs ≈
 * simulator ≈ node-seal, and static, simulator and node-seal op counts
 * equal. The mobile block without its middle activation runs split (two
 * steps) and fused (one).
 */
const cases: [string, BlockSpec, 'split' | 'fused'][] = [
  ['Fire module', { kind: 'fire', squeeze: 2, expand: 2, pool: false }, 'split'],
  ['mobile block, middle activation', { kind: 'mobile', filters: 3, middleActivation: true, pool: false }, 'split'],
  ['mobile block, no middle activation, split', { kind: 'mobile', filters: 3, middleActivation: false, pool: false }, 'split'],
  ['mobile block, no middle activation, fused', { kind: 'mobile', filters: 3, middleActivation: false, pool: false }, 'fused'],
];

test.each(cases)(
  '%s: tfjs ≈ simulator ≈ node-seal, identical op counts',
  async (_, block, factorized) => {
    await initBackend('wasm');
    const model = withSeededRandom(7, () =>
      buildModel(modelSchema.parse({ name: 'squeezenet', blocks: [block], batchNorm: false, activation: 'quadratic' }), {
        inputShape: [4, 4, 2],
        numClasses: 3,
      }),
    );
    const plan = compileChain(lowerModel(model), { factorized, scaleBits: 30, headroomBits: 4 });
    expect(plan.params.polyModulusDegree).toBe(8192);
    await expectPlanMatchesModel(plan, model, [4, 4, 2], 7);
  },
  120_000,
);
