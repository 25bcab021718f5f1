import type { Ciphertext, Evaluator, GaloisKeys, Plaintext, RelinKeys } from 'node-seal';
import { HeOpError, type CkksBackend } from '../plan/backend.js';
import { zeroCounts } from '../plan/op-counts.js';
import type { CkksClient, ServerKeys } from './client.js';
import type { CkksContext } from './ckks-context.js';
import { assertHeapHeadroom, sealError } from './seal-core.js';

/**
 * node-seal implementation of the CKKS backend, holding evaluation keys only.
 * encrypt/decrypt go through an attached client when one is given (tests and
 * single-process evaluation); a server-only backend refuses them.
 */
export class SealBackend implements CkksBackend<Ciphertext, Plaintext> {
  readonly counts = zeroCounts();
  private readonly evaluator: Evaluator;
  private readonly relinKeys: RelinKeys;
  /** One key set per chunk the client sent, by rotation step. */
  private readonly galoisKeys = new Map<number, GaloisKeys>();
  private readonly keySets: GaloisKeys[] = [];
  private readonly galoisSteps: Set<number>;
  private readonly levelByParms = new Map<string, number>();
  private readonly hasRelin: boolean;

  /** `keys` null: no evaluation keys (encodes weights, adds and multiplies by plaintexts; ciphertext products and rotations throw). */
  constructor(
    readonly ctx: CkksContext,
    keys: ServerKeys | null,
    private readonly client?: CkksClient,
  ) {
    const m = ctx.m;
    this.evaluator = new m.Evaluator(ctx.context);
    this.relinKeys = new m.RelinKeys();
    try {
      if (keys) this.relinKeys.loadFromArray(ctx.context, keys.relinKeys);
      for (const chunk of keys?.galoisKeys ?? []) {
        const g = new m.GaloisKeys();
        this.keySets.push(g);
        g.loadFromArray(ctx.context, chunk.bytes);
        for (const s of chunk.steps) this.galoisKeys.set(s, g);
      }
    } catch (e) {
      this.delete();
      throw sealError(ctx.seal, e, 'loading evaluation keys');
    }
    this.hasRelin = !!keys;
    this.galoisSteps = new Set(keys?.galoisSteps ?? []);
    ctx.parmsIds.forEach((p, level) => this.levelByParms.set(String(p.values()), level));
  }

  get slots(): number {
    return this.ctx.slots;
  }
  get topLevel(): number {
    return this.ctx.topLevel;
  }
  get scale(): number {
    return this.ctx.scale;
  }

  private run<T>(what: string, f: () => T, cleanup?: () => void): T {
    let r: T;
    try {
      r = f();
    } catch (e) {
      cleanup?.();
      throw new HeOpError(sealError(this.ctx.seal, e, what).message);
    }
    // Never hand back a result computed with the heap at its limit.
    try {
      assertHeapHeadroom(this.ctx.seal, what);
    } catch (e) {
      cleanup?.();
      throw new HeOpError((e as Error).message);
    }
    return r;
  }

  private newCt(): Ciphertext {
    return new this.ctx.m.Ciphertext();
  }

  encode(values: ArrayLike<number>, level: number, scale = this.scale): Plaintext {
    if (values.length > this.slots) throw new HeOpError(`encode: ${values.length} values for ${this.slots} slots`);
    if (level < 0 || level > this.topLevel) throw new HeOpError(`encode: level ${level} outside 0..${this.topLevel}`);
    this.counts.encode++;
    const pt = new this.ctx.m.Plaintext();
    return this.run(
      'encode',
      () => {
        this.ctx.encoder.encode(Float64Array.from(values as ArrayLike<number>), scale, pt);
        if (level < this.topLevel) this.evaluator.plainModSwitchToInplace(pt, this.ctx.parmsIds[level]);
        return pt;
      },
      () => pt.delete(),
    );
  }

  encrypt(p: Plaintext): Ciphertext {
    if (!this.client) throw new HeOpError('encrypt: this server-side backend has no client attached (the server never encrypts inputs)');
    this.counts.encrypt++;
    return this.client.encryptPlaintext(p);
  }

  decrypt(c: Ciphertext): Float64Array {
    if (!this.client) throw new HeOpError('decrypt: the server holds no secret key');
    this.counts.decrypt++;
    return this.client.decryptCiphertext(c);
  }

  private binary(what: string, f: (out: Ciphertext) => void): Ciphertext {
    const out = this.newCt();
    return this.run(
      what,
      () => {
        f(out);
        return out;
      },
      () => out.delete(),
    );
  }

  add(a: Ciphertext, b: Ciphertext): Ciphertext {
    this.counts.add++;
    return this.binary('add', (o) => this.evaluator.add(a, b, o));
  }
  addPlain(a: Ciphertext, p: Plaintext): Ciphertext {
    this.counts.addPlain++;
    return this.binary('addPlain', (o) => this.evaluator.addPlain(a, p, o));
  }
  mulPlain(a: Ciphertext, p: Plaintext): Ciphertext {
    this.counts.mulPlain++;
    return this.binary('mulPlain', (o) => this.evaluator.multiplyPlain(a, p, o));
  }

  mul(a: Ciphertext, b: Ciphertext): Ciphertext {
    if (!this.hasRelin) throw new HeOpError('mul: this backend holds no relinearisation keys');
    this.counts.mul++;
    return this.binary('mul', (o) => {
      this.evaluator.multiply(a, b, o);
      this.evaluator.relinearizeInplace(o, this.relinKeys);
    });
  }

  rescale(a: Ciphertext): Ciphertext {
    if (this.levelOf(a) <= 0) throw new HeOpError('rescale: no levels left (the plan is deeper than the modulus chain)');
    this.counts.rescale++;
    return this.binary('rescale', (o) => this.evaluator.rescaleToNext(a, o));
  }

  rotate(a: Ciphertext, steps: number): Ciphertext {
    const k = ((steps % this.slots) + this.slots) % this.slots;
    if (k !== 0 && !this.galoisSteps.has(k)) {
      throw new HeOpError(`rotate: no Galois key for step ${k} (keys were generated for: ${[...this.galoisSteps].join(', ') || 'none'})`);
    }
    this.counts.rotate++;
    return this.binary('rotate', (o) => (k === 0 ? o.assign(a) : this.evaluator.rotateVector(a, k, this.galoisKeys.get(k)!, o)));
  }

  modSwitchTo(a: Ciphertext, level: number): Ciphertext {
    const from = this.levelOf(a);
    if (level > from) throw new HeOpError(`modSwitchTo: cannot raise level ${from} to ${level}`);
    this.counts.modSwitch++;
    return this.binary('modSwitch', (o) => this.evaluator.cipherModSwitchTo(a, this.ctx.parmsIds[level], o));
  }

  /**
   * Checks the loaded keys are what they claim: the relinearisation keys are
   * present, and each Galois key set holds a key for each of its steps (the
   * Galois element 3^step mod 2N, as SEAL derives it) and no other key.
   * Throws a plain Error naming the first mismatch.
   */
  verifyKeys(): void {
    if (this.hasRelin && this.relinKeys.size() === 0) throw new Error('the relinearisation keys are empty');
    const twoN = BigInt(2 * this.ctx.params.polyModulusDegree);
    const elt = (step: number) => {
      let e = 1n;
      for (let i = 0; i < step; i++) e = (e * 3n) % twoN;
      return Number(e);
    };
    for (const g of this.keySets) {
      const steps = [...this.galoisKeys].filter(([, k]) => k === g).map(([s]) => s);
      const missing = steps.find((s) => !g.hasKey(elt(s)));
      if (missing !== undefined) throw new Error(`the Galois keys said to cover step ${missing} hold no key for it`);
      if (g.size() !== steps.length)
        throw new Error(`a Galois key set holds ${g.size()} keys for ${steps.length} declared steps (${steps.join(', ')})`);
    }
  }

  rescalePrime(level: number): number {
    return this.ctx.rescalePrimes[this.topLevel - level];
  }

  levelOf(a: Ciphertext): number {
    const p = a.parmsId();
    try {
      const l = this.levelByParms.get(String(p.values()));
      if (l === undefined) throw new HeOpError('ciphertext does not belong to this context');
      return l;
    } finally {
      p.delete();
    }
  }

  scaleOf(a: Ciphertext): number {
    return a.scale();
  }

  free(x: Ciphertext | Plaintext): void {
    x.delete();
  }

  delete(): void {
    this.evaluator.delete();
    this.relinKeys.delete();
    for (const g of this.keySets) g.delete();
  }
}
