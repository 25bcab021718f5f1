import { appendFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../datasets/fs-util.js';
import * as tf from '@tensorflow/tfjs';
import { fileLogger, type Logger } from '../common/log.js';
import { recoverLeftovers, writeJsonAtomic } from '../common/atomic-write.js';
import { UserError, errorMessage } from '../common/errors.js';
import type { PipelineConfig } from './config-schema.js';
import type { StageContext } from './context.js';
import { RunDir } from './run-dir.js';
import { lockRunDir } from './run-lock.js';
import type { StageResults } from './stage-results.js';
import { dataStage } from './stages/data-stage.js';
import { trainStage } from './stages/train-stage.js';
import { pruneStage } from './stages/prune-stage.js';
import { exportStage } from './stages/export-stage.js';
import { evaluateStage } from './stages/evaluate-stage.js';
import { trainSchema } from '../train/options.js';
import { initBackend } from '../train/backend.js';

export interface RunOptions {
  /** Discard finished stages and checkpoints of this run and start over. */
  fresh?: boolean;
  /** Train even where the zoo holds this very training finished (by default it is adopted). */
  fromScratch?: boolean;
  logger?: Logger;
  /** The command line that started this run, kept in commands.txt (zoo provenance quotes it). */
  command?: string;
  /**
   * This run is a part of the pipeline `partOf` (a command that only exports,
   * say): it never starts the training, config.yaml becomes `partOf` only once the part has
   * succeeded, and summary.json keeps the sections of the stages not run.
   */
  partOf?: PipelineConfig;
}

/** `results`: the stages' typed results; `summary`: the report written to summary.json from them. */
export interface RunResult {
  runDir: string;
  results: StageResults;
  summary: Record<string, unknown>;
}

/**
 * Runs the stages a config has, in order, in runs/<name>/. A stage that
 * finished with the same config is skipped; an interrupted training stage
 * resumes from its last checkpoint.
 */
export async function runPipeline(input: PipelineConfig, o: RunOptions = {}): Promise<RunResult> {
  // A config that names a model trains it, with the train section's defaults if it has none.
  const config = input.model && !input.train ? { ...input, train: trainSchema.parse({}) } : input;
  const run = new RunDir(config.outDir, config.name);
  if (config.evaluate && !config.export) {
    throw new UserError(
      `${config.name}: evaluate: runs the export of this config, and it has no export: section (add one, or run heprune evaluate --model DIR on an existing export)`,
    );
  }
  const existed = await exists(run.path);
  await run.open();
  const unlock = lockRunDir(run.path);
  try {
    // Checkpoints or files an interrupted run was replacing are finished or put back before anything reads them.
    await recoverLeftovers(run.path);
    return await runStages(config, run, o);
  } catch (e) {
    // A run that failed before finishing any stage (a missing dataset, an unavailable backend) leaves no directory it made.
    if (!existed && e instanceof UserError && !run.anyStageDone()) {
      // Emptied while still locked; the directory itself goes after the lock, unless another run has begun in it.
      for (const f of await readdir(run.path)) if (f !== '.lock') await rm(join(run.path, f), { recursive: true, force: true });
      unlock();
      await rmdir(run.path).catch(() => {});
    }
    throw e;
  } finally {
    unlock();
  }
}

async function runStages(config: PipelineConfig, run: RunDir, o: RunOptions): Promise<RunResult> {
  const logger = o.logger ?? fileLogger(run.file('log.txt'));
  // The resolved config records what produced the run's artifacts: a re-run rewrites it only once its training
  // matches (a run refused for a changed config keeps the record of the config it was made with).
  if (!o.partOf && !(await exists(run.file('config.yaml')))) await run.writeConfig(config);
  const startedAt = new Date().toISOString();
  const ctx: StageContext = { config, run, logger, fingerprints: {}, results: {} };
  logger.info(`run ${config.name} in ${run.path}`);
  if (o.command) await appendFile(run.file('commands.txt'), `${new Date().toISOString()} ${o.command}\n`);
  try {
    if (config.model) ctx.backend = await initBackend(config.train?.backend ?? 'auto');
    await dataStage(ctx);
    if (config.model && config.train) await trainStage(ctx, { fresh: !!o.fresh, trained: !!o.partOf, fromScratch: !!o.fromScratch });
    if (!o.partOf) await run.writeConfig(config);
    if (config.prune) await pruneStage(ctx, config.prune);
    if (config.export) await exportStage(ctx, config.export);
    if (config.evaluate) await evaluateStage(ctx, config.evaluate);
  } catch (e) {
    // Why the run stopped belongs in its log too (the terminal shows it once, from the CLI).
    fileLogger(run.file('log.txt'), false).warn(`stopped: ${errorMessage(e)}`);
    throw e;
  }
  // A part of a pipeline reports the sections of the stages it did not run from the run's own records.
  const results: StageResults = o.partOf ? { ...run.recordedResults(), ...ctx.results } : ctx.results;
  if (o.partOf) await run.writeConfig(o.partOf);
  const summary = {
    name: config.name,
    startedAt,
    ...results,
    finishedAt: new Date().toISOString(),
    versions: { heprune: '0.1.0', tfjs: tf.version.tfjs, node: process.version },
  };
  await writeJsonAtomic(run.file('summary.json'), summary);
  logger.info(`summary: ${run.file('summary.json')}`);
  return { runDir: run.path, results, summary };
}
