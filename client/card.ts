import { z } from 'zod';
import type { ClientLayout } from '../plan/plan.js';

/**
 * A model's client card: all a client needs to talk to a server holding the
 * export (GET /card): the CKKS parameters, how to pack an input and read the
 * output, the Galois keys to generate, how to normalise an image. No weights,
 * no plan steps.
 */
export const CARD_FORMAT = 'heprune-client-card';

const layout = z
  .object({
    shape: z.array(z.number().int()),
    cts: z.number().int().positive(),
    period: z.number().int().positive().optional(),
    desc: z.string(),
    slotOf: z.array(z.number().int()),
  })
  .strict();

export const cardSchema = z
  .object({
    format: z.literal(CARD_FORMAT),
    version: z.literal(1),
    params: z
      .object({ polyModulusDegree: z.number().int(), coeffModulusBits: z.array(z.number().int()), scaleBits: z.number().int() })
      .strict(),
    /** Always 128: the server refuses anything else, and SEAL enforces it when the client builds its context. */
    securityBits: z.literal(128),
    slots: z.number().int().positive(),
    input: layout,
    inputCopies: z.array(z.number().int()),
    clientRotations: z.array(z.number().int()).optional(),
    output: layout,
    outputConstants: z.record(z.string(), z.number()).optional(),
    /** The Galois keys to upload: exactly these steps (the server refuses others and extra ones). */
    galoisSteps: z.array(z.number().int()),
    /** Ciphertexts one input frame carries (the input and its client-rotated copies). */
    sentCiphertexts: z.number().int().positive(),
    /** Masked refresh: ciphertexts one inference round-trips through the client (0: none). */
    refreshRounds: z.number().int().nonnegative(),
    model: z.object({
      name: z.string().optional(),
      task: z.string().optional(),
      dataset: z.string().optional(),
      /** Image shape the model reads, [H, W, C]. */
      shape: z.array(z.number().int()).optional(),
      numClasses: z.number().int().optional(),
      normalization: z.object({ kind: z.string(), mean: z.array(z.number()), std: z.array(z.number()) }).optional(),
    }),
    /** Request size limits the server enforces, in bytes. */
    limits: z.object({ keysBytes: z.number().int(), inferBytes: z.number().int(), refreshBytes: z.number().int() }).optional(),
  })
  .strict();
export type ClientCard = z.infer<typeof cardSchema>;

export function parseCard(raw: unknown): ClientCard {
  const r = cardSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`not a heprune client card: ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  return r.data;
}

/** The card as the interpreter's packing functions read it. */
export function cardLayout(c: ClientCard): ClientLayout {
  const l = (x: ClientCard['input']) => ({ ...x, slotOf: Int32Array.from(x.slotOf) });
  return {
    slots: c.slots,
    input: l(c.input),
    inputCopies: c.inputCopies,
    output: l(c.output),
    ...(c.clientRotations ? { clientRotations: c.clientRotations } : {}),
    ...(c.outputConstants
      ? { outputConstants: Object.fromEntries(Object.entries(c.outputConstants).map(([k, v]) => [Number(k), v])) }
      : {}),
  };
}

/**
 * Normalises raw pixels (0..255, HWC) as the model was trained:
 * x' = (x/255 − mean[c]) / std[c], as datasets/prepare's batchPixels does.
 */
export function normalizePixels(c: ClientCard, pixels: ArrayLike<number>): Float64Array {
  const n = c.model.normalization;
  const ch = c.model.shape?.[2] ?? 1;
  if (!n) return Float64Array.from(pixels as ArrayLike<number>, (v) => v / 255);
  return Float64Array.from(pixels as ArrayLike<number>, (v, p) => v / (255 * n.std[p % ch]) - n.mean[p % ch] / n.std[p % ch]);
}
