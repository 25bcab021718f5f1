import { z } from 'zod';

/** The `reproduce:` section: where a run goes in a paper's table. */
export const reproduceSchema = z
  .object({
    table: z.string().min(1).describe('the table this run belongs to (heprune reproduce <table>)'),
    row: z.string().min(1).describe('the table row, e.g. "LeNet-5 / MNIST": runs with the same row are compared'),
    role: z
      .enum(['dense', 'method', 'baseline'])
      .describe("dense: the reference the speedup is measured against; method: the paper's method; baseline: another comparison"),
    label: z.string().min(1).optional().describe('what this run is, e.g. "sub-block pruning"'),
    paperSpeedup: z.number().positive().optional().describe('the speedup the paper reports for this row'),
    paper: z
      .string()
      .min(1)
      .optional()
      .describe('the paper\'s figure for this row in words, when it is not a speedup (e.g. "−60% latency and memory, MSE +1.5e-5")'),
  })
  .strict();
export type ReproduceConfig = z.infer<typeof reproduceSchema>;
