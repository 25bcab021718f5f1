import { UserError } from '../../common/errors.js';
import { tileLayout, type Layout } from '../../plan/layout.js';
import { occupiedRows, pow2Below } from '../../plan/packing.js';
import { slotsOf, type HeParams } from '../../plan/params.js';
import type { LinearStep, PlanStep, TileShape } from '../../plan/plan.js';
import { sizeOf, type LinearMap } from '../linear-map.js';
import type { HeChain } from '../lower.js';
import type { CompileOptions } from './options.js';

/**
 * Tile-tensor packing of a fully-connected chain (HE-PEx, HElayers): each
 * ciphertext is a t1×t2 tile (slot r·t2 + c) and a weight matrix is cut into
 * tiles of the same shape, one plaintext each. A layer whose input lies
 * along r (copied along c) multiplies tile by tile, adds over input tiles and
 * sums over r with log2(t1) rotations — cyclic over the whole ciphertext, so
 * its output lies along c, copied along every r: exactly what the next layer
 * reads, with no transpose. That next layer sums over c (log2(t2) rotations);
 * its output lies along r at c = 0 only, so a third layer first masks and
 * copies it along c (one level, log2(t2) rotations: a `replicate` step).
 * A tile whose weights are all zero is never stored, encoded or multiplied;
 * an output tile with no weights at all is never computed (its neurons are
 * constants, folded into the next layer's bias by foldDeadNeurons, or, for
 * the network's outputs, handed to the client as plan.outputConstants).
 */

/** An explicit tile shape must fill the slots of the parameters. */
export function checkTileShape(o: CompileOptions, params: HeParams): void {
  const S = slotsOf(params);
  if (typeof o.tiles === 'object' && o.tiles.t1 * o.tiles.t2 !== S) {
    throw new UserError(
      `export.tiles: t1 × t2 = ${o.tiles.t1} × ${o.tiles.t2} = ${o.tiles.t1 * o.tiles.t2}, must equal the ${S} slots of N = ${params.polyModulusDegree}`,
    );
  }
}

/** Outputs whose whole tile row was pruned are constants (their bias): the client fills them in. */
export function outputConstants(out: Layout, last: { bias: Float64Array }): Record<number, number> | undefined {
  const constants: Record<number, number> = {};
  out.slotOf.forEach((g, i) => {
    if (g < 0) constants[i] = last.bias[i];
  });
  return Object.keys(constants).length ? constants : undefined;
}

/** Where a tiled dense step reads and how: its input orientation, and the output order of the network's last layer (HE-PEx). */
export interface TileInput {
  name: string;
  in: Layout;
  slots: number;
  tile: TileShape;
  along: 'outer' | 'inner';
  outOrder?: ArrayLike<number>;
}

/**
 * One dense layer on tiles. Ciphertext indices count computed ciphertexts
 * only: an output tile row with no weights is never computed, and its
 * elements' slots are −1 (no later layer reads them, see foldDeadNeurons).
 * Input positions are read off the input layout (which may be permuted);
 * output o sits at position outOrder[o] (the network's last layer under an
 * HE-PEx output permutation) or o.
 */
export function tileStep(m: LinearMap, t: TileInput): LinearStep {
  const { name, in: inL, slots: S, tile, along, outOrder } = t;
  const { rows, bias } = m,
    nOut = sizeOf(m.outShape);
  const { t1, t2 } = tile;
  const outAlong = along === 'outer' ? 'inner' : 'outer';
  const per = outAlong === 'inner' ? t2 : t1;
  const pos = (o: number) => (outOrder ? outOrder[o] : o);
  const full = tileLayout(nOut, S, tile, outAlong, { replicated: false, order: outOrder });
  const tiles = new Map<number, Float64Array>(); // key: outCt · 65536 + inCt
  rows.forEach((row, o) => {
    const po = pos(o);
    const i = Math.floor(po / per);
    for (let e = 0; e < row.length; e += 2) {
      const x = row[e],
        w = row[e + 1];
      if (inL.slotOf[x] < 0) throw new Error(`${name}: reads input ${x}, which was never computed`);
      const j = Math.floor(inL.slotOf[x] / S),
        sx = inL.slotOf[x] % S;
      // An outer input sits at r (c = 0 copy), an inner one at c (r = 0 copy).
      const [r, c] = along === 'outer' ? [Math.floor(sx / t2), po % t2] : [po % t1, sx % t2];
      const key = i * 65536 + j;
      let d = tiles.get(key);
      if (!d) {
        d = new Float64Array(S);
        tiles.set(key, d);
      }
      d[r * t2 + c] += w;
    }
  });
  const outLive = Array.from({ length: full.cts }, (_, i) => [...tiles.keys()].some((k) => Math.floor(k / 65536) === i));
  const outIndex = compactIndex(outLive);
  const outputs = outLive.flatMap((isLive, i) => {
    if (!isLive) return [];
    const terms = [...tiles.entries()]
      .filter(([k]) => Math.floor(k / 65536) === i)
      .sort((a, b) => a[0] - b[0])
      .map(([k, d]) => ({ input: k % 65536, baby: 0, diag: d }));
    // The bias sits in one copy (r = 0 or c = 0): the rotate-and-sum adds it once into every copy it makes.
    const b = new Float64Array(S);
    for (let o = 0; o < nOut; o++) {
      const po = pos(o);
      if (Math.floor(po / per) === i) b[outAlong === 'inner' ? po % t2 : (po % t1) * t2] = bias[o];
    }
    return [{ giants: [{ giant: 0, terms }], bias: b.some((v) => v !== 0) ? b : undefined }];
  });
  const rotateSum = along === 'outer' ? pow2Below(t1).map((s) => s * t2) : pow2Below(t2);
  // Ciphertext indices in the layout count computed ciphertexts only; dead elements point nowhere (-1).
  const slotOf = Int32Array.from(full.slotOf, (g) => {
    const k = outIndex[Math.floor(g / S)];
    return k < 0 ? -1 : k * S + (g % S);
  });
  const out: Layout = {
    ...full,
    slotOf,
    cts: outputs.length,
    desc: full.desc + (outputs.length < full.cts ? ` (${full.cts - outputs.length} empty tiles skipped)` : ''),
  };
  return { kind: 'linear', name, outputs, rotateSum, out };
}

/** The boundary orders a tile shape in the options carries (set by tile pruning with permute). */
export function tileOrders(o: CompileOptions): Pick<TileShape, 'inputOrder' | 'outputOrder'> {
  if (typeof o.tiles !== 'object') return {};
  const { inputOrder, outputOrder } = o.tiles;
  return { ...(inputOrder ? { inputOrder } : {}), ...(outputOrder ? { outputOrder } : {}) };
}

/** An input or output order must be a permutation of the layer's elements. */
export function checkOrder(order: number[] | undefined, n: number, what: string): void {
  if (!order) return;
  const expected = `expected a permutation of 0..${n - 1} (${n} entries, each once)`;
  if (order.length !== n) throw new UserError(`export.tiles.${what}: ${expected}, got ${order.length} entries`);
  const seen = new Uint8Array(n);
  const bad = order.findIndex((p) => !Number.isInteger(p) || p < 0 || p >= n || seen[p]++);
  if (bad >= 0) throw new UserError(`export.tiles.${what}: ${expected}, got ${order[bad]} at index ${bad} (out of range or repeated)`);
}

/** The square after linear li − 1 (both packings): y², or y² + λ·y for an unmerged quadratic (chain.squareLinear). */
export function squareStep(chain: HeChain, li: number, out: Layout): PlanStep {
  const linear = chain.squareLinear?.[li - 1];
  return { kind: 'square', name: `square${li}`, ...(linear !== undefined ? { linear } : {}), out };
}

/** Masks an outer vector (valid at c = 0) and copies it along c: rotations by −1, −2, −4, … */
export function replicateStep(name: string, cur: Layout, S: number, tile: TileShape): LinearStep {
  const outputs = Array.from({ length: cur.cts }, (_, i) => {
    const mask = new Float64Array(S);
    for (const g of cur.slotOf) if (g >= 0 && Math.floor(g / S) === i) mask[g % S] = 1;
    return { giants: [{ giant: 0, terms: [{ input: i, baby: 0, diag: mask }] }] };
  });
  const desc = cur.desc.replace('1?/', '*/');
  return { kind: 'linear', name, outputs, rotateSum: pow2Below(tile.t2).map((s) => S - s), out: { ...cur, desc } };
}

/**
 * A CNN's conv output into tile-tensor input form (export.tileFirstDense):
 * every row of t2 slots (r fixed) that holds elements becomes a ciphertext of
 * its own, masked to those elements (which also clears pooling's partial sums
 * and conv junk) and copied along r by a rotate-and-sum over the rows (cyclic
 * over the whole ciphertext: every row then holds the one row's elements).
 * Each output ciphertext is one input tile of the tiled layer that reads it
 * ('inner': element at its column, repeated every t2 slots); which elements
 * share a tile is the conv layout's choice. A row none of whose elements the
 * layer reads (`read`: every weight on them pruned) is never masked or copied
 * (its elements' slots are −1).
 */
export function rowsStep(name: string, cur: Layout, S: number, tile: TileShape, read?: (e: number) => boolean): LinearStep {
  const { t1, t2 } = tile;
  const rows = occupiedRows(cur, S, tile);
  const keys = [...rows.keys()].filter((key) => !read || rows.get(key)!.some(read));
  const slotOf = new Int32Array(cur.slotOf.length).fill(-1);
  const outputs = keys.map((key, k) => {
    const mask = new Float64Array(S);
    for (const e of rows.get(key)!) {
      const s = cur.slotOf[e] % S;
      mask[s] = 1;
      slotOf[e] = k * S + (s % t2);
    }
    return { giants: [{ giant: 0, terms: [{ input: Math.floor(key / t1), baby: 0, diag: mask }] }] };
  });
  const dropped = rows.size - keys.length;
  const desc = `${cur.shape.join('x')} @ [*/${t1}, ${t2}] (rows of ${cur.desc.replace(/^[^@]*@ /, '')}${keys.length > 1 ? `, ${keys.length} ciphertexts` : ''}${dropped ? `; ${dropped} rows no kept weight reads skipped` : ''})`;
  return {
    kind: 'linear',
    name,
    outputs,
    rotateSum: pow2Below(t1).map((s) => s * t2),
    out: { shape: [...cur.shape], cts: keys.length, slotOf, period: t2, desc },
  };
}

/** Position of each live entry among the live ones (−1 for dead). */
function compactIndex(live: boolean[]): number[] {
  let k = 0;
  return live.map((l) => (l ? k++ : -1));
}
