import type { Ciphertext, Decryptor, Encryptor, KeyGenerator, PublicKey, SecretKey, Plaintext } from 'node-seal';
import type { CkksContext } from './ckks-context.js';
import { assertHeapHeadroom, sealError } from './seal-core.js';

/** Evaluation keys for the server: public material only, serialised (zstd) as a deployment would ship them. */
export interface ServerKeys {
  relinKeys: Uint8Array;
  /**
   * Galois keys in chunks of a few steps each: generating and serialising all
   * of a large plan's keys at once (tens of 18 MiB keys at N=16384) would
   * hold them twice in the 4 GiB wasm heap at the peak.
   */
  galoisKeys: { steps: number[]; bytes: Uint8Array }[];
  /** The rotation steps the Galois keys cover (only those the plan uses). */
  galoisSteps: number[];
}

/**
 * The client: owns the secret key, encrypts inputs and decrypts results.
 * The server never receives this object, only `serverKeys()` and ciphertext bytes.
 */
/** Serialised size of the Galois keys. */
export const galoisKeysBytes = (k: ServerKeys) => k.galoisKeys.reduce((a, c) => a + c.bytes.length, 0);

export class CkksClient {
  private readonly keygen: KeyGenerator;
  private readonly secretKey: SecretKey;
  private readonly publicKey: PublicKey;
  private readonly encryptor: Encryptor;
  private readonly decryptor: Decryptor;

  private readonly compr: number;

  /** `compression`: of everything serialised (default zstd; 'none' for inspection). */
  constructor(
    readonly ctx: CkksContext,
    o: { compression?: 'zstd' | 'none' } = {},
  ) {
    const m = ctx.m;
    this.compr = o.compression === 'none' ? 0 : 2;
    this.keygen = new m.KeyGenerator(ctx.context);
    this.secretKey = this.keygen.secretKey();
    this.publicKey = this.keygen.createPublicKey();
    this.encryptor = new m.Encryptor(ctx.context, this.publicKey);
    this.decryptor = new m.Decryptor(ctx.context, this.secretKey);
  }

  /** Relinearisation keys and Galois keys for exactly `steps` (deduplicated, 0 dropped), `chunk` steps per serialised key set. */
  serverKeys(steps: number[], chunk = 8): ServerKeys {
    const uniq = [...new Set(steps.map((s) => ((s % this.ctx.slots) + this.ctx.slots) % this.ctx.slots))]
      .filter((s) => s !== 0)
      .sort((a, b) => a - b);
    const relin = this.keygen.createRelinKeysSerializable();
    const relinKeys = new Uint8Array(relin.saveToArray(this.mode));
    relin.delete();
    const galoisKeys: ServerKeys['galoisKeys'] = [];
    for (let i = 0; i < uniq.length; i += chunk) {
      const part = uniq.slice(i, i + chunk);
      const gal = this.keygen.createGaloisKeysSerializableWithSteps(Int32Array.from(part));
      try {
        galoisKeys.push({ steps: part, bytes: new Uint8Array(gal.saveToArray(this.mode)) });
      } finally {
        gal.delete();
      }
    }
    assertHeapHeadroom(this.ctx.seal, 'generating evaluation keys');
    return { relinKeys, galoisKeys, galoisSteps: uniq };
  }

  private get mode() {
    return this.compr === 0 ? this.ctx.m.ComprModeType.none : this.ctx.m.ComprModeType.zstd;
  }

  encodeEncrypt(values: ArrayLike<number>): Ciphertext {
    const m = this.ctx.m;
    const pt = new m.Plaintext();
    const ct = new m.Ciphertext();
    try {
      this.ctx.encoder.encode(Float64Array.from(values as ArrayLike<number>), this.ctx.scale, pt);
      this.encryptor.encrypt(pt, ct);
      return ct;
    } catch (e) {
      ct.delete();
      throw sealError(this.ctx.seal, e, 'encrypt');
    } finally {
      pt.delete();
    }
  }

  encryptPlaintext(pt: Plaintext): Ciphertext {
    const ct = new this.ctx.m.Ciphertext();
    try {
      this.encryptor.encrypt(pt, ct);
      return ct;
    } catch (e) {
      ct.delete();
      throw sealError(this.ctx.seal, e, 'encrypt');
    }
  }

  /** Encrypts one packed input and serialises it for the server. */
  encrypt(values: ArrayLike<number>): Uint8Array {
    const ct = this.encodeEncrypt(values);
    try {
      return new Uint8Array(ct.saveToArray(this.mode));
    } finally {
      ct.delete();
    }
  }

  decryptCiphertext(ct: Ciphertext): Float64Array {
    const pt: Plaintext = new this.ctx.m.Plaintext();
    try {
      this.decryptor.decrypt(ct, pt);
      return Float64Array.from(this.ctx.encoder.decodeFloat64(pt) as ArrayLike<number>);
    } catch (e) {
      throw sealError(this.ctx.seal, e, 'decrypt');
    } finally {
      pt.delete();
    }
  }

  /**
   * The client's side of masked refresh (plan/interpreter RefreshChannel),
   * by bytes as over a network: the server's masked ciphertext is
   * serialised, decrypted, re-encrypted at the top level and loaded back.
   * `onTrip` sees each trip's bytes (both ways) and client milliseconds.
   */
  refreshChannel(onTrip?: (bytes: number, clientMs: number) => void): { roundTrip(c: Ciphertext): Ciphertext } {
    const m = this.ctx.m;
    return {
      roundTrip: (c: Ciphertext): Ciphertext => {
        const masked = new Uint8Array(c.saveToArray(m.ComprModeType.zstd));
        const t0 = performance.now();
        const fresh = this.encrypt(this.decrypt(masked));
        onTrip?.(masked.length + fresh.length, performance.now() - t0);
        const out = new m.Ciphertext();
        out.loadFromArray(this.ctx.context, fresh);
        return out;
      },
    };
  }

  decrypt(bytes: Uint8Array): Float64Array {
    const ct = new this.ctx.m.Ciphertext();
    try {
      ct.loadFromArray(this.ctx.context, bytes);
      return this.decryptCiphertext(ct);
    } finally {
      ct.delete();
    }
  }

  delete(): void {
    for (const x of [this.encryptor, this.decryptor, this.publicKey, this.secretKey, this.keygen]) x.delete();
  }
}
