import { blockChannels, type BlockSpec } from '../../train/zoo/blocks.js';

/**
 * The alternatives HEMET weighs in one block's place, each with the block's
 * output width (so every later block keeps its shapes) and its pooling:
 * - the block as it is;
 * - a regular 3×3 convolution to C_out channels;
 * - a Fire module: expand C_out/2 per branch (offered only for an even
 *   C_out), squeeze the block's own where it is a Fire, else C_out/4
 *   (HEMET's SqueezeNet squeezes 128 outputs to 32) and never wider than
 *   the block's C_in (a squeeze is a bottleneck);
 * - a MobileNet block (depthwise 3×3 over C_in, pointwise to C_out) with
 *   its middle activation, and without it (the two convolutions then run
 *   split or composed into one map, whichever the cost model finds cheaper).
 * An alternative equal to the block is the block (listed once, first).
 */
export type CandidateKind = 'conv' | 'fire' | 'mobile' | 'mobile-linear';

export interface BlockCandidate {
  /** What the candidate is; `current` marks the block as it is. */
  kind: CandidateKind;
  current: boolean;
  spec: BlockSpec;
  widths: { in: number; out: number; squeeze?: number; expand?: number };
}

export const kindOfSpec = (b: BlockSpec): CandidateKind => (b.kind === 'mobile' && !b.middleActivation ? 'mobile-linear' : b.kind);

/** The statement of the width rule, for search.json. */
export const CANDIDATE_RULE =
  'each candidate keeps the block output width C_out and its pooling: the block as it is; conv 3x3 to C_out; ' +
  "Fire with expand C_out/2 (even C_out only) and squeeze the block's own if a Fire, else min(C_in, max(1, floor(C_out/4))); " +
  'mobile (depthwise 3x3 over C_in, pointwise to C_out) with and without its middle activation';

export function blockCandidates(block: BlockSpec, inChannels: number): BlockCandidate[] {
  const out = blockChannels(block);
  const pool = block.pool;
  const squeeze = block.kind === 'fire' ? block.squeeze : Math.min(inChannels, Math.max(1, Math.floor(out / 4)));
  const alternatives: BlockSpec[] = [
    { kind: 'conv', filters: out, kernelSize: 3, pool },
    ...(out % 2 === 0 ? [{ kind: 'fire' as const, squeeze, expand: out / 2, pool }] : []),
    { kind: 'mobile', filters: out, middleActivation: true, pool },
    { kind: 'mobile', filters: out, middleActivation: false, pool },
  ];
  const current = normalized(block);
  const same = (a: BlockSpec) => JSON.stringify(a) === JSON.stringify(current);
  return [current, ...alternatives.filter((a) => !same(a))].map((spec) => ({
    kind: kindOfSpec(spec),
    current: spec === current,
    spec,
    widths: { in: inChannels, out, ...(spec.kind === 'fire' ? { squeeze: spec.squeeze, expand: spec.expand } : {}) },
  }));
}

/** A block with its keys in one order, so equal blocks compare equal (and print alike in search.json). */
export function normalized(b: BlockSpec): BlockSpec {
  if (b.kind === 'conv') return { kind: 'conv', filters: b.filters, kernelSize: b.kernelSize, pool: b.pool };
  if (b.kind === 'fire') return { kind: 'fire', squeeze: b.squeeze, expand: b.expand, pool: b.pool };
  return { kind: 'mobile', filters: b.filters, middleActivation: b.middleActivation, pool: b.pool };
}
