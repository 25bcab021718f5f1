/** Small statistics helpers for reports. */
export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

export function summarize(xs: number[]): { mean: number; median: number; p95: number; min: number; max: number } {
  if (!xs.length) return { mean: NaN, median: NaN, p95: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
  const r = (v: number) => +v.toFixed(3);
  return { mean: r(xs.reduce((a, b) => a + b, 0) / xs.length), median: r(q(0.5)), p95: r(q(0.95)), min: r(s[0]), max: r(s[s.length - 1]) };
}

export function maxAbsError(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) =>
    row.forEach((v, j) => {
      m = Math.max(m, Math.abs(v - b[i][j]));
    }),
  );
  return m;
}

/** The largest |value| of a batch of outputs (what an absolute error is measured against). */
export const maxAbs = (a: number[][]): number => a.reduce((m, row) => row.reduce((mm, v) => Math.max(mm, Math.abs(v)), m), 0);

/** Precision in bits, as Orion reports it: -log2(max abs error). */
export const precisionBits = (err: number) => (err > 0 ? +(-Math.log2(err)).toFixed(2) : Infinity);
