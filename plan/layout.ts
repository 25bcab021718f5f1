/**
 * Where each element of a tensor sits in the slots of one or more
 * ciphertexts. Tensors are indexed in tfjs order (HWC for images, flattened
 * the same way); element i is at global slot `slotOf[i]` = ciphertext · S +
 * slot. Slots not listed may hold garbage (partial sums, squared junk):
 * consumers only read listed slots, and every plaintext operand is zero
 * elsewhere.
 */
export interface Layout {
  /** Tensor shape in tfjs order without the batch ([H, W, C] or [n]). */
  shape: number[];
  /** Number of ciphertexts the tensor spans. */
  cts: number;
  slotOf: Int32Array;
  /** The whole vector also repeats every `period` slots (dense outputs after rotate-and-sum). */
  period?: number;
  /** Compact description, e.g. "12x12x5 @ 784c+56y+2x". */
  desc: string;
  /**
   * Image layouts with a channel order: channel c sits at channel position
   * channelPos[c] (compile-time metadata for pruning; slotOf is what counts).
   */
  channelPos?: Int32Array;
}

/**
 * SpENCNN's group-interleaved order for a tensor a convolution with G groups
 * reads: channel c of group g (tfjs order g·n + c) at position c·G + g, so
 * the same channel shift serves every group with one rotation, and a grouped
 * layer's output already sits where the next grouped layer reads it.
 */
export function interleavedOrder(channels: number, groups: number): Int32Array | undefined {
  if (groups <= 1 || channels % groups) return undefined;
  const n = channels / groups;
  return Int32Array.from({ length: channels }, (_, ch) => (ch % n) * groups + Math.floor(ch / n));
}

export const layoutSize = (l: Layout) => l.shape.reduce((a, b) => a * b, 1);

/**
 * An image [H, W, C], channel c in block (c mod perCt) of ciphertext
 * floor(c / perCt): slot = (c mod perCt)·cStride + y·yStride + x·xStride.
 */
export function imageLayout(
  shape: [number, number, number],
  strides: { c: number; y: number; x: number },
  o: { slots: number; perCt?: number; mux?: Multiplex; order?: Int32Array },
): Layout {
  const [H, W, C] = shape;
  const f = o.mux?.f ?? 1;
  const blocks = o.perCt ?? C;
  const perCt = blocks * f * f;
  const slotOf = new Int32Array(H * W * C);
  for (let c = 0; c < C; c++) {
    // Channel c at position p: ciphertext, then block (consecutive positions in consecutive blocks), then sub-position in the grid's gaps.
    const p = o.order ? o.order[c] : c;
    const r = p % perCt,
      sub = Math.floor(r / blocks);
    const base =
      Math.floor(p / perCt) * o.slots + (r % blocks) * strides.c + (f > 1 ? Math.floor(sub / f) * o.mux!.y + (sub % f) * o.mux!.x : 0);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) slotOf[(y * W + x) * C + c] = base + y * strides.y + x * strides.x;
  }
  const cts = Math.ceil(C / perCt);
  const term = (k: number, v: string) => (k === 0 ? '' : `${k === 1 ? '' : k}${v}`);
  const desc =
    `${H}x${W}x${C} @ ${[term(strides.c, 'c'), term(strides.y, 'y'), term(strides.x, 'x')].filter(Boolean).join('+') || '0'}` +
    `${f > 1 ? ` (${f * f} channels per block)` : ''}${cts > 1 ? ` (${perCt} channels per ciphertext, ${cts} ciphertexts)` : ''}${o.order ? ' (group-interleaved)' : ''}`;
  return { shape: [H, W, C], cts, slotOf, desc, ...(o.order ? { channelPos: o.order } : {}) };
}

/**
 * Multiplexed packing: a strided grid (stride f in each direction) leaves
 * f² − 1 of every f×f slots free; f² channels share one block, channel
 * sub-position (a, b) at offset a·y + b·x (the dense grid's strides), so
 * after pooling a tensor needs f² times fewer ciphertexts.
 */
export interface Multiplex {
  f: number;
  y: number;
  x: number;
}

/** A vector of n at slots 0..n-1, repeated every `period` slots when given. */
export function vectorLayout(n: number, period?: number): Layout {
  return {
    shape: [n],
    cts: 1,
    slotOf: Int32Array.from({ length: n }, (_, i) => i),
    period,
    desc: `${n} @ i${period ? ` (every ${period})` : ''}`,
  };
}

export function maxSlot(l: Layout): number {
  let m = 0;
  for (const s of l.slotOf) m = Math.max(m, s);
  return m;
}

/**
 * A vector in tile-tensor form (HE-PEx): each ciphertext is a t1×t2 tile,
 * slot r·t2 + c (r the outer index, c the inner). `outer`: element e at
 * r = e mod t1 of ciphertext ⌊e/t1⌋, c = 0, and copied along c when
 * `replicated`; `inner`: at c = e mod t2 of ciphertext ⌊e/t2⌋, repeated
 * along r (every t2 slots). Printed in HElayers' notation: [t1, t2/?] etc.
 * `o.replicated` (default true): an outer vector copied along c, or at c = 0 only.
 * `o.order`: element e sits at position order[e] instead of e (HE-PEx's
 * permutation of the network's inputs or outputs, which the client applies
 * when it packs or reads them).
 */
export function tileLayout(
  n: number,
  slots: number,
  tile: { t1: number; t2: number },
  along: 'outer' | 'inner',
  o: { replicated?: boolean; order?: ArrayLike<number> } = {},
): Layout {
  const { t1, t2 } = tile;
  const { replicated = true, order } = o;
  const per = along === 'outer' ? t1 : t2;
  const slotOf = Int32Array.from({ length: n }, (_, e) => {
    const p = order ? order[e] : e;
    return Math.floor(p / per) * slots + (along === 'outer' ? (p % t1) * t2 : p % t2);
  });
  const cts = Math.ceil(n / per);
  const desc = along === 'outer' ? `${n} @ [${t1}, ${replicated ? '*' : '1?'}/${t2}]` : `${n} @ [*/${t1}, ${t2}]`;
  return {
    shape: [n],
    cts,
    slotOf,
    period: along === 'inner' ? t2 : undefined,
    desc: (cts > 1 ? `${desc} (${cts} ciphertexts)` : desc) + (order ? ' (permuted)' : ''),
  };
}
