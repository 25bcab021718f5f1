import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { factorizableConv, factorizedModel, pointwiseOf, type ConvFactors, type FactorSpec } from '../train/factorize.js';
import { GroupedConv2D } from '../train/layers/grouped-conv.js';
import type { PruneConfig } from './options.js';

/**
 * Low-rank factorisation of trained convolutions (FFConv, prune.method
 * lowrank): a d×d kernel C_in → C_out, reshaped to the matrix
 * A = C_out × (C_in·d·d), is truncated to its r largest singular values,
 * A ≈ U_r S_r V_rᵀ (the best rank-r approximation in the Frobenius norm,
 * Eckart–Young: the error² is the sum of the discarded s_i²), and split into
 * a d×d convolution C_in → r with kernel S^½·Vᵀ and a 1×1 convolution
 * r → C_out with kernel U·S^½ and the bias.
 */

/** A = U·diag(s)·Vᵀ, U m×k, V n×k (row-major, k = min(m, n)), s descending. */
export interface Svd {
  u: Float64Array;
  s: Float64Array;
  v: Float64Array;
  k: number;
}

const dot = (a: Float64Array, i: number, j: number, n: number) => {
  let d = 0;
  for (let t = 0; t < n; t++) d += a[i * n + t] * a[j * n + t];
  return d;
};

/** Rotates rows p, q of the row-major `a` with n columns by (c, s): p ← c·p − s·q, q ← s·p + c·q. */
function rotateRows(a: Float64Array, n: number, [p, q]: [number, number], [c, s]: [number, number]): void {
  for (let t = 0; t < n; t++) {
    const x = a[p * n + t],
      y = a[q * n + t];
    a[p * n + t] = c * x - s * y;
    a[q * n + t] = s * x + c * y;
  }
}

/**
 * One-sided Jacobi (Hestenes) on the rows of an m×n matrix, m ≤ n: plane
 * rotations B ← G·B, Q ← Q·Gᵀ keep A = Q·B until B's rows are orthogonal;
 * then row i of B is s_i·v_iᵀ and U = Q. Accurate to working precision even
 * for small singular values (no Gram matrix is formed).
 */
function rowJacobi(a: Float64Array, m: number, n: number): Svd {
  const b = Float64Array.from(a);
  const qt = new Float64Array(m * m); // Qᵀ, row-major: Q's columns are its rows
  for (let i = 0; i < m; i++) qt[i * m + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < m - 1; p++)
      for (let q = p + 1; q < m; q++) {
        const alpha = dot(b, p, p, n),
          beta = dot(b, q, q, n),
          gamma = dot(b, p, q, n);
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t),
          s = c * t;
        rotateRows(b, n, [p, q], [c, s]);
        rotateRows(qt, m, [p, q], [c, s]);
      }
    if (!rotated) break;
  }
  const norms = Array.from({ length: m }, (_, i) => Math.sqrt(dot(b, i, i, n)));
  const order = norms.map((_, i) => i).sort((x, y) => norms[y] - norms[x]);
  const u = new Float64Array(m * m),
    s = new Float64Array(m),
    v = new Float64Array(n * m);
  order.forEach((i, j) => {
    s[j] = norms[i];
    for (let r = 0; r < m; r++) u[r * m + j] = qt[i * m + r];
    for (let t = 0; t < n; t++) v[t * m + j] = norms[i] > 0 ? b[i * n + t] / norms[i] : 0;
  });
  return { u, s, v, k: m };
}

function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** The thin SVD of the m×n row-major matrix a. */
export function svd(a: Float64Array, m: number, n: number): Svd {
  if (m <= n) return rowJacobi(a, m, n);
  const t = rowJacobi(transpose(a, m, n), n, m);
  return { u: t.v, s: t.s, v: t.u, k: t.k };
}

/** A conv kernel [d, d, C_in, C_out] (flat) as the matrix C_out × (d·d·C_in), row-major. */
export function kernelMatrix(kernel: ArrayLike<number>, cout: number): Float64Array {
  const n = kernel.length / cout;
  const a = new Float64Array(kernel.length);
  for (let t = 0; t < n; t++) for (let co = 0; co < cout; co++) a[co * n + t] = kernel[t * cout + co];
  return a;
}

/**
 * The rank-r factors of a kernel [d, d, C_in, C_out]. The singular values
 * are split evenly, S^½ to each half, rather than all to one: both kernels
 * then have entries of similar size (each ≈ √s), so under CKKS neither
 * half's plaintext weights are tiny against the encoding scale (losing
 * bits) nor its outputs large against the modulus headroom. The bias goes
 * on the 1×1 half, which makes the layer's output.
 */
export function factorKernel(
  kernel: ArrayLike<number>,
  cout: number,
  rank: number,
  bias?: Float32Array,
): ConvFactors & { discarded: number } {
  const n = kernel.length / cout;
  const { u, s, v, k } = svd(kernelMatrix(kernel, cout), cout, n);
  if (rank > k) throw new UserError(`lowrank: rank ${rank} exceeds the kernel's ${k} singular values`);
  const spatial = new Float32Array(n * rank),
    pointwise = new Float32Array(rank * cout);
  for (let j = 0; j < rank; j++) {
    const h = Math.sqrt(s[j]);
    for (let t = 0; t < n; t++) spatial[t * rank + j] = h * v[t * k + j];
    for (let co = 0; co < cout; co++) pointwise[j * cout + co] = u[co * k + j] * h;
  }
  let discarded = 0;
  for (let j = rank; j < k; j++) discarded += s[j] * s[j];
  return { spatial, pointwise, ...(bias ? { bias } : {}), discarded };
}

const values = (l: tf.layers.Layer, i: number) => l.getWeights()[i].dataSync() as Float32Array;

/** The kernel [d, d, C_in, C_out] a convolution computes (of a factorised one: its two halves' product), its C_out and bias. */
export function effectiveKernel(model: tf.LayersModel, name: string): { kernel: Float32Array; cout: number; bias?: Float32Array } {
  const l = model.getLayer(name) as GroupedConv2D;
  const pw = pointwiseOf(model, name);
  if (!pw) return { kernel: values(l, 0), cout: l.filters, ...(l.useBias ? { bias: values(l, 1) } : {}) };
  const d = values(l, 0),
    p = values(pw, 0),
    r = l.filters,
    cout = pw.filters,
    n = d.length / r;
  const kernel = new Float32Array(n * cout);
  for (let t = 0; t < n; t++)
    for (let co = 0; co < cout; co++) {
      let acc = 0;
      for (let j = 0; j < r; j++) acc += d[t * r + j] * p[j * cout + co];
      kernel[t * cout + co] = acc;
    }
  return { kernel, cout, ...(pw.useBias ? { bias: values(pw, 1) } : {}) };
}

/** The most a factorisation of convolution `name` can keep: min(C_out, d·d·C_in) (its own rank when it is already factorised). */
export function fullRank(model: tf.LayersModel, name: string): number {
  const l = model.getLayer(name) as GroupedConv2D;
  const pw = pointwiseOf(model, name);
  if (pw) return l.filters;
  const [k, , cin] = l.getWeights()[0].shape as number[];
  return Math.min(l.filters, k * k * cin);
}

/** prune.rank for one layer: the value given for every layer, or its own. */
export function targetRank(p: Pick<PruneConfig, 'rank'>, name: string): number {
  const r = typeof p.rank === 'number' ? p.rank : p.rank?.[name];
  if (r === undefined) throw new UserError(`prune.rank: no rank for layer "${name}"`);
  return r;
}

/** Each layer's rank at a fraction f of its current rank (at least 1). */
export const ranksAt = (current: Map<string, number>, f: number) =>
  new Map([...current].map(([n, full]) => [n, Math.max(1, Math.min(full, Math.round(f * full)))]));

/**
 * prune.latency for lowrank: the largest common fraction f of every layer's
 * current rank whose factorised model's plan costs at most `goal`, by
 * bisection on f (a lower rank never costs more: it keeps fewer channels of
 * the d×d half). `costOf(ranks)` factorises and compiles. When even rank 1
 * misses the goal, its ranks are returned with `reached: false`.
 */
export function ranksForBudget(
  current: Map<string, number>,
  costOf: (ranks: Map<string, number>) => number,
  goal: number,
  iterations = 7,
): { ranks: Map<string, number>; cost: number; reached: boolean } {
  let lo = 0,
    hi = 1;
  const floor = ranksAt(current, 0);
  let best = floor,
    bestCost = costOf(floor);
  if (bestCost > goal) return { ranks: floor, cost: bestCost, reached: false };
  const tried = new Map<string, number>();
  for (let i = 0; i < iterations; i++) {
    const mid = (lo + hi) / 2;
    const ranks = ranksAt(current, mid);
    const key = JSON.stringify([...ranks]);
    const cost = tried.get(key) ?? costOf(ranks);
    tried.set(key, cost);
    if (cost <= goal) {
      lo = mid;
      best = ranks;
      bestCost = cost;
    } else hi = mid;
  }
  return { ranks: best, cost: bestCost, reached: true };
}

/**
 * Round r's rank of each layer: falling evenly from the layer's full rank
 * `from` to its target over prune.steps rounds (round steps is the target).
 */
export function roundRanks(p: Pick<PruneConfig, 'rank' | 'steps'>, from: Map<string, number>, round: number): Map<string, number> {
  return new Map(
    [...from].map(([name, full]) => {
      const target = Math.min(targetRank(p, name), full);
      return [name, Math.round(full - ((full - target) * round) / p.steps)];
    }),
  );
}

/**
 * The model with each named convolution factorised at its rank by truncated
 * SVD of its (effective) kernel; a new model, `model` is left as it was.
 */
export function lowRankModel(model: tf.LayersModel, ranks: Map<string, number>): { model: tf.LayersModel; discarded: Map<string, number> } {
  const specs = new Map<string, FactorSpec>();
  const discarded = new Map<string, number>();
  for (const [name, rank] of ranks) {
    if (!pointwiseOf(model, name)) factorizableConv(model, name, 'prune.layers');
    const { kernel, cout, bias } = effectiveKernel(model, name);
    const f = factorKernel(kernel, cout, rank, bias);
    specs.set(name, { rank, factors: f });
    discarded.set(name, f.discarded);
  }
  return { model: factorizedModel(model, specs), discarded };
}
