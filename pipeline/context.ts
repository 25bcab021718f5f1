import type { Logger } from '../common/log.js';
import type { PreparedData } from '../datasets/prepare.js';
import type { PipelineConfig } from './config-schema.js';
import type { RunDir } from './run-dir.js';

/** What stages share: the config, the run directory, the log, and values earlier stages produced. */
export interface StageContext {
  config: PipelineConfig;
  run: RunDir;
  logger: Logger;
  data?: PreparedData;
  /** Summary sections, merged into summary.json. */
  summary: Record<string, unknown>;
}
