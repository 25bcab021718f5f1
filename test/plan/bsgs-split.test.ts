import { bestSplit, bsgsSplit, splitIndex } from '../../plan/diagonals.js';

/** Diagonal indices of a conv in channel blocks of 1024: 8 channel shifts × 25 taps (5x5 on a row stride of 56). */
const S = 8192;
const taps = Array.from({ length: 25 }, (_, t) => Math.floor(t / 5) * 56 + (t % 5) * 2);
const ks = Array.from({ length: 8 }, (_, c) => c * 1024).flatMap((g) => taps.map((t) => (g + t) % S));

test('a split is exact: giant + baby = k for every index, both orientations', () => {
  for (const coarseBabies of [false, true]) {
    for (const k of ks) {
      const { giant, baby } = splitIndex(k, S, { unit: 1024, coarseBabies });
      expect((giant + baby) % S).toBe(k);
    }
    const split = bsgsSplit(ks, S, { unit: 1024, coarseBabies });
    expect(split.reduce((a, g) => a + g.terms.length, 0)).toBe(ks.length);
    expect(split).toHaveLength(coarseBabies ? 25 : 8);
  }
});

test('babies are per input, giants per output: many inputs favour coarse babies, many outputs fine ones', () => {
  const outputsOf = (inputs: number, outputs: number) =>
    Array.from({ length: outputs }, () => Array.from({ length: inputs }, (_, input) => ks.map((k) => ({ input, k }))).flat());
  // 8 inputs, 1 output: fine babies cost 8·24 rotations + 7 giants; coarse babies 8·7 + 24.
  expect(bestSplit(outputsOf(8, 1), S, [1024], 5)).toEqual({ unit: 1024, coarseBabies: true });
  // 1 input, 8 outputs: fine babies 24 + 8·7 giants; coarse babies 7 + 8·24.
  expect(bestSplit(outputsOf(1, 8), S, [1024], 5)).toEqual({ unit: 1024, coarseBabies: false });
});
