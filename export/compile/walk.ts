import { UserError } from '../../common/errors.js';
import { imageLayout, interleavedOrder, type Layout } from '../../plan/layout.js';
import { linearStepName, rowsStepName, tileOrientation } from '../../plan/packing.js';
import type { LinearStep, Plan, PlanStep, TileShape } from '../../plan/plan.js';
import type { LinearMap } from '../linear-map.js';
import type { HeChain } from '../lower.js';
import { denseStep, imageStep, type Skip } from './diagonal-steps.js';
import { finishPlan } from './finish.js';
import { muxOf, perCtOf, type Geometry } from './geometry.js';
import type { BlockMode, CompileOptions } from './options.js';
import type { Target } from './target.js';
import { outputConstants, replicateStep, rowsStep, squareStep, tileStep } from './tile-steps.js';

/**
 * Phase "steps": one candidate packing of the chain, walked map by map into
 * plan steps. Everything a step needs is in the candidate; levels are spent
 * as steps consume them, with a masked refresh where they run out.
 */
export interface Candidate {
  chain: HeChain;
  o: CompileOptions;
  target: Target;
  input: Layout;
  inputCopies: number[];
  /** Diagonal packing of image layers (absent: a fully tiled chain, which has none). */
  geometry?: Geometry;
  /** Tile packing from map tile.from on. */
  tile?: TileShape;
  /** Convolution steps already compiled for this geometry: they do not depend on the tile shape, so candidates share them (finishPlan copies a step before changing it). */
  convSteps: Map<number, LinearStep>;
}

/** Tensors a residual input can read: the input (−1) and each square's output, by the map whose square made it. */
type Tensors = Map<number, Skip['source']>;

export function buildPlan(c: Candidate): Plan {
  return new Walk(c).run();
}

class Walk {
  private cur: Layout;
  private readonly steps: PlanStep[] = [];
  private readonly tensors: Tensors;
  private level: number;
  private refreshes = 0;
  private readonly S: number;

  constructor(private readonly c: Candidate) {
    this.cur = c.input;
    this.tensors = new Map([[-1, { layout: c.input, step: -1 }]]);
    this.level = c.target.top;
    this.S = c.target.slots;
  }

  run(): Plan {
    this.c.chain.linears.forEach((m, li) => this.map(m, li));
    return finishPlan(this.plan(), this.c.o);
  }

  /** Linear map li with what precedes it: its square, a replicate (tile packing), a sum pool, a rows step. */
  private map(m: LinearMap, li: number): void {
    const { chain } = this.c,
      tile = this.c.tile;
    // The 1×1 half of a factorised convolution reads the d×d half's output as it is.
    if (li > 0 && !chain.unsquared?.[li]) {
      this.needLevel(li);
      this.push(squareStep(chain, li, this.cur));
      this.tensors.set(li - 1, { layout: this.cur, step: this.steps.length - 1 });
    }
    if (tile && li > 0 && li >= (tile.from ?? 0) && tileOrientation(tile.first, li - (tile.from ?? 0)) === 'outer') {
      this.needLevel(li);
      this.push(replicateStep(`replicate${li}`, this.cur, this.S, tile));
    }
    if (chain.pools[li]) this.push(this.pool(li, chain.pools[li]!));
    if (tile?.convRows && li === tile.from) {
      this.needLevel(li);
      // Rows whose elements no kept weight reads are dropped (after tile pruning, whole input tiles go).
      const read = new Uint8Array(this.cur.slotOf.length);
      for (const row of m.rows) for (let e = 0; e < row.length; e += 2) read[row[e]] = 1;
      this.push(rowsStep(rowsStepName(li), this.cur, this.S, tile, (e) => read[e] === 1));
    }
    this.push(this.linear(m, li));
  }

  private push(step: PlanStep): void {
    this.steps.push(step);
    this.cur = step.out;
  }

  /** Before a step that needs a level: a refresh if none is left (of the current tensor and every earlier one still to be read). */
  private needLevel(nextLinear: number): void {
    if (this.level > 0) {
      this.level--;
      return;
    }
    const { o, chain, target } = this.c;
    if (!o.refresh)
      throw new UserError(
        `the plan needs ${target.depth} levels and the parameters hold ${target.top}; set export.refresh to split it with masked refresh`,
      );
    const live = new Set<number>();
    // (The current tensor is refreshed anyway, even when it is also read later.)
    chain.skips.forEach((sk, j) => {
      if (sk && j >= nextLinear && sk.from >= 0 && this.tensors.has(sk.from) && this.tensors.get(sk.from)!.step !== this.steps.length - 1)
        live.add(sk.from);
    });
    const tensors = [...live].map((t) => ({ step: this.tensors.get(t)!.step, cts: this.tensors.get(t)!.layout.cts }));
    this.steps.push({ kind: 'refresh', name: `refresh${++this.refreshes}`, out: this.cur, tensors });
    this.level = target.top - 1;
  }

  private pool(li: number, k: number): PlanStep {
    const g = this.c.geometry!,
      pg = g.blocks[li - 1]!;
    const [h, w, ch] = this.cur.shape;
    const window = (stride: number) => Array.from({ length: k }, (_, i) => i * stride);
    const out = imageLayout([Math.floor(h / k), Math.floor(w / k), ch], g.reads[li]!.strides, {
      slots: this.S,
      perCt: perCtOf(pg, this.S),
      mux: muxOf(pg, this.c.chain.inShape[1]),
      order: orderFor(this.c, li, ch),
    });
    return { kind: 'pool', name: `pool${li}`, stages: [window(pg.strides.x), window(pg.strides.y)], out };
  }

  /** The step of linear map li, stamped with the weight layers it holds (and its residual input's). */
  private linear(m: LinearMap, li: number): LinearStep {
    const step = this.mapStep(m, li);
    const shortcut = this.c.chain.skips[li]?.map.layers;
    return {
      ...step,
      layers: m.layers ?? [],
      ...(step.skip && shortcut ? { skip: { ...step.skip, layers: shortcut } } : {}),
    };
  }

  /** Linear map li as a convolution on channel blocks, a tiled dense map, or a hybrid dense map. */
  private mapStep(m: LinearMap, li: number): LinearStep {
    const { chain, o, tile, geometry } = this.c;
    const name = linearStepName(li);
    const level = (this.needLevel(li), this.level + 1);
    const sk = chain.skips[li];
    const skip = sk && { map: sk.map, source: this.tensors.get(sk.from)! };
    const image = geometry?.blocks[li];
    if (skip && !image) throw new UserError(`${name}: a residual input is supported into convolutions only`);
    // With every first-layer rotation left to the client, that layer needs no giant steps.
    const bsgs = (o.bsgs ?? true) && !(li === 0 && o.clientRotations === 'all');
    if (image) return this.conv(m, li, { name, level, bsgs, skip });
    if (tile && li >= (tile.from ?? 0)) {
      const along = tileOrientation(tile.first, li - (tile.from ?? 0));
      const last = li === chain.linears.length - 1;
      const step = tileStep(m, { name, in: this.cur, slots: this.S, tile, along, outOrder: last ? tile.outputOrder : undefined });
      if (step.outputs.length === 0) throw new UserError(`${name}: every weight is zero (pruned away); the network would be constant`);
      return step;
    }
    return denseStep(m, { name, in: this.cur, slots: this.S, bsgs, level });
  }

  private conv(m: LinearMap, li: number, s: { name: string; level: number; bsgs: boolean; skip?: Skip }): LinearStep {
    const cached = this.c.convSteps.get(li);
    if (cached) return cached;
    const g = this.c.geometry!,
      block = g.blocks[li]!,
      W = this.c.chain.inShape[1];
    const step = imageStep(m, {
      ...s,
      in: this.cur,
      slots: this.S,
      geom: block,
      perCt: perCtOf(block, this.S),
      copies: li === 0 ? this.c.inputCopies : [],
      mux: muxOf(block, W),
      inRow: g.reads[li]?.strides.y,
      order: orderFor(this.c, li + 1, m.outShape[2]),
    });
    this.c.convSteps.set(li, step);
    return step;
  }

  private plan(): Plan {
    const { chain, o, tile, target } = this.c;
    const grouped = chain.linears.some((m) => (m.groups ?? 1) > 1);
    const constants = tile ? outputConstants(this.cur, chain.linears[chain.linears.length - 1]) : undefined;
    const blocks: BlockMode | undefined = this.c.geometry?.mode;
    return {
      formatVersion: 1,
      params: target.params,
      ...(blocks ? { channelBlocks: blocks } : {}),
      ...(grouped ? { groupOrder: o.groupOrder ?? 'interleaved' } : {}),
      ...(tile ? { tiles: tile } : {}),
      ...(constants ? { outputConstants: constants } : {}),
      ...(this.refreshes ? { refresh: { maskBits: o.refresh!.maskBits } } : {}),
      slots: this.S,
      input: this.c.input,
      inputCopies: this.c.inputCopies,
      steps: this.steps,
      output: this.cur,
    };
  }
}

/**
 * The channel order of the tensor linear map li reads (the output of map
 * li − 1): group-interleaved by the reader's groups when it is a grouped
 * convolution, else by the writer's, so both sides of a grouped layer share
 * one channel shift across groups.
 */
export function orderFor(c: Pick<Candidate, 'chain' | 'o'>, li: number, channels: number): Int32Array | undefined {
  if ((c.o.groupOrder ?? 'interleaved') !== 'interleaved') return undefined;
  const groupsOf = (i: number) => (c.chain.linears[i]?.outShape.length === 3 ? (c.chain.linears[i].groups ?? 1) : 1);
  const G = groupsOf(li) > 1 ? groupsOf(li) : li > 0 ? groupsOf(li - 1) : 1;
  return interleavedOrder(channels, G);
}
