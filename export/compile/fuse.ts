import type { Plan } from '../../plan/plan.js';
import { linearStepName } from '../../plan/packing.js';
import { compose, layersOf, type LinearMap } from '../linear-map.js';
import type { HeChain } from '../lower.js';

/**
 * Phase "fusion": each factorised pair (an unsquared map i reading map
 * i − 1 with no activation between: FFConv's 1×1 half after its d×d half,
 * a mobile block's pointwise convolution after its depthwise one) runs
 * split, as two linear steps, or fused, the two maps composed into one (for
 * FFConv the unfactorised shape of the layer; one level less). Split saves
 * plaintext multiplications and rotations; fused saves a level, which can
 * keep the plan at a smaller N. Every combination is a candidate for the
 * cost model (all split first: the preferred plan on a tie).
 */
export interface FusionChoice {
  chain: HeChain;
  factorized?: NonNullable<Plan['factorized']>;
  spread: ReadonlySet<number>;
}

export type FusionMode = 'auto' | 'split' | 'fused';
/**
 * ConvPack (FFConv) for the pairs that run split: none (channel blocks
 * throughout), `reads` (the first map, the d×d half, writes one channel per
 * ciphertext, the second reads it: a 1×1 second has no channel shifts to
 * rotate) or `both` (the second writes one channel per ciphertext too: only
 * rotation-0 terms, scalars times ciphertexts), or `auto`: none and reads, the cheaper by the cost
 * model. `both` leaves C_out ciphertexts for the activation to square and
 * the next layer to read (64 of them after LeNet-5's first convolution,
 * against 8 in blocks), and compiling it for wide layers takes minutes, so
 * it is compiled only when asked for.
 */
export type ConvPackMode = 'auto' | 'none' | 'reads' | 'both';

/** The factorised pairs of the chain: the indices of their second maps. */
const pairsOf = (chain: HeChain) => (chain.unsquared ?? []).flatMap((u, i) => (u ? [i] : []));

/** Subsets of the pairs to fuse: none (split), all (fused), or under auto every subset up to 4 pairs, else none and all. */
function subsets(pairs: number[], mode: FusionMode): number[][] {
  if (mode !== 'auto') return [mode === 'split' ? [] : pairs];
  if (pairs.length > 4) return [[], pairs];
  return Array.from({ length: 2 ** pairs.length }, (_, bits) => pairs.filter((_, j) => bits & (1 << j)));
}

/**
 * Each pair's composed map, made once for every subset that fuses it: a
 * wide composed convolution holds tens of millions of entries, and 2^k
 * subsets holding copies of each ran past the heap (three mobile blocks of
 * CIFAR-10 SqueezeNet).
 */
type Composed = WeakMap<LinearMap, WeakMap<LinearMap, LinearMap>>;

function composedOnce(memo: Composed, a: LinearMap, b: LinearMap): LinearMap {
  let inner = memo.get(a);
  if (!inner) memo.set(a, (inner = new WeakMap()));
  let m = inner.get(b);
  if (!m) inner.set(b, (m = compose(a, b)));
  return m;
}

/** Linear map i (a pair's second) composed into map i − 1 (whose own residual input, if any, fusionChoices has excluded). */
function fuseOne(chain: HeChain, i: number, memo: Composed): HeChain {
  const drop = <T>(a: T[], at: number) => [...a.slice(0, at), ...a.slice(at + 1)];
  const linears = drop(chain.linears, i);
  linears[i - 1] = composedOnce(memo, chain.linears[i], chain.linears[i - 1]);
  // Tensors are named by the map whose square made them: those after map i move down one.
  const skips = drop(chain.skips, i - 1).map((s) => s && (s.from >= i ? { ...s, from: s.from - 1 } : s));
  const unsquared = drop(chain.unsquared ?? [], i);
  return {
    ...chain,
    linears,
    pools: drop(chain.pools, i),
    skips,
    ...(chain.squareLinear ? { squareLinear: drop(chain.squareLinear, i - 1) } : {}),
    ...(unsquared.some(Boolean) ? { unsquared } : { unsquared: undefined }),
  };
}

/** The chains to compile: one per subset of factorised pairs fused and ConvPack choice for the split ones, with what the plan records of it (each pair's layers by the maps' stamps). */
export function fusionChoices(chain: HeChain, mode: FusionMode = 'auto', pack: ConvPackMode = 'auto'): FusionChoice[] {
  const pairs = pairsOf(chain);
  if (pairs.length === 0) return [{ chain, spread: new Set() }];
  // A pair whose first map has a residual input stays split (fused, two residual inputs would meet in one step).
  const fusable = pairs.filter((i) => !chain.skips[i - 1]);
  const out: FusionChoice[] = [];
  const memo: Composed = new WeakMap();
  for (const fused of subsets(fusable, mode)) {
    let c = chain;
    // Highest first, so the lower indices still name the same maps.
    for (const i of [...fused].reverse()) c = fuseOne(c, i, memo);
    const before = (i: number) => fused.filter((f) => f < i).length;
    const split = pairs.filter((i) => !fused.includes(i)).map((i) => i - before(i));
    const packs: Exclude<ConvPackMode, 'auto'>[] = split.length === 0 ? ['none'] : pack === 'auto' ? ['none', 'reads'] : [pack];
    for (const p of packs) {
      const spread = new Set(p === 'none' ? [] : split.flatMap((i) => (p === 'both' ? [i - 1, i] : [i - 1])));
      const factorized = pairs.map((i) => {
        const layers = layersOf(chain.linears[i - 1], chain.linears[i]);
        const named = layers ? { layers } : {};
        return fused.includes(i)
          ? { step: linearStepName(i - 1 - before(i)), fused: true, ...named }
          : { step: linearStepName(i - before(i)), fused: false, ...(p !== 'none' ? { channelPerCiphertext: p } : {}), ...named };
      });
      out.push({ chain: c, factorized, spread });
    }
  }
  return out;
}
