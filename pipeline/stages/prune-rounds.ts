import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../../common/atomic-write.js';
import { exists } from '../../datasets/fs-util.js';
import type { Masks } from '../../prune/masks.js';
import { pruneRoundSchema, type PruneRound } from '../stage-results.js';

/**
 * A pruning round's directory: round.json once it is finished (its key, its
 * masks, the boundary orders of tile pruning, its result), round-started.json
 * while it runs. A round on disk is reused only under the same key.
 */
const roundFileSchema = z.object({
  key: z.string(),
  masks: z.record(z.string(), z.array(z.number())),
  orders: z.object({ inputOrder: z.array(z.number().int()).optional(), outputOrder: z.array(z.number().int()).optional() }).optional(),
  result: pruneRoundSchema,
});
export interface FinishedRound {
  masks: Masks;
  orders?: { inputOrder?: number[]; outputOrder?: number[] };
  result: PruneRound;
}

const masksToJson = (m: Masks) => Object.fromEntries([...m].map(([k, v]) => [k, Array.from(v)]));
const masksFromJson = (o: Record<string, number[]>): Masks => new Map(Object.entries(o).map(([k, v]) => [k, Float32Array.from(v)]));

async function readJson(path: string): Promise<unknown> {
  return (await exists(path)) ? (JSON.parse(await readFile(path, 'utf8')) as unknown) : undefined;
}

export class RoundDir {
  constructor(
    readonly dir: string,
    private readonly key: string,
  ) {}

  private get marker() {
    return join(this.dir, 'round.json');
  }
  private get startedFile() {
    return join(this.dir, 'round-started.json');
  }

  /**
   * The round as finished under this key, or undefined after making the
   * directory ready to compute it: a round computed anew starts from an empty
   * directory (its fine-tuning must not resume the checkpoints of a round made
   * with other settings), while an interrupted round of the same settings keeps
   * its checkpoints and resumes. `onStale` hears of a finished round with other settings.
   */
  async open(onStale: () => void): Promise<FinishedRound | undefined> {
    const raw = await readJson(this.marker);
    const saved = raw === undefined ? undefined : roundFileSchema.safeParse(raw);
    if (saved?.success && saved.data.key === this.key) {
      return { masks: masksFromJson(saved.data.masks), orders: saved.data.orders, result: saved.data.result };
    }
    if (raw !== undefined) onStale();
    const started = raw === undefined ? z.object({ key: z.string() }).safeParse(await readJson(this.startedFile)) : undefined;
    if (!(started?.success && started.data.key === this.key)) await rm(this.dir, { recursive: true, force: true });
    await writeJsonAtomic(this.startedFile, { key: this.key });
    return undefined;
  }

  async finish(r: FinishedRound): Promise<void> {
    await writeJsonAtomic(this.marker, {
      key: this.key,
      masks: masksToJson(r.masks),
      ...(r.orders ? { orders: r.orders } : {}),
      result: r.result,
    });
  }
}
