import { z } from 'zod';

/**
 * What each stage hands the stages after it, and what summary.json reports:
 * typed objects, checked by these schemas when a finished stage's result is
 * read back from the run's state (a result that does not parse, e.g. one
 * written by an older heprune, means the stage runs again).
 */

const count = z.number().int().nonnegative();
/** A measured figure: NaN (null once through JSON) where a run diverged is a result too, not an unreadable record. */
const figure = z.union([z.number(), z.nan(), z.null().transform(() => NaN)]);
const shape = z.tuple([z.number().int(), z.number().int(), z.number().int()]).readonly();
const normalization = z.object({ kind: z.enum(['unit', 'symmetric', 'standard']), mean: z.array(z.number()), std: z.array(z.number()) });
const heParams = z.object({
  polyModulusDegree: z.number().int(),
  coeffModulusBits: z.array(z.number().int()),
  scaleBits: z.number().int(),
});
const tileShape = z.object({
  t1: z.number().int(),
  t2: z.number().int(),
  first: z.enum(['outer', 'inner']),
  from: count.optional(),
  convRows: z.boolean().optional(),
  inputOrder: z.array(z.number().int()).optional(),
  outputOrder: z.array(z.number().int()).optional(),
});

export const datasetResultSchema = z.object({
  name: z.string(),
  source: z.string(),
  synthetic: z.boolean(),
  shape,
  numClasses: count,
  train: count,
  validation: count,
  test: count,
  normalization,
});

export const trainResultSchema = z
  .object({
    model: z.string().optional(),
    parameters: count.optional(),
    backend: z.string().optional(),
    workers: count.optional(),
    epochs: count,
    bestEpoch: count,
    resumedFromEpoch: count.optional(),
    testLoss: figure.optional(),
    testAccuracy: figure.optional(),
    testCount: count.optional(),
    testMse: figure.optional(),
    init: z.object({ run: z.string().optional(), regrouped: z.array(z.unknown()) }).optional(),
    meanMsPerStep: z.number().nullable().optional(),
    trainSeconds: z.number().optional(),
    /** The run this one adopted its trained model from (train.from). */
    from: z.string().optional(),
    checkpoint: z.string(),
  })
  .passthrough();

/** A plan's cost, per step and in total (plan/cost). */
export const planCostSchema = z.object({
  mulPlain: count,
  rotations: count,
  estimatedCost: z.number(),
  plaintexts: count,
  ciphertexts: count,
  plaintextBytes: z.number(),
  peakCiphertextBytes: z.number(),
  perStep: z.record(z.string(), z.object({ mulPlain: count, rotations: count })),
});

export const pruneRoundSchema = z.object({
  round: z.number().int().positive(),
  target: z.number().optional(),
  rotationGoal: z.number().optional(),
  latencyGoal: z.number().optional(),
  sparsity: z.number(),
  tiles: z.array(z.object({ layer: z.string(), tiles: count })).optional(),
  /** lowrank: each factorised convolution's rank after the round. */
  ranks: z.record(z.string(), count).optional(),
  /** Validation accuracy after the round's fine-tuning (classification). */
  validationAccuracy: z.number().optional(),
  /** The round's model past prune.accuracyBudget: pruning stopped and kept the round before. */
  overBudget: z.boolean().optional(),
  /** lowrank: the round's plan by the cost model (the rank/latency curve). */
  estimatedSeconds: z.number().optional(),
});

export const pruneResultSchema = z.object({
  method: z.string(),
  layers: z.array(z.string()),
  sparsity: z.number(),
  rounds: z.array(pruneRoundSchema),
  /** The trained model's validation accuracy, against which prune.accuracyBudget is measured. */
  denseValidationAccuracy: z.number().optional(),
  /** Under prune.accuracyBudget: the round whose model this is (rounds may list one more, the first past the budget). */
  keptRound: count.optional(),
  /** Under prune.accuracyBudget: whether the kept round is within it (false when even round 1 is past it). */
  withinBudget: z.boolean().optional(),
  testLoss: figure,
  testAccuracy: figure.optional(),
  testMse: figure.optional(),
  densePlan: planCostSchema,
  prunedPlan: planCostSchema,
  /** The export geometry the pruning aligned with: the export stage compiles the pruned model with it. */
  channelBlocks: z.enum(['tight', 'pow2', 'mux']).optional(),
  tiles: tileShape.optional(),
  checkpoint: z.string(),
});

export const exportResultSchema = z.object({
  dir: z.string(),
  compileSeconds: z.number(),
  params: heParams,
  depth: count,
  rotations: count,
  plaintextMultiplications: count,
  ciphertextMultiplications: count,
  rescales: count,
  plaintexts: count,
  galoisKeys: count,
  composedRotations: z.boolean(),
  weightsBytes: count,
  ciphertexts: count,
  memory: z.object({ plaintextBytes: z.number(), peakCiphertexts: count, peakCiphertextBytes: z.number() }).optional(),
  tiles: tileShape.optional(),
  /** The cost model's server seconds per image (plan/cost estimatedServerSeconds): a lower bound, for comparing plans. */
  estimatedSeconds: z.number().optional(),
  /** Levels per block of the model, summing to depth (plan/provenance blockLevels). */
  depthPerBlock: z.array(z.object({ block: z.string(), levels: count })).optional(),
  perStep: z.array(z.record(z.string(), z.union([z.string(), z.number()]))),
});

const latency = z.object({ mean: figure, median: figure }).passthrough();

/** The evaluation report (evaluation.json): the fields later code reads are typed, the rest is kept as measured. */
export const evaluateResultSchema = z
  .object({
    samples: count,
    plaintextAccuracy: figure.optional(),
    simulatedAccuracy: figure.optional(),
    ckksAccuracy: figure.optional(),
    agreement: figure.optional(),
    plaintextMse: figure.optional(),
    simulatedMse: figure.optional(),
    ckksMse: figure.optional(),
    maxAbsError: figure.optional(),
    relativeError: figure.optional(),
    latencyMs: z.object({ server: latency }).passthrough().optional(),
    /** Why CKKS was not run (the estimated server time past evaluate.maxEstimatedSeconds). */
    ckksSkipped: z.string().optional(),
    file: z.string(),
  })
  .passthrough();

export type DatasetResult = z.infer<typeof datasetResultSchema>;
export type TrainResult = z.infer<typeof trainResultSchema>;
export type PlanCost = z.infer<typeof planCostSchema>;
export type PruneRound = z.infer<typeof pruneRoundSchema>;
export type PruneResult = z.infer<typeof pruneResultSchema>;
export type ExportResult = z.infer<typeof exportResultSchema>;
export type EvaluateResult = z.infer<typeof evaluateResultSchema>;

/** The results of the stages a run has finished, by stage. */
export interface StageResults {
  dataset?: DatasetResult;
  train?: TrainResult;
  prune?: PruneResult;
  export?: ExportResult;
  evaluate?: EvaluateResult;
}

export const STAGE_RESULT_SCHEMAS = {
  train: trainResultSchema,
  prune: pruneResultSchema,
  export: exportResultSchema,
  evaluate: evaluateResultSchema,
} as const;
export type ResultStage = keyof typeof STAGE_RESULT_SCHEMAS;
