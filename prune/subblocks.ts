import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { densePeriod, denseSlots, stepIndex, stepInput } from '../plan/packing.js';
import type { Plan } from '../plan/plan.js';
import { layerPlaces } from '../plan/provenance.js';
import { convPad } from '../train/layers/conv-padding.js';
import type { GroupedConv2D } from '../train/layers/grouped-conv.js';

/**
 * SpENCNN sub-blocks, read off the compiled plan: the weights of a packed
 * convolution that land in one plaintext diagonal (output ciphertext j,
 * input ciphertext i, rotation k). Zeroing a whole sub-block removes exactly
 * one plaintext multiplication; zeroing a whole channel-shift class (every
 * kernel tap of one (j, i, channel shift)) also frees that shift's rotation.
 * Weights are indices into the layer's flattened kernel [k, k, Cin/G, Cout].
 */
export interface SubBlock {
  /** Plan diagonal: `${j}:${i}:${k}`. */
  key: string;
  /** Channel-shift class: `${j}:${i}:${shift}` (the rotation by whole channel blocks). */
  shiftClass: string;
  /** Kernel tap (ky·k + kx); −1 for dense layers. */
  tap: number;
  weights: number[];
}

export interface LayerBlocks {
  layer: string;
  step: string;
  blocks: SubBlock[];
}

/** Sub-blocks of one grouped convolution compiled as linear step `stepName` of `plan`. */
export function convSubBlocks(layer: GroupedConv2D, plan: Plan, stepName: string): LayerBlocks {
  const si = stepIndex(plan, stepName);
  const st = plan.steps[si];
  if (!st || st.kind !== 'linear') throw new UserError(`prune: plan has no linear step ${stepName}`);
  const inL = stepInput(plan, si),
    outL = st.out;
  const [H, W, C] = inL.shape,
    [OH, OW, CO] = outL.shape;
  // The first convolution reads the client's input copies: output channel c at position p, in block b = p mod
  // (blocks per ciphertext), reads the copy at offset copies[b−1] (as the compiler's imageStep). There is one copy per block but
  // the first, up to the channel count, so b = c mod (copies + 1) either way.
  const copies = si === 0 ? plan.inputCopies : [];
  const copyOf = (co: number) => {
    const blk = (outL.channelPos ? outL.channelPos[co] : co) % (copies.length + 1);
    return blk > 0 ? copies[blk - 1] : 0;
  };
  const S = plan.slots,
    k = layer.kernelSize,
    G = layer.groups,
    cinG = C / G,
    coutG = CO / G;
  const ph = convPad(layer.padding, H, k, layer.strides),
    pw = convPad(layer.padding, W, k, layer.strides);
  const mod = (v: number) => ((v % S) + S) % S;
  // A representative output position per tap with the tap inside the input (the slot offset is the same at every such position).
  const rep = (kk: number, pad: number, n: number, on: number) => {
    for (let o = 0; o < on; o++) {
      const i = o * layer.strides + kk - pad;
      if (i >= 0 && i < n) return { o, i };
    }
    return undefined;
  };
  const blocks = new Map<string, SubBlock>();
  for (let ky = 0; ky < k; ky++)
    for (let kx = 0; kx < k; kx++) {
      const ry = rep(ky, ph.top, H, OH),
        rx = rep(kx, pw.top, W, OW);
      if (!ry || !rx) continue;
      for (let co = 0; co < CO; co++) {
        const g = Math.floor(co / coutG);
        const os = outL.slotOf[(ry.o * OW + rx.o) * CO + co],
          outBase = outL.slotOf[co];
        for (let c = 0; c < cinG; c++) {
          const ci = g * cinG + c;
          const is = inL.slotOf[(ry.i * W + rx.i) * C + ci] + copyOf(co),
            inBase = inL.slotOf[ci] + copyOf(co);
          const j = Math.floor(os / S),
            i = Math.floor(is / S);
          const key = `${j}:${i}:${mod(is - os)}`;
          let b = blocks.get(key);
          if (!b) {
            b = { key, shiftClass: `${j}:${i}:${mod(inBase - outBase)}`, tap: ky * k + kx, weights: [] };
            blocks.set(key, b);
          }
          b.weights.push(((ky * k + kx) * cinG + c) * CO + co);
        }
      }
    }
  return { layer: layer.name, step: stepName, blocks: [...blocks.values()] };
}

/**
 * Sub-blocks of a dense layer compiled as hybrid linear step `stepName`: the
 * weights on one diagonal. Dense diagonals have no tap structure (tap −1);
 * each is its own rotation class.
 */
export function denseSubBlocks(layer: tf.layers.Layer, plan: Plan, stepName: string): LayerBlocks {
  const si = stepIndex(plan, stepName);
  const st = plan.steps[si];
  if (!st || st.kind !== 'linear') throw new UserError(`prune: plan has no linear step ${stepName}`);
  const inL = stepInput(plan, si);
  const [nIn, nOut] = layer.getWeights()[0].shape;
  if (inL.slotOf.length !== nIn || st.out.slotOf.length !== nOut) {
    throw new UserError(
      `prune: layer ${layer.name} (${nIn}→${nOut}) does not map one to one onto plan step ${stepName}; prune it together with the layers folded into it, or not at all`,
    );
  }
  const S = plan.slots,
    { p, mm } = densePeriod(inL, nOut, S);
  const mod = (v: number) => ((v % S) + S) % S;
  const blocks = new Map<string, SubBlock>();
  for (let i = 0; i < nIn; i++)
    for (let o = 0; o < nOut; o++) {
      const at = denseSlots(o, inL.slotOf[i], S, p, mm);
      const key = `0:${at.inCt}:${mod(at.in - at.out)}`;
      let b = blocks.get(key);
      if (!b) {
        b = { key, shiftClass: key, tap: -1, weights: [] };
        blocks.set(key, b);
      }
      b.weights.push(i * nOut + o);
    }
  return { layer: layer.name, step: stepName, blocks: [...blocks.values()] };
}

/**
 * Residual shortcut projections: weight layers the compiler made the
 * residual input (`skip`) of a linear step rather than a step of their own
 * (a ResNet block's 1x1 projection beside its first conv). Sub-blocks leave
 * them whole.
 */
export function residualShortcuts(plan: Plan): Set<string> {
  return new Set([...layerPlaces(plan)].filter(([, p]) => p.shortcut).map(([l]) => l));
}

/**
 * The linear step each weight layer compiles to, read off the plan's stamps:
 * layers in a step of their own. Shortcut projections (a step's residual
 * input) are absent; a layer composed with another into one step (no
 * activation between them) is refused, since its sub-blocks are not its own.
 */
export function stepOfLayer(plan: Plan, layers: string[]): Map<string, string> {
  const places = layerPlaces(plan);
  return new Map(
    layers.map((l) => {
      const p = places.get(l);
      if (!p) throw new UserError(`prune: layer ${l} is in no step of the plan`);
      if (p.shortcut)
        throw new UserError(
          `prune: layer ${l} is the residual input of plan step ${p.step} (a shortcut projection), not a step of its own`,
        );
      if (p.with.length)
        throw new UserError(
          `prune: layer ${l} is compiled into plan step ${p.step} together with ${p.with.join(', ')} (no activation between them); sub-block pruning needs each pruned layer in a step of its own (for a factorised pair, export.factorized: split)`,
        );
      return [l, p.step];
    }),
  );
}
