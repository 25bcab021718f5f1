import { CkksClient } from '../he/client.js';
import { CkksContext } from '../he/ckks-context.js';
import { loadSealPlain, type Seal } from '../he/seal-core.js';
import { packInput, unpackOutput } from '../plan/interpreter.js';
import type { ClientLayout } from '../plan/plan.js';
import { cardLayout, normalizePixels, parseCard, type ClientCard } from './card.js';
import { decodeFrame, encodeFrame, FrameError } from './wire.js';

export interface ClientOptions {
  /** A loaded node-seal (default: node-seal's own loader, which also works in a browser bundle). */
  seal?: Seal;
  /** Serialisation of keys and ciphertexts (default zstd; 'none' to inspect the bytes). */
  compression?: 'zstd' | 'none';
  /** Rotation steps per serialised Galois key set (default 8). */
  keyChunk?: number;
}

/**
 * The key holder of one model: generates the keys (the secret key never
 * leaves this object), packs and encrypts inputs, decrypts and unpacks
 * outputs, and answers masked-refresh rounds. Speaks frames (client/wire),
 * so any transport can carry them. Free with `delete()`.
 */
export class HeClient {
  private readonly layout: ClientLayout;

  private constructor(
    readonly card: ClientCard,
    private readonly ctx: CkksContext,
    private readonly keys: CkksClient,
    private readonly chunk: number,
  ) {
    this.layout = cardLayout(card);
  }

  /** `card`: the parsed JSON of GET /card (validated here). */
  static async create(card: unknown, o: ClientOptions = {}): Promise<HeClient> {
    const c = parseCard(card);
    const ctx = await CkksContext.create(c.params, o.seal ?? (await loadSealPlain()));
    try {
      return new HeClient(c, ctx, new CkksClient(ctx, { compression: o.compression }), o.keyChunk ?? 8);
    } catch (e) {
      ctx.delete();
      throw e;
    }
  }

  /** The evaluation keys for the server: relinearisation keys and exactly the card's Galois steps (a keys frame). */
  evaluationKeys(): Uint8Array {
    const k = this.keys.serverKeys(this.card.galoisSteps, this.chunk);
    return encodeFrame({
      kind: 'keys',
      header: { params: this.card.params, galoisSteps: k.galoisKeys.map((g) => g.steps) },
      parts: [k.relinKeys, ...k.galoisKeys.map((g) => g.bytes)],
    });
  }

  /** Raw pixels (0..255, HWC, the card's model shape) normalised as the model was trained. */
  normalize(pixels: ArrayLike<number>): Float64Array {
    return normalizePixels(this.card, pixels);
  }

  /** Packs one normalised input (HWC) with its copies and client rotations, encrypts it: an input frame for `session`. */
  encryptInput(values: ArrayLike<number>, session: string): Uint8Array {
    const need = this.card.input.slotOf.length;
    if (values.length !== need)
      throw new Error(`the model reads ${need} input values (${this.card.input.shape.join('x')}), got ${values.length}`);
    const parts = packInput(this.layout, values).map((v) => this.keys.encrypt(v));
    return encodeFrame({ kind: 'input', header: { session }, parts });
  }

  /** A refresh frame's masked ciphertext, decrypted and re-encrypted at the top level: the refreshed frame to send back. */
  refresh(frame: Uint8Array): Uint8Array {
    const f = decodeFrame(frame, 'refresh');
    if (f.parts.length !== 1) throw new FrameError(`a refresh frame carries one ciphertext, got ${f.parts.length}`);
    const fresh = this.keys.encrypt(this.keys.decrypt(f.parts[0]));
    return encodeFrame({
      kind: 'refreshed',
      header: { session: f.header.session, job: f.header.job, round: f.header.round },
      parts: [fresh],
    });
  }

  /** Decrypts an output frame and reads the model's output vector out of its slots. */
  decryptOutput(frame: Uint8Array): Float64Array {
    const f = decodeFrame(frame, 'output');
    if (f.parts.length !== this.card.output.cts)
      throw new FrameError(`the model's output spans ${this.card.output.cts} ciphertexts, the frame has ${f.parts.length}`);
    return unpackOutput(
      this.layout,
      f.parts.map((p) => this.keys.decrypt(p)),
    );
  }

  delete(): void {
    this.keys.delete();
    this.ctx.delete();
  }
}
