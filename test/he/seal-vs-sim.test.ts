import { CkksContext } from '../../he/context.js';
import { CkksClient, galoisKeysBytes } from '../../he/client.js';
import { SealBackend } from '../../he/seal-backend.js';
import { SlotSimulator } from '../../plan/slot-sim.js';
import { HeOpError, type CkksBackend } from '../../plan/backend.js';
import { Rng } from '../../common/rng.js';

/**
 * The slot simulator and real CKKS (node-seal, N=8192) run the same random
 * programs: values agree to CKKS precision, levels and scales exactly, op
 * counts exactly, and both reject the same mistakes.
 */
let ctx: CkksContext, client: CkksClient, seal: SealBackend, sim: SlotSimulator;
const STEPS = [1, 2, 5, 64, 4095];

beforeAll(async () => {
  ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 });
  client = new CkksClient(ctx);
  seal = new SealBackend(ctx, client.serverKeys(STEPS), client);
  sim = new SlotSimulator({ slots: ctx.slots, rescalePrimes: ctx.rescalePrimes, scale: ctx.scale });
});
afterAll(() => {
  seal.delete();
  client.delete();
  ctx.delete();
});

/** A random straight-line program: rotations, plaintext and ciphertext products, adds, rescales, mod-switches. */
function program<C, P>(b: CkksBackend<C, P>, seed: number): { values: Float64Array; level: number; scale: number } {
  const rng = new Rng(seed);
  const vec = () => Array.from({ length: b.slots }, () => rng.next() * 2 - 1);
  const live: C[] = [];
  const keep = (c: C) => {
    live.push(c);
    return c;
  };
  const p0 = b.encode(vec(), b.topLevel);
  let x = keep(b.encrypt(p0));
  b.free(p0);
  const p1 = b.encode(vec(), b.topLevel);
  const y = keep(b.encrypt(p1));
  b.free(p1);
  x = keep(b.add(b.rotate(x, STEPS[rng.int(STEPS.length)]), y));
  const w = b.encode(vec(), b.levelOf(x));
  x = keep(b.rescale(keep(b.mulPlain(x, w))));
  b.free(w);
  const bias = b.encode(vec(), b.levelOf(x), b.scaleOf(x));
  x = keep(b.addPlain(x, bias));
  b.free(bias);
  const y2 = keep(b.modSwitchTo(y, b.levelOf(x)));
  x = keep(b.rescale(keep(b.mul(x, y2))));
  x = keep(b.rotate(x, STEPS[rng.int(STEPS.length)]));
  const out = { values: b.decrypt(x), level: b.levelOf(x), scale: b.scaleOf(x) };
  for (const c of new Set(live)) b.free(c);
  return out;
}

describe('slot simulator = node-seal', () => {
  test.each([1, 2, 3])('random program %i: same values (CKKS precision), levels, scales and op counts', (seed) => {
    const before = { seal: { ...seal.counts }, sim: { ...sim.counts } };
    const a = program(sim, seed);
    const b = program(seal, seed);
    expect(b.level).toBe(a.level);
    expect(b.scale).toBe(a.scale);
    let maxErr = 0;
    for (let i = 0; i < a.values.length; i++) maxErr = Math.max(maxErr, Math.abs(a.values[i] - b.values[i]));
    expect(maxErr).toBeLessThan(1e-4);
    for (const k of Object.keys(sim.counts) as (keyof typeof sim.counts)[]) {
      expect(seal.counts[k] - before.seal[k]).toBe(sim.counts[k] - before.sim[k]);
    }
  });

  test('both reject the same plan bugs', () => {
    for (const b of [sim, seal] as CkksBackend[]) {
      const pt = b.encode([1, 2, 3], 0);
      const c = b.encrypt(pt);
      expect(() => b.rescale(c)).toThrow(HeOpError);
      expect(() => b.rescale(c)).toThrow(/no levels left/);
      const top = b.encrypt(b.encode([1], b.topLevel));
      expect(() => b.add(c, top)).toThrow(HeOpError);
      expect(() => b.mulPlain(top, b.encode(new Float64Array(8), b.topLevel))).toThrow(HeOpError);
      expect(() => b.modSwitchTo(c, 1)).toThrow(/cannot raise level 0 to 1/);
    }
    expect(() => seal.rotate(seal.encrypt(seal.encode([1], 2)), 3)).toThrow(
      /no Galois key for step 3 \(keys were generated for: 1, 2, 5, 64, 4095\)/,
    );
  });

  test('the server side holds no secret key: a backend without a client cannot decrypt', () => {
    const keys = client.serverKeys([1]);
    expect(Object.keys(keys).sort()).toEqual(['galoisKeys', 'galoisSteps', 'relinKeys']);
    const server = new SealBackend(ctx, keys);
    try {
      const ct = seal.encrypt(seal.encode([1, 2], 2));
      expect(() => server.decrypt(ct)).toThrow(/server holds no secret key/);
      expect(() => server.encrypt(seal.encode([1], 2))).toThrow(/no client attached/);
      ct.delete();
    } finally {
      server.delete();
    }
  });

  test('ciphertexts round-trip as bytes between client and server', () => {
    const bytes = client.encrypt([0.5, -1.25, 3]);
    const back = client.decrypt(bytes);
    expect(Array.from(back.slice(0, 3)).map((v) => +v.toFixed(5))).toEqual([0.5, -1.25, 3]);
  });

  test('Galois keys are generated only for the requested steps', () => {
    const one = client.serverKeys([1]);
    const three = client.serverKeys([1, 2, 3, 3, 0, 4096 + 1]);
    expect(three.galoisSteps).toEqual([1, 2, 3]);
    expect(galoisKeysBytes(three)).toBeGreaterThan(2.5 * galoisKeysBytes(one));
    expect(client.serverKeys([]).galoisKeys).toHaveLength(0);
    // Chunked: every step in exactly one chunk, at most `chunk` per chunk; the server rotates with any of them.
    const chunked = client.serverKeys([1, 2, 3, 5, 7], 2);
    expect(chunked.galoisKeys.map((c) => c.steps)).toEqual([[1, 2], [3, 5], [7]]);
    const server = new SealBackend(ctx, chunked);
    try {
      const ct = seal.encrypt(seal.encode([1, 2, 3, 4, 5, 6, 7, 8], 2));
      for (const k of [1, 5, 7]) {
        const r = server.rotate(ct, k);
        expect(Array.from(seal.decrypt(r).slice(0, 1)).map((v) => Math.round(v))).toEqual([1 + k]);
        r.delete();
      }
      ct.delete();
    } finally {
      server.delete();
    }
  });

  test('the WASM heap stays flat over 1,000 encode/rotate/multiply/rescale rounds (every object freed)', () => {
    const round = () => {
      const p = seal.encode([1, 2, 3, 4], 2);
      const c = seal.encrypt(p);
      const r = seal.rotate(c, 1);
      const w = seal.encode([0.5, 0.5, 0.5, 0.5], 2);
      const m = seal.mulPlain(r, w);
      const s = seal.rescale(m);
      const a = seal.add(s, s);
      for (const x of [p, c, r, w, m, s, a]) seal.free(x);
    };
    for (let i = 0; i < 50; i++) round();
    const heap = ctx.seal.heapBytes();
    for (let i = 0; i < 1000; i++) round();
    expect(ctx.seal.heapBytes()).toBe(heap);
  });
});
