/**
 * Group-interleaved vs contiguous group packing in the cost model (SpENCNN):
 * compiles each model's grouped variant both ways (random weights: counts do
 * not depend on the values of unpruned weights) and prints plaintext
 * multiplications, rotations and the relative cost, with the ratio.
 *
 *   npm run bench:groups -- [--models lenet5,vgg5,hefnet] [--groups 4] [--blocks pow2]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend } from '../train/backend.js';
import { buildModel, modelSchema } from '../train/zoo/registry.js';
import { withSeededRandom } from '../train/seeded.js';
import { lowerModel } from '../export/lower.js';
import { compileChain } from '../export/compile.js';
import { planCounts, relativeCost } from '../plan/cost.js';

const args = await yargs(hideBin(process.argv))
  .option('models', { type: 'string', default: 'lenet5,vgg5,hefnet' })
  .option('groups', {
    type: 'number',
    default: 8,
    describe: 'groups of every convolution but the first (LeNet-5: conv2, 4 groups as in SpENCNN)',
  })
  .option('blocks', { type: 'string', default: 'pow2', choices: ['tight', 'pow2', 'mux'] })
  .strict()
  .parseAsync();

await initBackend('wasm');
const configs: Record<string, { cfg: Record<string, unknown>; shape: [number, number, number] }> = {
  lenet5: { cfg: { name: 'lenet5', groups: 4, finalPool: 2 }, shape: [28, 28, 1] },
  vgg5: { cfg: { name: 'vgg5', groups: [1, args.groups, args.groups] }, shape: [32, 32, 3] },
  hefnet: { cfg: { name: 'hefnet', groups: [1, args.groups, args.groups, args.groups] }, shape: [32, 32, 3] },
};
console.log(`model      order        mulPlain  rotations  relative cost  compile s   (${args.blocks} channel blocks)`);
for (const name of args.models.split(',')) {
  const c = configs[name];
  if (!c) throw new Error(`--models: unknown model ${name} (have ${Object.keys(configs).join(', ')})`);
  const m = withSeededRandom(1, () =>
    buildModel(modelSchema.parse({ ...c.cfg, activation: 'square' }), { inputShape: c.shape, numClasses: 10 }),
  );
  const chain = lowerModel(m);
  const costs: number[] = [];
  for (const groupOrder of ['contiguous', 'interleaved'] as const) {
    const t0 = performance.now();
    const plan = compileChain(chain, { groupOrder, channelBlocks: args.blocks as 'pow2', maxGaloisKeyBytes: 2 ** 40 });
    const t = planCounts(plan).total,
      cost = relativeCost(plan);
    costs.push(cost);
    console.log(
      `${name.padEnd(10)} ${groupOrder.padEnd(12)} ${String(t.mulPlain).padStart(8)} ${String(t.rotate).padStart(10)} ${cost.toFixed(0).padStart(14)} ${((performance.now() - t0) / 1000).toFixed(1).padStart(10)}`,
    );
  }
  console.log(`${name.padEnd(10)} contiguous / interleaved cost: ${(costs[0] / costs[1]).toFixed(2)}x`);
  m.dispose();
}
