import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../train/backend.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import { withSeededRandom } from '../../train/seeded.js';
import { lowerModel } from '../../export/lower.js';
import { compileChain } from '../../export/compile.js';
import { SealBackend } from '../../he/seal-backend.js';
import { CkksTriple, expectEquivalent, expectPlanMatchesModel } from '../helpers/ckks-triple.js';
import { freePrepared, prepare, run, packInput, unpackOutput } from '../../plan/interpreter.js';
import { planCounts } from '../../plan/cost.js';
import { galoisSteps } from '../../plan/rotations.js';
import { nafBasis } from '../../plan/rotation-keys.js';
import { loadExport, writeExport } from '../../export/artifact.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The equivalence triple on a tiny CryptoNets-style net under real CKKS
 * (N=8192, 5 levels at a 28-bit scale): tfjs ≈ simulator ≈ node-seal, and the
 * op counts of the static cost model, the simulator and node-seal are equal.
 */
test('tiny net: tfjs ≈ simulator ≈ node-seal, identical op counts, client/server split by bytes', async () => {
  await initBackend('wasm');
  const model = withSeededRandom(11, () =>
    buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
      inputShape: [12, 12, 1],
      numClasses: 5,
    }),
  );
  const plan = compileChain(lowerModel(model), {
    params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 },
  });
  const triple = await CkksTriple.open(plan);
  const { ctx, client } = triple;
  const static_ = planCounts(plan).total;
  try {
    for (let i = 0; i < 3; i++) {
      const x = tf.randomNormal([1, 12, 12, 1], 0, 1, 'float32', 100 + i);
      const ref = (model.predict(x) as tf.Tensor).dataSync();
      const r = triple.infer(x.dataSync());
      const argmax = (a: ArrayLike<number>) => Array.from(a).indexOf(Math.max(...Array.from(a)));
      expect(argmax(r.ckks)).toBe(argmax(ref));
      expectEquivalent(r, ref, static_);
    }
    // The same network with composed rotations (power-of-two Galois keys only) under CKKS.
    // Force composition (the tiny net has fewer steps than the ±2^i basis, so the budget heuristic would keep direct keys).
    const composed = { ...plan, rotationKeys: nafBasis(plan.slots) };
    const server2 = new SealBackend(ctx, client.serverKeys(galoisSteps(composed)));
    const p2 = prepare(server2, composed);
    try {
      const x = tf.randomNormal([1, 12, 12, 1], 0, 1, 'float32', 200);
      const ref = (model.predict(x) as tf.Tensor).dataSync();
      const cts = packInput(composed, x.dataSync()).map((v) => {
        const c = new ctx.m.Ciphertext();
        c.loadFromArray(ctx.context, client.encrypt(v));
        return c;
      });
      const before = server2.counts.rotate;
      const outs = run(server2, p2, cts);
      const y = unpackOutput(
        composed,
        outs.map((o) => client.decrypt(new Uint8Array(o.saveToArray(ctx.m.ComprModeType.zstd)))),
      );
      for (const c of [...outs, ...cts]) c.delete();
      for (let j = 0; j < ref.length; j++) expect(Math.abs(y[j] - ref[j])).toBeLessThan(2e-2);
      expect(server2.counts.rotate - before).toBe(planCounts(composed).total.rotate);
    } finally {
      freePrepared(server2, p2);
      server2.delete();
    }
  } finally {
    triple.close();
    model.dispose();
  }
});

test('client-side rotations under real CKKS: the export round trip keeps them; tfjs ≈ simulator ≈ node-seal, identical counts', async () => {
  await initBackend('wasm');
  const model = withSeededRandom(12, () =>
    buildModel(modelSchema.parse({ name: 'cryptonets', filters: 3, hidden: 16, activation: 'quadratic' }), {
      inputShape: [12, 12, 1],
      numClasses: 5,
    }),
  );
  const compiled = compileChain(lowerModel(model), {
    params: { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 },
    clientRotations: 'all',
  });
  const tmp = await tempDir();
  await writeExport(tmp.path, compiled, {});
  const { plan } = await loadExport(tmp.path);
  await tmp.cleanup();
  expect(plan.clientRotations).toEqual(compiled.clientRotations);
  expect(plan.clientRotations!.length).toBeGreaterThan(0);
  expect(planCounts(plan).perStep[0].counts.rotate).toBe(0);
  // The server holds only galoisSteps(plan) (client-rotations.test checks those leave the client's out): a rotation it still did would throw.
  await expectPlanMatchesModel(plan, model, [12, 12, 1], 300);
});

test('a nearly linear quadratic under real CKKS: unmerged, tfjs ≈ simulator ≈ node-seal; merged, CKKS loses it', async () => {
  await initBackend('wasm');
  // α ≈ 5e-6 is what a trained quadratic autoencoder learned: its merged form gave CKKS MSE 0.57 against 8.8e-3.
  const model = withSeededRandom(12, () =>
    buildModel(
      modelSchema.parse({ name: 'mlp', hidden: [32, 32], activation: 'quadratic', quadraticInit: { alpha: 5e-6, beta: 0.9, c: 0.1 } }),
      { inputShape: [6, 6, 1], numClasses: 4 },
    ),
  );
  const params = { polyModulusDegree: 8192, coeffModulusBits: [38, 28, 28, 28, 28, 28, 40], scaleBits: 28 };
  const x = tf.randomNormal([1, 6, 6, 1], 0, 1, 'float32', 12);
  const ref = (model.predict(x) as tf.Tensor).dataSync();
  const errorOf = async (plan: Parameters<typeof CkksTriple.open>[0], check: boolean) => {
    const triple = await CkksTriple.open(plan);
    try {
      const r = triple.infer(x.dataSync());
      if (check) expectEquivalent(r, ref, planCounts(plan).total);
      return Math.max(...Array.from(ref, (v, j) => Math.abs(r.ckks[j] - v))) / Math.max(1, ...Array.from(ref, Math.abs));
    } finally {
      triple.close();
    }
  };
  try {
    const split = compileChain(lowerModel(model), { params });
    expect(split.steps.filter((s) => s.kind === 'square' && s.linear !== undefined)).toHaveLength(2);
    const splitError = await errorOf(split, true);
    const merged = compileChain(lowerModel(model, { maxQuadraticShift: 1e9 }), { params });
    const mergedError = await errorOf(merged, false);
    expect(mergedError).toBeGreaterThan(10 * splitError);
  } finally {
    model.dispose();
  }
});
