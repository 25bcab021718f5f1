import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { maxAbsDiff, simFor, simulate } from '../helpers/simulate.js';
import { prepare, plaintextBytes, run, packInput, unpackOutput } from '../../plan/interpreter.js';
import { planCounts, relativeCost } from '../../plan/cost.js';
import { type Plan } from '../../plan/plan.js';
import { galoisSteps, rotationSteps } from '../../plan/rotations.js';
import { decompose, nafBasis } from '../../plan/rotation-keys.js';
import { withSeededRandom } from '../../train/seeded.js';
import { Rng } from '../../common/rng.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** A random small sequential net: conv (random kernel, stride, padding, groups), act, optional pool, dense, act, dense. */
function randomNet(seed: number): { model: tf.Sequential; shape: [number, number, number] } {
  const r = new Rng(seed);
  const H = 8 + r.int(6),
    C = 1 + r.int(2) * 3;
  const k = [1, 3, 5][r.int(3)],
    stride = 1 + r.int(2);
  const pad = (['same', 'valid', 1] as const)[r.int(3)];
  const filters = [2, 3, 4][r.int(3)] * (C === 1 ? 1 : 1);
  const groups = C > 1 && filters % C === 0 ? C : 1;
  const act = r.int(2) ? 'square' : 'quadratic';
  return withSeededRandom(seed, () => {
    const m = tf.sequential();
    m.add(new GroupedConv2D({ filters: C > 1 ? C : filters, kernelSize: k, strides: stride, padding: pad, groups, inputShape: [H, H, C] }));
    m.add(tf.layers.batchNormalization());
    m.add(new PolyActivation({ kind: act, init: { alpha: 0.2 + r.next(), beta: r.next() - 0.5, c: r.next() - 0.5 } }));
    if (r.int(2)) m.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 3 + r.int(10) }));
    m.add(new PolyActivation({ kind: act, init: { alpha: 0.5, beta: 0.3, c: -0.1 } }));
    m.add(tf.layers.dense({ units: 2 + r.int(9) }));
    return { model: m, shape: [H, H, C] as [number, number, number] };
  });
}

describe('compiled plans on the slot simulator', () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])('random net %i: simulator output = tfjs output; static counts = simulator counts', (seed) => {
    const { model, shape } = randomNet(seed);
    // Non-trivial batch-norm statistics, so folding is exercised.
    const bn = model.layers[1];
    bn.setWeights(
      bn.getWeights().map((w, i) => tf.add(w, tf.mul(tf.randomUniform(w.shape, 0.1, 0.5, 'float32', seed), i === 3 ? 1 : 0.5))),
    );
    const x = tf.randomNormal([1, ...shape], 0, 1, 'float32', seed);
    const ref = (model.predict(x) as tf.Tensor).dataSync();
    const plan = compileChain(lowerModel(model));
    const { y, sim } = simulate(plan, x.dataSync());
    const scale = Math.max(1, ...Array.from(ref, Math.abs));
    expect(maxAbsDiff(y, ref) / scale).toBeLessThan(1e-4);
    const { total } = planCounts(plan);
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch'] as const) expect(sim.counts[k]).toBe(total[k]);
    model.dispose();
  });

  test('tensors spanning several ciphertexts: wide and grouped convs, pooling by rotation, dense over two input ciphertexts', () => {
    const m = withSeededRandom(9, () => {
      const net = tf.sequential();
      net.add(new GroupedConv2D({ filters: 40, kernelSize: 5, padding: 'same', inputShape: [12, 12, 1] }));
      net.add(new PolyActivation({ kind: 'quadratic', init: { alpha: 0.3, beta: 0.8, c: 0.1 } }));
      net.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }));
      net.add(new GroupedConv2D({ filters: 36, kernelSize: 3, padding: 'same', groups: 4 }));
      net.add(new PolyActivation({ kind: 'square' }));
      net.add(tf.layers.flatten());
      net.add(tf.layers.dense({ units: 10 }));
      return net;
    });
    // N=8192: 4096 slots hold 28 channel blocks of 12x12, so 40 and 36 channels need two ciphertexts each.
    const plan = compileChain(lowerModel(m), {
      params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 },
    });
    expect(plan.steps.map((s) => `${s.kind}:${s.out.cts}`)).toEqual(['linear:2', 'square:2', 'pool:2', 'linear:2', 'square:2', 'linear:1']);
    expect(plan.inputCopies).toHaveLength(27);
    const x = tf.randomNormal([1, 12, 12, 1], 0, 1, 'float32', 8);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const { y, sim } = simulate(plan, x.dataSync());
    expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    const { total } = planCounts(plan);
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(total[k]);
    m.dispose();
  });

  test('lazy operands (a plan too big to pre-encode): same outputs and op counts, one encode per plaintext per inference', () => {
    const m = withSeededRandom(6, () =>
      buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
        inputShape: [12, 12, 1],
        numClasses: 5,
      }),
    );
    const plan = compileChain(lowerModel(m));
    const x = packInput(plan, tf.randomNormal([1, 12, 12, 1], 0, 1, 'float32', 3).dataSync());
    const outOf = (budget: number) => {
      const sim = simFor(plan);
      const p = prepare(sim, plan, { plaintextBudget: budget });
      const before = { ...sim.counts };
      const y = run(
        sim,
        p,
        x.map((v) => sim.encrypt(sim.encode(v, sim.topLevel))),
      ).map((c) => sim.decrypt(c));
      return {
        lazy: p.lazy,
        y: unpackOutput(plan, y),
        encodes: sim.counts.encode - before.encode - x.length,
        rot: sim.counts.rotate - before.rotate,
        mp: sim.counts.mulPlain - before.mulPlain,
      };
    };
    const n = planCounts(plan).plaintexts;
    // A budget for about half the operands (the first step's are the largest, at the top level).
    const half = (n / 2) * plaintextBytes(plan, plan.params.coeffModulusBits.length - 2);
    const eager = outOf(Infinity),
      lazy = outOf(0),
      partial = outOf(half);
    expect([eager.lazy, lazy.lazy]).toEqual([0, n]);
    expect(partial.lazy).toBeGreaterThan(0);
    expect(partial.lazy).toBeLessThan(n);
    for (const r of [lazy, partial]) {
      expect(Array.from(r.y)).toEqual(Array.from(eager.y));
      expect([r.rot, r.mp]).toEqual([eager.rot, eager.mp]);
    }
    expect(eager.encodes).toBe(0);
    expect(lazy.encodes).toBe(n);
    expect(partial.encodes).toBe(partial.lazy);
    m.dispose();
  });

  test('pooling by rotation: same outputs as pooling folded into the next conv, no level, a quarter of its taps', () => {
    const m = withSeededRandom(21, () =>
      buildModel(
        modelSchema.parse({
          name: 'lenet5',
          conv1: 8,
          conv2: 8,
          groups: 2,
          hidden: 8,
          activation: 'quadratic',
          quadraticInit: { alpha: 0.4, beta: 0.3, c: 0.2 },
        }),
        { inputShape: [16, 16, 1], numClasses: 4 },
      ),
    );
    const x = tf.randomNormal([1, 16, 16, 1], 0, 1, 'float32', 21);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const rotated = compileChain(lowerModel(m));
    const folded = compileChain(lowerModel(m, { poolByRotation: false }));
    expect(rotated.steps.map((s) => s.kind)).toEqual([
      'linear',
      'square',
      'pool',
      'linear',
      'square',
      'pool',
      'linear',
      'square',
      'linear',
    ]);
    expect(folded.steps.some((s) => s.kind === 'pool')).toBe(false);
    // Same depth: pools consume no level.
    expect(rotated.params).toEqual(folded.params);
    for (const plan of [rotated, folded]) {
      const { y, sim } = simulate(plan, x.dataSync());
      expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
      const { total } = planCounts(plan);
      for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(total[k]);
    }
    // The second conv reads its 5x5 taps instead of the 10x10 a folded 2x2 pool makes of them.
    const conv2 = (p: Plan) => planCounts(p).perStep.find((s) => s.name === 'linear2')!.counts.mulPlain;
    expect(conv2(rotated) * 4).toBe(conv2(folded));
    m.dispose();
  });

  test('power-of-two channel blocks make channel shifts cyclic: same outputs, b channel shifts instead of 2b−1', () => {
    const m = withSeededRandom(22, () =>
      buildModel(modelSchema.parse({ name: 'lenet5', conv1: 32, conv2: 32, groups: 1, hidden: 8 }), {
        inputShape: [12, 12, 1],
        numClasses: 4,
      }),
    );
    const x = tf.randomNormal([1, 12, 12, 1], 0, 1, 'float32', 22);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const tight = compileChain(lowerModel(m), { channelBlocks: 'tight' });
    const pow2 = compileChain(lowerModel(m), { channelBlocks: 'pow2' });
    const auto = compileChain(lowerModel(m));
    for (const plan of [tight, pow2]) {
      const { y } = simulate(plan, x.dataSync());
      expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    }
    const conv2 = (p: Plan) => planCounts(p).perStep.find((s) => s.name === 'linear2')!.counts.mulPlain;
    // 32 channels of 12x12 in one ciphertext of 8192 slots: tight blocks of 144 shift by −31…31;
    // blocks of 256 fill it exactly, so shifts wrap (0…31). 25 taps each.
    expect(tight.steps[0].out.desc).toContain('144c');
    expect(pow2.steps[0].out.desc).toContain('256c');
    expect(tight.slots).toBe(8192);
    // (A few of the 63·25 tight diagonals coincide modulo the ring, so not exactly 63·25.)
    expect(conv2(tight)).toBeGreaterThan(1.9 * conv2(pow2));
    expect(conv2(pow2)).toBe(32 * 25);
    expect(relativeCost(auto)).toBe(Math.min(relativeCost(tight), relativeCost(pow2)));
    m.dispose();
  });

  test("multiplexed packing: channels share a strided grid's gaps; same outputs, fewer ciphertexts and multiplications after pooling", () => {
    const m = withSeededRandom(24, () =>
      buildModel(
        modelSchema.parse({
          name: 'vgg5',
          filters: [8, 32, 64],
          activation: 'quadratic',
          batchNorm: true,
          quadraticInit: { alpha: 0.3, beta: 0.4, c: 0.1 },
        }),
        { inputShape: [16, 16, 3], numClasses: 4 },
      ),
    );
    const x = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 24);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const params = { polyModulusDegree: 16384, coeffModulusBits: [40, 30, 30, 30, 30, 30, 30, 30, 40], scaleBits: 30 };
    const pow2 = compileChain(lowerModel(m), { params, channelBlocks: 'pow2' });
    const mux = compileChain(lowerModel(m), { params, channelBlocks: 'mux' });
    for (const plan of [pow2, mux]) {
      const { y, sim } = simulate(plan, x.dataSync());
      expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
      const { total } = planCounts(plan);
      for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(sim.counts[k]).toBe(total[k]);
    }
    const ctsOf = (p: Plan, name: string) => p.steps.find((s) => s.name === name)!.out.cts;
    // conv2 writes a stride-2 grid: 4 channels per block; conv3 a stride-4 grid: 16.
    expect(mux.steps.find((s) => s.name === 'linear2')!.out.desc).toContain('4 channels per block');
    expect(mux.steps.find((s) => s.name === 'linear3')!.out.desc).toContain('16 channels per block');
    expect(ctsOf(mux, 'linear3')).toBeLessThan(ctsOf(pow2, 'linear3'));
    expect(planCounts(mux).total.mulPlain).toBeLessThan(planCounts(pow2).total.mulPlain);
    m.dispose();
  });

  test('a Galois key budget: power-of-two keys only, rotations composed; same outputs, counted as key switches', () => {
    const m = withSeededRandom(12, () =>
      buildModel(modelSchema.parse({ name: 'cryptonets' }), { inputShape: [28, 28, 1], numClasses: 10 }),
    );
    const params = { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 };
    const direct = compileChain(lowerModel(m), { params });
    const composed = compileChain(lowerModel(m), { params, maxGaloisKeyBytes: 0 });
    // A budget that fits every step keeps one key per step.
    expect(compileChain(lowerModel(m), { params, maxGaloisKeyBytes: 2 ** 40 }).rotationKeys).toBeUndefined();
    expect(direct.rotationKeys).toBeUndefined();
    // Budget 0: the ±2^i basis only (no room for direct keys).
    expect(composed.rotationKeys).toEqual(nafBasis(composed.slots));
    expect(galoisSteps(composed).length).toBeLessThan(galoisSteps(direct).length);
    const x = tf.randomNormal([1, 28, 28, 1], 0, 1, 'float32', 4).dataSync();
    const a = simulate(direct, x),
      b = simulate(composed, x);
    expect(maxAbsDiff(a.y, b.y)).toBeLessThan(1e-9);
    expect(b.sim.counts.rotate).toBe(planCounts(composed).total.rotate);
    expect(b.sim.counts.rotate).toBeGreaterThan(a.sim.counts.rotate);
    m.dispose();
  });

  test('non-adjacent-form decomposition: every rotation is the sum of its key steps, at most ⌈log2(S)/2⌉+1 of them', () => {
    const S = 4096,
      keys = nafBasis(S);
    for (let k = 0; k < S; k++) {
      const seq = decompose(k, S, keys);
      expect(seq.every((s) => keys.includes(s))).toBe(true);
      expect(seq.reduce((a, b) => a + b, 0) % S).toBe(k);
      expect(seq.length).toBeLessThanOrEqual(7);
    }
    expect(decompose(5, S, [5, ...keys])).toEqual([5]);
    expect(decompose(7, S, keys)).toEqual([S - 1, 8]);
  });

  test('zoo CryptoNets and MLP compile; every rotation has a Galois step and nothing else', () => {
    for (const name of ['cryptonets', 'mlp'] as const) {
      const m = withSeededRandom(3, () =>
        buildModel(modelSchema.parse({ name, ...(name === 'mlp' ? { hidden: [32] } : {}) }), { inputShape: [28, 28, 1], numClasses: 10 }),
      );
      const plan = compileChain(lowerModel(m));
      const x = tf.randomNormal([1, 28, 28, 1], 0, 1, 'float32', 5);
      const { y } = simulate(plan, x.dataSync());
      expect(maxAbsDiff(y, (m.predict(x) as tf.Tensor).dataSync())).toBeLessThan(1e-3);
      const used = new Set<number>();
      for (const s of plan.steps)
        if (s.kind === 'linear') {
          s.outputs.forEach((o) =>
            o.giants.forEach((g) => {
              if (g.giant) used.add(g.giant);
              g.terms.forEach((t) => t.baby && used.add(t.baby));
            }),
          );
          s.rotateSum.forEach((r) => used.add(r));
        }
      expect(rotationSteps(plan)).toEqual([...used].sort((a, b) => a - b));
      m.dispose();
    }
  });

  test('pruned weights cost nothing: a zeroed kernel tap removes its plaintext, multiplication, rotation and Galois key', () => {
    const m = withSeededRandom(4, () =>
      buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16 }), { inputShape: [12, 12, 1], numClasses: 4 }),
    );
    // Without BSGS every diagonal is its own input rotation, so a pruned tap saves exactly one rotation;
    // with BSGS a rotation goes only when no other diagonal shares its baby or giant step.
    const dense = compileChain(lowerModel(m), { bsgs: false });
    const denseBsgs = compileChain(lowerModel(m));
    const conv = m.getLayer('conv1') as GroupedConv2D;
    // getWeights() returns the live variables: copy them before setWeights changes them.
    const [kern, bias] = conv.getWeights().map((w) => w.clone());
    // Zero tap (ky=2, kx=3) for every channel: a whole diagonal of the packed conv.
    const mask = tf.buffer(kern.shape, 'float32');
    for (let i = 0; i < mask.size; i++) mask.values[i] = 1;
    for (let c = 0; c < 3; c++) mask.set(0, 2, 3, 0, c);
    conv.setWeights([tf.mul(kern, mask.toTensor()), bias]);
    const pruned = compileChain(lowerModel(m), { bsgs: false });
    const a = planCounts(dense),
      b = planCounts(pruned);
    expect(planCounts(compileChain(lowerModel(m))).total.mulPlain).toBe(planCounts(denseBsgs).total.mulPlain - 1);
    expect(planCounts(compileChain(lowerModel(m))).total.rotate).toBeLessThanOrEqual(planCounts(denseBsgs).total.rotate);
    // The conv is 25 taps: BSGS needs far fewer rotations than one per tap.
    expect(planCounts(denseBsgs).perStep[0].counts.rotate).toBeLessThan(planCounts(dense).perStep[0].counts.rotate);
    expect(b.total.mulPlain).toBe(a.total.mulPlain - 1);
    expect(b.total.rotate).toBe(a.total.rotate - 1);
    expect(b.plaintexts).toBe(a.plaintexts - 1);
    expect(rotationSteps(pruned).length).toBe(rotationSteps(dense).length - 1);
    // Pruning one channel's tap only: a plaintext gets sparser, nothing is saved (structure matters).
    const mask2 = tf.buffer(kern.shape, 'float32');
    for (let i = 0; i < mask2.size; i++) mask2.values[i] = 1;
    mask2.set(0, 1, 1, 0, 0);
    conv.setWeights([tf.mul(kern, mask2.toTensor()), bias]);
    expect(planCounts(compileChain(lowerModel(m), { bsgs: false })).total.mulPlain).toBe(a.total.mulPlain);
    m.dispose();
  });

  test('a nearly linear quadratic (tiny or negative α) is lowered unmerged: y² + λ·y in its square step at no extra level; simulator = tfjs, counts match', () => {
    const mlp = (alpha: number) =>
      withSeededRandom(2, () =>
        buildModel(
          modelSchema.parse({ name: 'mlp', hidden: [8, 8], activation: 'quadratic', quadraticInit: { alpha, beta: 0.9, c: 0.1 } }),
          { inputShape: [4, 4, 1], numClasses: 3 },
        ),
      );
    const m = mlp(1e-5),
      merged = mlp(0.3);
    // The second activation bends the other way: α < 0.
    (m.getLayer('act2') as PolyActivation).setWeights([tf.scalar(-2e-4), tf.scalar(1.1), tf.scalar(-0.2)]);
    const plan = compileChain(lowerModel(m)),
      mergedPlan = compileChain(lowerModel(merged));
    const squares = plan.steps.filter((st) => st.kind === 'square');
    // λ = β·r/α with r = |α|^(1/6).
    const lambda = (alpha: number, beta: number) => (beta * Math.abs(alpha) ** (1 / 6)) / alpha;
    expect(squares.map((st) => st.kind === 'square' && st.linear)).toEqual([
      expect.closeTo(lambda(1e-5, 0.9), 0),
      expect.closeTo(lambda(-2e-4, 1.1), 1),
    ]);
    expect(mergedPlan.steps.filter((st) => st.kind === 'square' && st.linear !== undefined)).toHaveLength(0);
    expect(plan.params.coeffModulusBits).toEqual(mergedPlan.params.coeffModulusBits);
    const x = tf.randomNormal([1, 4, 4, 1], 0, 1, 'float32', 5);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const { y, sim } = simulate(plan, x.dataSync());
    expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    const { total } = planCounts(plan),
      mergedTotal = planCounts(mergedPlan).total;
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect([k, sim.counts[k]]).toEqual([k, total[k]]);
    // Each unmerged square costs one plaintext product and one addition per ciphertext more, nothing else.
    const extra = squares.reduce((a, st) => a + st.out.cts, 0);
    expect(total.mulPlain - mergedTotal.mulPlain).toBe(extra);
    expect(total.mul).toBe(mergedTotal.mul);
    expect(total.rescale).toBe(mergedTotal.rescale);
    // A linear "quadratic" (α = 0) is no square at all: a clear error.
    (m.getLayer('act1') as PolyActivation).setWeights([tf.scalar(0), tf.scalar(1), tf.scalar(0)]);
    expect(() => lowerModel(m)).toThrow(/activation act1: α = 0, β = 1: not a quadratic CKKS can evaluate/);
    m.dispose();
    merged.dispose();
  });

  test('an unmerged quadratic in a residual network scales the skip path with the main one; simulator = tfjs', () => {
    const m = withSeededRandom(24, () =>
      buildModel(
        modelSchema.parse({
          name: 'resnet20',
          depth: 8,
          width: 4,
          activation: 'quadratic',
          quadraticInit: { alpha: 3e-3, beta: 1, c: 0.05 },
        }),
        { inputShape: [8, 8, 3], numClasses: 5 },
      ),
    );
    const chain = lowerModel(m);
    expect(chain.squareLinear!.filter((v) => v !== undefined)).toHaveLength(7);
    expect(chain.skips.filter(Boolean)).toHaveLength(3);
    const plan = compileChain(chain);
    const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 24);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const { y } = simulate(plan, x.dataSync());
    expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    m.dispose();
  });

  test('relu models are refused with a clear message', () => {
    const relu = buildModel(modelSchema.parse({ name: 'cryptonets', activation: 'relu' }), { inputShape: [28, 28, 1], numClasses: 10 });
    expect(() => lowerModel(relu)).toThrow(/act1: ReLU is a plaintext-only activation; HE export needs square or quadratic/);
  });

  test('residual networks: each addition joins the next linear step as a second input (no extra level); simulator = tfjs', () => {
    const m = withSeededRandom(23, () =>
      buildModel(
        modelSchema.parse({
          name: 'resnet20',
          depth: 8,
          width: 4,
          activation: 'quadratic',
          quadraticInit: { alpha: 0.3, beta: 0.5, c: 0.1 },
        }),
        { inputShape: [8, 8, 3], numClasses: 5 },
      ),
    );
    for (const l of m.layers)
      if (l.getClassName() === 'BatchNormalization') {
        l.setWeights(
          l.getWeights().map((w, i) => tf.add(w, tf.mul(tf.randomUniform(w.shape, 0.1, 0.5, 'float32', 23), i === 3 ? 1 : 0.5))),
        );
      }
    const chain = lowerModel(m);
    // conv1, then per block two convs; the second conv of every block reads the block input too.
    expect(chain.linears).toHaveLength(8);
    expect(chain.skips.map((s) => s?.from ?? null)).toEqual([null, null, 0, null, 2, null, 4, null]);
    const plan = compileChain(chain);
    expect(plan.steps.filter((s) => s.kind === 'square')).toHaveLength(7);
    const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 23);
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const { y, sim } = simulate(plan, x.dataSync());
    expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    const { total } = planCounts(plan);
    expect(total.modSwitch).toBeGreaterThan(0);
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch'] as const) expect(sim.counts[k]).toBe(total[k]);
    // The same network in 4-level segments: masked refreshes of the current tensor and of a block input still to be added.
    const split = compileChain(chain, { refresh: { levels: 4, maskBits: 12 } });
    expect(split.params.coeffModulusBits).toHaveLength(6);
    const refreshes = split.steps.filter((s) => s.kind === 'refresh');
    expect(refreshes.length).toBe(Math.ceil(15 / 4) - 1);
    expect(refreshes.some((s) => s.kind === 'refresh' && s.tensors.length > 0)).toBe(true);
    const r = simulate(split, x.dataSync());
    expect(maxAbsDiff(r.y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
    const splitTotal = planCounts(split).total;
    for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch', 'refresh'] as const)
      expect(r.sim.counts[k]).toBe(splitTotal[k]);
    expect(() => compileChain(chain, { refresh: { levels: 4, maskBits: 19 } })).toThrow(
      /export.refresh.maskBits 19: .*headroom of 20 bits.*at most 18/,
    );
    m.dispose();
  });
});
