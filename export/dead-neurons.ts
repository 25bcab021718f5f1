import type { HeChain } from './lower.js';

/**
 * A hidden neuron whose row has no weights left (pruned away) is a constant:
 * its pre-activation is its bias b, and what the next map reads is b² (or
 * b² + λ·b after an unmerged quadratic). Fold that times w into the next
 * map's bias and drop the reads, so no plan computes or stores it (a tile of
 * such neurons is then never computed at all). Returns a new chain; the
 * function is unchanged.
 */
export function foldDeadNeurons(chain: HeChain): HeChain {
  const linears = chain.linears.map((m) => ({ ...m, rows: m.rows.map((r) => r.slice()), bias: Float64Array.from(m.bias) }));
  for (let li = 0; li + 1 < linears.length; li++) {
    // Only plain chains: a residual input could read the neuron too.
    if (chain.skips.some((s) => s && s.from === li) || chain.pools[li + 1]) continue;
    const m = linears[li],
      next = linears[li + 1];
    const dead = new Map<number, number>();
    const lambda = chain.squareLinear?.[li] ?? 0; // an unmerged quadratic's square is b² + λ·b
    // The next map reads b itself when no square is between (a factorised convolution's 1×1 half).
    const read = chain.unsquared?.[li + 1] ? (b: number) => b : (b: number) => b * b + lambda * b;
    m.rows.forEach((r, o) => {
      if (r.length === 0) dead.set(o, read(m.bias[o]));
    });
    if (dead.size === 0) continue;
    next.rows = next.rows.map((r, p) => {
      const kept: number[] = [];
      for (let e = 0; e < r.length; e += 2) {
        const v = dead.get(r[e]);
        if (v === undefined) kept.push(r[e], r[e + 1]);
        else next.bias[p] += r[e + 1] * v;
      }
      return kept;
    });
  }
  return { ...chain, linears };
}
