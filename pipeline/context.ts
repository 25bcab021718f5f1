import type { Logger } from '../common/log.js';
import type { PreparedData } from '../datasets/prepare.js';
import type { PipelineConfig } from './config-schema.js';
import type { RunDir } from './run-dir.js';
import type { StageResults } from './stage-results.js';

/** What stages share: the config, the run directory, the log, and values earlier stages produced. */
export interface StageContext {
  config: PipelineConfig;
  run: RunDir;
  logger: Logger;
  data?: PreparedData;
  /** The tfjs backend in use (chosen once per run). */
  backend?: string;
  /** Fingerprint of each finished stage's inputs; later stages include their upstream's. */
  fingerprints: Record<string, string>;
  /** What the finished stages produced (typed); summary.json is a report written from it. */
  results: StageResults;
}
