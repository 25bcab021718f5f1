/**
 * One export set up for latency measurement (client keys, server keys,
 * encoded weights up to a budget) and one timed inference on it. Used by
 * bench/compare-latency on its own thread (`--resident all`) and inside a
 * fresh worker per set-up (`--resident one`, bench/latency-worker).
 */
import { CkksContext } from '../he/context.js';
import { CkksClient } from '../he/client.js';
import { SealBackend } from '../he/seal-backend.js';
import { prepare, run, freePrepared } from '../plan/interpreter.js';
import { type Plan } from '../plan/plan.js';
import { galoisSteps } from '../plan/rotations.js';

export async function setUp(plan: Plan, plaintextBudget: number) {
  const ctx = await CkksContext.create(plan.params);
  const client = new CkksClient(ctx);
  const server = new SealBackend(ctx, client.serverKeys(galoisSteps(plan)));
  const prepared = prepare(server, plan, { plaintextBudget });
  return { ctx, client, server, prepared };
}
export type LatencySetup = Awaited<ReturnType<typeof setUp>>;

export function tearDown(s: LatencySetup): void {
  freePrepared(s.server, s.prepared);
  s.server.delete();
  s.client.delete();
  s.ctx.delete();
}

/** One inference: client encryption ms and server ms (a masked refresh's client share excluded). */
export function infer(s: LatencySetup, packed: Float64Array[]): { encryptMs: number; serverMs: number } {
  const t0 = performance.now();
  const cts = packed.map((v) => s.client.encodeEncrypt(v));
  const t1 = performance.now();
  let clientMs = 0;
  const out = run(
    s.server,
    s.prepared,
    cts,
    undefined,
    s.client.refreshChannel((_bytes, ms) => {
      clientMs += ms;
    }),
  );
  const t2 = performance.now();
  for (const c of [...out, ...cts]) s.server.free(c);
  return { encryptMs: t1 - t0, serverMs: t2 - t1 - clientMs };
}
