import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { PolyActivation } from '../../train/layers/poly-activation.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain, type CompileOptions } from '../../export/compile.js';
import { maxAbsDiff, simulate } from '../helpers/simulate.js';
import { packInput } from '../../plan/interpreter.js';
import { planCounts } from '../../plan/cost.js';
import { sentCiphertexts, type LinearStep, type Plan } from '../../plan/plan.js';
import { galoisSteps } from '../../plan/rotations.js';
import { withSeededRandom } from '../../train/seeded.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const params = { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 };

/** Distinct non-zero baby rotations of the plan input in the first step: what the client takes over. */
function firstBabies(plan: Plan): Set<string> {
  const s = new Set<string>();
  for (const o of (plan.steps[0] as LinearStep).outputs)
    for (const g of o.giants) for (const t of g.terms) if (t.input < plan.input.cts && t.baby !== 0) s.add(`${t.input}:${t.baby}`);
  return s;
}

/** Other rotation steps the plan performs after its first step's babies (giants, rotate-and-sum, later steps). */
function laterSteps(plan: Plan): Set<number> {
  const s = new Set<number>();
  plan.steps.forEach((st, i) => {
    if (st.kind === 'pool') for (const stage of st.stages) for (const r of stage) if (r) s.add(r);
    if (st.kind !== 'linear') return;
    for (const o of st.outputs)
      for (const g of o.giants) {
        if (g.giant) s.add(g.giant);
        for (const t of g.terms) if (i > 0 && t.baby) s.add(t.baby);
      }
    for (const r of st.rotateSum) s.add(r);
  });
  return s;
}

function checkPair(model: tf.LayersModel, shape: number[], o: CompileOptions, seed: number) {
  const chain = lowerModel(model);
  const server = compileChain(chain, o);
  const client = compileChain(chain, { ...o, clientRotations: 'babies' });
  expect(server.rotationKeys).toBeUndefined();
  expect(client.rotationKeys).toBeUndefined();
  const babies = firstBabies(client);
  expect(babies.size).toBeGreaterThan(0);
  expect(client.clientRotations).toEqual([...new Set([...babies].map((b) => Number(b.split(':')[1])))].sort((a, b) => a - b));
  // The client sends one more packed input per client rotation; the server skips exactly those rotations.
  const x = tf.randomNormal([1, ...shape], 0, 1, 'float32', seed);
  const ref = (model.predict(x) as tf.Tensor).dataSync();
  expect(packInput(client, x.dataSync())).toHaveLength(sentCiphertexts(client));
  expect(sentCiphertexts(client)).toBe(client.input.cts * (1 + client.clientRotations!.length));
  const a = planCounts(server).total,
    b = planCounts(client).total;
  expect(a.rotate - b.rotate).toBe(babies.size);
  for (const k of ['mulPlain', 'mul', 'rescale', 'add', 'addPlain'] as const) expect(b[k]).toBe(a[k]);
  const { y, sim } = simulate(client, x.dataSync());
  expect(maxAbsDiff(y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
  for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch'] as const) expect(sim.counts[k]).toBe(b[k]);
  // No Galois key for a rotation only the client performs.
  const later = laterSteps(client);
  for (const r of client.clientRotations!) expect(galoisSteps(client).includes(r)).toBe(later.has(r));

  // `all`: the first layer has no giant steps and the server no rotation in it; one ciphertext sent per diagonal.
  const all = compileChain(chain, { ...o, clientRotations: 'all' });
  const first = all.steps[0] as LinearStep;
  expect(first.outputs.every((out) => out.giants.length === 1 && out.giants[0].giant === 0)).toBe(true);
  expect(planCounts(all).perStep[0].counts.rotate).toBe(first.rotateSum.length * first.outputs.length);
  expect(planCounts(all).perStep[0].counts.rescale).toBe(first.outputs.length);
  expect(all.clientRotations).toEqual([...new Set([...firstBabies(all)].map((b) => Number(b.split(':')[1])))].sort((a, b) => a - b));
  const run = simulate(all, x.dataSync());
  expect(maxAbsDiff(run.y, ref) / Math.max(1, ...Array.from(ref, Math.abs))).toBeLessThan(1e-4);
  const c = planCounts(all).total;
  for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch'] as const) expect(run.sim.counts[k]).toBe(c[k]);
}

describe('client-side rotations of the input (export.clientRotations)', () => {
  test("CryptoNets-style net: same outputs, the first layer's baby rotations (or all of them) gone from the server, counts = simulator", () => {
    const model = withSeededRandom(3, () =>
      buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
        inputShape: [12, 12, 1],
        numClasses: 5,
      }),
    );
    checkPair(model, [12, 12, 1], { params }, 3);
    model.dispose();
  });

  test('an input spanning two ciphertexts, a strided grouped conv and pooling: every ciphertext sent rotated', () => {
    const m = withSeededRandom(5, () => {
      const net = tf.sequential();
      // 40×40×3 = 4,800 values: two ciphertexts of 4,096 slots.
      net.add(new GroupedConv2D({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', groups: 3, inputShape: [40, 40, 3] }));
      net.add(new PolyActivation({ kind: 'quadratic', init: { alpha: 0.3, beta: 0.8, c: 0.1 } }));
      net.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }));
      net.add(tf.layers.flatten());
      net.add(tf.layers.dense({ units: 6 }));
      return net;
    });
    const plan = compileChain(lowerModel(m), { params, clientRotations: 'babies' });
    expect(plan.input.cts).toBe(2);
    checkPair(m, [40, 40, 3], { params }, 5);
    m.dispose();
  });
});
