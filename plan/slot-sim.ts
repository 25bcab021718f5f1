import { HeOpError, type CkksBackend } from './backend.js';
import { zeroCounts } from './op-counts.js';

/** A simulated ciphertext or plaintext: the real slot values it encodes, its level and scale. */
export interface SimValue {
  readonly slots: Float64Array;
  readonly level: number;
  readonly scale: number;
  readonly kind: 'ct' | 'pt';
}

export interface SimOptions {
  slots: number;
  /** Prime of each level's rescale, top first: rescaling at level l divides the scale by primes[topLevel - l]. */
  rescalePrimes: number[];
  scale: number;
}

/**
 * Plaintext slot simulator with node-seal's semantics: the same levels, the
 * same scale arithmetic (rescale divides by the actual prime), the same
 * errors (level exhausted, mismatched levels or scales, all-zero plaintext
 * operand), and the same op counts, but exact float64 slot arithmetic and no
 * crypto. Most kernel tests run here.
 */
export class SlotSimulator implements CkksBackend<SimValue, SimValue> {
  readonly slots: number;
  readonly topLevel: number;
  readonly scale: number;
  readonly counts = zeroCounts();
  private readonly primes: number[];

  constructor(o: SimOptions) {
    this.slots = o.slots;
    this.primes = o.rescalePrimes;
    this.topLevel = o.rescalePrimes.length;
    this.scale = o.scale;
  }

  private make(slots: Float64Array, level: number, scale: number, kind: 'ct' | 'pt'): SimValue {
    return { slots, level, scale, kind };
  }

  private sameLevel(a: SimValue, b: SimValue, op: string) {
    if (a.level !== b.level) throw new HeOpError(`${op}: operands at levels ${a.level} and ${b.level}`);
  }

  private sameScale(a: SimValue, b: SimValue, op: string) {
    if (Math.abs(a.scale / b.scale - 1) > 1e-9)
      throw new HeOpError(`${op}: scales differ (2^${Math.log2(a.scale).toFixed(3)} vs 2^${Math.log2(b.scale).toFixed(3)})`);
  }

  encode(values: ArrayLike<number>, level: number, scale = this.scale): SimValue {
    if (values.length > this.slots) throw new HeOpError(`encode: ${values.length} values for ${this.slots} slots`);
    if (level < 0 || level > this.topLevel) throw new HeOpError(`encode: level ${level} outside 0..${this.topLevel}`);
    this.counts.encode++;
    const s = new Float64Array(this.slots);
    s.set(Array.from(values));
    return this.make(s, level, scale, 'pt');
  }

  encrypt(p: SimValue): SimValue {
    this.counts.encrypt++;
    return this.make(p.slots.slice(), p.level, p.scale, 'ct');
  }

  decrypt(c: SimValue): Float64Array {
    this.counts.decrypt++;
    return c.slots.slice();
  }

  add(a: SimValue, b: SimValue): SimValue {
    this.sameLevel(a, b, 'add');
    this.sameScale(a, b, 'add');
    this.counts.add++;
    const s = new Float64Array(this.slots);
    for (let i = 0; i < this.slots; i++) s[i] = a.slots[i] + b.slots[i];
    return this.make(s, a.level, a.scale, 'ct');
  }

  addPlain(a: SimValue, p: SimValue): SimValue {
    this.sameLevel(a, p, 'addPlain');
    this.sameScale(a, p, 'addPlain');
    this.counts.addPlain++;
    const s = new Float64Array(this.slots);
    for (let i = 0; i < this.slots; i++) s[i] = a.slots[i] + p.slots[i];
    return this.make(s, a.level, a.scale, 'ct');
  }

  mulPlain(a: SimValue, p: SimValue): SimValue {
    this.sameLevel(a, p, 'mulPlain');
    if (p.slots.every((v) => v === 0))
      throw new HeOpError('mulPlain: all-zero plaintext operand (node-seal: result ciphertext is transparent); skip it instead');
    this.counts.mulPlain++;
    const s = new Float64Array(this.slots);
    for (let i = 0; i < this.slots; i++) s[i] = a.slots[i] * p.slots[i];
    return this.make(s, a.level, a.scale * p.scale, 'ct');
  }

  mul(a: SimValue, b: SimValue): SimValue {
    this.sameLevel(a, b, 'mul');
    this.counts.mul++;
    const s = new Float64Array(this.slots);
    for (let i = 0; i < this.slots; i++) s[i] = a.slots[i] * b.slots[i];
    return this.make(s, a.level, a.scale * b.scale, 'ct');
  }

  rescale(a: SimValue): SimValue {
    if (a.level <= 0) throw new HeOpError('rescale: no levels left (the plan is deeper than the modulus chain)');
    this.counts.rescale++;
    return this.make(a.slots.slice(), a.level - 1, a.scale / this.primes[this.topLevel - a.level], 'ct');
  }

  rotate(a: SimValue, steps: number): SimValue {
    this.counts.rotate++;
    const n = this.slots,
      k = ((steps % n) + n) % n;
    const s = new Float64Array(n);
    for (let i = 0; i < n; i++) s[i] = a.slots[(i + k) % n];
    return this.make(s, a.level, a.scale, 'ct');
  }

  /** The client's side of masked refresh: a fresh top-level encryption of the same slots (plan/interpreter RefreshChannel). */
  refreshChannel(): { roundTrip(c: SimValue): SimValue } {
    return { roundTrip: (c) => this.encrypt(this.encode(this.decrypt(c), this.topLevel)) };
  }

  modSwitchTo(a: SimValue, level: number): SimValue {
    if (level > a.level) throw new HeOpError(`modSwitchTo: cannot raise level ${a.level} to ${level}`);
    this.counts.modSwitch++;
    return this.make(a.slots.slice(), level, a.scale, 'ct');
  }

  rescalePrime(level: number): number {
    return this.primes[this.topLevel - level];
  }
  levelOf(a: SimValue): number {
    return a.level;
  }
  scaleOf(a: SimValue): number {
    return a.scale;
  }
  free(): void {
    /* garbage collected */
  }
}
