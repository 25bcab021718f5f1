import type { LayerBlocks, SubBlock } from './subblocks.js';
import type { Masks } from './masks.js';

/**
 * SpENCNN sub-block pruning, by channel-shift class: a class (output
 * ciphertext, input ciphertext, channel shift) holds one sub-block per
 * kernel tap, and removing all of them removes that many plaintext
 * multiplications and the shift's rotation. Classes are removed in order of
 * importance (mean |w|) per plaintext multiplication saved until the pruned
 * weights reach `sparsity` of the layers' weights. Earlier masks are kept.
 */
export function selectSubBlocks(layers: LayerBlocks[], kernels: Map<string, Float32Array>, sparsity: number, prior?: Masks): Masks {
  const masks: Masks = new Map(layers.map((l) => [l.layer, prior?.get(l.layer)?.slice() ?? new Float32Array(kernels.get(l.layer)!.length).fill(1)]));
  const total = [...masks.values()].reduce((a, m) => a + m.length, 0);
  let pruned = [...masks.values()].reduce((a, m) => a + m.reduce((x, v) => x + (v === 0 ? 1 : 0), 0), 0);
  const classes = new Map<string, { layer: string; blocks: SubBlock[]; weights: number }>();
  for (const l of layers) for (const b of l.blocks) {
    const id = `${l.layer}/${b.shiftClass}`;
    const c = classes.get(id) ?? { layer: l.layer, blocks: [], weights: 0 };
    c.blocks.push(b); c.weights += b.weights.length;
    classes.set(id, c);
  }
  const score = (c: { layer: string; blocks: SubBlock[]; weights: number }) => {
    const w = kernels.get(c.layer)!, m = masks.get(c.layer)!;
    let sum = 0;
    for (const b of c.blocks) for (const i of b.weights) sum += Math.abs(w[i] * m[i]);
    return sum / c.weights / c.blocks.length;
  };
  const order = [...classes.values()].map((c) => ({ c, s: score(c) })).filter((x) => x.s > 0).sort((a, b) => a.s - b.s);
  for (const { c } of order) {
    if (pruned >= sparsity * total) break;
    const m = masks.get(c.layer)!;
    for (const b of c.blocks) for (const i of b.weights) if (m[i] !== 0) { m[i] = 0; pruned++; }
  }
  return masks;
}

/** Unstructured magnitude pruning (the baseline): the smallest |w| across the layers until `sparsity`. */
export function selectMagnitude(kernels: Map<string, Float32Array>, sparsity: number): Masks {
  const all: { layer: string; i: number; a: number }[] = [];
  for (const [layer, w] of kernels) w.forEach((v, i) => all.push({ layer, i, a: Math.abs(v) }));
  all.sort((x, y) => x.a - y.a);
  const masks: Masks = new Map([...kernels].map(([l, w]) => [l, new Float32Array(w.length).fill(1)]));
  for (let n = 0; n < Math.floor(sparsity * all.length); n++) masks.get(all[n].layer)![all[n].i] = 0;
  return masks;
}
