import { greedySearch, type SearchBudget } from '../../search/hemet/greedy.js';
import { blockCandidates, kindOfSpec, type CandidateKind } from '../../search/hemet/candidates.js';
import type { Measurement } from '../../search/hemet/measure.js';
import type { BlockSpec } from '../../train/zoo/blocks.js';

/**
 * The greedy search against a made-up cost model (each block kind adds
 * known levels and cost), so the right answer is known: it never keeps a
 * network past the budget, takes the cheapest within it, and a tie keeps
 * the block as it is. The search over the real compiler is in
 * test/pipeline/search-hemet.test.ts.
 */
const LEVELS: Record<CandidateKind, number> = { conv: 2, fire: 4, mobile: 4, 'mobile-linear': 3 };
const COST: Record<CandidateKind, number> = { conv: 100, fire: 60, mobile: 70, 'mobile-linear': 80 };

function fakeMeasure(cost: Record<CandidateKind, number>) {
  return async (blocks: BlockSpec[]): Promise<Measurement> => {
    const depth = 1 + blocks.reduce((a, b) => a + LEVELS[kindOfSpec(b)], 0);
    const total = blocks.reduce((a, b) => a + cost[kindOfSpec(b)], 0);
    return {
      figures: {
        depth,
        polyModulusDegree: depth <= 7 ? 16384 : 32768,
        coeffModulusBits: Array<number>(depth + 2).fill(40),
        rotations: total,
        plaintextMultiplications: total * 10,
        ciphertextMultiplications: depth,
        cost: total,
        estimatedSeconds: total / 100,
        depthPerBlock: [],
      },
    };
  };
}

const conv = (filters: number): BlockSpec => ({ kind: 'conv', filters, kernelSize: 3, pool: false });
const search = (budget: SearchBudget, cost = COST) =>
  greedySearch({ blocks: [conv(8), conv(8)], inChannels: 3, budget, measure: fakeMeasure(cost) });
const chosen = (r: Awaited<ReturnType<typeof search>>) => r.steps.map((s) => s.candidates.filter((c) => c.status === 'chosen'));

test('candidates: the block as it is first, then conv, Fire (even widths), mobile with and without its middle activation', () => {
  expect(blockCandidates(conv(8), 3).map((c) => [c.kind, c.current])).toEqual([
    ['conv', true],
    ['fire', false],
    ['mobile', false],
    ['mobile-linear', false],
  ]);
  expect(blockCandidates({ kind: 'fire', squeeze: 32, expand: 64, pool: true }, 64).map((c) => c.spec)).toEqual([
    { kind: 'fire', squeeze: 32, expand: 64, pool: true },
    { kind: 'conv', filters: 128, kernelSize: 3, pool: true },
    { kind: 'mobile', filters: 128, middleActivation: true, pool: true },
    { kind: 'mobile', filters: 128, middleActivation: false, pool: true },
  ]);
  // A Fire's squeeze: C_out/4, never wider than C_in; no Fire for an odd width.
  expect(blockCandidates(conv(64), 3)[1].spec).toEqual({ kind: 'fire', squeeze: 3, expand: 32, pool: false });
  expect(blockCandidates(conv(64), 64)[1].spec).toEqual({ kind: 'fire', squeeze: 16, expand: 32, pool: false });
  expect(blockCandidates(conv(5), 3).map((c) => c.kind)).toEqual(['conv', 'mobile', 'mobile-linear']);
});

test("the input's depth as budget: every alternative adds levels, so every block stays", async () => {
  const r = await search({ maxDepth: 5 });
  expect(r.result.blocks).toEqual(r.start.blocks);
  for (const [c] of chosen(r)) expect(c.current).toBe(true);
  for (const s of r.steps)
    for (const c of s.candidates.filter((x) => !x.current)) expect(c.reason).toBe(`raises depth to ${c.figures!.depth} > 5`);
});

test('a budget of 7: the cheapest within it (a Fire), then a cheaper candidate past it is rejected', async () => {
  const r = await search({ maxDepth: 7 });
  // Block 1: Fire (160, depth 7) < mobile (170, 7) < mobile-linear (180, 6) < conv (200, 5).
  expect(r.steps[0].chosen).toBe('fire1');
  expect(r.steps[0].candidates.find((c) => c.kind === 'mobile')!.reason).toBe(
    'within the budget (depth 7, N=16384) but slower: cost 170 (1.7 s) against 160 for fire1',
  );
  // Block 2 (depth 7 already): mobile-linear would cost 140 < 160, but at depth 8.
  expect(r.steps[1].chosen).toBe('conv2');
  expect(r.steps[1].candidates.find((c) => c.kind === 'mobile-linear')).toMatchObject({
    status: 'rejected',
    reason: 'raises depth to 8 > 7',
  });
  expect(r.result.figures.depth).toBe(7);
  for (const [c] of chosen(r)) expect(c.figures!.depth).toBeLessThanOrEqual(7);
});

test('a generous budget takes the cheapest everywhere; --max-n holds it to N=16384', async () => {
  const r = await search({ maxDepth: 20 });
  expect(r.result.blocks.map(kindOfSpec)).toEqual(['fire', 'fire']);
  expect(r.result.figures).toMatchObject({ depth: 9, cost: 120 });
  expect(r.steps[0].candidates[1].reason).toBe(
    'cheapest within the budget (depth 7 ≤ 20, N=16384): cost 160 (1.6 s), 20.0% below the block as it is (200)',
  );
  const n = await search({ maxDepth: 20, maxN: 16384 });
  expect(n.result.blocks.map(kindOfSpec)).toEqual(['fire', 'conv']);
  expect(n.steps[1].candidates.find((c) => c.kind === 'fire')!.reason).toBe('needs N=32768 > 16384');
});

test('a tie keeps the block as it is', async () => {
  const r = await search({ maxDepth: 20 }, { conv: 100, fire: 100, mobile: 100, 'mobile-linear': 100 });
  expect(r.result.blocks).toEqual(r.start.blocks);
  expect(r.steps[0].candidates[1].reason).toBe('as cheap as conv1 (cost 200 (2 s)): a tie keeps the block as it is');
  expect(r.networks).toBe(7); // the input, 3 alternatives per block, each network once
});
