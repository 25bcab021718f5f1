import { z } from 'zod';
import type { CkksBackend } from '../backend.js';
import type { RefreshStep } from '../plan.js';
import type { RefreshChannel, StepKind } from './kind.js';

/**
 * Masked refresh of the current tensor and of the earlier ones still to be
 * read: the server adds a uniform mask, the key holder re-encrypts at the top
 * level, the server subtracts the mask. No operands, no level; the refreshed
 * tensors come back at the default scale.
 */

/** Uniform masks in ±2^bits per slot (fresh per refresh and ciphertext; crypto-grade randomness). */
function mask(slots: number, bits: number): Float64Array {
  const u = new Uint32Array(slots);
  crypto.getRandomValues(u);
  return Float64Array.from(u, (v) => ((v / 2 ** 32) * 2 - 1) * 2 ** bits);
}

/** Masks, round-trips and unmasks each ciphertext; the inputs stay the caller's. Counted as refresh per ciphertext. */
function refreshAll<C extends object, P>(b: CkksBackend<C, P>, cts: C[], bits: number, channel: RefreshChannel<C>): C[] {
  return cts.map((c) => {
    const r = mask(b.slots, bits);
    const rp = b.encode(r, b.levelOf(c), b.scaleOf(c));
    const masked = b.addPlain(c, rp);
    b.free(rp);
    const fresh = channel.roundTrip(masked);
    b.free(masked);
    const neg = b.encode(
      r.map((v) => -v),
      b.topLevel,
      b.scaleOf(fresh),
    );
    const out = b.addPlain(fresh, neg);
    b.free(neg);
    b.free(fresh);
    b.counts.refresh++;
    return out;
  });
}

export const refreshKind: StepKind<RefreshStep> = {
  kind: 'refresh',
  prepare(env, step) {
    for (const t of step.tensors) env.outScale[t.step] = env.b.scale;
    if (env.index > 0) env.outScale[env.index - 1] = env.b.scale; // the current tensor, should it be read again later
    return { operands: [], scale: env.b.scale };
  },
  run({ b, plan, saved, channel }, s, xs) {
    if (!channel) throw new Error(`${s.step.name}: this plan needs masked refresh, and no client channel was given`);
    const bits = plan.refresh?.maskBits ?? 0;
    const y = refreshAll(b, xs, bits, channel);
    // The current tensor, if read later, is read refreshed.
    for (const [k, v] of saved) if (k !== -1 && v === xs) saved.set(k, y);
    for (const t of s.step.tensors) {
      const old = saved.get(t.step)!;
      saved.set(t.step, refreshAll(b, old, bits, channel));
      for (const c of old) b.free(c);
    }
    return y;
  },
  reads: (step) => step.tensors,
  artifact: {
    fields: () => ({ tensors: z.array(z.object({ step: z.number().int().nonnegative(), cts: z.number().int().positive() })) }),
    write: (s) => ({ tensors: s.tensors }),
    read: (e) => ({ tensors: e.tensors as RefreshStep['tensors'] }),
  },
};
