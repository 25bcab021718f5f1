import { UserError } from '../common/errors.js';
import { checkParams, selectParams, slotsOf, type HeParams } from '../he/params.js';
import { bestGiantUnit, bsgsSplit, rotateVec, SparseSlotMatrix, toDiagonals } from '../plan/diagonals.js';
import { imageLayout, layoutSize, maxSlot, vectorLayout, type Layout } from '../plan/layout.js';
import type { LinearStep, Plan, PlanStep } from '../plan/plan.js';
import type { HeChain } from './lower.js';
import type { LinearMap } from './linear-map.js';

export interface CompileOptions {
  /** Explicit parameters (checked); otherwise the smallest secure ones are chosen. */
  params?: HeParams;
  scaleBits?: number;
  headroomBits?: number;
  /** Baby-step/giant-step rotations (default on); off: every diagonal is its own rotation of the input. */
  bsgs?: boolean;
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

interface ImageGeom { strides: { c: number; y: number; x: number }; block: number }

/**
 * Compiles a lowered network to a plan, in phases:
 *  1. geometry: where every image layer's outputs sit (strided layouts that
 *     keep the previous layer's grid, one channel block per channel);
 *  2. parameters: depth = one level per linear map and per square;
 *  3. per linear map: slot-level matrix → diagonals → baby/giant split;
 *     dense maps use the hybrid method (≤ m diagonals) plus rotate-and-sum,
 *     which also replicates their output for the next dense map.
 */
export function compileChain(chain: HeChain, o: CompileOptions = {}): Plan {
  // Phase 1: image geometry (independent of the slot count).
  const [H, W, C] = chain.inShape;
  const inGeom: ImageGeom = { strides: { c: H * W, y: W, x: 1 }, block: H * W };
  const first = chain.linears[0];
  // A single-channel input is copied once per output channel block, so every
  // output channel reads its own copy at the same offset: one diagonal per kernel tap.
  const firstOut = first.outShape;
  const copies = C === 1 && firstOut.length === 3 ? Array.from({ length: firstOut[2] - 1 }, (_, i) => (i + 1) * inGeom.block) : [];
  let footprint = H * W * C + (copies.length ? copies[copies.length - 1] : 0);
  const geoms: (ImageGeom | undefined)[] = [];
  let g: ImageGeom | undefined = inGeom;
  let shape: number[] = chain.inShape;
  for (const m of chain.linears) {
    if (m.outShape.length === 3 && g) {
      const [oh, ow, oc] = m.outShape;
      // Outputs keep the input's grid, subsampled by the map's stride: for a
      // convolution every kernel tap is then one diagonal for all outputs.
      // Padding can make the output grid outgrow the input's channel block.
      const ys: number = g.strides.y * m.stride, xs: number = g.strides.x * m.stride;
      const block: number = Math.max(shape[2] > 1 ? g.strides.c : g.block, (oh - 1) * ys + (ow - 1) * xs + 1);
      g = { strides: { c: block, y: ys, x: xs }, block };
      footprint = Math.max(footprint, oc * block);
    } else {
      g = undefined;
    }
    geoms.push(g);
    shape = m.outShape;
  }

  // Phase 2: parameters.
  const depth = 2 * chain.linears.length - 1;
  const params = o.params ?? selectParams({ levels: depth, slots: footprint, scaleBits: o.scaleBits, headroomBits: o.headroomBits });
  if (o.params) checkParams(o.params, { levels: depth, slots: footprint });
  const S = slotsOf(params);

  // Phase 3: kernels.
  const input = imageLayout(chain.inShape, inGeom.strides);
  let cur: Layout = input;
  const steps: PlanStep[] = [];
  chain.linears.forEach((m, li) => {
    if (li > 0) steps.push({ kind: 'square', name: `square${li}`, out: cur });
    const bsgs = o.bsgs ?? true;
    const step = geoms[li] ? imageStep(m, cur, geoms[li]!, li === 0 ? copies : [], S, `linear${li + 1}`, bsgs) : denseStep(m, cur, S, `linear${li + 1}`, bsgs);
    steps.push(step);
    cur = step.out;
  });
  if (maxSlot(cur) >= S) throw new UserError(`plan needs ${maxSlot(cur) + 1} slots, N=${params.polyModulusDegree} has ${S}`);
  return { formatVersion: 1, params, slots: S, input, inputCopies: copies, steps, output: cur };
}

function finishStep(name: string, mat: SparseSlotMatrix, bias: Float64Array | undefined, out: Layout, rotateSum: number[], giantCandidates: number[]): LinearStep {
  const S = mat.slots;
  const diags = toDiagonals(mat);
  const ks = [...diags.keys()];
  if (ks.length === 0) throw new UserError(`${name}: every weight is zero; the layer would output only its bias`);
  const unit = bestGiantUnit(ks, S, giantCandidates);
  const giants = bsgsSplit(ks, S, unit).map((gs) => ({
    giant: gs.giant,
    // Pre-rotate by -giant: rot(d ⊙ rot(x,b), g) = rot(d,g) ⊙ rot(x, b+g) needs d stored as rot(d, -g).
    terms: gs.terms.map((t) => ({ baby: t.baby, diag: gs.giant ? rotateVec(diags.get(t.k)!, -gs.giant) : diags.get(t.k)! })),
  }));
  // The bias joins the first giant's sum, which is then rotated by that giant: pre-rotate it too.
  const b = bias && bias.some((v) => v !== 0) ? (giants[0].giant ? rotateVec(bias, -giants[0].giant) : bias) : undefined;
  return { kind: 'linear', name, giants, bias: b, rotateSum, out };
}

const pow2Upto = (n: number) => Array.from({ length: Math.log2(n) + 1 }, (_, i) => 2 ** i);

function imageStep(m: LinearMap, inL: Layout, g: ImageGeom, copies: number[], S: number, name: string, bsgs: boolean): LinearStep {
  const [, , oc] = m.outShape;
  const out = imageLayout(m.outShape as [number, number, number], g.strides);
  const mat = new SparseSlotMatrix(S);
  const bias = new Float64Array(S);
  m.rows.forEach((row, o) => {
    const os = out.slotOf[o];
    const co = o % oc;
    const off = copies.length ? (co === 0 ? 0 : copies[co - 1]) : 0;
    for (const [i, w] of row) mat.add(os, (inL.slotOf[i] + off) % S, w);
    bias[os] = m.bias[o];
  });
  return finishStep(name, mat, bias, out, [], bsgs ? [g.block, ...pow2Upto(S)] : [S]);
}

/**
 * Hybrid matrix-vector product: row o's weights go to output slots j ≡ o
 * (mod m) chosen so every diagonal index is < m; rotate-and-sum over the
 * input period then adds the partial rows and leaves y periodic with period m.
 */
function denseStep(m: LinearMap, inL: Layout, S: number, name: string, bsgs: boolean): LinearStep {
  const nOut = layoutSize({ shape: m.outShape } as Layout);
  // An input periodic with period p is periodic with any multiple of p too:
  // widen the period so the output (≤ mm slots) fits in one period.
  const mm = Math.min(nextPow2(nOut), S);
  const p = inL.period ? Math.max(inL.period, mm) : S;
  const mat = new SparseSlotMatrix(S);
  const bias = new Float64Array(S);
  for (let c = 0; c < S / p; c++) {
    m.rows.forEach((row, o) => {
      for (const [i, w] of row) {
        const si = inL.slotOf[i];
        const d = (((si - o) % p) + p) % p;
        const t = Math.floor(d / mm);
        const j = (o + t * mm) % p;
        mat.add(j + c * p, ((j + (d - t * mm)) % p) + c * p, w);
      }
      bias[o + c * p] = m.bias[o];
    });
  }
  const rotateSum: number[] = [];
  for (let s = mm; s < p; s *= 2) rotateSum.push(s);
  return finishStep(name, mat, bias, vectorLayout(nOut, mm < S ? mm : undefined), rotateSum, bsgs ? pow2Upto(mm) : [S]);
}
