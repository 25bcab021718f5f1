/**
 * heprune: the toolkit as functions, taking the same typed configs as the
 * YAML pipelines (pipeline/config-schema is the single source of truth).
 * heprune/client and heprune/server are the deployment halves (docs/deploy.md).
 */
import type * as tf from '@tensorflow/tfjs';
import { writeExport, type Manifest } from '../export/artifact.js';
import { compileModel } from '../export/compile-model.js';
import { exportSchema } from '../export/options.js';
import type { PipelineConfig } from '../pipeline/config-schema.js';
import { runPipeline, type RunOptions, type RunResult } from '../pipeline/runner.js';
import type { Plan } from '../plan/plan.js';
import type { z } from 'zod';

export { runPipeline as run, type RunOptions, type RunResult } from '../pipeline/runner.js';
export { loadConfig, parseConfig } from '../pipeline/load-config.js';
export { configSchema, type PipelineConfig, type DatasetConfig } from '../pipeline/config-schema.js';
export { exportSchema, type ExportConfig } from '../export/options.js';
export { evaluateExport as evaluate, type EvaluateOptions } from '../evaluate/evaluate.js';
export { loadExport, writeExport, type LoadedExport, type Manifest } from '../export/artifact.js';
export { buildModel, modelSchema } from '../train/zoo/registry.js';
export { initBackend } from '../train/backend.js';
export { planCounts } from '../plan/cost.js';
export type { Plan } from '../plan/plan.js';

/** Trains the config's model (its dataset, model and train sections; prune, export and evaluate are left out). */
export function train(config: PipelineConfig, o: RunOptions = {}): Promise<RunResult> {
  const { prune: _p, export: _x, evaluate: _e, ...upToTrain } = config;
  return runPipeline(upToTrain, { ...o, partOf: o.partOf ?? config });
}

/** Trains (or reuses the finished training of) the config and prunes it (no export or evaluation). */
export function prune(config: PipelineConfig, o: RunOptions = {}): Promise<RunResult> {
  const { export: _x, evaluate: _e, ...upToPrune } = config;
  return runPipeline(upToPrune, { ...o, partOf: o.partOf ?? config });
}

/**
 * Compiles a tfjs model to a packed CKKS plan under an export config (the
 * YAML `export:` section, defaults filled in) and, with `dir`, writes the
 * export (manifest.json + weights.bin) that heprune/server serves.
 */
export async function compile(
  model: tf.LayersModel,
  exportConfig: z.input<typeof exportSchema> = {},
  o: { dir?: string; meta?: Record<string, unknown> } = {},
): Promise<{ plan: Plan; manifest?: Manifest }> {
  const plan = compileModel(model, exportSchema.parse(exportConfig));
  return { plan, ...(o.dir ? { manifest: await writeExport(o.dir, plan, o.meta ?? {}) } : {}) };
}
