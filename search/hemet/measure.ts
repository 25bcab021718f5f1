import { UserError } from '../../common/errors.js';
import { compileModel } from '../../export/compile-model.js';
import type { ExportConfig } from '../../export/options.js';
import { DepthError } from '../../he/params.js';
import { estimatedServerSeconds, planCounts, relativeCost } from '../../plan/cost.js';
import { planDepth, type Plan } from '../../plan/plan.js';
import { blockLevels } from '../../plan/provenance.js';
import { withSeededRandom } from '../../train/seeded.js';
import type { BlockSpec } from '../../train/zoo/blocks.js';
import { buildModel, modelSchema } from '../../train/zoo/registry.js';
import type { squeezenetOptions } from '../../train/zoo/squeezenet.js';
import type { z } from 'zod';

/**
 * One network of the search compiled as the export stage would compile it
 * (the config's export section), from random weights drawn with a fixed
 * seed: what a plan costs depends on the network's structure, not on its
 * weights, so an untrained network stands for the trained one. The depth
 * budget is export.maxDepth: the compiler then keeps the cheapest plan
 * within it (a mobile block's convolution pair fused rather than split
 * where split would be one level too deep).
 */
export interface SearchNetwork {
  /** The model section; its blocks are the search's. */
  model: z.infer<typeof squeezenetOptions>;
  inputShape: readonly [number, number, number];
  numClasses: number;
  export: ExportConfig;
  seed: number;
}

/** What the search reads off a compiled plan. */
export interface NetworkFigures {
  depth: number;
  polyModulusDegree: number;
  coeffModulusBits: number[];
  rotations: number;
  plaintextMultiplications: number;
  ciphertextMultiplications: number;
  /** plan/cost relativeCost (to 0.1 of its unit): what the search compares. */
  cost: number;
  /** The same in single-thread server seconds per image (a lower bound). */
  estimatedSeconds: number;
  depthPerBlock: { block: string; levels: number }[];
  /** Mobile blocks without a middle activation: each pair of convolutions run split or fused. */
  factorized?: { layers: string[]; fused: boolean }[];
}

/** A network's figures, or why it does not compile (with the depth it needs when that is the reason). */
export type Measurement = { figures: NetworkFigures } | { error: string; depth?: number };

/**
 * The network's plan under net.export. Past its maxDepth (the search's
 * budget) the network is compiled again at any depth, so a rejected
 * candidate still says what it would have cost.
 */
export function measureNetwork(net: SearchNetwork, blocks: BlockSpec[]): Measurement {
  const { preset: _p, blocks: _b, ...model } = net.model;
  const cfg = modelSchema.parse({ ...model, blocks });
  const tfModel = withSeededRandom(net.seed, () => buildModel(cfg, { inputShape: net.inputShape, numClasses: net.numClasses }));
  try {
    try {
      return { figures: figuresOf(compileModel(tfModel, net.export)) };
    } catch (e) {
      if (!(e instanceof DepthError) || net.export.maxDepth === undefined) throw e;
      const { maxDepth: _m, ...anyDepth } = net.export;
      return { figures: figuresOf(compileModel(tfModel, anyDepth)) };
    }
  } catch (e) {
    if (e instanceof DepthError) return { error: e.message, depth: e.levels };
    if (e instanceof UserError) return { error: e.message };
    throw e;
  } finally {
    tfModel.dispose();
  }
}

function figuresOf(plan: Plan): NetworkFigures {
  const { total } = planCounts(plan);
  return {
    depth: planDepth(plan),
    polyModulusDegree: plan.params.polyModulusDegree,
    coeffModulusBits: [...plan.params.coeffModulusBits],
    rotations: total.rotate,
    plaintextMultiplications: total.mulPlain,
    ciphertextMultiplications: total.mul,
    // Rounded here, so a measurement read back from the resume cache compares as a fresh one does.
    cost: +relativeCost(plan).toFixed(1),
    estimatedSeconds: +estimatedServerSeconds(plan).toPrecision(4),
    depthPerBlock: blockLevels(plan).map(({ block, levels }) => ({ block, levels })),
    ...(plan.factorized ? { factorized: plan.factorized.map((f) => ({ layers: f.layers ?? [], fused: f.fused })) } : {}),
  };
}
