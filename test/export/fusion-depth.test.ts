import { compileChain } from '../../export/compile.js';
import { lowerModel } from '../../export/lower.js';
import { DepthError } from '../../he/params.js';
import { planDepth } from '../../plan/plan.js';
import { initBackend } from '../../train/backend.js';
import { withSeededRandom } from '../../train/seeded.js';
import type { BlockSpec } from '../../train/zoo/blocks.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';

/**
 * Factorised pairs split cost a level each: a network whose all-split plan
 * no 128-bit parameters hold still compiles with the pairs fused that make
 * it fit, and when no choice fits, the error is the shallowest choice's.
 * At a 59-bit scale N=32768 holds 12 levels. export.maxDepth bounds the
 * depth the same way.
 */
beforeAll(async () => {
  await initBackend('cpu');
});

const conv: BlockSpec = { kind: 'conv', filters: 2, kernelSize: 3, pool: false };
const linearMobile: BlockSpec = { kind: 'mobile', filters: 2, middleActivation: false, pool: false };

function compileBlocks(blocks: BlockSpec[]) {
  const model = withSeededRandom(1, () =>
    buildModel(modelSchema.parse({ name: 'squeezenet', blocks }), { inputShape: [4, 4, 2], numClasses: 2 }),
  );
  try {
    return compileChain(lowerModel(model), { scaleBits: 59 });
  } finally {
    model.dispose();
  }
}

test('two split mobile blocks past the levels N=32768 holds: the plan fuses a pair and fits', () => {
  // Depth 13 split (3 convs 6, two pairs 6, classifier 1), 12 with one pair fused, 11 with both.
  const plan = compileBlocks([conv, conv, conv, linearMobile, linearMobile]);
  expect(planDepth(plan)).toBeLessThanOrEqual(12);
  expect(plan.factorized?.some((f) => f.fused)).toBe(true);
});

test('no choice fits: the error names the shallowest choice (both pairs fused)', () => {
  // Depth 15 split, 14 with one pair fused, 13 with both: none fits.
  let error: unknown;
  try {
    compileBlocks([conv, conv, conv, conv, linearMobile, linearMobile]);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(DepthError);
  expect((error as DepthError).levels).toBe(13);
  expect((error as Error).message).toMatch(/no 128-bit-secure CKKS parameters hold 13 levels at 59-bit scale/);
});

test('export.maxDepth: the cheapest plan within it (the pair fused), and an error naming it when none is', () => {
  const model = withSeededRandom(2, () =>
    buildModel(
      modelSchema.parse({
        name: 'squeezenet',
        blocks: [
          { ...linearMobile, filters: 4 },
          { ...conv, filters: 16, pool: true },
        ],
      }),
      { inputShape: [8, 8, 3], numClasses: 3 },
    ),
  );
  try {
    const chain = lowerModel(model);
    // Pair 3 split + conv 2 + classifier 1 = 6: split is the cheaper plan here; fused, depth 5.
    const free = compileChain(chain, { scaleBits: 30 });
    expect([planDepth(free), free.factorized?.map((f) => f.fused)]).toEqual([6, [false]]);
    const within = compileChain(chain, { scaleBits: 30, maxDepth: 5 });
    expect([planDepth(within), within.factorized?.map((f) => f.fused)]).toEqual([5, [true]]);
    expect(() => compileChain(chain, { scaleBits: 30, maxDepth: 4 })).toThrow(
      /^export.maxDepth 4: every packing of this network needs more levels \(the shallowest 5\)$/,
    );
  } finally {
    model.dispose();
  }
});
