import { UserError } from '../common/errors.js';
import type { Masks } from './masks.js';
import { rowRotations, tileColumns, tileScores, type TileGrid } from './tiles.js';

/** How tiles are ranked: their scores, across layers or per layer, and (cost-aware) whole-row scores with a rotation's weight in multiplications. */
export interface TileRank {
  scores: Map<string, Float64Array>;
  global?: boolean;
  rows?: Map<string, Float64Array>;
  rotationWeight?: number;
}

/**
 * Tile pruning by importance. A tile's importance is Σ|w·mask| of its
 * importance-weighted kernel (`mask`: the surviving weights, e.g. of an
 * unstructured pass), or `rank.scores` when given (e.g. the Taylor estimate
 * of the loss its removal adds, see tile-taylor). Per layer (default), the
 * least important tiles go until `fraction` of each layer's tiles are gone;
 * with `rank.global`, the least important tiles of all layers together go
 * until `fraction` of all tiles are gone (scores must then be comparable
 * across layers), each layer keeping at least one. A tile already empty
 * counts as removed, and so is a tile that reads only neurons the previous
 * layer no longer computes; a hidden tile row that no kept tile reads goes
 * too. (A whole output tile row may go: those outputs become constants,
 * hidden ones folded into the next layer, final ones the client's.)
 *
 * With `rank.rows` (cost-aware, prune.allocation: cost), what goes is
 * chosen by expected loss per HE cost saved, as SpENCNN's sub-block order
 * does: a tile saves one plaintext multiplication, a whole output tile row
 * also its rotate-and-sum (`rotationWeight` multiplications per rotation),
 * and so does a row's last tile. A row still whole is scored by
 * `rank.rows`; once some of its tiles are gone, by the sum of its live
 * tiles' scores. Removal may overshoot the target by the rest of a row.
 * Returns which tiles are kept.
 */
export function selectTiles(
  grids: TileGrid[],
  kernels: Map<string, Float32Array>,
  fraction: number,
  masks?: Masks,
  rank?: TileRank,
): Map<string, Uint8Array> {
  const sel = new TileSelection(grids, kernels, masks, rank);
  if (rank?.global) {
    const total = sel.layers.reduce((a, x) => a + x.keep.length, 0);
    const removed = sel.layers.reduce((a, _, l) => a + sel.removedOf(l), 0);
    if (rank.rows) sel.removeByCost(rank.rows, rank.rotationWeight ?? 12, removed, Math.ceil(fraction * total));
    else
      sel.removeLeast(
        sel.layers.flatMap((_, l) => sel.tilesOf(l)),
        removed,
        Math.ceil(fraction * total),
      );
    sel.dropDeadReads();
  } else {
    sel.layers.forEach((x, l) => {
      sel.dropDeadReads();
      sel.removeLeast(sel.tilesOf(l), sel.removedOf(l), Math.min(Math.ceil(fraction * x.keep.length), x.keep.length - 1));
    });
  }
  // A layer whose every tile reads neurons the layer before no longer computes (the removals above avoid making one; prior masks may have).
  const empty = sel.layers.find((x) => !x.keep.some(Boolean));
  if (empty)
    throw new UserError(
      `prune: tile pruning to ${fraction.toFixed(3)} of ${rank?.global ? 'all' : "each layer's"} tiles left no tile of layer ${empty.g.layer} that reads a computed neuron; lower prune.sparsity${rank?.global ? ' or use prune.allocation: layer' : ''}`,
    );
  return dropUnreadRows(grids, new Map(sel.layers.map((x) => [x.g.layer, x.keep])));
}

/** Backwards: a hidden tile row no kept tile of the next layer reads computes nothing anyone uses. */
function dropUnreadRows(grids: TileGrid[], kept: Map<string, Uint8Array>): Map<string, Uint8Array> {
  for (let l = grids.length - 2; l >= 0; l--) {
    const g = grids[l],
      next = grids[l + 1],
      cols = tileColumns(g),
      nextCols = tileColumns(next);
    const keep = kept.get(g.layer)!,
      nextKeep = kept.get(next.layer)!;
    for (let r = 0; r < keep.length / cols; r++) {
      const read = Array.from({ length: nextKeep.length / nextCols }, (_, q) => nextKeep[q * nextCols + r]).some(Boolean);
      if (!read) keep.fill(0, r * cols, (r + 1) * cols);
    }
  }
  return kept;
}

/** Output tile rows of a layer with no kept tile. */
function deadRows(g: TileGrid, keep: Uint8Array): Set<number> {
  const cols = tileColumns(g);
  return new Set(
    Array.from({ length: keep.length / cols }, (_, r) => r).filter((r) => !keep.slice(r * cols, (r + 1) * cols).some(Boolean)),
  );
}

/** The tiles each layer keeps while removals proceed, with the connectivity every removal must preserve. */
class TileSelection {
  readonly layers: { g: TileGrid; keep: Uint8Array; score: Float64Array }[];

  constructor(grids: TileGrid[], kernels: Map<string, Float32Array>, masks: Masks | undefined, rank: TileRank | undefined) {
    this.layers = grids.map((g) => {
      const s = tileScores(g, kernels.get(g.layer)!, masks?.get(g.layer));
      return { g, keep: Uint8Array.from(s, (v) => (v !== 0 ? 1 : 0)), score: rank?.scores.get(g.layer) ?? s };
    });
  }

  tilesOf(l: number): { l: number; t: number }[] {
    return [...this.layers[l].keep.keys()].map((t) => ({ l, t }));
  }
  removedOf(l: number): number {
    return this.layers[l].keep.length - this.layers[l].keep.reduce((a, v) => a + v, 0);
  }

  /** Each layer's kept tiles less those that read only neurons the layer before no longer computes (forward through the layers). */
  liveKeeps(): Uint8Array[] {
    let dead = new Set<number>();
    return this.layers.map((x) => {
      const cols = tileColumns(x.g),
        prev = dead;
      const live = x.keep.map((v, t) => (v && !prev.has(t % cols) ? 1 : 0));
      dead = deadRows(x.g, live);
      return live;
    });
  }

  /**
   * Whether every layer still keeps a tile that reads a computed neuron. Ranked across layers, removing a hidden tile
   * row can leave the next layer only tiles reading it (they compute nothing), so a removal that would is skipped.
   */
  connected(): boolean {
    return this.liveKeeps().every((k) => k.some(Boolean));
  }

  /** Tiles that read only neurons the previous layer no longer computes do nothing: gone. */
  dropDeadReads(): void {
    this.liveKeeps().forEach((k, l) => {
      this.layers[l].keep = k;
    });
  }

  /** Removes the least important kept tiles among `cands` until `removed` reaches `target`, leaving each layer at least one tile it can use. */
  removeLeast(cands: { l: number; t: number }[], removed: number, target: number): void {
    const layers = this.layers;
    const left = layers.map((x) => x.keep.reduce((a, v) => a + v, 0));
    const order = cands.filter(({ l, t }) => layers[l].keep[t]).sort((a, b) => layers[a.l].score[a.t] - layers[b.l].score[b.t]);
    for (const { l, t } of order) {
      if (removed >= target) break;
      // A layer keeps at least one tile (with two tiles, 60% would otherwise remove the whole layer).
      if (left[l] <= 1) continue;
      layers[l].keep[t] = 0;
      if (!this.connected()) {
        layers[l].keep[t] = 1;
        continue;
      }
      left[l]--;
      removed++;
    }
  }

  /** Cost-aware removal: the tile or whole row with the least expected loss per cost saved, until `removed` reaches `target`. */
  removeByCost(rows: Map<string, Float64Array>, rotationWeight: number, removed: number, target: number): void {
    const left = this.layers.map((x) => x.keep.reduce((a, v) => a + v, 0));
    const refused = new Set<string>();
    while (removed < target) {
      const best = this.cheapestRemoval(rows, rotationWeight, left, refused);
      if (!best) break;
      const { l, tiles } = best;
      for (const t of tiles) this.layers[l].keep[t] = 0;
      if (!this.connected()) {
        for (const t of tiles) this.layers[l].keep[t] = 1;
        refused.add(`${l}:${tiles}`);
        continue;
      }
      left[l] -= tiles.length;
      removed += tiles.length;
    }
  }

  /** The tile or whole live row with the least loss per cost saved, not refused before, leaving each layer a tile. */
  private cheapestRemoval(
    rows: Map<string, Float64Array>,
    rotationWeight: number,
    left: number[],
    refused: Set<string>,
  ): { l: number; tiles: number[] } | undefined {
    let best: { l: number; tiles: number[] } | undefined,
      bestRatio = Infinity;
    const consider = (l: number, tiles: number[], loss: number, cost: number) => {
      if (loss / cost < bestRatio && !refused.has(`${l}:${tiles}`)) {
        bestRatio = loss / cost;
        best = { l, tiles };
      }
    };
    this.layers.forEach((x, l) => {
      const cols = tileColumns(x.g),
        rotations = rotationWeight * rowRotations(x.g),
        rowScore = rows.get(x.g.layer)!;
      for (let r = 0; r < x.keep.length / cols; r++) {
        const live: number[] = [];
        for (let t = r * cols; t < (r + 1) * cols; t++) if (x.keep[t]) live.push(t);
        if (!live.length) continue;
        const whole = live.length === cols ? rowScore[r] : live.reduce((a, t) => a + x.score[t], 0);
        // A layer keeps at least one tile.
        if (left[l] > live.length) consider(l, live, whole, live.length + rotations);
        if (left[l] > 1) for (const t of live) consider(l, [t], x.score[t], 1 + (live.length === 1 ? rotations : 0));
      }
    });
    return best;
  }
}
