import { z } from 'zod';

/** The `prune:` section of a config. */
export const pruneSchema = z.object({
  method: z.enum(['subblock', 'magnitude']).describe('subblock: SpENCNN sub-blocks aligned with the packed plan (whole plaintext diagonals, whole channel shifts); magnitude: unstructured smallest-|w| baseline'),
  sparsity: z.number().gt(0).lt(1).describe('target fraction of pruned weights in the pruned layers'),
  layers: z.array(z.string().min(1)).optional().describe('layers to prune (default: every convolution)'),
  steps: z.number().int().positive().default(2).describe('prune → fine-tune rounds, the sparsity rising evenly to the target'),
  fineTuneEpochs: z.number().int().nonnegative().default(2).describe('fine-tuning epochs per round, pruned weights held at zero'),
  learningRate: z.number().positive().optional().describe('fine-tuning learning rate (default: a tenth of train.learningRate)'),
}).strict();
export type PruneConfig = z.infer<typeof pruneSchema>;
