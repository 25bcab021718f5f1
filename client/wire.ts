/**
 * The binary frames client and server exchange (docs/deploy.md, "Protocol"):
 *
 *   bytes 0..3   "HEPR"
 *   byte  4      format version (1)
 *   byte  5      kind (FRAME_KINDS)
 *   bytes 6..7   zero
 *   bytes 8..11  header length H, u32 little-endian
 *   H bytes      header: UTF-8 JSON (session id, job, round, key steps …)
 *   u32          number of parts P
 *   P times      u32 length L, then L bytes (one serialised SEAL object)
 *
 * Pure byte handling: no node-seal, no Node built-ins (runs in a browser).
 */

export const FRAME_MAGIC = 'HEPR';
export const FRAME_VERSION = 1;

export const FRAME_KINDS = {
  /** client → server: relinearisation keys (part 0) and Galois key sets (parts 1…, header.galoisSteps[i] for part i + 1). */
  keys: 1,
  /** client → server: the packed, encrypted input (header.session). */
  input: 2,
  /** server → client: the encrypted outputs (header.session, header.job). */
  output: 3,
  /** server → client: a masked ciphertext to refresh (header.session, header.job, header.round). */
  refresh: 4,
  /** client → server: the masked ciphertext decrypted and re-encrypted at the top level (same job and round). */
  refreshed: 5,
} as const;
export type FrameKind = keyof typeof FRAME_KINDS;

export interface FrameHeader {
  session?: string;
  job?: string;
  round?: number;
  /** keys frames: the CKKS parameters the keys were made for. */
  params?: { polyModulusDegree: number; coeffModulusBits: number[]; scaleBits: number };
  /** keys frames: the rotation steps of each Galois key set, in part order after the relinearisation keys. */
  galoisSteps?: number[][];
  /** output frames: server milliseconds for this inference (evaluation only, excluding refresh waits). */
  serverMs?: number;
  [k: string]: unknown;
}

export interface Frame {
  kind: FrameKind;
  header: FrameHeader;
  parts: Uint8Array[];
}

/** A malformed frame: the message says what is wrong (servers answer it with a 400). */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

const KIND_BY_CODE = new Map(Object.entries(FRAME_KINDS).map(([k, v]) => [v as number, k as FrameKind]));

export function encodeFrame(f: Frame): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify(f.header));
  const size = 12 + header.length + 4 + f.parts.reduce((a, p) => a + 4 + p.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(FRAME_MAGIC), 0);
  out[4] = FRAME_VERSION;
  out[5] = FRAME_KINDS[f.kind];
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  let at = 12 + header.length;
  view.setUint32(at, f.parts.length, true);
  at += 4;
  for (const p of f.parts) {
    view.setUint32(at, p.length, true);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Parses a frame, checking every length against the buffer; `expect` names the kind the caller accepts. */
export function decodeFrame(bytes: Uint8Array, expect?: FrameKind): Frame {
  if (bytes.length < 16) throw new FrameError(`a frame is at least 16 bytes, got ${bytes.length}`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== FRAME_MAGIC) throw new FrameError(`not a heprune frame (magic ${JSON.stringify(magic)}, expected "${FRAME_MAGIC}")`);
  if (bytes[4] !== FRAME_VERSION) throw new FrameError(`frame format version ${bytes[4]}, this heprune speaks version ${FRAME_VERSION}`);
  const kind = KIND_BY_CODE.get(bytes[5]);
  if (!kind) throw new FrameError(`unknown frame kind ${bytes[5]}`);
  if (expect && kind !== expect) throw new FrameError(`expected a ${expect} frame, got a ${kind} frame`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = view.getUint32(8, true);
  if (12 + hlen + 4 > bytes.length) throw new FrameError(`the frame header claims ${hlen} bytes, the frame has ${bytes.length - 16}`);
  let header: FrameHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hlen))) as FrameHeader;
  } catch {
    throw new FrameError('the frame header is not JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new FrameError('the frame header is not a JSON object');
  let at = 12 + hlen;
  const count = view.getUint32(at, true);
  at += 4;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) throw new FrameError(`the frame is truncated: part ${i} of ${count} has no length`);
    const len = view.getUint32(at, true);
    if (at + 4 + len > bytes.length)
      throw new FrameError(`the frame is truncated: part ${i} claims ${len} bytes, ${bytes.length - at - 4} remain`);
    parts.push(bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== bytes.length) throw new FrameError(`${bytes.length - at} bytes after the last part`);
  return { kind, header, parts };
}

export const frameBytes = (parts: Uint8Array[]) => parts.reduce((a, p) => a + p.length, 0);
