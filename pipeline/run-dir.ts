import { createHash } from 'node:crypto';
import { access, constants, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../common/atomic-write.js';
import { UserError } from '../common/errors.js';
import { STAGE_RESULT_SCHEMAS, type ResultStage, type StageResults } from './stage-results.js';

/**
 * runs/<name>/: config.yaml (resolved), state.json (which stages finished,
 * with a fingerprint of the config they ran with), summary.json, log.txt and
 * one sub-directory per stage. Every file is written atomically.
 */
export interface StageRecord {
  fingerprint: string;
  finishedAt: string;
  result: Record<string, unknown>;
}
export interface RunState {
  stages: Record<string, StageRecord>;
}

export class RunDir {
  readonly path: string;
  private state: RunState = { stages: {} };
  constructor(outDir: string, name: string) {
    this.path = resolve(outDir, name);
  }

  file(...parts: string[]): string {
    return join(this.path, ...parts);
  }

  /** Creates the directory and checks it is writable before any work starts. */
  async open(): Promise<void> {
    try {
      await ensureDir(this.path);
      await access(this.path, constants.W_OK);
    } catch (e) {
      throw new UserError(
        `run directory ${this.path} is not writable: ${(e as Error).message}. Set outDir in the config (or --out) to a writable directory.`,
      );
    }
    try {
      this.state = JSON.parse(await readFile(this.file('state.json'), 'utf8')) as RunState;
    } catch {
      this.state = { stages: {} };
    }
  }

  record(stage: string): StageRecord | undefined {
    return this.state.stages[stage];
  }

  /** Whether any stage has started or finished in this directory (its state holds records). */
  anyStageDone(): boolean {
    return Object.keys(this.state.stages).length > 0;
  }

  completed(stage: string, fingerprint: string): StageRecord | undefined {
    const r = this.state.stages[stage];
    return r && r.fingerprint === fingerprint ? r : undefined;
  }

  /**
   * A finished stage's typed result under this fingerprint; undefined when the
   * stage has not finished with it, or its recorded result does not parse (a
   * run of an older heprune: the stage runs again).
   */
  finished<S extends ResultStage>(stage: S, fingerprint: string): NonNullable<StageResults[S]> | undefined {
    const r = this.completed(stage, fingerprint);
    const parsed = r && STAGE_RESULT_SCHEMAS[stage].safeParse(r.result);
    return parsed?.success ? (parsed.data as NonNullable<StageResults[S]>) : undefined;
  }

  /** The typed results of every stage this directory has finished, whatever their fingerprints. */
  recordedResults(): StageResults {
    const out: StageResults = {};
    for (const stage of Object.keys(STAGE_RESULT_SCHEMAS) as ResultStage[]) {
      const r = this.state.stages[stage];
      const parsed = r && STAGE_RESULT_SCHEMAS[stage].safeParse(r.result);
      if (parsed?.success) Object.assign(out, { [stage]: parsed.data });
    }
    return out;
  }

  async markDone(stage: string, fingerprint: string, result: object): Promise<void> {
    this.state.stages[stage] = { fingerprint, finishedAt: new Date().toISOString(), result: { ...result } };
    await writeJsonAtomic(this.file('state.json'), this.state);
  }

  async invalidate(stage: string): Promise<void> {
    if (this.state.stages[stage]) {
      delete this.state.stages[stage];
      await writeJsonAtomic(this.file('state.json'), this.state);
    }
  }

  async writeConfig(config: unknown): Promise<void> {
    await writeFileAtomic(this.file('config.yaml'), YAML.stringify(config));
  }
}

/** Stable hash of the config sections a stage depends on. */
export function fingerprint(...parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}
