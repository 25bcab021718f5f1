/**
 * What SpENCNN's two steps save in the cost model, before any training:
 * a model's dense (ungrouped) plan, its HE-group variant, and that variant
 * with sub-block pruning of the given layers at the given sparsity (random
 * weights: the counts depend on which sub-blocks go, not on the values, so
 * this predicts the plan a trained model prunes to, not its accuracy).
 * Prints plaintext multiplications, rotations and the relative cost
 * (plan/cost relativeCost) with each plan's ratio to the dense one.
 *
 *   npm run bench:spencnn-cost -- --model hefnet --groups 1,8,8,8 --layers conv2,conv3,conv4 --sparsity 0.5
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type * as tf from '@tensorflow/tfjs';
import { initBackend } from '../train/backend.js';
import { buildModel, modelSchema } from '../train/zoo/registry.js';
import { withSeededRandom } from '../train/seeded.js';
import { lowerModel } from '../export/lower.js';
import { compileChain, type CompileOptions } from '../export/compile.js';
import { planCounts, relativeCost } from '../plan/cost.js';
import { convSubBlocks, stepOfLayer } from '../prune/subblocks.js';
import { selectSubBlocksPerLayer } from '../prune/select.js';
import { applyMasks, kernelValues } from '../prune/masks.js';
import type { GroupedConv2D } from '../train/layers/grouped-conv.js';
import type { Plan } from '../plan/plan.js';

const args = await yargs(hideBin(process.argv))
  .option('model', { type: 'string', default: 'vgg5', choices: ['lenet5', 'vgg5', 'hefnet'] })
  .option('groups', { type: 'string', demandOption: true, describe: 'groups per convolution, comma-separated (e.g. 1,8,8)' })
  .option('layers', { type: 'string', demandOption: true, describe: 'convolutions to prune, comma-separated' })
  .option('sparsity', { type: 'number', default: 0.5, describe: "fraction of each layer's weights pruned (sub-blocks, cost-guided)" })
  .option('blocks', { type: 'string', default: 'mux', choices: ['tight', 'pow2', 'mux'] })
  .strict()
  .parseAsync();

await initBackend('wasm');
const shape: [number, number, number] = args.model === 'lenet5' ? [28, 28, 1] : [32, 32, 3];
const groups = args.groups.split(',').map(Number);
const build = (g: number[]) =>
  withSeededRandom(1, () =>
    buildModel(
      modelSchema.parse({
        name: args.model,
        activation: 'quadratic',
        batchNorm: args.model !== 'lenet5',
        groups: args.model === 'lenet5' ? g[g.length - 1] : g,
      }),
      { inputShape: shape, numClasses: 10 },
    ),
  );
const opts: CompileOptions = { scaleBits: 40, channelBlocks: args.blocks as CompileOptions['channelBlocks'], maxGaloisKeyBytes: 2 ** 30 };

const rows: { what: string; plan: Plan; seconds: number }[] = [];
const compile = (what: string, m: tf.LayersModel) => {
  const t0 = performance.now();
  const plan = compileChain(lowerModel(m), opts);
  rows.push({ what, plan, seconds: (performance.now() - t0) / 1000 });
  return plan;
};
const dense = build(groups.map(() => 1));
compile('dense (ungrouped)', dense);
dense.dispose();
const grouped = build(groups);
const plan = compile(`groups ${groups.join(',')}`, grouped);
const names = args.layers.split(',');
const stepOf = stepOfLayer(plan, names);
const blocks = names.map((n) => convSubBlocks(grouped.getLayer(n) as GroupedConv2D, plan, stepOf.get(n)!));
applyMasks(grouped, selectSubBlocksPerLayer(blocks, new Map(names.map((n) => [n, kernelValues(grouped, n)])), args.sparsity));
compile(`+ sub-blocks ${names.join(',')} at ${args.sparsity}`, grouped);
grouped.dispose();

const ref = relativeCost(rows[0].plan);
console.log(`${args.model}, ${args.blocks} channel blocks, untrained weights`);
console.log('| plan | plaintext mults | rotations | relative cost | vs dense | compile s |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) {
  const c = planCounts(r.plan).total,
    cost = relativeCost(r.plan);
  console.log(`| ${r.what} | ${c.mulPlain} | ${c.rotate} | ${cost.toFixed(0)} | ${(ref / cost).toFixed(2)}x | ${r.seconds.toFixed(1)} |`);
}
