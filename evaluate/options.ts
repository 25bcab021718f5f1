import { z } from 'zod';

/** The `evaluate:` section of a config. */
export const evaluateSchema = z
  .object({
    samples: z.number().int().positive().default(200).describe('test images evaluated (the first N of the test split)'),
    encrypted: z.boolean().default(true).describe('run real CKKS inference with node-seal'),
    simulate: z.boolean().default(true).describe('run the plan on the slot simulator too'),
    workers: z.number().int().positive().max(64).default(1).describe('worker threads for CKKS inference (one node-seal instance each)'),
    plaintextBudgetMB: z
      .number()
      .positive()
      .max(3072)
      .default(1024)
      .describe(
        'encoded weight plaintexts each worker keeps in its node-seal heap (4 GiB at most, shared with keys); the rest are encoded at each use',
      ),
    tolerance: z
      .number()
      .positive()
      .max(1)
      .default(0.05)
      .describe(
        "largest CKKS deviation accepted, from the simulator's outputs (the plaintext model's without the simulator), as a fraction of the largest output; beyond it the evaluation is kept but fails: such CKKS outputs are noise",
      ),
    maxEstimatedSeconds: z
      .number()
      .positive()
      .optional()
      .describe(
        'run CKKS only when the cost model estimates at most this many seconds of server time per image (plan/cost estimatedServerSeconds, a lower bound); larger plans get the simulator only, and the evaluation says so. reproduce --quick sets 30',
      ),
  })
  .strict();
export type EvaluateConfig = z.infer<typeof evaluateSchema>;
