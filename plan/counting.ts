import type { CkksBackend } from './backend.js';
import { zeroCounts, type OpCounts } from './op-counts.js';
import { clientRotated, stepLevels, type Plan } from './plan.js';
import type { RunEnv } from './steps/kind.js';
import { kindOf } from './steps/table.js';

/** A ciphertext or plaintext of the counting backend: only its level. */
interface Token {
  readonly level: number;
}

/**
 * A CKKS backend that computes nothing and counts everything: running a
 * step's kernel on it gives the step's op counts and the rotations it makes,
 * by key step, with no second implementation of what the kernel does.
 */
class CountingBackend implements CkksBackend<Token, Token> {
  readonly scale = 1;
  readonly counts = zeroCounts();
  /** How many times each key step was applied. */
  readonly usage = new Map<number, number>();
  constructor(
    readonly slots: number,
    readonly topLevel: number,
  ) {}
  private t(level: number): Token {
    return { level };
  }
  encode(_v: ArrayLike<number>, level: number, _scale?: number): Token {
    this.counts.encode++;
    return this.t(level);
  }
  encrypt(p: Token): Token {
    this.counts.encrypt++;
    return this.t(p.level);
  }
  decrypt(): Float64Array {
    this.counts.decrypt++;
    return new Float64Array(this.slots);
  }
  add(a: Token): Token {
    this.counts.add++;
    return this.t(a.level);
  }
  addPlain(a: Token): Token {
    this.counts.addPlain++;
    return this.t(a.level);
  }
  mulPlain(a: Token): Token {
    this.counts.mulPlain++;
    return this.t(a.level);
  }
  mul(a: Token): Token {
    this.counts.mul++;
    return this.t(a.level);
  }
  rescale(a: Token): Token {
    this.counts.rescale++;
    return this.t(a.level - 1);
  }
  rotate(a: Token, steps: number): Token {
    this.counts.rotate++;
    this.usage.set(steps, (this.usage.get(steps) ?? 0) + 1);
    return this.t(a.level);
  }
  modSwitchTo(_a: Token, level: number): Token {
    this.counts.modSwitch++;
    return this.t(level);
  }
  rescalePrime(): number {
    return 1;
  }
  levelOf(a: Token): number {
    return a.level;
  }
  scaleOf(): number {
    return 1;
  }
  free(): void {
    /* nothing held */
  }
}

/** What one inference does in one step: its server op counts, its rotations by key step, its plaintext operands. */
export interface StepTally {
  counts: OpCounts;
  usage: Map<number, number>;
  operands: number;
}

/**
 * Runs every step of `plan` on the counting backend, with `keys` as the
 * Galois keys (default: the plan's; `null`: one key per rotation step, which
 * tallies rotations by the steps the plan asks for). Encodings are not
 * counted (prepare-time work, or the budget's lazy re-encodings).
 */
export function tallySteps(plan: Plan, keys: readonly number[] | null = plan.rotationKeys ?? null): StepTally[] {
  const top = plan.params.coeffModulusBits.length - 2;
  const levels = stepLevels(plan, top);
  const tokens = (n: number, level: number) => Array.from({ length: n }, () => ({ level }));
  return plan.steps.map((step, index) => {
    const b = new CountingBackend(plan.slots, top);
    const level = levels[index];
    const kind = kindOf(step);
    const { operands } = kind.prepare(
      { b, plan, index, level, scale: 1, outScale: new Array<number>(index).fill(1), operand: (v, s) => ({ pt: b.encode(v, level, s) }) },
      step,
    );
    const saved = new Map(kind.reads(step).map((r) => [r.step, tokens(r.cts, level)]));
    const given = clientRotated(plan, index)
      ? tokens(plan.input.cts, level).map((t) => new Map((plan.clientRotations ?? []).map((r) => [r, t])))
      : [];
    const env: RunEnv<Token, Token> = {
      b,
      plan,
      index,
      keys: keys ?? undefined,
      given,
      saved,
      channel: { roundTrip: () => ({ level: top }) },
    };
    Object.assign(b.counts, zeroCounts());
    kind.run(env, { step, operands }, tokens(index === 0 ? plan.input.cts : plan.steps[index - 1].out.cts, level));
    return { counts: { ...b.counts, encode: 0 }, usage: b.usage, operands: operands.length };
  });
}
