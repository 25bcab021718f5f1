import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts, relativeCost } from '../../plan/cost.js';
import { convSubBlocks } from '../../prune/subblocks.js';
import { kernelValues, withMasks } from '../../prune/masks.js';
import { selectSubBlocksPerLayer } from '../../prune/select.js';
import { sparsityForBudget } from '../../prune/budget-target.js';
import { pruneSchema } from '../../prune/options.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('an HE-cost budget (rotations, estimated latency) instead of a sparsity', () => {
  test('bisection finds masks within the budget, and a little less sparsity misses it; probing leaves the model untouched', () => {
    const m = withSeededRandom(6, () =>
      buildModel(modelSchema.parse({ name: 'lenet5', conv1: 16, conv2: 16, groups: 2, hidden: 8 }), {
        inputShape: [12, 12, 1],
        numClasses: 4,
      }),
    );
    const compile = () => compileChain(lowerModel(m), { channelBlocks: 'pow2' });
    const dense = compile();
    const rotations = () => planCounts(compile()).total.rotate;
    const layers = [convSubBlocks(m.getLayer('conv2') as GroupedConv2D, dense, 'linear2')];
    const kernels = new Map([['conv2', kernelValues(m, 'conv2')]]);
    const before = kernelValues(m, 'conv2').slice();
    const select = (s: number) => selectSubBlocksPerLayer(layers, kernels, s);
    const rotationsOf = (masks: Map<string, Float32Array>) => withMasks(m, masks, rotations);
    const denseRot = planCounts(dense).total.rotate;
    const goal = denseRot - 6;
    const found = sparsityForBudget(select, rotationsOf, goal, { iterations: 10 });
    expect(found.reached).toBe(true);
    expect(found.cost).toBeLessThanOrEqual(goal);
    expect(rotationsOf(found.masks)).toBe(found.cost);
    // Minimal up to the bisection's resolution: noticeably less sparsity misses the goal.
    expect(rotationsOf(select(found.sparsity - 0.05))).toBeGreaterThan(goal);
    // Probes restore the weights exactly.
    expect(kernelValues(m, 'conv2')).toEqual(before);
    // An unreachable goal says so and returns the sparsest masks tried.
    const none = sparsityForBudget(select, rotationsOf, 0);
    expect(none.reached).toBe(false);
    expect(none.cost).toBeGreaterThan(0);
    // A latency budget: 70% of the dense plan's estimated latency (the cost model).
    const costOf = (masks: Map<string, Float32Array>) => withMasks(m, masks, () => relativeCost(compile()));
    const lat = sparsityForBudget(select, costOf, 0.7 * relativeCost(dense), { iterations: 10 });
    expect(lat.reached).toBe(true);
    expect(lat.cost).toBeLessThanOrEqual(0.7 * relativeCost(dense));
    expect(costOf(select(lat.sparsity - 0.05))).toBeGreaterThan(0.7 * relativeCost(dense));
    m.dispose();
  });

  test('config: one target, and HE-cost targets only for sub-blocks (latency also for lowrank)', () => {
    expect(pruneSchema.safeParse({ method: 'subblock', rotations: 100 }).success).toBe(true);
    expect(pruneSchema.safeParse({ method: 'subblock', latency: 0.5 }).success).toBe(true);
    expect(pruneSchema.safeParse({ method: 'subblock', sparsity: 0.5, rotations: 100 }).error?.issues[0].message).toMatch(/one target/);
    expect(pruneSchema.safeParse({ method: 'subblock', rotations: 100, latency: 0.5 }).error?.issues[0].message).toMatch(/one target/);
    expect(pruneSchema.safeParse({ method: 'subblock' }).error?.issues[0].message).toMatch(
      /prune.sparsity, prune.rotations, prune.latency/,
    );
    expect(pruneSchema.safeParse({ method: 'magnitude', latency: 0.5 }).error?.issues[0].message).toMatch(
      /applies to methods subblock and lowrank/,
    );
    expect(pruneSchema.safeParse({ method: 'subblock', latency: 1.5 }).success).toBe(false);
    // lowrank aims at latency too (its ranks), never at a rotation count.
    expect(pruneSchema.safeParse({ method: 'lowrank', latency: 0.5 }).success).toBe(true);
    const issues = pruneSchema.safeParse({ method: 'lowrank', rotations: 100 }).error?.issues.map((x) => x.message) ?? [];
    expect(issues.join('; ')).toMatch(/rotation target applies to method subblock/);
    tf.disposeVariables();
  });
});
