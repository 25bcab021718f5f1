import type { MainModule, SEALContext, CKKSEncoder, ParmsIdType } from 'node-seal';
import { UserError } from '../common/errors.js';
import { checkParams, levelsOf, type HeParams } from './params.js';
import { sealError, type Seal } from './seal-core.js';

/**
 * A SEAL CKKS context for one parameter set, with what both client and
 * server need: the encoder, the parms id of every level and the actual
 * rescale primes (the slot simulator uses the same primes, so scales agree
 * exactly). Free with `delete()`. Needs no file system (a browser client
 * uses it with he/seal-core's loadSealPlain).
 */
export class CkksContext {
  protected constructor(
    readonly seal: Seal,
    readonly params: HeParams,
    readonly context: SEALContext,
    readonly encoder: CKKSEncoder,
    /** parmsIds[level]: level = remaining rescales. */
    readonly parmsIds: ParmsIdType[],
    /** Prime divided out by a rescale from each level, top level first. */
    readonly rescalePrimes: number[],
  ) {}

  get m(): MainModule {
    return this.seal.m;
  }
  get slots(): number {
    return this.params.polyModulusDegree / 2;
  }
  get topLevel(): number {
    return levelsOf(this.params);
  }
  get scale(): number {
    return 2 ** this.params.scaleBits;
  }

  /** A context on the given node-seal instance (he/context's CkksContext.create loads the heap-watching one by default). */
  static async create(params: HeParams, seal: Seal): Promise<CkksContext> {
    checkParams(params);
    const m = seal.m;
    const parms = new m.EncryptionParameters(m.SchemeType.ckks);
    let context: SEALContext;
    try {
      parms.setPolyModulusDegree(params.polyModulusDegree);
      const coeff = m.CoeffModulus.Create(params.polyModulusDegree, Int32Array.from(params.coeffModulusBits));
      parms.setCoeffModulus(coeff);
      coeff.delete();
      // SEAL enforces 128-bit security itself too: a second check that cannot drift from the library.
      context = new m.SEALContext(parms, true, m.SecLevelType.tc128);
    } catch (e) {
      throw new UserError(sealError(seal, e, 'creating the CKKS context').message);
    } finally {
      parms.delete();
    }
    if (!context.parametersSet()) {
      context.delete();
      throw new UserError(`CKKS parameters N=${params.polyModulusDegree} [${params.coeffModulusBits.join(', ')}] were rejected by SEAL`);
    }
    const parmsIds: ParmsIdType[] = [];
    const rescalePrimes: number[] = [];
    // The chain ends at level 0; nextContextData() there wraps a null pointer (not undefined).
    let cd = context.firstContextData();
    for (;;) {
      const level = cd.chainIndex();
      parmsIds[level] = new m.ParmsIdType(cd.parmsId());
      const p = cd.parms();
      const mods = p.coeffModulus();
      if (level > 0) {
        const last = mods.get(mods.size() - 1)!;
        rescalePrimes.push(Number(last.value()));
        last.delete();
      }
      mods.delete();
      p.delete();
      if (level === 0) {
        cd.delete();
        break;
      }
      const next = cd.nextContextData();
      cd.delete();
      cd = next;
    }
    return new CkksContext(seal, params, context, new m.CKKSEncoder(context), parmsIds, rescalePrimes);
  }

  delete(): void {
    this.encoder.delete();
    for (const p of this.parmsIds) p?.delete();
    this.context.delete();
  }
}
