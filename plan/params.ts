/**
 * CKKS parameters. coeffModulusBits = [first, rescale primes…, special]:
 * the first prime holds the result's integer part plus the scale, each middle
 * prime is one level (rescale), the last is the key-switching prime.
 * Defined in the IR (a plan carries them); he/params chooses and checks them.
 */
export interface HeParams {
  polyModulusDegree: number;
  coeffModulusBits: number[];
  scaleBits: number;
}

export const slotsOf = (p: HeParams) => p.polyModulusDegree / 2;
export const levelsOf = (p: HeParams) => p.coeffModulusBits.length - 2;
