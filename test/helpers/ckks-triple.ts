import { CkksContext } from '../../he/context.js';
import { CkksClient } from '../../he/client.js';
import { SealBackend } from '../../he/seal-backend.js';
import { SlotSimulator, type SimValue } from '../../plan/slot-sim.js';
import { freePrepared, prepare, run, packInput, unpackOutput, type Prepared } from '../../plan/interpreter.js';
import type { OpCounts } from '../../plan/op-counts.js';
import { type Plan } from '../../plan/plan.js';
import { galoisSteps } from '../../plan/rotations.js';
import type { Plaintext } from 'node-seal';
import * as tf from '@tensorflow/tfjs';
import { planCounts } from '../../plan/cost.js';

/**
 * One plan on node-seal (real keys; client → bytes → server → bytes →
 * client) and on the simulator with the same primes, for the equivalence
 * tests: outputs and per-inference op counts of both.
 */
export class CkksTriple {
  private constructor(
    readonly ctx: CkksContext,
    readonly client: CkksClient,
    readonly server: SealBackend,
    readonly sim: SlotSimulator,
    private readonly ps: Prepared<Plaintext>,
    private readonly pm: Prepared<SimValue>,
    readonly plan: Plan,
  ) {}

  static async open(plan: Plan): Promise<CkksTriple> {
    const ctx = await CkksContext.create(plan.params);
    const client = new CkksClient(ctx);
    const server = new SealBackend(ctx, client.serverKeys(galoisSteps(plan)));
    const sim = new SlotSimulator({ slots: plan.slots, rescalePrimes: ctx.rescalePrimes, scale: ctx.scale });
    return new CkksTriple(ctx, client, server, sim, prepare(server, plan), prepare(sim, plan), plan);
  }

  infer(x: ArrayLike<number>): { ckks: Float64Array; simulated: Float64Array; sealCounts: OpCounts; simCounts: OpCounts } {
    const { ctx, client, server, sim, plan } = this;
    const packed = packInput(plan, x);
    const cts = packed.map((v) => {
      const c = new ctx.m.Ciphertext();
      c.loadFromArray(ctx.context, client.encrypt(v));
      return c;
    });
    const before = { seal: { ...server.counts }, sim: { ...sim.counts } };
    const outs = run(server, this.ps, cts, undefined, client.refreshChannel());
    const ckks = unpackOutput(
      plan,
      outs.map((o) => client.decrypt(new Uint8Array(o.saveToArray(ctx.m.ComprModeType.zstd)))),
    );
    const sealAfter = { ...server.counts };
    const simulated = unpackOutput(
      plan,
      run(
        sim,
        this.pm,
        packed.map((v) => sim.encrypt(sim.encode(v, sim.topLevel))),
        undefined,
        sim.refreshChannel(),
      ).map((c) => sim.decrypt(c)),
    );
    for (const c of [...outs, ...cts]) c.delete();
    const delta = (a: OpCounts, b: OpCounts) =>
      Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof OpCounts] - b[k as keyof OpCounts]])) as unknown as OpCounts;
    return { ckks, simulated, sealCounts: delta(sealAfter, before.seal), simCounts: delta(sim.counts, before.sim) };
  }

  close(): void {
    freePrepared(this.server, this.ps);
    this.server.delete();
    this.client.delete();
    this.ctx.delete();
  }
}

export type Inference = ReturnType<CkksTriple['infer']>;

/**
 * What every CKKS equivalence test asserts of one inference: the simulator
 * equals the reference to 1e-4 and CKKS to 2e-2 (relative to max(1, |ref|)),
 * and node-seal, the simulator and the static cost model count the same
 * operations (`refresh` too).
 */
export function expectEquivalent(r: Inference, ref: ArrayLike<number>, expected: OpCounts): void {
  const scale = Math.max(1, ...Array.from(ref, Math.abs));
  for (let j = 0; j < ref.length; j++) {
    expect(Math.abs(r.simulated[j] - ref[j]) / scale).toBeLessThan(1e-4);
    expect(Math.abs(r.ckks[j] - ref[j]) / scale).toBeLessThan(2e-2);
  }
  for (const k of ['rotate', 'mulPlain', 'mul', 'rescale', 'add', 'addPlain', 'modSwitch', 'refresh'] as const) {
    expect([k, r.sealCounts[k]]).toEqual([k, expected[k]]);
    expect([k, r.simCounts[k]]).toEqual([k, expected[k]]);
  }
}

/**
 * The whole equivalence check on one random input: the plan under node-seal
 * and on the simulator against the tfjs model (`expectEquivalent`, with the
 * static counts as the expected ones). Disposes the model.
 */
export async function expectPlanMatchesModel(plan: Plan, model: tf.LayersModel, inputShape: number[], seed: number): Promise<void> {
  const triple = await CkksTriple.open(plan);
  try {
    const x = tf.randomNormal([1, ...inputShape], 0, 1, 'float32', seed);
    const ref = (model.predict(x) as tf.Tensor).dataSync();
    expectEquivalent(triple.infer(x.dataSync()), ref, planCounts(plan).total);
  } finally {
    triple.close();
    model.dispose();
  }
}
