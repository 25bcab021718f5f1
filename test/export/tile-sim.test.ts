import { compileChain } from '../../export/compile.js';
import { applyMap, denseMap, type LinearMap } from '../../export/linear-map.js';
import type { HeChain } from '../../export/lower.js';
import { planCiphertexts, planCounts, relativeCost } from '../../plan/cost.js';
import { Rng } from '../../common/rng.js';
import { selectParams } from '../../he/params.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';
import { tempDir } from '../helpers/tmp.js';
import { loadExport, writeExport } from '../../export/artifact.js';

/** A fully-connected chain with random widths and weights; `zeroTiles(li)` blanks weight blocks (pruned tiles). */
function randomChain(seed: number, widths: number[], blank?: (li: number, o: number, i: number) => boolean): HeChain {
  const r = new Rng(seed);
  const linears: LinearMap[] = [];
  for (let li = 0; li + 1 < widths.length; li++) {
    const [nIn, nOut] = [widths[li], widths[li + 1]];
    const k = Float32Array.from({ length: nIn * nOut }, (_, e) => {
      const i = Math.floor(e / nOut),
        o = e % nOut;
      return blank?.(li, o, i) ? 0 : (r.next() - 0.5) / Math.sqrt(nIn);
    });
    linears.push(
      denseMap(
        k,
        Float32Array.from({ length: nOut }, () => r.next() - 0.5),
        nIn,
        nOut,
        li === 0 ? [widths[0]] : [nIn],
      ),
    );
  }
  linears[0].inShape = [widths[0], 1, 1];
  return { inShape: [widths[0], 1, 1], linears, pools: linears.map(() => undefined), skips: linears.map(() => undefined) };
}

/** The chain in plain arithmetic: L0, x², L1, x², …, Lk. */
function reference(chain: HeChain, x: Float64Array): Float64Array {
  let v = x;
  chain.linears.forEach((m, li) => {
    if (li > 0) v = v.map((a) => a * a);
    v = applyMap(m, v);
  });
  return v;
}

const input = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float64Array.from({ length: n }, () => r.next() * 2 - 1);
};

describe('tile-tensor packing on the slot simulator', () => {
  // Random widths and every orientation; tile shapes from 4096 = t1·t2 (N = 8192).
  test.each([
    [1, [20, 7], 64, 'outer'],
    [2, [100, 33, 9], 128, 'outer'],
    [3, [100, 33, 9], 128, 'inner'],
    [4, [300, 70, 40, 300], 16, 'outer'],
    [5, [300, 70, 40, 300], 256, 'inner'],
    [6, [130, 129, 5, 17], 1, 'outer'],
    [7, [130, 129, 5, 17], 'all', 'inner'],
  ] as const)('chain %i %j with t2 = %s, first %s: output = plain product; counts = simulator', (seed, widths, t2, first) => {
    const chain = randomChain(seed, [...widths]);
    // The parameters for the depth (replicate steps included) fix the slots, hence t1 = slots / t2.
    const levels =
      2 * chain.linears.length -
      1 +
      (first === 'outer' ? Math.floor((chain.linears.length - 1) / 2) : Math.floor(chain.linears.length / 2));
    const params = selectParams({ levels, slots: 1, scaleBits: 30 });
    const S = params.polyModulusDegree / 2;
    const t = t2 === 'all' ? { t1: 1, t2: S } : { t1: S / t2, t2 };
    const plan = compileChain(chain, { tiles: { ...t, first }, params });
    expect(plan.tiles).toEqual({ ...t, first });
    const x = input(widths[0], seed);
    const ref = reference(chain, x);
    const { y, sim } = simulate(plan, x);
    expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-6);
    const { total } = planCounts(plan);
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(total[k]);
  });

  test('auto picks the cheapest shape and orientation, and one plaintext per non-empty tile', () => {
    const chain = randomChain(11, [784, 128, 784]);
    const plan = compileChain(chain, { tiles: 'auto' });
    expect(plan.tiles).toBeDefined();
    const { t1, t2, first } = plan.tiles!;
    expect(t1 * t2).toBe(plan.slots);
    // Layer 1 reads along `first`: its tiles are ⌈out/t⌉ × ⌈in/t'⌉ — all non-empty with dense weights.
    const [a, b] = first === 'outer' ? [t2, t1] : [t1, t2];
    const tiles1 = Math.ceil(128 / a) * Math.ceil(784 / b),
      tiles2 = Math.ceil(784 / b) * Math.ceil(128 / a);
    expect(planCounts(plan).total.mulPlain).toBe(tiles1 + tiles2);
    const x = input(784, 3);
    expect(maxAbsDiff(simulate(plan, x).y, reference(chain, x))).toBeLessThan(1e-6);
  });

  test('an all-zero tile is never stored or multiplied; a tile row of dead neurons is never computed, its constant folded', () => {
    const t = { t1: 64, t2: 64, first: 'outer' as const };
    const params = selectParams({ levels: 3, slots: 1, scaleBits: 30 });
    expect(params.polyModulusDegree).toBe(8192);
    const dense = randomChain(5, [200, 150, 10]);
    // Layer 1 (input along r, 64 per tile; outputs along c, 64 per tile): blank tile (out 0, in 1);
    // and neurons 128..149 (the whole third output tile) lose every weight.
    const pruned = randomChain(5, [200, 150, 10], (li, o, i) => li === 0 && ((o < 64 && i >= 64 && i < 128) || o >= 128));
    const pd = compileChain(dense, { tiles: t, params }),
      pp = compileChain(pruned, { tiles: t, params });
    const cd = planCounts(pd).total,
      cp = planCounts(pp).total;
    // Dense layer 1: 3 output tiles × 4 input tiles; pruned: 2 × 4 − 1. Layer 2 reads 3 (dense) vs 2 input tiles.
    expect(cd.mulPlain - cp.mulPlain).toBe(12 - 7 + (3 - 2));
    // The dead output tile's log2(64) rotations vanish with it.
    expect(cd.rotate - cp.rotate).toBe(6);
    expect(pp.steps[0].out.cts).toBe(2);
    const x = input(200, 9);
    const ref = reference(pruned, x);
    expect(maxAbsDiff(simulate(pp, x).y, ref)).toBeLessThan(1e-6);
  });

  test('an input tile no kept weight reads is never encrypted or sent; outputs unchanged, counts = simulator', () => {
    const t = { t1: 64, t2: 64, first: 'outer' as const };
    const params = selectParams({ levels: 3, slots: 1, scaleBits: 30 });
    // Layer 1 reads its 200 inputs along r, 64 per tile (4 input ciphertexts); inputs 64..127 lose every weight.
    const dense = randomChain(6, [200, 150, 10]);
    const pruned = randomChain(6, [200, 150, 10], (li, _o, i) => li === 0 && i >= 64 && i < 128);
    const pd = compileChain(dense, { tiles: t, params }),
      pp = compileChain(pruned, { tiles: t, params });
    expect(pd.input.cts).toBe(4);
    expect(pp.input.cts).toBe(3);
    expect(planCiphertexts(pd) - planCiphertexts(pp)).toBe(1);
    // Exactly the unread inputs are skipped by the client.
    const unsent = [...pp.input.slotOf.keys()].filter((i) => pp.input.slotOf[i] < 0);
    expect(unsent).toEqual(Array.from({ length: 64 }, (_, k) => 64 + k));
    const x = input(200, 4);
    const ref = reference(pruned, x);
    const { y, sim } = simulate(pp, x);
    expect(maxAbsDiff(y, ref)).toBeLessThan(1e-6);
    const c = planCounts(pp).total;
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(c[k]);
  });

  test.each([
    [21, [200, 150, 10], 'outer'],
    [22, [200, 150, 10], 'inner'],
    [23, [130, 70, 40, 90], 'outer'],
  ] as const)(
    'chain %i %j, first %s: permuted input and output orders (HE-PEx boundary) compute the same outputs; counts = simulator',
    (seed, widths, first) => {
      const levels = 2 * (widths.length - 1) - 1 + Math.floor((widths.length - (first === 'outer' ? 2 : 1)) / 2);
      const params = selectParams({ levels, slots: 1, scaleBits: 30 });
      const t = { t1: params.polyModulusDegree / 2 / 64, t2: 64, first };
      const chain = randomChain(seed, [...widths]);
      const r = new Rng(seed);
      const shuffle = (n: number) => {
        const a = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = r.int(i + 1);
          [a[i], a[j]] = [a[j], a[i]];
        }
        return a;
      };
      const inputOrder = shuffle(widths[0]),
        outputOrder = shuffle(widths[widths.length - 1]);
      const plan = compileChain(chain, { tiles: { ...t, inputOrder, outputOrder }, params });
      expect(plan.tiles).toMatchObject({ inputOrder, outputOrder });
      // Input i is packed at its position's slot.
      expect(plan.input.slotOf[inputOrder.indexOf(0)] % plan.slots).toBe(0);
      const x = input(widths[0], seed);
      const ref = reference(chain, x);
      const { y, sim } = simulate(plan, x);
      expect(maxAbsDiff(y, ref)).toBeLessThan(1e-6);
      const c = planCounts(plan).total;
      for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(c[k]);
    },
  );

  test('an input order that gathers the unread inputs into whole tiles sends fewer ciphertexts and multiplies fewer tiles', () => {
    const t = { t1: 64, t2: 64, first: 'outer' as const };
    const params = selectParams({ levels: 3, slots: 1, scaleBits: 30 });
    // Every third input is read by no weight: 67 of 200, spread over all 4 input tiles.
    const chain = randomChain(31, [200, 150, 10], (li, _o, i) => li === 0 && i % 3 === 1);
    const live = Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 3 !== 1),
      dead = Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 3 === 1);
    const inputOrder = new Array<number>(200);
    [...live, ...dead].forEach((old, pos) => {
      inputOrder[old] = pos;
    });
    const plain = compileChain(chain, { tiles: t, params }),
      gathered = compileChain(chain, { tiles: { ...t, inputOrder }, params });
    // 133 live inputs fill 3 tiles of 64: one input ciphertext and one tile per output tile row fewer.
    expect(plain.input.cts).toBe(4);
    expect(gathered.input.cts).toBe(3);
    expect(planCounts(plain).total.mulPlain - planCounts(gathered).total.mulPlain).toBe(3);
    const x = input(200, 5);
    expect(maxAbsDiff(simulate(gathered, x).y, reference(chain, x))).toBeLessThan(1e-6);
  });

  test('an order that is not a permutation is refused, naming the key', () => {
    const params = selectParams({ levels: 3, slots: 1, scaleBits: 30 });
    const chain = randomChain(32, [100, 50, 10]);
    const bad = Array.from({ length: 100 }, (_, i) => (i === 5 ? 4 : i));
    expect(() => compileChain(chain, { tiles: { t1: 64, t2: 64, first: 'outer', inputOrder: bad }, params })).toThrow(
      /export\.tiles\.inputOrder: expected a permutation of 0\.\.99/,
    );
    expect(() => compileChain(chain, { tiles: { t1: 64, t2: 64, first: 'outer', outputOrder: [0, 1] }, params })).toThrow(
      /export\.tiles\.outputOrder/,
    );
  });

  test('an output tile row with no weights is a constant the client fills in (its bias), not a ciphertext', () => {
    const t = { t1: 64, t2: 64, first: 'outer' as const };
    const params = selectParams({ levels: 3, slots: 1, scaleBits: 30 });
    // Layer 2 reads along c and outputs along r, 64 per tile: outputs 64..127 lose every weight.
    const chain = randomChain(8, [100, 70, 150], (li, o) => li === 1 && o >= 64 && o < 128);
    const plan = compileChain(chain, { tiles: t, params });
    expect(plan.steps[plan.steps.length - 1].out.cts).toBe(2);
    expect(Object.keys(plan.outputConstants ?? {})).toHaveLength(64);
    const x = input(100, 2);
    const ref = reference(chain, x);
    expect(maxAbsDiff(simulate(plan, x).y, ref)).toBeLessThan(1e-6);
  });

  test('a tile shape that does not fill the slots is rejected, naming the key', () => {
    expect(() =>
      compileChain(randomChain(1, [10, 4]), { tiles: { t1: 64, t2: 32 }, params: selectParams({ levels: 1, slots: 1, scaleBits: 30 }) }),
    ).toThrow(/export\.tiles: t1 × t2 = 64 × 32 = 2048, must equal the 4096 slots/);
  });
});

describe('a CNN with tiled dense layers', () => {
  /** A small VGG-5 (8x8x1 in, conv 4 and 8 channels, FC 60-40-6), one random input, its tfjs output and its lowered chain. */
  async function smallCnn(seed: number) {
    const tf = await import('@tensorflow/tfjs');
    const { initBackend } = await import('../../train/backend.js');
    const { buildModel, modelSchema } = await import('../../train/zoo/registry.js');
    const { withSeededRandom } = await import('../../train/seeded.js');
    const { lowerModel } = await import('../../export/lower.js');
    await initBackend('wasm');
    const m = withSeededRandom(seed, () =>
      buildModel(
        modelSchema.parse({ name: 'vgg5', filters: [4, 8], groups: [1, 1], dense: [60, 40], activation: 'square', batchNorm: false }),
        { inputShape: [8, 8, 1], numClasses: 6 },
      ),
    );
    const x = tf.randomNormal([1, 8, 8, 1], 0, 1, 'float32', seed);
    const ref = (m.predict(x) as import('@tensorflow/tfjs').Tensor).dataSync();
    const out = { x: x.dataSync(), ref, chain: () => lowerModel(m), dispose: () => m.dispose() };
    x.dispose();
    return out;
  }

  test('convolutions and the first dense layer diagonal, the dense layers after it tiled (with a replicate step): output = tfjs, counts = simulator', async () => {
    const { x, ref, chain, dispose } = await smallCnn(3);
    const plan = compileChain(chain(), { tiles: 'auto', scaleBits: 30 });
    // fc1 (reads the conv layout) is diagonal, its 60 outputs periodic every 64: tiles with t2 = 64 from linear 4 (fc2) on.
    expect(plan.tiles).toMatchObject({ t2: 64, first: 'inner', from: 3 });
    expect(plan.steps.map((s) => s.name)).toEqual([
      'linear1',
      'square1',
      'pool1',
      'linear2',
      'square2',
      'pool2',
      'linear3',
      'square3',
      'linear4',
      'square4',
      'replicate4',
      'linear5',
    ]);
    const { y, sim } = simulate(plan, x);
    expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    const { total } = planCounts(plan);
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(total[k]);
    // The shape follows fc1's width: given explicitly it must be that one (it was once silently replaced).
    expect(compileChain(chain(), { tiles: { t1: plan.slots / 64, t2: 64 }, scaleBits: 30 }).tiles).toMatchObject({ t2: 64 });
    expect(() => compileChain(chain(), { tiles: { t1: plan.slots / 32, t2: 32 }, scaleBits: 30 })).toThrow(
      /export\.tiles: \{t1: \d+, t2: 32\}: .*first dense layer's width \(60, period 64\): t1 = \d+, t2 = 64/,
    );
    dispose();
  });

  test('tileFirstDense: the dense layer reading the convolutions is tiled too (conv rows masked and copied), for the auto and explicit shapes: output = tfjs, counts = simulator', async () => {
    const { x, ref, chain, dispose } = await smallCnn(4);
    const auto = compileChain(chain(), { tiles: 'auto', tileFirstDense: true, scaleBits: 30 });
    const S = auto.slots;
    const shapes = [
      auto,
      ...[16, 64, 256].map((t2) => compileChain(chain(), { tiles: { t1: S / t2, t2 }, tileFirstDense: true, scaleBits: 30 })),
    ];
    for (const plan of shapes) {
      // fc1 (linear3) reads the rows step; fc2 (outer) needs a replicate step; fc3 reads along c again.
      expect(plan.tiles).toMatchObject({ first: 'inner', from: 2, convRows: true });
      expect(plan.steps.map((s) => s.name)).toEqual([
        'linear1',
        'square1',
        'pool1',
        'linear2',
        'square2',
        'pool2',
        'rows2',
        'linear3',
        'square3',
        'replicate3',
        'linear4',
        'square4',
        'linear5',
      ]);
      // One ciphertext per row of t2 slots the conv output occupies.
      const rows = plan.steps[6],
        conv = plan.steps[5].out;
      const occupied = new Set(Array.from(conv.slotOf, (g) => Math.floor(g / plan.tiles!.t2)));
      expect(rows.out.cts).toBe(occupied.size);
      const { y, sim } = simulate(plan, x);
      expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
      const { total } = planCounts(plan);
      for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(total[k]);
    }
    // Auto is the cheapest of the shapes tried.
    for (const plan of shapes) expect(relativeCost(auto)).toBeLessThanOrEqual(relativeCost(plan));
    // The export keeps the tile shape, conv rows included (what pruning aligns with), and the same plan.
    const t = await tempDir();
    try {
      await writeExport(t.path, auto, {});
      const { plan: back } = await loadExport(t.path);
      expect(back.tiles).toEqual(auto.tiles);
      expect(planCounts(back).total).toEqual(planCounts(auto).total);
      expect(maxAbsDiff(simulate(back, x).y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    } finally {
      await t.cleanup();
    }
    expect(() => compileChain(chain(), { tileFirstDense: true, scaleBits: 30 })).toThrow(/export\.tileFirstDense: needs export\.tiles/);
    expect(() => compileChain(chain(), { tiles: { t1: 64, t2: 32 }, tileFirstDense: true, scaleBits: 30 })).toThrow(
      /export\.tiles: t1 × t2 = 64 × 32 = 2048, must equal the \d+ slots/,
    );
    dispose();
  });
});
