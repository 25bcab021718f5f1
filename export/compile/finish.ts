import { chooseKeys, galoisKeyBytes } from '../../plan/rotation-keys.js';
import { type Plan } from '../../plan/plan.js';
import { rotationUsage } from '../../plan/rotations.js';
import type { CompileOptions } from './options.js';
import { scaleChainError } from '../../plan/scale-chain.js';
import { UserError } from '../../common/errors.js';

/**
 * The last compile phase of every packing (diagonal and tiled): input
 * ciphertexts nothing reads are dropped, then which baby
 * rotations the client performs (export.clientRotations: the first layer's
 * baby steps, which compile made every diagonal under `all`), then the Galois
 * keys within the key memory budget — after the former, so the server never
 * gets keys for rotations it does not perform.
 */
export function finishPlan(plan: Plan, o: CompileOptions): Plan {
  const chainError = scaleChainError(plan);
  // Explicit primes are the user's to fix; primes the compiler chose not matching its own plan are a compiler bug.
  if (chainError && o.params) throw new UserError(`export.coeffModulusBits: ${chainError}`);
  if (chainError) throw new Error(`compile: the chosen parameters do not fit the plan: ${chainError}`);
  dropUnreadInputs(plan);
  const first = plan.steps[0];
  if (o.clientRotations && first?.kind === 'linear') {
    const steps = new Set<number>();
    for (const out of first.outputs)
      for (const g of out.giants) for (const t of g.terms) if (t.input < plan.input.cts && t.baby !== 0) steps.add(t.baby);
    if (steps.size) plan.clientRotations = [...steps].sort((a, b) => a - b);
  }
  const maxKeys = Math.floor((o.maxGaloisKeyBytes ?? 512 * 2 ** 20) / galoisKeyBytes(plan.params));
  const keys = chooseKeys(rotationUsage(plan), plan.slots, maxKeys);
  if (keys) plan.rotationKeys = keys;
  return plan;
}

/**
 * Input ciphertexts no kept weight reads (every tile over them pruned) are
 * never encrypted or sent: the client skips their elements (slot −1) and the
 * first step's terms are renumbered. Plans that read the input again later
 * (a residual from the input) keep every ciphertext.
 */
function dropUnreadInputs(plan: Plan): void {
  const first = plan.steps[0];
  const cts = plan.input.cts;
  if (first?.kind !== 'linear' || plan.steps.some((st) => st.kind === 'linear' && st.skip?.step === -1)) return;
  const read = new Set<number>();
  for (const out of first.outputs) for (const g of out.giants) for (const t of g.terms) if (t.input < cts) read.add(t.input);
  if (read.size === cts) return;
  const kept = [...read].sort((a, b) => a - b);
  const index = new Map(kept.map((c, i) => [c, i]));
  // A renumbered copy: the compiler may share step objects between candidate plans (tileFirstDense's convolutions).
  const outputs = first.outputs.map((out) => ({
    ...out,
    giants: out.giants.map((g) => ({
      ...g,
      terms: g.terms.map((t) => ({ ...t, input: t.input < cts ? index.get(t.input)! : t.input - (cts - kept.length) })),
    })),
  }));
  plan.steps = [{ ...first, outputs }, ...plan.steps.slice(1)];
  const S = plan.slots;
  const slotOf = Int32Array.from(plan.input.slotOf, (gs) => {
    const c = index.get(Math.floor(gs / S));
    return c === undefined ? -1 : c * S + (gs % S);
  });
  plan.input = {
    ...plan.input,
    cts: kept.length,
    slotOf,
    desc: `${plan.input.desc} (${kept.length} of ${cts} ciphertexts sent: the rest are read by no kept weight)`,
  };
}
