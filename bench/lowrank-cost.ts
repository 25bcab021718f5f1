/**
 * The cost model's rank curve for FFConv on a trained model, before any
 * fine-tuning: for each rank, the named convolutions are factorised by
 * truncated SVD (prune/lowrank) and the result compiled under the export
 * settings; prints the plan's plaintext multiplications, rotations, levels,
 * relative cost and its ratio to the unfactorised plan, the discarded share
 * of each kernel's squared norm, and which packing the compiler chose per
 * pair (split or fused). Use it to pick the ranks a config fine-tunes.
 *
 *   npm run bench:lowrank-cost -- --model zoo/vgg5-cifar10 --layers conv2,conv3 --ranks 8,16,32,64 [--weight-bits 30]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend } from '../train/backend.js';
import { loadModel } from '../train/checkpoint.js';
import { compileModel } from '../export/compile-model.js';
import { exportSchema } from '../export/options.js';
import { planCounts, relativeCost, estimatedServerSeconds, stepCosts } from '../plan/cost.js';
import { effectiveKernel, lowRankModel } from '../prune/lowrank.js';
import type { Plan } from '../plan/plan.js';
import { levelsOf } from '../plan/params.js';

const args = await yargs(hideBin(process.argv))
  .option('model', {
    type: 'string',
    demandOption: true,
    describe: 'a trained model directory (model.json + weights.bin), e.g. zoo/vgg5-cifar10',
  })
  .option('layers', { type: 'string', demandOption: true, describe: 'convolutions to factorise, comma-separated' })
  .option('ranks', { type: 'string', default: '8,16,32,64', describe: 'ranks to try, comma-separated (the same rank for every layer)' })
  .option('blocks', { type: 'string', default: 'mux', choices: ['tight', 'pow2', 'mux'] })
  .option('weight-bits', {
    type: 'number',
    describe: "export.weightBits: bits of linear steps' rescale primes (default: the 40-bit scale)",
  })
  .strict()
  .parseAsync();

await initBackend('wasm');
const model = await loadModel(args.model);
const layers = args.layers.split(',');
const e = exportSchema.parse({ scaleBits: 40, channelBlocks: args.blocks, maxGaloisKeyMB: 1024, weightBits: args.weightBits });
const norms = new Map(layers.map((n) => [n, effectiveKernel(model, n).kernel.reduce((a, v) => a + v * v, 0)]));

/** The plan's costliest steps, with their share of its estimated latency. */
const costliest = (plan: Plan) => {
  const costs = stepCosts(plan),
    total = costs.reduce((a, b) => a + b, 0);
  const counts = planCounts(plan).perStep;
  return costs
    .map((c, i) => ({ c, i }))
    .sort((a, b) => b.c - a.c)
    .slice(0, 5)
    .map(
      ({ c, i }) =>
        `${plan.steps[i].name} ${((100 * c) / total).toFixed(0)}% (${counts[i].counts.rotate} rot, ${counts[i].counts.mulPlain} pt-mul)`,
    )
    .join(', ');
};
const where: string[] = [];
const row = (what: string, plan: Plan, seconds: number, ref: number, extra: [string, string]) => {
  const c = planCounts(plan).total,
    cost = relativeCost(plan);
  console.log(
    `| ${what} | ${c.mulPlain} | ${c.rotate} | ${plan.params.polyModulusDegree} / ${levelsOf(plan.params)} | ${cost.toFixed(0)} | ${estimatedServerSeconds(plan).toFixed(1)} | ${(100 * (1 - cost / ref)).toFixed(1)}% | ${extra.join(' | ')} | ${seconds.toFixed(0)} |`,
  );
};
const timed = (f: () => Plan) => {
  const t0 = performance.now();
  const plan = f();
  return { plan, seconds: (performance.now() - t0) / 1000 };
};

console.log(
  `${args.model}: ${layers.join(', ')} factorised, ${args.blocks} channel blocks, linear primes ${args.weightBits ?? 40} bits (cost model, no fine-tuning)`,
);
console.log(
  '| plan | plaintext mults | rotations | N / levels | relative cost | estimated s | cost cut | discarded ‖W‖² | packing | compile s |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
const base = timed(() => compileModel(model, e));
const ref = relativeCost(base.plan);
row('unfactorised', base.plan, base.seconds, ref, ['', '']);
where.push(`unfactorised: ${costliest(base.plan)}`);
for (const r of args.ranks.split(',').map(Number)) {
  const { model: f, discarded } = lowRankModel(model, new Map(layers.map((n) => [n, r])));
  const { plan, seconds } = timed(() => compileModel(f, e));
  const lost = layers.map((n) => `${n} ${((100 * discarded.get(n)!) / norms.get(n)!).toFixed(1)}%`).join(', ');
  const packing = (plan.factorized ?? [])
    .map(
      (x) =>
        `${x.step} ${x.fused ? 'fused' : `split${x.channelPerCiphertext ? ` (channel per ciphertext: ${x.channelPerCiphertext})` : ''}`}`,
    )
    .join(', ');
  row(`rank ${r}`, plan, seconds, ref, [lost, packing]);
  where.push(`rank ${r}: ${costliest(plan)}`);
  f.dispose();
}
model.dispose();
console.log('\nWhere the estimated latency goes (costliest steps):');
for (const w of where) console.log(`- ${w}`);
