import { UserError } from '../../common/errors.js';
import { bestSplit, bsgsSplit, rotateVec, SlotDiagonals } from '../../plan/diagonals.js';
import { imageLayout, vectorLayout, type Layout, type Multiplex } from '../../plan/layout.js';
import { densePeriod, denseSlots, pow2Upto } from '../../plan/packing.js';
import type { LinearOutput, LinearStep } from '../../plan/plan.js';
import { sizeOf, type LinearMap } from '../linear-map.js';
import type { ImageGeom } from './geometry.js';

/**
 * Linear steps packed by diagonals: per output ciphertext, the slot-level
 * matrix from each input ciphertext → its diagonals → one baby-step/giant-step
 * split shared by the step's outputs. Convolutions read and write channel
 * blocks (imageStep); dense maps use the hybrid method (denseStep).
 */

/** Slot-level matrices keyed by (output ciphertext, input ciphertext) as j·2^16 + i. */
class BlockMatrices {
  readonly mats = new Map<number, SlotDiagonals>();
  constructor(readonly slots: number) {}
  add(outG: number, inG: number, w: number): void {
    const S = this.slots;
    const key = Math.floor(outG / S) * 65536 + Math.floor(inG / S);
    let m = this.mats.get(key);
    if (!m) {
      m = new SlotDiagonals(S);
      this.mats.set(key, m);
    }
    m.add(outG % S, inG % S, w);
  }
}

/** How a step's diagonals are split and summed: rotate-and-sum steps after the products, the BSGS units (none: every diagonal a baby), the level it runs at. */
interface Split {
  rotateSum: number[];
  units: number[];
  level: number;
}

/** What every diagonal step shares: where it reads, its name, whether BSGS is on, the level it runs at. */
export interface DiagonalInput {
  name: string;
  in: Layout;
  slots: number;
  bsgs: boolean;
  level: number;
}

/** A residual input of a linear step: an earlier tensor (its layout and the step that made it) through `map`. */
export interface Skip {
  map: LinearMap;
  source: { layout: Layout; step: number };
}

/** A convolution's packing beyond DiagonalInput: its grid, the client's input copies (first layer), multiplexing, the natural giant step, a residual, the output channel order. */
export interface ConvInput extends DiagonalInput {
  geom: ImageGeom;
  perCt: number;
  copies: number[];
  mux?: Multiplex;
  inRow?: number;
  skip?: Skip;
  order?: Int32Array;
}

function diagonalStep(name: string, bm: BlockMatrices, bias: Float64Array[], out: Layout, s: Split): LinearStep {
  const S = bm.slots;
  // All diagonals into each output ciphertext, from every input ciphertext.
  const perOutput: { input: number; k: number; d: Float64Array }[][] = Array.from({ length: out.cts }, () => []);
  for (const [key, mat] of bm.mats) {
    const oj = Math.floor(key / 65536),
      ii = key % 65536;
    for (const [k, d] of mat.diagonals()) perOutput[oj].push({ input: ii, k, d });
  }
  // One split for the whole step: babies are shared by its outputs. No units: no BSGS (every diagonal a baby).
  const rule = s.units.length ? bestSplit(perOutput, S, s.units, s.level) : { unit: S, coarseBabies: false };
  const outputs: LinearOutput[] = perOutput.map((diags, j) => {
    if (diags.length === 0)
      throw new UserError(`${name}: every weight into output ciphertext ${j} is zero; the layer would output only its bias`);
    const split = bsgsSplit([...new Set(diags.map((x) => x.k))], S, rule);
    const giantOf = new Map<number, { giant: number; baby: number }>();
    for (const gs of split) for (const t of gs.terms) giantOf.set(t.k, { giant: gs.giant, baby: t.baby });
    const giants = split.map((gs) => ({
      giant: gs.giant,
      // Pre-rotate by -giant: rot(d ⊙ rot(x,b), g) needs d stored as rot(d, -g).
      terms: diags
        .filter((x) => giantOf.get(x.k)!.giant === gs.giant)
        .sort((a, b) => a.input - b.input || giantOf.get(a.k)!.baby - giantOf.get(b.k)!.baby)
        .map((x) => ({ input: x.input, baby: giantOf.get(x.k)!.baby, diag: gs.giant ? rotateVec(x.d, -gs.giant) : x.d })),
    }));
    // The bias joins the first giant's sum, which is then rotated by that giant: pre-rotate it too.
    const b = bias[j].some((v) => v !== 0) ? (giants[0].giant ? rotateVec(bias[j], -giants[0].giant) : bias[j]) : undefined;
    return { giants, bias: b };
  });
  return { kind: 'linear', name, outputs, rotateSum: s.rotateSum, out };
}

/** A convolution (or any map between image layouts) as one diagonal step, with its residual input if any. */
export function imageStep(m: LinearMap, c: ConvInput): LinearStep {
  const [, , oc] = m.outShape;
  const S = c.slots,
    inL = c.in;
  if (c.perCt < 1) throw new UserError(`${c.name}: a channel block of ${c.geom.block} slots does not fit a ciphertext of ${S} slots`);
  const out = imageLayout(m.outShape as [number, number, number], c.geom.strides, { slots: S, perCt: c.perCt, mux: c.mux, order: c.order });
  const bm = new BlockMatrices(S);
  const bias = Array.from({ length: out.cts }, () => new Float64Array(S));
  m.rows.forEach((row, o) => {
    const os = out.slotOf[o];
    // Output channel c at position p sits in block p mod perCt (see imageLayout) and reads the input copy in the same block.
    const blk = (c.order ? c.order[o % oc] : o % oc) % c.perCt;
    const off = c.copies.length && blk > 0 ? c.copies[blk - 1] : 0;
    for (let e = 0; e < row.length; e += 2) bm.add(os, inL.slotOf[row[e]] + off, row[e + 1]);
    bias[Math.floor(os / S)][os % S] = m.bias[o];
  });
  const skip = c.skip;
  // The residual input's ciphertexts follow the main input's.
  if (skip)
    skip.map.rows.forEach((row, o) => {
      for (let e = 0; e < row.length; e += 2) bm.add(out.slotOf[o], skip.source.layout.slotOf[row[e]] + inL.cts * S, row[e + 1]);
    });
  // The input grid's row stride is a natural giant step for a convolution (babies = taps within a row).
  const units = c.bsgs ? [c.geom.block, ...(c.inRow ? [c.inRow] : []), ...pow2Upto(S)] : [];
  const step = diagonalStep(c.name, bm, bias, out, { rotateSum: [], units, level: c.level });
  if (skip) step.skip = { step: skip.source.step, cts: skip.source.layout.cts };
  return step;
}

/**
 * Hybrid matrix-vector product: row o's weights go to output slots j ≡ o
 * (mod m) chosen so every diagonal index is < m (plan/packing's denseSlots);
 * rotate-and-sum over the input period then adds the partial rows and leaves
 * y periodic with period m. Inputs may span several ciphertexts; the output is one.
 */
export function denseStep(m: LinearMap, d: DiagonalInput): LinearStep {
  const S = d.slots,
    inL = d.in;
  const nOut = sizeOf(m.outShape);
  if (nOut > S) throw new UserError(`${d.name}: ${nOut} outputs do not fit one ciphertext of ${S} slots`);
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
  return diagonalStep(d.name, bm, [bias], vectorLayout(nOut, mm < S ? mm : undefined), {
    rotateSum,
    units: d.bsgs ? pow2Upto(mm) : [],
    level: d.level,
  });
}
