import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { planCounts } from '../../plan/cost.js';
import { applyMasks, kernelValues, withMasks } from '../../prune/masks.js';
import { selectMagnitude } from '../../prune/select.js';
import { clusterPermutations, countTiles, permuteModel } from '../../prune/permute.js';
import { selectTiles } from '../../prune/tile-select.js';
import { boundaryOrders, nonEmptyTiles, rowRotations, tileColumns, tileGrids, tileOf, type TileGrid } from '../../prune/tiles.js';
import { tileTaylorScores } from '../../prune/tile-taylor.js';
import { tileAblationScores } from '../../prune/tile-ablation.js';
import { pruneSchema } from '../../prune/options.js';
import { computeGradients } from '../../train/step.js';
import { inputScales } from '../../prune/input-scales.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';
import { tileRound } from '../../prune/tile-rounds.js';
import { Rng } from '../../common/rng.js';
import { selectParams } from '../../he/params.js';

beforeAll(async () => {
  await initBackend('wasm');
});

// Small MLPs on 8x8 inputs; N = 16384 (8192 slots) for every depth here, tiles 32×256: the first layer reads along r, 32 inputs × 256 outputs per tile.
const params = selectParams({ levels: 6, slots: 8192, scaleBits: 30 });
const tiles = { t1: 32, t2: 256, first: 'outer' as const };
function mlp(seed: number, hidden: number[]): tf.LayersModel {
  return withSeededRandom(seed, () =>
    buildModel(modelSchema.parse({ name: 'mlp', hidden, activation: 'quadratic' }), { inputShape: [8, 8, 1], numClasses: 10 }),
  );
}
const planOf = (m: tf.LayersModel) => compileChain(lowerModel(m), { tiles, params });
const weightsOf = (m: tf.LayersModel, grids: TileGrid[]) => grids.map((g) => kernelValues(m, g.layer));
const predict = (m: tf.LayersModel, x: tf.Tensor) => (m.predict(x) as tf.Tensor).dataSync();

/** Synthetic 10-class data (tests only): class = argmax of a fixed random projection. */
function synthetic(n: number, seed: number): { x: tf.Tensor; y: tf.Tensor } {
  const x = tf.randomNormal([n, 8, 8, 1], 0, 1, 'float32', seed);
  const proj = tf.randomNormal([64, 10], 0, 1, 'float32', seed + 1);
  const y = tf.oneHot(tf.argMax(tf.matMul(x.reshape([n, 64]), proj), 1), 10);
  return { x, y };
}

describe('HE-PEx permutation, tile pruning and expansion', () => {
  test('a permuted network computes the same outputs (max abs diff ≤ 1e-5) and its tiles never grow', () => {
    const m = mlp(3, [300, 200]);
    const dense = planOf(m);
    const grids = tileGrids(m, dense);
    // Random sparsity pattern, then cluster.
    const masks = selectMagnitude(new Map(grids.map((g) => [g.layer, kernelValues(m, g.layer)])), 0.85, { perLayer: true });
    applyMasks(m, masks);
    const x = tf.randomNormal([4, 8, 8, 1], 0, 1, 'float32', 7);
    const before = predict(m, x);
    const w = weightsOf(m, grids);
    const id = grids.slice(0, -1).map((g) => Int32Array.from({ length: g.nOut }, (_, i) => i));
    const perms = clusterPermutations(grids, w);
    expect(countTiles(grids, w, perms)).toBeLessThanOrEqual(countTiles(grids, w, id));
    permuteModel(m, grids, perms);
    const after = predict(m, x);
    let diff = 0;
    before.forEach((v, i) => {
      diff = Math.max(diff, Math.abs(v - after[i]));
    });
    expect(diff).toBeLessThanOrEqual(1e-5);
    // The permuted weights hold exactly the tiles countTiles predicted.
    const count = grids.reduce((a, g) => a + nonEmptyTiles(g, kernelValues(m, g.layer)), 0);
    expect(count).toBe(countTiles(grids, w, perms));
    m.dispose();
    x.dispose();
  });

  test.each([1, 2, 3, 4, 5])('random sparsity pattern %i: clustering never increases the non-empty tiles', (seed) => {
    const r = new Rng(seed);
    const grids: TileGrid[] = [{ layer: 'a', nIn: 64, nOut: 40 + r.int(60), outTile: 8, inTile: 16 }];
    grids.push({ layer: 'b', nIn: grids[0].nOut, nOut: 30 + r.int(30), outTile: 16, inTile: 8 });
    const density = 0.02 + r.next() * 0.3;
    const w = grids.map((g) => Float32Array.from({ length: g.nIn * g.nOut }, () => (r.next() < density ? r.next() + 0.1 : 0)));
    const id = [Int32Array.from({ length: grids[0].nOut }, (_, i) => i)];
    expect(countTiles(grids, w, clusterPermutations(grids, w))).toBeLessThanOrEqual(countTiles(grids, w, id));
  });

  test('on a trained, magnitude-pruned layer the permutation strictly reduces the tiles; the plan follows', async () => {
    // 512 hidden neurons in tiles of 64 (t2): at 95% sparsity many weak neurons lose every weight, scattered over the tile rows.
    const narrow = { tiles: { t1: 128, t2: 64, first: 'outer' as const }, params };
    const m = mlp(4, [512]);
    const { x, y } = synthetic(512, 4);
    m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    await m.fit(x, y, { epochs: 3, batchSize: 64, verbose: 0 });
    const grids = tileGrids(m, compileChain(lowerModel(m), narrow));
    const masks = selectMagnitude(new Map(grids.map((g) => [g.layer, kernelValues(m, g.layer)])), 0.95, { perLayer: true });
    applyMasks(m, masks);
    const pruned = planCounts(compileChain(lowerModel(m), narrow)).total.mulPlain;
    const w = weightsOf(m, grids);
    const perms = clusterPermutations(grids, w);
    expect(countTiles(grids, w, perms)).toBeLessThan(countTiles(grids, w, [Int32Array.from({ length: 512 }, (_, i) => i)]));
    permuteModel(m, grids, perms);
    // Every non-empty tile is one plaintext multiplication of the plan (pruned tiles cost nothing).
    const c = planCounts(compileChain(lowerModel(m), narrow)).total.mulPlain;
    expect(c).toBe(grids.reduce((a, g) => a + nonEmptyTiles(g, kernelValues(m, g.layer)), 0));
    expect(c).toBeLessThan(pruned);
    m.dispose();
    x.dispose();
    y.dispose();
  });

  test('tile pruning keeps the target share of tiles; expansion re-enables exactly the weights inside kept tiles', () => {
    const a = mlp(5, [300, 200]),
      b = mlp(5, [300, 200]);
    const grids = tileGrids(a, planOf(a));
    const plain = tileRound(a, grids, { method: 'tile', target: 0.5, permute: true, expand: false }).masks;
    const expanded = tileRound(b, grids, { method: 'tile', target: 0.5, permute: true, expand: true }).masks;
    for (const g of grids) {
      const p = plain.get(g.layer)!,
        e = expanded.get(g.layer)!;
      const keptTiles = new Set<number>();
      for (let i = 0; i < g.nIn; i++) for (let o = 0; o < g.nOut; o++) if (e[i * g.nOut + o]) keptTiles.add(tileOf(g, i, o));
      const total = Math.ceil(g.nIn / g.inTile) * Math.ceil(g.nOut / g.outTile);
      // At least the target; tiles that only read dead neurons or feed none go too.
      expect(total - keptTiles.size).toBeGreaterThanOrEqual(Math.ceil(0.5 * total));
      for (let i = 0; i < g.nIn; i++)
        for (let o = 0; o < g.nOut; o++) {
          const k = i * g.nOut + o;
          // Expanded: 1 exactly inside kept tiles; never outside. The unexpanded mask is a subset.
          expect(e[k]).toBe(keptTiles.has(tileOf(g, i, o)) ? 1 : 0);
          if (p[k]) expect(e[k]).toBe(1);
        }
    }
    a.dispose();
    b.dispose();
  });

  test('a higher unstructured sparsity before permuting leaves only its survivors inside the kept tiles (without expansion)', () => {
    const m = mlp(8, [300, 200]);
    const grids = tileGrids(m, planOf(m));
    const { masks } = tileRound(m, grids, { method: 'tile', target: 0.5, weightTarget: 0.9, permute: true, expand: false });
    for (const g of grids) {
      const kept = masks.get(g.layer)!.reduce((a, v) => a + v, 0);
      expect(kept).toBeLessThanOrEqual(Math.ceil(0.1 * g.nIn * g.nOut));
    }
    m.dispose();
  });

  test('a layer of two tiles keeps one even at 60%: tile pruning never removes a whole layer', () => {
    // 8x8 inputs, hidden 40, tiles 32×256: fc1 has 2 tiles (64 inputs along 32), fc2 1.
    const m = mlp(9, [40]);
    const grids = tileGrids(m, planOf(m));
    const { masks } = tileRound(m, grids, { method: 'tile', target: 0.6, permute: false, expand: false });
    applyMasks(m, masks);
    expect(grids.map((g) => nonEmptyTiles(g, kernelValues(m, g.layer)))).toEqual([1, 1]);
    expect(planCounts(planOf(m)).total.mulPlain).toBe(2);
    m.dispose();
  });

  test('activation-aware importance and a permuted input drop exactly the tile of always-zero inputs: outputs unchanged, plan = model', () => {
    // 8x8 inputs in tiles of 16 (t1; the first layer reads along r): 4 input tiles. Every fourth pixel is always 0
    // in the (synthetic, test-only) data, like MNIST's border: its weights are as large as any, but read nothing.
    const narrow = { tiles: { t1: 16, t2: 512, first: 'outer' as const }, params };
    const r = new Rng(12);
    const count = 64;
    const images = Uint8Array.from({ length: count * 64 }, (_, e) => ((e % 64) % 4 === 1 ? 0 : r.int(256)));
    const data = {
      train: { images, labels: new Int32Array(count), count },
      shape: [8, 8, 1] as const,
      normalization: { kind: 'unit' as const, mean: [0], std: [1] },
    };
    const x = tf.tensor4d(
      Float32Array.from(images.subarray(0, 4 * 64), (v) => v / 255),
      [4, 8, 8, 1],
    );
    const run = (boundary: boolean) => {
      const m = mlp(10, [300]);
      const before = predict(m, x);
      const grids0 = tileGrids(m, compileChain(lowerModel(m), narrow));
      const scales = () =>
        inputScales(
          m,
          grids0.map((g) => g.layer),
          data,
        );
      const s = scales().get(grids0[0].layer)!;
      expect(Array.from(s).every((v, i) => (i % 4 === 1 ? v === 0 : v > 0))).toBe(true);
      const { masks, grids } = tileRound(m, grids0, {
        method: 'tile',
        target: 0.25,
        permute: true,
        permuteBoundary: boundary,
        expand: true,
        scales,
      });
      applyMasks(m, masks);
      const plan = compileChain(lowerModel(m), { ...narrow, tiles: { ...narrow.tiles, ...boundaryOrders(grids) } });
      const after = predict(m, x);
      // The plan computes the pruned model, through whatever input order it carries.
      const flat = x.dataSync();
      for (let k = 0; k < 4; k++)
        expect(
          maxAbsDiff(
            simulate(plan, Float64Array.from(flat.subarray(k * 64, (k + 1) * 64))).y,
            Float64Array.from(after.subarray(k * 10, (k + 1) * 10)),
          ),
        ).toBeLessThan(1e-3);
      const res = {
        diff: maxAbsDiff(Float64Array.from(before), Float64Array.from(after)),
        tiles: planCounts(plan).total.mulPlain,
        inputCts: plan.input.cts,
        ordered: grids[0].inPos !== undefined,
      };
      m.dispose();
      return res;
    };
    const gathered = run(true),
      inPlace = run(false);
    // Both keep 3 of fc1's 4 tiles (+ fc2's one); only the permuted input puts all 16 dead pixels in the dropped tile.
    expect(gathered).toMatchObject({ tiles: 4, inputCts: 3, ordered: true });
    expect(inPlace).toMatchObject({ tiles: 4, ordered: false });
    expect(gathered.diff).toBeLessThan(1e-5);
    expect(inPlace.diff).toBeGreaterThan(1e-3);
    x.dispose();
  });

  test('input scales: RMS counts a constant input, the centred scale (variation) does not', () => {
    const r = new Rng(13);
    const count = 32;
    // Pixel 0 is always 200, pixel 1 always 0, the rest vary (synthetic, test-only).
    const images = Uint8Array.from({ length: count * 64 }, (_, e) => (e % 64 === 0 ? 200 : e % 64 === 1 ? 0 : r.int(256)));
    const data = {
      train: { images, labels: new Int32Array(count), count },
      shape: [8, 8, 1] as const,
      normalization: { kind: 'unit' as const, mean: [0], std: [1] },
    };
    const m = mlp(14, [40]);
    const layer = m.layers.find((l) => l.getClassName() === 'Dense')!.name;
    const rms = inputScales(m, [layer], data).get(layer)!,
      sd = inputScales(m, [layer], data, { centred: true }).get(layer)!;
    expect(rms[0]).toBeCloseTo(200 / 255, 5);
    expect(sd[0]).toBeCloseTo(0, 5);
    expect(rms[1]).toBe(0);
    expect(sd[1]).toBe(0);
    // A varying pixel: RMS² = SD² + mean².
    expect(sd[2]).toBeGreaterThan(0);
    expect(rms[2]).toBeGreaterThan(sd[2]);
    m.dispose();
  });

  test('global allocation ranks the tiles of all layers together; per layer, each layer loses its share', () => {
    // Hand-built grids: fc1 64 → 16 in 4 input tiles, fc2 16 → 64 in 4 output tiles (both read fc1's one output tile row).
    const grids: TileGrid[] = [
      { layer: 'a', nIn: 64, nOut: 16, inTile: 16, outTile: 16 },
      { layer: 'b', nIn: 16, nOut: 64, inTile: 16, outTile: 16 },
    ];
    const kernels = new Map(grids.map((g) => [g.layer, new Float32Array(g.nIn * g.nOut).fill(0.5)]));
    // Every tile of b matters more than any of a.
    const scores = new Map([
      ['a', Float64Array.from([1, 2, 3, 4])],
      ['b', Float64Array.from([10, 20, 30, 40])],
    ]);
    const per = selectTiles(grids, kernels, 0.5, undefined, { scores });
    expect([...per.get('a')!]).toEqual([0, 0, 1, 1]);
    expect([...per.get('b')!]).toEqual([0, 0, 1, 1]);
    // Globally, half of all 8 tiles go: a's three weakest (a keeps one), then b's weakest.
    const global = selectTiles(grids, kernels, 0.5, undefined, { scores, global: true });
    expect([...global.get('a')!]).toEqual([0, 0, 0, 1]);
    expect([...global.get('b')!]).toEqual([0, 1, 1, 1]);
    // Ranked globally, a removal can leave a layer only tiles that read neurons the layer before no longer computes: such a removal is skipped.
    const two: TileGrid[] = [
      { layer: 'a', nIn: 32, nOut: 32, inTile: 16, outTile: 16 },
      { layer: 'b', nIn: 32, nOut: 16, inTile: 16, outTile: 16 },
    ];
    const k2 = new Map(two.map((g) => [g.layer, new Float32Array(g.nIn * g.nOut).fill(0.5)]));
    // a's first output row is weak, b's tile reading it strong, b's other tile weak.
    const s2 = new Map([
      ['a', Float64Array.from([0.1, 0.2, 5, 6])],
      ['b', Float64Array.from([10, 0.3])],
    ]);
    // By score alone: a0, a1 (a's first row: b0 then reads nothing), then b1, which would leave b nothing it can use: skipped for a2.
    const connected = selectTiles(two, k2, 0.5, undefined, { scores: s2, global: true });
    expect([...connected.get('a')!]).toEqual([0, 0, 0, 1]);
    expect([...connected.get('b')!]).toEqual([0, 1]);
    // Prior masks that already leave b only such a tile: refused, naming the layer.
    const priorMasks = new Map([
      ['a', Float32Array.from({ length: 32 * 32 }, (_, k) => (Math.floor((k % 32) / 16) === 0 ? 1 : 0))],
      ['b', Float32Array.from({ length: 32 * 16 }, (_, k) => (Math.floor(k / 16) >= 16 ? 1 : 0))],
    ]);
    expect(() => selectTiles(two, k2, 0.5, priorMasks, { scores: s2, global: true })).toThrow(/no tile of layer b .*allocation: layer/);
    // The config: tile pruning only, one of two values.
    expect(pruneSchema.safeParse({ method: 'tile', sparsity: 0.5, allocation: 'global' }).success).toBe(true);
    expect(pruneSchema.safeParse({ method: 'neuron', sparsity: 0.5, allocation: 'global' }).error?.issues[0].message).toMatch(
      /allocation applies to method tile/,
    );
    expect(JSON.stringify(pruneSchema.safeParse({ method: 'tile', sparsity: 0.5, allocation: 'globl' }).error?.issues[0])).toMatch(
      /layer.*global.*cost/,
    );
  });

  test('cost-aware allocation removes a whole tile row (its rotations go with it) where ranking tiles alone spreads the cuts', () => {
    // a: 64 → 32, 2 output tile rows × 4 tiles, 4 rotate-and-sum rotations per row; b: 32 → 16 reads one a row per tile.
    const grids: TileGrid[] = [
      { layer: 'a', nIn: 64, nOut: 32, inTile: 16, outTile: 16 },
      { layer: 'b', nIn: 32, nOut: 16, inTile: 16, outTile: 16 },
    ];
    expect(grids.map(rowRotations)).toEqual([4, 4]);
    const kernels = new Map(grids.map((g) => [g.layer, new Float32Array(g.nIn * g.nOut).fill(0.5)]));
    // Row 0's tiles are each weak but matter together (row score 50); row 1's tiles are stronger each, weak together (4).
    const tiles = new Map([
      ['a', Float64Array.from([0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1])],
      ['b', Float64Array.from([100, 100])],
    ]);
    const rows = new Map([
      ['a', Float64Array.from([50, 4])],
      ['b', Float64Array.from([200])],
    ]);
    // By tile score alone, row 0 goes, and b's tile reading it with it.
    const byScore = selectTiles(grids, kernels, 0.4, undefined, { scores: tiles, global: true });
    expect([...byScore.get('a')!]).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect([...byScore.get('b')!]).toEqual([0, 1]);
    // By loss per cost: row 1 whole (4 / (4 + 12·4)) is cheaper than any single tile (0.5 / 1) or row 0 (50 / 52).
    const byCost = selectTiles(grids, kernels, 0.4, undefined, { scores: tiles, global: true, rows, rotationWeight: 12 });
    expect([...byCost.get('a')!]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect([...byCost.get('b')!]).toEqual([1, 0]);
    // Without a weight on rotations it is the tile ranking again (row 1's tiles each cost more loss per multiplication).
    const flat = selectTiles(grids, kernels, 0.4, undefined, { scores: tiles, global: true, rows, rotationWeight: 0 });
    expect([...flat.get('a')!]).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(pruneSchema.safeParse({ method: 'tile', sparsity: 0.5, allocation: 'cost' }).success).toBe(true);
  });

  test('ablation tile and row scores: the loss each removal adds, measured (0 for a tile reading always-zero inputs)', () => {
    const narrow = { tiles: { t1: 16, t2: 512, first: 'outer' as const }, params };
    const r = new Rng(31);
    const count = 48;
    // SYNTHETIC data (tests only): pixels 0–15 always 0.
    const images = Uint8Array.from({ length: count * 64 }, (_, e) => (e % 64 < 16 ? 0 : r.int(256)));
    const m = mlp(32, [40]);
    const xs = Float32Array.from(images, (v) => v / 255);
    // Labels the model itself predicts: removing what computes them raises the loss.
    const labels = Int32Array.from(tf.tidy(() => tf.argMax(m.apply(tf.tensor4d(xs, [count, 8, 8, 1])) as tf.Tensor, -1).dataSync()));
    const data = {
      train: { images, labels, count },
      shape: [8, 8, 1] as const,
      normalization: { kind: 'unit' as const, mean: [0], std: [1] },
    };
    const grids = tileGrids(m, compileChain(lowerModel(m), narrow));
    const ctx = { model: m, task: 'classification' as const, numClasses: 10, shape: data.shape };
    const { tiles, rows } = tileAblationScores(ctx, grids, data, { samples: count, batchSize: 20 });
    const loss = () =>
      tf.tidy(
        () =>
          tf.losses
            .softmaxCrossEntropy(
              tf.oneHot(tf.tensor1d(labels, 'int32'), 10),
              m.apply(tf.tensor4d(xs, [count, 8, 8, 1]), { training: false }) as tf.Tensor,
            )
            .dataSync()[0],
      );
    const base = loss();
    expect(tiles.get(grids[0].layer)![0]).toBe(0);
    for (const g of grids) {
      const cols = tileColumns(g),
        sc = tiles.get(g.layer)!,
        rs = rows.get(g.layer)!;
      const zeroed = (inGroup: (t: number) => boolean) => {
        const mask = new Float32Array(g.nIn * g.nOut).fill(1);
        for (let i = 0; i < g.nIn; i++) for (let o = 0; o < g.nOut; o++) if (inGroup(tileOf(g, i, o))) mask[i * g.nOut + o] = 0;
        return Math.max(0, withMasks(m, new Map([[g.layer, mask]]), loss) - base);
      };
      for (let t = 0; t < sc.length; t++)
        expect(sc[t]).toBeCloseTo(
          zeroed((x) => x === t),
          5,
        );
      for (let q = 0; q < rs.length; q++)
        expect(rs[q]).toBeCloseTo(
          zeroed((x) => Math.floor(x / cols) === q),
          5,
        );
      // The model is left as it was.
      expect(loss()).toBeCloseTo(base, 6);
    }
    for (const v of [...rows.values(), tiles.get(grids[1].layer)!]) expect(v.some((x) => x > 0)).toBe(true);
    m.dispose();
  });

  test('Taylor tile scores: the squared first-order loss change of removing each tile (0 for a tile reading always-zero inputs)', () => {
    // 8x8 inputs in tiles of 16 (t1): fc1 has 4 input tiles; pixels 0–15 are always 0 in the (synthetic, test-only) data.
    const narrow = { tiles: { t1: 16, t2: 512, first: 'outer' as const }, params };
    const r = new Rng(21);
    const count = 64;
    const images = Uint8Array.from({ length: count * 64 }, (_, e) => (e % 64 < 16 ? 0 : r.int(256)));
    const labels = Int32Array.from({ length: count }, () => r.int(10));
    const data = {
      train: { images, labels, count },
      shape: [8, 8, 1] as const,
      normalization: { kind: 'unit' as const, mean: [0], std: [1] },
    };
    const m = mlp(22, [40]);
    const grids = tileGrids(m, compileChain(lowerModel(m), narrow));
    const ctx = { model: m, task: 'classification' as const, numClasses: 10, shape: data.shape };
    // One batch of all the data: each score is then (Σ_tile w·∂L/∂w)², the squared directional derivative of removing the tile.
    const { tiles: scores, rows } = tileTaylorScores(ctx, grids, data, { samples: count, batchSize: count });
    const s1 = scores.get(grids[0].layer)!;
    expect(s1.length).toBe(4);
    expect(s1[0]).toBe(0);
    // Check every tile against a finite difference: shrink its weights by ε and watch the loss.
    const xs = Float32Array.from(images, (v) => v / 255);
    const loss = () => {
      const res = computeGradients(ctx, { xs, labels, count });
      tf.dispose(res.grads);
      return res.lossSum / count;
    };
    const base = loss(),
      eps = 1e-2;
    for (const g of grids) {
      const sc = scores.get(g.layer)!;
      for (let t = 0; t < sc.length; t++) {
        const mask = new Float32Array(g.nIn * g.nOut).fill(1);
        for (let i = 0; i < g.nIn; i++) for (let o = 0; o < g.nOut; o++) if (tileOf(g, i, o) === t) mask[i * g.nOut + o] = 1 - eps;
        const slope = Math.abs(withMasks(m, new Map([[g.layer, mask]]), loss) - base) / eps;
        if (g === grids[0] && t === 0) expect(slope).toBeLessThan(1e-6);
        else expect(Math.abs(Math.sqrt(sc[t]) - slope)).toBeLessThan(0.05 * slope + 1e-4);
      }
      // Whole output tile rows, likewise.
      const rs = rows.get(g.layer)!,
        cols = tileColumns(g);
      expect(rs.length).toBe(sc.length / cols);
      for (let r = 0; r < rs.length; r++) {
        const mask = new Float32Array(g.nIn * g.nOut).fill(1);
        for (let i = 0; i < g.nIn; i++)
          for (let o = 0; o < g.nOut; o++) if (Math.floor(tileOf(g, i, o) / cols) === r) mask[i * g.nOut + o] = 1 - eps;
        const slope = Math.abs(withMasks(m, new Map([[g.layer, mask]]), loss) - base) / eps;
        expect(Math.abs(Math.sqrt(rs[r]) - slope)).toBeLessThan(0.05 * slope + 1e-4);
      }
    }
    m.dispose();
  });

  test('Hunter-style neuron pruning empties whole tiles after compaction', () => {
    const m = mlp(6, [512]);
    const grids = tileGrids(m, planOf(m));
    const before = planCounts(planOf(m)).total;
    const { masks } = tileRound(m, grids, { method: 'neuron', target: 0.5, permute: false, expand: false });
    applyMasks(m, masks);
    const after = planCounts(planOf(m)).total;
    // 512 hidden neurons in tiles of 256: half of them dead and compacted = one whole output tile row gone.
    expect(after.mulPlain).toBeLessThan(before.mulPlain);
    expect(after.rotate).toBeLessThan(before.rotate);
    m.dispose();
  });

  test('a CNN with its first dense layer tiled (tileFirstDense): the grid follows the conv rows, the plan multiplies exactly its non-empty tiles, and the permutation keeps outputs and never adds tiles', () => {
    const m = withSeededRandom(8, () =>
      buildModel(
        modelSchema.parse({ name: 'vgg5', filters: [4, 8], groups: [1, 1], dense: [60, 40], activation: 'square', batchNorm: false }),
        { inputShape: [8, 8, 1], numClasses: 6 },
      ),
    );
    const o = { tiles: { t1: 256, t2: 32 }, tileFirstDense: true, scaleBits: 30 } as const;
    const plan = compileChain(lowerModel(m), o);
    expect(plan.slots).toBe(8192);
    const grids = tileGrids(m, plan);
    // fc1 reads 2×2×8 = 32 conv outputs from the rows step's ciphertexts: its input positions are k·t2 + column.
    expect(grids.map((g) => g.layer)).toEqual(['fc1', 'fc2', 'fc3']);
    const rows = plan.steps[plan.steps.findIndex((st) => st.name === 'linear3') - 1];
    expect(grids[0]).toMatchObject({ nIn: 32, inTile: 32, outTile: 256, inSpan: rows.out.cts * 32, clientIn: false });
    expect(tileColumns(grids[0])).toBe(rows.out.cts);
    // Those positions are the conv layout's, not an input order for the plan (only the client's boundary has one).
    expect(boundaryOrders(grids)).toEqual({});
    // Blank random tiles of every layer through the grids: the plan's tiled steps multiply exactly the tiles left.
    const r = new Rng(8);
    const masks = new Map(
      grids.map((g) => {
        const gone = new Set(
          Array.from({ length: tileColumns(g) * Math.ceil(g.nOut / g.outTile) }, (_, t) => t).filter(() => r.next() < 0.4),
        );
        gone.delete(0);
        return [
          g.layer,
          Float32Array.from({ length: g.nIn * g.nOut }, (_, k) => (gone.has(tileOf(g, Math.floor(k / g.nOut), k % g.nOut)) ? 0 : 1)),
        ];
      }),
    );
    applyMasks(m, masks);
    const prunedPlan = compileChain(lowerModel(m), o);
    const per = planCounts(prunedPlan).perStep;
    // The pruned plan drops the conv rows no kept fc1 tile reads, and still gives the same grids.
    const prunedRows = prunedPlan.steps[prunedPlan.steps.findIndex((st) => st.name === 'linear3') - 1];
    expect(prunedRows.out.cts).toBe(
      new Set(
        Array.from({ length: 32 }, (_, i) => i)
          .filter(
            (i) =>
              !masks
                .get('fc1')!
                .subarray(i * 60, (i + 1) * 60)
                .every((v) => v === 0),
          )
          .map((i) => Math.floor(grids[0].inPos![i] / 32)),
      ).size,
    );
    expect(prunedRows.out.cts).toBeLessThan(rows.out.cts);
    expect(tileGrids(m, prunedPlan)).toEqual(grids);
    const tiled = ['linear3', 'linear4', 'linear5'].map((n) => per.find((p) => p.name === n)!.counts.mulPlain);
    expect(tiled).toEqual(grids.map((g) => nonEmptyTiles(g, kernelValues(m, g.layer))));
    // Sparse survivors, clustered: same outputs, no more tiles.
    applyMasks(m, selectMagnitude(new Map(grids.map((g) => [g.layer, kernelValues(m, g.layer)])), 0.9, { perLayer: true }));
    const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 8);
    const before = predict(m, x);
    const w = weightsOf(m, grids);
    const perms = clusterPermutations(grids, w);
    expect(countTiles(grids, w, perms)).toBeLessThanOrEqual(
      countTiles(
        grids,
        w,
        grids.slice(0, -1).map((g) => Int32Array.from({ length: g.nOut }, (_, i) => i)),
      ),
    );
    permuteModel(m, grids, perms);
    expect(maxAbsDiff(predict(m, x), before)).toBeLessThanOrEqual(1e-5);
    const after = planCounts(compileChain(lowerModel(m), o)).perStep;
    expect(['linear3', 'linear4', 'linear5'].map((n) => after.find((p) => p.name === n)!.counts.mulPlain)).toEqual(
      grids.map((g) => nonEmptyTiles(g, kernelValues(m, g.layer))),
    );
    m.dispose();
    x.dispose();
  });
});
