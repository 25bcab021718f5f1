import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts } from '../../plan/cost.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/**
 * SpENCNN group-interleaved encoding: channel c of group g at position c·G + g
 * on both sides of a grouped convolution. Same outputs as contiguous packing
 * and as tfjs's grouped convolution; one rotation per channel shift serves
 * every group, so a grouped layer needs fewer rotations.
 */
describe('group-interleaved encoding', () => {
  test.each([
    [
      'lenet5 (conv2 in 4 groups, two input ciphertexts)',
      { name: 'lenet5', conv1: 64, conv2: 32, groups: 4, hidden: 8, finalPool: 2 },
      [28, 28, 1],
    ],
    ['vgg5 (two grouped convs in a row)', { name: 'vgg5', filters: [8, 16, 16], groups: [1, 4, 4] }, [16, 16, 3]],
  ] as const)(
    '%s: interleaved = contiguous = tfjs on the simulator; interleaved rotates less',
    (_, cfg, shape) => {
      const m = withSeededRandom(4, () =>
        buildModel(modelSchema.parse(cfg), { inputShape: shape as unknown as [number, number, number], numClasses: 5 }),
      );
      const x = tf.randomNormal([1, ...shape], 0, 1, 'float32', 4);
      const ref = (m.predict(x) as tf.Tensor).dataSync();
      const chain = lowerModel(m);
      const plans = (['contiguous', 'interleaved'] as const).map((groupOrder) =>
        compileChain(chain, { groupOrder, channelBlocks: 'pow2' }),
      );
      const scale = Math.max(1, ...Array.from(ref, Math.abs));
      for (const p of plans) expect(maxAbsDiff(simulate(p, x.dataSync()).y, ref) / scale).toBeLessThan(1e-4);
      expect(plans[1].groupOrder).toBe('interleaved');
      expect(plans[1].steps.some((s) => s.out.desc.includes('group-interleaved'))).toBe(true);
      const [contiguous, interleaved] = plans.map((p) => planCounts(p).total);
      expect(interleaved.rotate).toBeLessThan(contiguous.rotate);
      // The weights are the same: as many plaintext multiplications or fewer.
      expect(interleaved.mulPlain).toBeLessThanOrEqual(contiguous.mulPlain);
      m.dispose();
      x.dispose();
    },
    120_000,
  );
});
