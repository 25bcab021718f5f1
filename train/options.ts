import { z } from 'zod';
import { BACKENDS } from './backend.js';

/** A trained model to start from: a run of the same outDir, or zoo:<entry>. */
const SOURCE = /^(zoo:[a-z0-9][a-z0-9._-]*|[A-Za-z0-9][A-Za-z0-9._-]*)$/;

/** The `train:` section of a config. */
export const trainSchema = z
  .object({
    epochs: z.number().int().positive().default(10),
    batchSize: z.number().int().positive().default(64),
    optimizer: z.enum(['sgd', 'momentum', 'adam']).default('adam'),
    learningRate: z.number().positive().default(1e-3),
    momentum: z.number().min(0).max(1).default(0.9).describe('momentum optimizer only'),
    schedule: z.enum(['constant', 'cosine', 'step']).default('cosine').describe('learning-rate schedule over the epochs'),
    stepEvery: z.number().int().positive().default(10).describe("'step' schedule: epochs between decays"),
    stepGamma: z.number().positive().max(1).default(0.1).describe("'step' schedule: decay factor"),
    warmupEpochs: z.number().min(0).default(0).describe('linear warm-up (fraction of epochs allowed), helps polynomial nets'),
    weightDecay: z.number().min(0).default(0).describe('decoupled weight decay on kernels (AdamW-style): w -= lr·wd·w each step'),
    augment: z
      .object({
        shift: z.number().int().min(0).default(0).describe('random translation by up to this many pixels'),
        flip: z.boolean().default(false).describe('random horizontal flips (not for digits)'),
      })
      .strict()
      .default({ shift: 0, flip: false }),
    clipNorm: z.number().positive().nullable().default(5).describe('clip gradients to this global L2 norm (null: off)'),
    rangePenalty: z
      .object({
        bound: z.number().positive().describe('activation inputs should stay within ±bound'),
        weight: z.number().positive().describe('loss weight of mean(relu(|x| − bound)²) summed over activations'),
      })
      .strict()
      .optional()
      .describe(
        "keeps polynomial activations' inputs in range: deep quadratic nets otherwise blow up on some inputs (and CKKS needs bounded values)",
      ),
    seed: z.number().int().nonnegative().default(42),
    from: z
      .string()
      .regex(SOURCE, 'must be a run name or zoo:<entry>')
      .optional()
      .describe(
        "start from this run's trained model (a run name in the same outDir, or zoo:<entry> for the repository's zoo) instead of training: compared methods then prune the same weights",
      ),
    fromPruned: z
      .boolean()
      .optional()
      .describe(
        "with train.from naming a run: start from that run's pruned model (its prune stage's result) instead of its trained one, so a second method prunes what the first left (FFConv's factorisation, then sub-block pruning of the d×d halves)",
      ),
    init: z
      .string()
      .regex(SOURCE, 'must be a run name or zoo:<entry>')
      .optional()
      .describe(
        "train `epochs` more, starting from this run's trained weights (a run name in the same outDir, or zoo:<entry>) rather than from random ones; layers are matched by name, and a conv with more groups than the source's keeps the diagonal blocks of its kernel (a trained dense model turned into an HE-grouped one, then fine-tuned)",
      ),
    backend: z
      .enum(BACKENDS)
      .default('auto')
      .describe(
        'training engine: auto is onnx (onnxruntime-node runs each step as one graph, on all cores) where it loads and the model has only layers it knows, else tfjs on wasm',
      ),
    workers: z
      .number()
      .int()
      .positive()
      .max(64)
      .default(1)
      .describe(
        'tfjs backends: data-parallel worker threads (gradients averaged each step); onnx uses every core within each step instead',
      ),
    evalBatchSize: z.number().int().positive().default(500),
  })
  .strict()
  .refine((t) => t.from === undefined || t.init === undefined, {
    message: 'from (adopt a trained model, no training) and init (train from its weights) exclude each other',
    path: ['init'],
  })
  .refine((t) => !t.fromPruned || (t.from !== undefined && !t.from.startsWith('zoo:')), {
    message: 'fromPruned needs train.from to name a run of this outDir (a zoo entry holds a trained model only)',
    path: ['fromPruned'],
  });
export type TrainConfig = z.infer<typeof trainSchema>;
