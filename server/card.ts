import { CARD_FORMAT, type ClientCard } from '../client/card.js';
import type { Manifest } from '../export/artifact.js';
import type { Layout } from '../plan/layout.js';
import { sentCiphertexts, type Plan } from '../plan/plan.js';
import { galoisKeyBytes } from '../plan/rotation-keys.js';
import { galoisSteps } from '../plan/rotations.js';
import { planCounts } from '../plan/cost.js';

/** Serialised bytes of one uncompressed ciphertext at the top level (2 polynomials × N × primes below the special one × 8), plus header room. */
export const ciphertextBytesMax = (p: Plan['params']) => 2 * p.polyModulusDegree * (p.coeffModulusBits.length - 1) * 8 + 4096;

/** Request size limits: uncompressed serialisations of what each request may carry, plus framing room. */
export function requestLimits(plan: Plan): NonNullable<ClientCard['limits']> {
  const keys = (galoisSteps(plan).length + 1) * galoisKeyBytes(plan.params);
  return {
    keysBytes: Math.ceil(keys * 1.05) + 2 ** 20,
    inferBytes: sentCiphertexts(plan) * ciphertextBytesMax(plan.params) + 2 ** 16,
    refreshBytes: ciphertextBytesMax(plan.params) + 2 ** 16,
  };
}

const layout = (l: Layout) => ({
  shape: l.shape,
  cts: l.cts,
  ...(l.period ? { period: l.period } : {}),
  desc: l.desc,
  slotOf: Array.from(l.slotOf),
});

/** The client card of an export: parameters, layouts, Galois steps, normalisation; no weights and no plan steps. */
export function clientCard(plan: Plan, manifest: Manifest): ClientCard {
  const meta = manifest.meta as {
    model?: string;
    task?: string;
    dataset?: string;
    shape?: number[];
    numClasses?: number;
    normalization?: { kind: string; mean: number[]; std: number[] };
  };
  return {
    format: CARD_FORMAT,
    version: 1,
    params: plan.params,
    securityBits: 128,
    slots: plan.slots,
    input: layout(plan.input),
    inputCopies: plan.inputCopies,
    ...(plan.clientRotations ? { clientRotations: plan.clientRotations } : {}),
    output: layout(plan.output),
    ...(plan.outputConstants
      ? { outputConstants: Object.fromEntries(Object.entries(plan.outputConstants).map(([k, v]) => [String(k), v])) }
      : {}),
    galoisSteps: galoisSteps(plan),
    sentCiphertexts: sentCiphertexts(plan),
    refreshRounds: planCounts(plan).total.refresh,
    model: {
      ...(meta.model ? { name: meta.model } : {}),
      ...(meta.task ? { task: meta.task } : {}),
      ...(meta.dataset ? { dataset: meta.dataset } : {}),
      ...(meta.shape ? { shape: meta.shape } : {}),
      ...(meta.numClasses ? { numClasses: meta.numClasses } : {}),
      ...(meta.normalization
        ? { normalization: { kind: meta.normalization.kind, mean: meta.normalization.mean, std: meta.normalization.std } }
        : {}),
    },
    limits: requestLimits(plan),
  };
}
