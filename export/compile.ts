import { UserError } from '../common/errors.js';
import { checkParams, selectParams, slotsOf, type HeParams } from '../he/params.js';
import { bestSplit, bsgsSplit, rotateVec, SlotDiagonals } from '../plan/diagonals.js';
import { imageLayout, interleavedOrder, vectorLayout, type Layout, type Multiplex } from '../plan/layout.js';
import { type LinearOutput, type LinearStep, type Plan, type PlanStep, type TileShape } from '../plan/plan.js';
import { relativeCost } from '../plan/cost.js';
import type { HeChain } from './lower.js';
import { foldDeadNeurons } from './dead-neurons.js';
import { finishPlan } from './finish-plan.js';
import { checkTileShape, compileTiled, outputConstants, replicateStep, rowsStep, squareStep, tileOrders, tileOrientation, tileStep } from './tile-compile.js';
import { sizeOf, type LinearMap } from './linear-map.js';

export interface CompileOptions {
  /** Explicit parameters (checked); otherwise the smallest secure ones are chosen. */
  params?: HeParams;
  scaleBits?: number;
  headroomBits?: number;
  /** Baby-step/giant-step rotations (default on); off: every diagonal is its own rotation of the input. */
  bsgs?: boolean;
  /** Galois key memory allowed; past it, a ±2^i basis plus the most used steps, rotations composed (default 512 MiB). */
  maxGaloisKeyBytes?: number;
  /**
   * Channel block size of image layouts: `tight` (just the grid), `pow2`
   * (rounded up to a power of two, so blocks tile a ciphertext exactly and a
   * rotation by whole blocks is cyclic: a layer with b channels per
   * ciphertext needs b channel shifts, not 2b−1), or `auto` (default):
   * compile both and keep the one the cost model says is cheaper. `mux`:
   * power-of-two blocks, multiplexed (strided grids share blocks, see
   * plan/layout's Multiplex); auto tries it too when grids are strided.
   */
  channelBlocks?: 'auto' | 'tight' | 'pow2' | 'mux';
  /**
   * Masked refresh for networks deeper than the parameters hold: parameters
   * for `levels` levels, and a refresh (client round trip) wherever the
   * levels run out. Masks are uniform in ±2^maskBits; they must fit the
   * first prime's headroom above the scale, with the activations themselves.
   */
  refresh?: { levels: number; maskBits: number };
  /**
   * Tile-tensor packing for fully-connected networks (see tile-compile):
   * a tile shape (t1·t2 = slots) and the first map's input orientation, or
   * `auto`: every power-of-two shape and both orientations, the cheapest by
   * the cost model. Absent: the diagonal (hybrid) method.
   */
  tiles?: 'auto' | { t1: number; t2: number; first?: 'outer' | 'inner'; inputOrder?: number[]; outputOrder?: number[] };
  /**
   * With `tiles`, in a network with convolutions: the dense layer reading the
   * convolutions is tile-packed too, its input rows split and copied by a
   * `rows` step (rowsStep); otherwise it is diagonal-packed and only the
   * dense layers after it are tiled.
   */
  tileFirstDense?: boolean;
  /**
   * Channel order of a tensor a grouped convolution reads: `interleaved`
   * (default; SpENCNN: channel c of group g at position c·G + g, one rotation
   * per channel shift for every group) or `contiguous` (group by group).
   */
  groupOrder?: 'interleaved' | 'contiguous';
  /**
   * The client sends the input rotated by each of the first layer's baby
   * steps (one more ciphertext each), so the server skips those rotations,
   * the costliest of the plan (at the top level). `babies`: the baby steps
   * of the usual baby-step/giant-step split; `all`: the first layer has no
   * giant steps, every diagonal is a client rotation (no server rotation,
   * one rescale, one ciphertext per diagonal sent). Absent: off.
   */
  clientRotations?: 'babies' | 'all';
}

/**
 * Bumped whenever the same model and options compile to a different plan
 * (2: unread input ciphertexts dropped; 3: tileFirstDense's unread conv rows dropped). Part of the export stage's
 * fingerprint, so re-running a pipeline re-exports with the new compiler.
 */
export const COMPILER_VERSION = 3;

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const pow2Upto = (n: number) => Array.from({ length: Math.log2(n) + 1 }, (_, i) => 2 ** i);

/** An image layer's grid: strides, channel block, and how many channels share a block (multiplexing, f² of them). */
interface ImageGeom { strides: { c: number; y: number; x: number }; block: number; mux: number }

/**
 * Compiles a lowered network to a plan, in phases:
 *  1. depth (one level per linear map and per square) and the largest
 *     channel block, which fix the parameters;
 *  2. geometry: every image layer keeps the previous layer's grid (subsampled
 *     by its stride), one channel per block, as many blocks per ciphertext as
 *     fit and as many ciphertexts as needed;
 *  3. per linear map and output ciphertext: slot-level matrices per input
 *     ciphertext → diagonals → baby/giant split; dense maps use the hybrid
 *     method (≤ m diagonals) plus rotate-and-sum, which also replicates their
 *     output for the next dense map.
 */
export function compileChain(chain: HeChain, o: CompileOptions = {}): Plan {
  if (o.tiles) {
    chain = foldDeadNeurons(chain);
    // Fully connected: every layer tiled. A CNN keeps its convolutions (and the dense layer reading them) diagonal and tiles the dense layers after.
    if (chain.linears.every((m) => m.outShape.length === 1)) return compileTiled(chain, o);
  }
  const mode = o.channelBlocks ?? 'auto';
  if (mode !== 'auto') return compileWith(chain, o, mode !== 'tight', mode === 'mux');
  const tight = compileWith(chain, o, false, false);
  // Without image layers every geometry is the same plan.
  if (!tight.steps.some((s) => s.out.shape.length === 3)) return tight;
  const candidates = [tight, compileWith(chain, o, true, false)];
  // Multiplexing only changes plans with strided grids (after a pool or a strided conv).
  if (chain.pools.some(Boolean) || chain.linears.some((m) => m.stride > 1)) candidates.push(compileWith(chain, o, true, true));
  return candidates.reduce((best, p) => (relativeCost(p) < relativeCost(best) ? p : best));
}

function compileWith(chain: HeChain, o: CompileOptions, align: boolean, mux: boolean): Plan {
  const [H, W, C] = chain.inShape;
  const blockOf = (n: number) => (align ? nextPow2(n) : n);
  // Phase 1: block sizes (independent of N) and parameters.
  const blocks: (ImageGeom | undefined)[] = [];
  /** The grid each linear map reads: its predecessor's, or that subsampled by a sum pool. */
  const inGeoms: (ImageGeom | undefined)[] = [];
  let g: ImageGeom | undefined = { strides: { c: blockOf(H * W), y: W, x: 1 }, block: blockOf(H * W), mux: 1 };
  const inGeom = g;
  let shape: number[] = chain.inShape;
  for (const [li, m] of chain.linears.entries()) {
    const k = chain.pools[li];
    if (k) {
      if (!g || li === 0) throw new UserError(`linear${li + 1}: a sum pool needs an image layer with an activation before it`);
      // Pooling keeps where channels sit; only the grid gets coarser.
      g = { strides: { c: g.strides.c, y: g.strides.y * k, x: g.strides.x * k }, block: g.block, mux: g.mux };
    }
    inGeoms.push(g);
    if (m.outShape.length === 3 && g) {
      const [oh, ow] = m.outShape;
      // Padding can make the output grid outgrow the input's channel block.
      const ys: number = g.strides.y * m.stride, xs: number = g.strides.x * m.stride;
      // Multiplexed: the grid's stride relative to the input grid (x stride 1) is how many channels share each row and column gap.
      const f = mux && ys === xs * W ? xs : 1;
      const block: number = blockOf(Math.max(g.block, (oh - 1) * ys + (ow - 1) * xs + 1 + (f - 1) * (W + 1)));
      g = { strides: { c: block, y: ys, x: xs }, block, mux: f };
    } else {
      g = undefined;
    }
    blocks.push(g);
    shape = m.outShape;
  }
  const largestBlock = Math.max(inGeom.block, ...blocks.map((b) => b?.block ?? 0));
  const denseWidth = Math.max(...chain.linears.filter((_, i) => !blocks[i]).map((m) => nextPow2(sizeOf(m.outShape))), 1);
  // Tile-packed dense layers (export.tiles in a CNN): those after the first dense layer, which reads the conv layout.
  const firstDense = blocks.findIndex((b) => !b);
  // With export.tileFirstDense, from the first dense layer itself (its input rows copied by a `rows` step: one level more).
  if (o.tileFirstDense && !o.tiles) throw new UserError('export.tileFirstDense: needs export.tiles (auto or a tile shape)');
  const convRows = !!o.tiles && !!o.tileFirstDense && firstDense > 0;
  const tiledFrom = convRows ? firstDense : o.tiles && firstDense >= 0 && firstDense + 1 < chain.linears.length ? firstDense + 1 : undefined;
  const replicates = tiledFrom === undefined ? 0 : Math.floor((chain.linears.length - tiledFrom) / 2) + (convRows ? 1 : 0);
  const depth = 2 * chain.linears.length - 1 + replicates;
  const need = { levels: o.refresh ? Math.min(o.refresh.levels, depth) : depth, slots: Math.max(largestBlock, denseWidth) };
  const params = o.params ?? selectParams({ ...need, scaleBits: o.scaleBits, headroomBits: o.headroomBits });
  if (o.params) checkParams(o.params, need);
  const top = params.coeffModulusBits.length - 2;
  if (o.refresh) {
    if (o.refresh.levels < 2) throw new UserError(`export.refresh.levels ${o.refresh.levels}: need at least 2 (a linear map and an activation between refreshes)`);
    const headroom = params.coeffModulusBits[0] - params.scaleBits;
    if (o.refresh.maskBits > headroom - 2) {
      throw new UserError(`export.refresh.maskBits ${o.refresh.maskBits}: masked values must stay below the first prime's headroom of ${headroom} bits above the scale; use at most ${headroom - 2} or raise export.headroomBits`);
    }
  }
  const S = slotsOf(params);
  /**
   * The channel order of the tensor linear map li reads (the output of map
   * li − 1): group-interleaved by the reader's groups when it is a grouped
   * convolution, else by the writer's, so both sides of a grouped layer share
   * one channel shift across groups.
   */
  const groupsOf = (li: number) => (chain.linears[li]?.outShape.length === 3 ? chain.linears[li].groups ?? 1 : 1);
  const orderFor = (li: number, channels: number) => {
    if ((o.groupOrder ?? 'interleaved') !== 'interleaved') return undefined;
    const G = groupsOf(li) > 1 ? groupsOf(li) : li > 0 ? groupsOf(li - 1) : 1;
    return interleavedOrder(channels, G);
  };
  /** Channel blocks per ciphertext (each holding mux² channels). */
  const perCtOf = (b: ImageGeom) => Math.floor(S / b.block);
  const muxOf = (b: ImageGeom) => (b.mux > 1 ? { f: b.mux, y: W, x: 1 } : undefined);

  // Phase 2: input layout; a single-channel input is copied once per channel
  // block of the first convolution, so every output channel reads its own copy
  // at the same offset: one diagonal per kernel tap, shared by all channels.
  const input = imageLayout(chain.inShape, inGeom.strides, { slots: S, perCt: perCtOf(inGeom), order: orderFor(0, C) });
  const first = chain.linears[0];
  const copies = C === 1 && blocks[0]
    ? Array.from({ length: Math.min(first.outShape[2], perCtOf(blocks[0])) - 1 }, (_, i) => (i + 1) * inGeom.block) : [];

  // Phase 3: kernels.
  const bsgs = o.bsgs ?? true;
  // The dense layer reading the convolutions leaves its output periodic with period m (its width, rounded up to a power of two):
  // a tile tensor with t2 = m, copied along t1 = S/m, so the tiled layers after it start reading along t2.
  const period = firstDense >= 0 ? nextPow2(sizeOf(chain.linears[firstDense].outShape)) : 0;
  // A CNN's tiled layers read the convolutions' layout, so only their outputs can be permuted (HE-PEx, at pruning).
  const { inputOrder, outputOrder } = tileOrders(o);
  if (inputOrder) throw new UserError('export.tiles.inputOrder: in a network with convolutions the tiled layers read the convolutions\' layout; the input cannot be permuted');
  // Without convRows the shape is not a choice: a shape given explicitly must be this one, rather than be silently replaced by it.
  if (tiledFrom !== undefined && !convRows && typeof o.tiles === 'object' && (o.tiles.t2 !== period || o.tiles.t1 !== S / period)) {
    throw new UserError(`export.tiles: {t1: ${o.tiles.t1}, t2: ${o.tiles.t2}}: in a network with convolutions the tile shape follows the first dense layer's width (${sizeOf(chain.linears[firstDense].outShape)}, period ${period}): t1 = ${S / period}, t2 = ${period} at N = ${params.polyModulusDegree}; use tiles: auto or that shape`);
  }
  if (convRows) checkTileShape(o, params);
  // convRows: the shape is free (an explicit one, or every t2 from 16 to S/2, the cheapest by the cost model); the first tiled map reads rows along c.
  const t2s = tiledFrom === undefined ? [0] : !convRows ? [period] : typeof o.tiles === 'object' ? [o.tiles.t2] : pow2Upto(S / 2).filter((t) => t >= 16);
  // The convolutions do not depend on the tile shape: compiled once.
  const convSteps = new Map<number, LinearStep>();
  // Only the cheapest plan so far is held (a plan's plaintexts run to hundreds of MiB).
  let best: Plan | undefined;
  for (const t2 of t2s) {
    const p = build(t2 ? { t1: S / t2, t2, first: 'inner', from: tiledFrom, ...(convRows ? { convRows } : {}), ...(outputOrder ? { outputOrder } : {}) } : undefined);
    if (!best || relativeCost(p) < relativeCost(best)) best = p;
  }
  return best!;

  function build(tile: TileShape | undefined): Plan {
    let cur: Layout = input;
    const steps: PlanStep[] = [];
    // Materialised tensors a residual input can read: the input (−1) and each square's output.
    const tensors = new Map<number, Skip['source']>([[-1, { layout: input, step: -1 }]]);
    let level = top, refreshes = 0;
    /** Before a step that needs a level: a refresh if none is left (of the current tensor and every earlier one still to be read). */
    const needLevel = (nextLinear: number) => {
      if (level > 0) { level--; return; }
      if (!o.refresh) throw new UserError(`the plan needs ${depth} levels and the parameters hold ${top}; set export.refresh to split it with masked refresh`);
      const live = new Set<number>();
      // (The current tensor is refreshed anyway, even when it is also read later.)
      chain.skips.forEach((sk, j) => { if (sk && j >= nextLinear && sk.from >= 0 && tensors.has(sk.from) && tensors.get(sk.from)!.step !== steps.length - 1) live.add(sk.from); });
      steps.push({ kind: 'refresh', name: `refresh${++refreshes}`, out: cur, tensors: [...live].map((t) => ({ step: tensors.get(t)!.step, cts: tensors.get(t)!.layout.cts })) });
      level = top - 1;
    };
    chain.linears.forEach((m, li) => {
      if (li > 0) {
        needLevel(li);
        steps.push(squareStep(chain, li, cur));
        tensors.set(li - 1, { layout: cur, step: steps.length - 1 });
      }
      if (tile && li >= tile.from! && tileOrientation(tile.first, li - tile.from!) === 'outer') {
        needLevel(li);
        const rep = replicateStep(`replicate${li}`, cur, S, tile);
        steps.push(rep);
        cur = rep.out;
      }
      const k = chain.pools[li];
      if (k) {
        const pg = blocks[li - 1]!;
        const [h, w, c] = cur.shape;
        const window = (stride: number) => Array.from({ length: k }, (_, i) => i * stride);
        const out = imageLayout([Math.floor(h / k), Math.floor(w / k), c], inGeoms[li]!.strides, { slots: S, perCt: perCtOf(pg), mux: muxOf(pg), order: orderFor(li, c) });
        steps.push({ kind: 'pool', name: `pool${li}`, stages: [window(pg.strides.x), window(pg.strides.y)], out });
        cur = out;
      }
      if (tile?.convRows && li === tile.from) {
        needLevel(li);
        // Rows whose elements no kept weight reads are dropped (after tile pruning, whole input tiles go).
        const read = new Uint8Array(cur.slotOf.length);
        for (const row of m.rows) for (let e = 0; e < row.length; e += 2) read[row[e]] = 1;
        const rows = rowsStep(`rows${li}`, cur, S, tile, (e) => read[e] === 1);
        steps.push(rows);
        cur = rows.out;
      }
      const name = `linear${li + 1}`;
      // The input grid's row stride is a natural giant step for a convolution (babies = taps within a row).
      const inRow = inGeoms[li]?.strides.y;
      const stepLevel = (needLevel(li), level + 1);
      // With every first-layer rotation left to the client, that layer needs no giant steps.
      const split = bsgs && !(li === 0 && o.clientRotations === 'all');
      const sk = chain.skips[li];
      const skip = sk && { map: sk.map, source: tensors.get(sk.from)! };
      if (skip && !blocks[li]) throw new UserError(`${name}: a residual input is supported into convolutions only`);
      // Shared by the candidate plans (finishPlan copies a step before changing it).
      const conv = () => {
        let st = convSteps.get(li);
        if (!st) { st = imageStep(m, cur, blocks[li]!, li === 0 ? copies : [], S, perCtOf(blocks[li]!), muxOf(blocks[li]!), name, split, stepLevel, inRow, skip, orderFor(li + 1, m.outShape[2])); convSteps.set(li, st); }
        return st;
      };
      const step = blocks[li]
        ? conv()
        : tile && li >= tile.from!
          ? tileStep(name, m.rows, m.bias, sizeOf(m.outShape), cur, S, tile, tileOrientation(tile.first, li - tile.from!), li === chain.linears.length - 1 ? tile.outputOrder : undefined)
          : denseStep(m, cur, S, name, split, stepLevel);
      steps.push(step);
      cur = step.out;
    });
    const grouped = chain.linears.some((m) => (m.groups ?? 1) > 1);
    const constants = tile ? outputConstants(cur, chain.linears[chain.linears.length - 1]) : undefined;
    const plan: Plan = { formatVersion: 1, params, channelBlocks: mux ? 'mux' : align ? 'pow2' : 'tight', ...(grouped ? { groupOrder: o.groupOrder ?? 'interleaved' } : {}),
      ...(tile ? { tiles: tile } : {}), ...(constants ? { outputConstants: constants } : {}), ...(refreshes ? { refresh: { maskBits: o.refresh!.maskBits } } : {}), slots: S, input, inputCopies: copies, steps, output: cur };
    // Phase 4: the client's rotations, Galois keys within the memory budget.
    return finishPlan(plan, o);
  }
}

/** Slot-level matrices keyed by (output ciphertext, input ciphertext) as j·2^16 + i. */
class BlockMatrices {
  readonly mats = new Map<number, SlotDiagonals>();
  constructor(readonly slots: number) {}
  add(outG: number, inG: number, w: number): void {
    const S = this.slots;
    const key = Math.floor(outG / S) * 65536 + Math.floor(inG / S);
    let m = this.mats.get(key);
    if (!m) { m = new SlotDiagonals(S); this.mats.set(key, m); }
    m.add(outG % S, inG % S, w);
  }
}

function finishStep(name: string, bm: BlockMatrices, bias: Float64Array[], out: Layout, rotateSum: number[], units: number[], level: number): LinearStep {
  const S = bm.slots;
  // All diagonals into each output ciphertext, from every input ciphertext.
  const perOutput: { input: number; k: number; d: Float64Array }[][] = Array.from({ length: out.cts }, () => []);
  for (const [key, mat] of bm.mats) {
    const oj = Math.floor(key / 65536), ii = key % 65536;
    for (const [k, d] of mat.diagonals()) perOutput[oj].push({ input: ii, k, d });
  }
  // One split for the whole step: babies are shared by its outputs. No units: no BSGS (every diagonal a baby).
  const rule = units.length ? bestSplit(perOutput, S, units, level) : { unit: S, coarseBabies: false };
  const outputs: LinearOutput[] = perOutput.map((diags, j) => {
    if (diags.length === 0) throw new UserError(`${name}: every weight into output ciphertext ${j} is zero; the layer would output only its bias`);
    const split = bsgsSplit([...new Set(diags.map((x) => x.k))], S, rule);
    const giantOf = new Map<number, { giant: number; baby: number }>();
    for (const gs of split) for (const t of gs.terms) giantOf.set(t.k, { giant: gs.giant, baby: t.baby });
    const giants = split.map((gs) => ({
      giant: gs.giant,
      // Pre-rotate by -giant: rot(d ⊙ rot(x,b), g) needs d stored as rot(d, -g).
      terms: diags.filter((x) => giantOf.get(x.k)!.giant === gs.giant)
        .sort((a, b) => a.input - b.input || giantOf.get(a.k)!.baby - giantOf.get(b.k)!.baby)
        .map((x) => ({ input: x.input, baby: giantOf.get(x.k)!.baby, diag: gs.giant ? rotateVec(x.d, -gs.giant) : x.d })),
    }));
    // The bias joins the first giant's sum, which is then rotated by that giant: pre-rotate it too.
    const b = bias[j].some((v) => v !== 0) ? (giants[0].giant ? rotateVec(bias[j], -giants[0].giant) : bias[j]) : undefined;
    return { giants, bias: b };
  });
  return { kind: 'linear', name, outputs, rotateSum, out };
}

/** A residual input of a linear step: an earlier tensor (its layout and the step that made it) through `map`. */
interface Skip { map: LinearMap; source: { layout: Layout; step: number } }

function imageStep(m: LinearMap, inL: Layout, g: ImageGeom, copies: number[], S: number, perCt: number, mux: Multiplex | undefined, name: string, bsgs: boolean, level: number, inRow?: number, skip?: Skip, order?: Int32Array): LinearStep {
  const [, , oc] = m.outShape;
  if (perCt < 1) throw new UserError(`${name}: a channel block of ${g.block} slots does not fit a ciphertext of ${S} slots`);
  const out = imageLayout(m.outShape as [number, number, number], g.strides, { slots: S, perCt, mux, order });
  const bm = new BlockMatrices(S);
  const bias = Array.from({ length: out.cts }, () => new Float64Array(S));
  m.rows.forEach((row, o) => {
    const os = out.slotOf[o];
    // Output channel c at position p sits in block p mod perCt (see imageLayout) and reads the input copy in the same block.
    const blk = (order ? order[o % oc] : o % oc) % perCt;
    const off = copies.length && blk > 0 ? copies[blk - 1] : 0;
    for (let e = 0; e < row.length; e += 2) bm.add(os, inL.slotOf[row[e]] + off, row[e + 1]);
    bias[Math.floor(os / S)][os % S] = m.bias[o];
  });
  // The residual input's ciphertexts follow the main input's.
  if (skip) skip.map.rows.forEach((row, o) => { for (let e = 0; e < row.length; e += 2) bm.add(out.slotOf[o], skip.source.layout.slotOf[row[e]] + inL.cts * S, row[e + 1]); });
  const step = finishStep(name, bm, bias, out, [], bsgs ? [g.block, ...(inRow ? [inRow] : []), ...pow2Upto(S)] : [], level);
  if (skip) step.skip = { step: skip.source.step, cts: skip.source.layout.cts };
  return step;
}

/**
 * Where weight (output o, input at global slot gi) of a hybrid dense step
 * lands in the first period: output slot, input ciphertext and slot (its
 * diagonal is in − out). Row o's weights go to output slots ≡ o (mod mm)
 * chosen so that every diagonal index is < mm.
 */
export function denseSlots(o: number, gi: number, S: number, p: number, mm: number): { out: number; inCt: number; in: number } {
  const inCt = Math.floor(gi / S), si = gi % S;
  const d = (((si - o) % p) + p) % p;
  const t = Math.floor(d / mm);
  const j = (o + t * mm) % p;
  return { out: j, inCt, in: (j + (d - t * mm)) % p };
}

/** The period a dense step's input repeats with, widened to hold its output (see denseStep). */
export function densePeriod(inL: Layout, nOut: number, S: number): { p: number; mm: number } {
  const mm = nextPow2(nOut);
  return { p: inL.period ? Math.max(inL.period, mm) : S, mm };
}

/**
 * Hybrid matrix-vector product: row o's weights go to output slots j ≡ o
 * (mod m) chosen so every diagonal index is < m; rotate-and-sum over the
 * input period then adds the partial rows and leaves y periodic with period m.
 * Inputs may span several ciphertexts; the output is one.
 */
function denseStep(m: LinearMap, inL: Layout, S: number, name: string, bsgs: boolean, level: number): LinearStep {
  const nOut = sizeOf(m.outShape);
  if (nOut > S) throw new UserError(`${name}: ${nOut} outputs do not fit one ciphertext of ${S} slots`);
  // An input periodic with period p is periodic with any multiple of p too:
  // widen the period so the output (≤ mm slots) fits in one period.
  const { p, mm } = densePeriod(inL, nOut, S);
  const bm = new BlockMatrices(S);
  const bias = new Float64Array(S);
  for (let c = 0; c < S / p; c++) {
    m.rows.forEach((row, o) => {
      for (let e = 0; e < row.length; e += 2) {
        const at = denseSlots(o, inL.slotOf[row[e]], S, p, mm);
        bm.add(at.out + c * p, at.inCt * S + at.in + c * p, row[e + 1]);
      }
      bias[o + c * p] = m.bias[o];
    });
  }
  const rotateSum: number[] = [];
  for (let s = mm; s < p; s *= 2) rotateSum.push(s);
  return finishStep(name, bm, [bias], vectorLayout(nOut, mm < S ? mm : undefined), rotateSum, bsgs ? pow2Upto(mm) : [], level);
}
