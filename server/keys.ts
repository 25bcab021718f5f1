import { decodeFrame, FrameError } from '../client/wire.js';
import type { ServerKeys } from '../he/client.js';
import type { Plan } from '../plan/plan.js';
import { galoisSteps } from '../plan/rotations.js';

/** A request the server refuses, with the HTTP status to answer it with. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/**
 * Reads a keys frame (client/wire) and checks it against the plan before any
 * SEAL object is made: the same CKKS parameters, one relinearisation key set,
 * and Galois keys for exactly the plan's steps (none missing, none extra, no
 * step twice). The frame can hold nothing else: a secret key has no place in it.
 */
export function parseKeys(body: Uint8Array, plan: Plan): ServerKeys {
  let f;
  try {
    f = decodeFrame(body, 'keys');
  } catch (e) {
    throw new RequestError(400, `evaluation keys: ${(e as FrameError).message}`);
  }
  const p = f.header.params;
  const want = plan.params;
  if (
    !p ||
    p.polyModulusDegree !== want.polyModulusDegree ||
    p.scaleBits !== want.scaleBits ||
    JSON.stringify(p.coeffModulusBits) !== JSON.stringify(want.coeffModulusBits)
  ) {
    throw new RequestError(
      400,
      `evaluation keys were made for CKKS parameters ${JSON.stringify(p ?? null)}, this model uses ` +
        `N=${want.polyModulusDegree} coeffModulusBits [${want.coeffModulusBits.join(', ')}] scaleBits ${want.scaleBits} (GET /card)`,
    );
  }
  const chunks = f.header.galoisSteps;
  if (!Array.isArray(chunks) || !chunks.every((c) => Array.isArray(c) && c.every((s) => Number.isInteger(s)))) {
    throw new RequestError(400, 'evaluation keys: header.galoisSteps must list the integer steps of each Galois key set');
  }
  if (f.parts.length !== 1 + chunks.length) {
    throw new RequestError(
      400,
      `evaluation keys: expected 1 relinearisation part and ${chunks.length} Galois key sets, the frame has ${f.parts.length} parts`,
    );
  }
  const sent = chunks.flat();
  const needed = new Set(galoisSteps(plan));
  const dup = sent.find((s, i) => sent.indexOf(s) !== i);
  const extra = sent.filter((s) => !needed.has(s));
  const missing = [...needed].filter((s) => !sent.includes(s));
  if (dup !== undefined) throw new RequestError(400, `evaluation keys: Galois step ${dup} is sent twice`);
  if (extra.length)
    throw new RequestError(
      400,
      `evaluation keys: Galois keys for steps the plan never rotates by (${extra.join(', ')}) are refused; send exactly the card's galoisSteps`,
    );
  if (missing.length)
    throw new RequestError(400, `evaluation keys: Galois keys missing for steps ${missing.join(', ')} (the card's galoisSteps)`);
  return {
    relinKeys: f.parts[0],
    galoisKeys: chunks.map((steps, i) => ({ steps, bytes: f.parts[i + 1] })),
    galoisSteps: [...sent].sort((a, b) => a - b),
  };
}
