import type { OpCounts } from './op-counts.js';

/**
 * The CKKS operations layer kernels are written against. Two implementations
 * with identical slot semantics: the plaintext slot simulator (plan/slot-sim)
 * and node-seal (he/seal-backend). Levels count remaining rescales: a fresh
 * ciphertext is at `topLevel`, each rescale lowers it by one, level 0 cannot
 * be rescaled. Rotation by k moves slot i+k to slot i (left rotation, SEAL's
 * rotate_vector with positive steps).
 *
 * Every handle a method returns is new and owned by the caller, who frees it
 * with `free` (node-seal objects live in a WASM heap that never shrinks).
 */
export interface CkksBackend<C = unknown, P = unknown> {
  readonly slots: number;
  readonly topLevel: number;
  /** Default encoding scale (2^scaleBits). */
  readonly scale: number;
  readonly counts: OpCounts;

  /** Encodes `values` (zero-padded to the slot count) at `level` with `scale` (default: the backend's). */
  encode(values: ArrayLike<number>, level: number, scale?: number): P;
  encrypt(p: P): C;
  decrypt(c: C): Float64Array;

  add(a: C, b: C): C;
  addPlain(a: C, p: P): C;
  mulPlain(a: C, p: P): C;
  /** Ciphertext product, relinearised. */
  mul(a: C, b: C): C;
  rescale(a: C): C;
  rotate(a: C, steps: number): C;
  /** Drops `a` to a lower level without rescaling (to align operands). */
  modSwitchTo(a: C, level: number): C;

  /** The prime a rescale at `level` divides by (weights are encoded at it so scales stay put). */
  rescalePrime(level: number): number;
  levelOf(a: C): number;
  scaleOf(a: C): number;
  free(x: C | P): void;
}

/** Thrown for plan bugs the backends catch (level exhausted, scale or level mismatch, zero operand). */
export class HeOpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeOpError';
  }
}
