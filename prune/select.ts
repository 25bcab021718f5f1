import type { LayerBlocks, SubBlock } from './subblocks.js';
import type { Masks } from './masks.js';

/**
 * SpENCNN sub-block pruning guided by the plan's cost model. Each sub-block
 * is one plaintext multiplication; it belongs to two rotation classes: its
 * channel-shift class (output ciphertext j, input ciphertext i, shift — the
 * rotation of the input by whole channel blocks) and its tap class (j,
 * kernel tap — the rotation of j's partial sum by the tap's offset). A
 * class's rotation disappears only with its last sub-block. Greedily, the
 * class with the least importance (Σ|w| of its live weights) per cost saved
 * (live sub-blocks + `rotationWeight` for its rotation, in plaintext
 * multiplications) is pruned, until `sparsity` of the layers' weights are
 * zero. Every output ciphertext keeps at least one sub-block (the plan needs
 * an input for each). Earlier masks are kept.
 */
export function selectSubBlocks(
  layers: LayerBlocks[],
  kernels: Map<string, Float32Array>,
  sparsity: number,
  prior?: Masks,
  rotationWeight = 12,
): Masks {
  const masks: Masks = new Map(
    layers.map((l) => [l.layer, prior?.get(l.layer)?.slice() ?? new Float32Array(kernels.get(l.layer)!.length).fill(1)]),
  );
  const total = [...masks.values()].reduce((a, m) => a + m.length, 0);
  let pruned = [...masks.values()].reduce((a, m) => a + m.reduce((x, v) => x + (v === 0 ? 1 : 0), 0), 0);
  interface Block {
    layer: string;
    out: string;
    b: SubBlock;
    alive: boolean;
  }
  const classes = new Map<string, Block[]>();
  const perOutput = new Map<string, Block[]>();
  for (const l of layers) {
    const m = masks.get(l.layer)!;
    for (const b of l.blocks) {
      const out = `${l.layer}/${b.key.split(':')[0]}`;
      const blk: Block = { layer: l.layer, out, b, alive: b.weights.some((i) => m[i] !== 0) };
      for (const c of [`${l.layer}/shift/${b.shiftClass}`, ...(b.tap >= 0 ? [`${out}/tap/${b.tap}`] : [])])
        classes.set(c, [...(classes.get(c) ?? []), blk]);
      perOutput.set(out, [...(perOutput.get(out) ?? []), blk]);
    }
  }
  const weightOf = (blk: Block) => {
    const w = kernels.get(blk.layer)!,
      m = masks.get(blk.layer)!;
    return blk.b.weights.reduce((a, i) => a + Math.abs(w[i] * m[i]), 0);
  };
  while (pruned < sparsity * total) {
    let best: Block[] | undefined,
      bestRatio = Infinity;
    for (const blocks of classes.values()) {
      const live = blocks.filter((x) => x.alive);
      if (!live.length) continue;
      // Keep one sub-block per output ciphertext.
      const outs = new Set(live.map((x) => x.out));
      if ([...outs].some((o) => perOutput.get(o)!.filter((x) => x.alive).length <= live.filter((x) => x.out === o).length)) continue;
      const ratio = live.reduce((a, x) => a + weightOf(x), 0) / (live.length + rotationWeight);
      if (ratio < bestRatio) {
        bestRatio = ratio;
        best = live;
      }
    }
    if (!best) break;
    for (const x of best) {
      x.alive = false;
      const m = masks.get(x.layer)!;
      for (const i of x.b.weights)
        if (m[i] !== 0) {
          m[i] = 0;
          pruned++;
        }
    }
  }
  return masks;
}

/**
 * Sub-block pruning with one budget per layer: each layer is pruned to
 * `sparsity` of its own weights, cost-guided within the layer. Ranking Σ|w|
 * per cost across layers instead emptied LeNet-5's conv1 first (its
 * sub-blocks hold few weights) and accuracy fell to ~34% in one round
 * (measured), so several layers are never ranked against each other.
 */
export function selectSubBlocksPerLayer(
  layers: LayerBlocks[],
  kernels: Map<string, Float32Array>,
  sparsity: number,
  prior?: Masks,
  rotationWeight = 12,
): Masks {
  return new Map(
    layers.flatMap((l) => [
      ...selectSubBlocks(
        [l],
        new Map([[l.layer, kernels.get(l.layer)!]]),
        sparsity,
        prior && new Map([[l.layer, prior.get(l.layer)!]]),
        rotationWeight,
      ),
    ]),
  );
}

/**
 * Unstructured magnitude pruning (the baseline): the smallest |w| until
 * `sparsity`, across the layers, or within each layer (`perLayer`: layers of
 * different scales would otherwise lose one of them entirely).
 */
export function selectMagnitude(kernels: Map<string, Float32Array>, sparsity: number, o: { perLayer?: boolean } = {}): Masks {
  const groups = o.perLayer ? [...kernels].map(([l, w]) => new Map([[l, w]])) : [kernels];
  const masks: Masks = new Map([...kernels].map(([l, w]) => [l, new Float32Array(w.length).fill(1)]));
  for (const g of groups) {
    const all: { layer: string; i: number; a: number }[] = [];
    for (const [layer, w] of g) w.forEach((v, i) => all.push({ layer, i, a: Math.abs(v) }));
    all.sort((x, y) => x.a - y.a);
    for (let n = 0; n < Math.floor(sparsity * all.length); n++) masks.get(all[n].layer)![all[n].i] = 0;
  }
  return masks;
}
