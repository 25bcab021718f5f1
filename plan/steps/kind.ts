import type { z } from 'zod';
import type { CkksBackend } from '../backend.js';
import type { Plan, PlanStep } from '../plan.js';
import { decompose } from '../rotation-keys.js';

/**
 * What one step kind is, in one place: how it prepares its plaintext
 * operands, how it runs on any CKKS backend, what it reads besides its input,
 * and how it is written to and read from an export. The interpreter, the cost
 * model (which runs `run` on a counting backend, so it counts what the
 * interpreter does by construction) and the artifact iterate over the table
 * of kinds (plan/steps/table) instead of switching on `kind`.
 */

/** A plaintext operand: encoded once at prepare time, or (lazy) encoded at use and freed at once. */
export type Operand<P> = { pt: P } | { lazy: { values: Float64Array; level: number; scale: number } };

/** A step with its operands, in the order its kind's prepare produced them (its run reads them in that order). */
export interface PreparedStep<P, S extends PlanStep = PlanStep> {
  step: S;
  operands: Operand<P>[];
}

/** An earlier tensor a step looks up: the output of step `step` (−1: the plan input), `cts` ciphertexts. */
export interface TensorRef {
  step: number;
  cts: number;
}

export interface PrepareEnv<C, P> {
  readonly b: CkksBackend<C, P>;
  readonly plan: Plan;
  readonly index: number;
  /** The level the step runs at (its input's). */
  readonly level: number;
  /** The scale of the step's input. */
  readonly scale: number;
  /** The output scale of each earlier step (a kind that refreshes tensors rewrites them). */
  readonly outScale: number[];
  /** An operand at the step's level (encoded now while the plaintext budget lasts, else lazily). */
  operand(values: Float64Array, scale: number): Operand<P>;
}

/**
 * The client side of a masked refresh: decrypts a (masked) ciphertext and
 * returns a fresh top-level encryption of the same slots. Under CKKS this is
 * a network round trip to the key holder; on the simulator, a re-encryption.
 */
export interface RefreshChannel<C> {
  roundTrip(c: C): C;
}

export interface RunEnv<C, P> {
  readonly b: CkksBackend<C, P>;
  readonly plan: Plan;
  readonly index: number;
  /** The plan's Galois keys when rotations are composed (plan.rotationKeys). */
  readonly keys?: readonly number[];
  /** `given[i]`: rotations of input i the client supplied (the caller's, never freed by a step). */
  readonly given: Map<number, C>[];
  /** Earlier tensors still to be read, by step index (−1: the plan input); a refresh replaces them. */
  readonly saved: Map<number, C[]>;
  readonly channel?: RefreshChannel<C>;
}

/** The kind-specific fields of a step (everything but kind, name and out). */
export type StepFields<S extends PlanStep> = Omit<S, 'kind' | 'name' | 'out'>;

/**
 * A step kind's entry in an export manifest: its fields' zod shape (operands
 * as references into weights.bin, validated by `operand`), how a step is
 * written (`write` stores an operand's values and returns its reference) and
 * read back from an entry the shape validated.
 */
export interface StepArtifact<S extends PlanStep> {
  fields(operand: z.ZodTypeAny): z.ZodRawShape;
  write(step: S, write: (values: Float64Array) => unknown): Record<string, unknown>;
  read(entry: Record<string, unknown>, read: (ref: unknown) => Float64Array): StepFields<S>;
}

export interface StepKind<S extends PlanStep> {
  readonly kind: S['kind'];
  /** Encodes the step's operands; returns them with the scale of the step's output. */
  prepare<C, P>(env: PrepareEnv<C, P>, step: S): { operands: Operand<P>[]; scale: number };
  /** Evaluates the step on its input ciphertexts (the caller's) and returns new ones. */
  run<C extends object, P>(env: RunEnv<C, P>, prepared: PreparedStep<P, S>, xs: C[]): C[];
  /** Earlier tensors it looks up in `saved` (kept alive until their last reader). */
  reads(step: S): TensorRef[];
  readonly artifact: StepArtifact<S>;
}

/** Runs `f` with the operand's plaintext, encoding (and freeing) it on the spot when lazy. */
export function withOperand<C, P, T>(b: CkksBackend<C, P>, op: Operand<P>, f: (p: P) => T): T {
  if ('pt' in op) return f(op.pt);
  const p = b.encode(op.lazy.values, op.lazy.level, op.lazy.scale);
  try {
    return f(p);
  } finally {
    b.free(p);
  }
}

/** Rotation by k with the plan's Galois keys: one key switch, or a chain of power-of-two ones. */
export function rotate<C extends object, P>(b: CkksBackend<C, P>, x: C, k: number, keys?: readonly number[]): C {
  let cur = x;
  for (const r of decompose(k, b.slots, keys)) {
    const next = b.rotate(cur, r);
    if (cur !== x) b.free(cur);
    cur = next;
  }
  return cur;
}

/** acc + x, freeing both (a large layer sums thousands of products per output). */
export function sumInto<C, P>(b: CkksBackend<C, P>, acc: C | undefined, x: C): C {
  if (acc === undefined) return x;
  const r = b.add(acc, x);
  b.free(acc);
  b.free(x);
  return r;
}
