import { readFile } from 'node:fs/promises';
import { writeJsonAtomic } from '../common/atomic-write.js';
import type { Logger } from '../common/log.js';
import type { Measurement } from '../search/hemet/measure.js';
import type { BlockSpec } from '../train/zoo/blocks.js';

/**
 * measured.json in a search's output directory: every network compiled so
 * far, written atomically after each, so an interrupted search re-run into
 * the same directory compiles only what it had not. Valid for one
 * fingerprint (model but its blocks, input, export section but its
 * maxDepth, seed, compiler); each network is keyed by the depth budget it
 * was compiled under and its blocks.
 */
type MeasuredKey = [number | null, BlockSpec[]];

interface MeasuredFile {
  version: number;
  fingerprint: string;
  networks: { key: MeasuredKey; measurement: Measurement }[];
}

/** Bumped when what a measurement holds changes: an older measured.json is then not reused (part of the fingerprint). */
export const MEASURED_VERSION = 1;

export class MeasuredNetworks {
  private readonly entries = new Map<string, Measurement>();
  /** Off until the search has checked its input: a refused search writes nothing. */
  saving = false;

  private constructor(
    private readonly path: string,
    private readonly fingerprint: string,
  ) {}

  static async open(path: string, fingerprint: string, logger: Logger): Promise<MeasuredNetworks> {
    const m = new MeasuredNetworks(path, fingerprint);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return m;
    }
    try {
      const f = JSON.parse(text) as MeasuredFile;
      if (f.version === MEASURED_VERSION && f.fingerprint === fingerprint) {
        for (const n of f.networks) m.entries.set(JSON.stringify(n.key), n.measurement);
        logger.info(`search hemet: ${f.networks.length} networks already compiled (${path})`);
        return m;
      }
    } catch {
      // Unreadable: compiled again.
    }
    logger.info(`search hemet: ${path} is from another network, export section or compiler; compiling anew`);
    return m;
  }

  static key = (maxDepth: number | undefined, blocks: BlockSpec[]) => JSON.stringify([maxDepth ?? null, blocks] satisfies MeasuredKey);

  get(key: string): Measurement | undefined {
    return this.entries.get(key);
  }

  async set(key: string, m: Measurement): Promise<void> {
    this.entries.set(key, m);
    if (this.saving) await this.save();
  }

  save(): Promise<void> {
    return writeJsonAtomic(this.path, {
      version: MEASURED_VERSION,
      fingerprint: this.fingerprint,
      networks: [...this.entries].map(([key, measurement]) => ({ key: JSON.parse(key) as MeasuredKey, measurement })),
    } satisfies MeasuredFile);
  }
}
