import { z } from 'zod';

/** The `prune:` section of a config. */
export const pruneSchema = z
  .object({
    method: z
      .enum(['subblock', 'magnitude', 'tile', 'neuron', 'lowrank'])
      .describe(
        'subblock: SpENCNN sub-blocks aligned with the packed plan (whole plaintext diagonals, whole channel shifts); magnitude: unstructured smallest-|w| baseline; tile: HE-PEx tiles of a tile-packed plan (export.tiles), least important first; neuron: Hunter-style whole hidden neurons (least L2 norm), compacted into whole tiles; lowrank: FFConv, each convolution factorised by truncated SVD into a d×d convolution to prune.rank channels and a 1×1 convolution (two linear steps of the plan)',
      ),
    sparsity: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .describe(
        'target fraction pruned: of weights (subblock, magnitude), of tiles per layer (tile), of hidden neurons per layer (neuron)',
      ),
    rotations: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "subblock: target the plan's rotation count instead of a sparsity (each round the least per-layer sparsity that brings the plan down to its share of the way, found by bisection on compiled plans)",
      ),
    latency: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .describe(
        "subblock and lowrank: target the plan's estimated server latency as a fraction of the dense plan's (the cost model, plan/cost relativeCost: key switches and multiplications weighted by their measured cost at each level and N), ramping over the rounds; subblock finds each round's sparsity like rotations, lowrank the largest common fraction of every layer's rank whose compiled plan meets the round's goal (by bisection)",
      ),
    rank: z
      .union([z.number().int().positive(), z.record(z.string(), z.number().int().positive())])
      .optional()
      .describe(
        'lowrank: the rank r each convolution is factorised to (one value, or per layer by name); over the rounds the rank falls evenly from the full rank to r, each round re-factorising the last and fine-tuning',
      ),
    layers: z
      .array(z.string().min(1))
      .optional()
      .describe(
        'layers to prune (default: every convolution, or every dense layer in a network without convolutions; tile and neuron: every dense layer)',
      ),
    permute: z
      .boolean()
      .default(false)
      .describe(
        'tile: prune weights by importance first, then permute hidden neurons (function-preserving) so the survivors fill as few tiles as possible, then drop the least important tiles',
      ),
    permuteBoundary: z
      .boolean()
      .default(true)
      .describe(
        "tile with permute: also reorder the client's inputs and the network's outputs, clustered like the hidden neurons (weak inputs gather in tiles that can then go whole; the model is unchanged: the plan's input and output layouts carry the order, the client packs and reads by them)",
      ),
    importance: z
      .enum(['magnitude', 'activation', 'variation'])
      .optional()
      .describe(
        "tile: a weight's importance is |w| (magnitude), |w| times the RMS of its input over 512 training images (activation: weights reading inputs that are always zero, such as MNIST's border pixels, count for nothing) or |w| times the input's standard deviation (variation, the default: a constant input, which the next bias can absorb, counts for nothing either)",
      ),
    allocation: z
      .enum(['layer', 'global', 'cost'])
      .optional()
      .describe(
        "tile: where the tiles go. layer (the default): sparsity of each layer's tiles; global: sparsity of all tiles, the tiles of every layer ranked together by the loss their removal is expected to add (group first-order Taylor over 512 training images), so a layer whose tiles matter more (an autoencoder's output layer: each output tile alone makes its pixels) keeps more of them; cost: tiles and whole output tile rows of every layer by the loss their removal adds (measured by zeroing each on 512 training images) per HE cost saved (a row's last tile takes its rotate-and-sum rotations with it, a lone tile only its multiplication)",
      ),
    weightSparsity: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .describe(
        'tile with permute: the unstructured sparsity pruned before permuting (default: sparsity); higher leaves sparser neurons for the permutation to cluster',
      ),
    expand: z
      .boolean()
      .default(false)
      .describe(
        'tile with permute: in the last round re-enable every weight inside the kept tiles before fine-tuning (free under HE: the tiles are multiplied anyway)',
      ),
    accuracyBudget: z
      .number()
      .nonnegative()
      .max(100)
      .optional()
      .describe(
        "points of validation accuracy the pruned model may lose against the trained one: after each round's fine-tuning its validation accuracy is compared, and at the first round past the budget pruning stops and keeps the round before (the first round's model, with a warning, if even it is past); with a schedule of many small rounds, the cheapest plan within the budget. Classification only; needs a validation split",
      ),
    steps: z.number().int().positive().default(2).describe('prune → fine-tune rounds, the sparsity rising evenly to the target'),
    fineTuneEpochs: z.number().int().nonnegative().default(2).describe('fine-tuning epochs per round, pruned weights held at zero'),
    finalFineTuneEpochs: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(
        'fine-tuning epochs of the last round instead of fineTuneEpochs (the model that is exported recovers longer; the rounds before are reused when only this changes)',
      ),
    learningRate: z.number().positive().optional().describe('fine-tuning learning rate (default: a tenth of train.learningRate)'),
  })
  .strict()
  .refine((p) => [p.sparsity, p.rotations, p.latency, p.rank].filter((v) => v !== undefined).length === 1, {
    message: 'give one of prune.sparsity, prune.rotations, prune.latency, prune.rank (one target)',
    path: ['sparsity'],
  })
  .refine((p) => p.rank === undefined || p.method === 'lowrank', { message: 'prune.rank applies to method lowrank', path: ['rank'] })
  .refine((p) => p.method !== 'lowrank' || p.rank !== undefined || p.latency !== undefined, {
    message: 'method lowrank takes prune.rank or prune.latency',
    path: ['rank'],
  })
  .refine((p) => p.rotations === undefined || p.method === 'subblock', {
    message: 'a rotation target applies to method subblock (the other methods do not aim at rotations)',
    path: ['rotations'],
  })
  .refine((p) => p.latency === undefined || p.method === 'subblock' || p.method === 'lowrank', {
    message: 'a latency target applies to methods subblock and lowrank (the other methods do not aim at HE cost)',
    path: ['latency'],
  })
  .refine((p) => !p.permute || p.method === 'tile', {
    message: 'permute applies to method tile only (neuron pruning always compacts)',
    path: ['permute'],
  })
  .refine((p) => p.importance === undefined || p.method === 'tile', { message: 'importance applies to method tile', path: ['importance'] })
  .refine((p) => p.allocation === undefined || p.method === 'tile', { message: 'allocation applies to method tile', path: ['allocation'] })
  .refine((p) => p.weightSparsity === undefined || (p.method === 'tile' && p.permute), {
    message: 'weightSparsity applies to method tile with permute: true',
    path: ['weightSparsity'],
  })
  .refine((p) => !p.expand || (p.method === 'tile' && p.permute), {
    message: 'expand needs method tile with permute: true (tile pruning alone already keeps whole tiles)',
    path: ['expand'],
  });
export type PruneConfig = z.infer<typeof pruneSchema>;
