import type * as tf from '@tensorflow/tfjs';
import type { Logger } from '../common/log.js';
import type { PreparedData } from '../datasets/prepare.js';
import type { Plan } from '../plan/plan.js';
import type { Task } from '../train/zoo/common.js';
import { sparsityForBudget, type CostBudget } from './budget-target.js';
import { inputScales } from './input-scales.js';
import { fullRank, lowRankModel, ranksForBudget, roundRanks } from './lowrank.js';
import { relativeCost } from '../plan/cost.js';
import { kernelValues, withMasks, type Masks } from './masks.js';
import type { PruneConfig } from './options.js';
import { roundTargets } from './schedule.js';
import { selectMagnitude, selectSubBlocksPerLayer } from './select.js';
import { tileAblationScores } from './tile-ablation.js';
import { tileRound } from './tile-rounds.js';
import { tileTaylorScores } from './tile-taylor.js';
import { isTiled, type PruneTargets } from './layer-choice.js';
import type { TileGrid } from './tiles.js';

/** Tile pruning's weight importance (default: variation); other methods have none. */
export const importanceOf = (p: PruneConfig) => (p.method === 'tile' ? (p.importance ?? 'variation') : undefined);

/** What one pruning round selects from: the model as the last round left it, its targets, the masks so far. */
export interface RoundInputs {
  model: tf.LayersModel;
  p: PruneConfig;
  round: number;
  targets: PruneTargets;
  prior?: Masks;
  data: PreparedData;
  task: Task;
  budget?: CostBudget;
  /** The masked model's plan with the dense plan's geometry (what a cost budget measures). */
  compile: (m: tf.LayersModel) => Plan;
  logger: Logger;
}

/**
 * What one round produces. Masking methods keep the model and choose which
 * weights to hold at zero (and, for tile pruning with permutation, re-order
 * the grids); lowrank changes the layers themselves, so its round is a new
 * model (the caller's model is left as it was) with each factorised
 * convolution's rank. Either way the stage then fine-tunes what it got.
 */
export type RoundChoice =
  { kind: 'masks'; masks: Masks; grids: TileGrid[] } | { kind: 'model'; model: tf.LayersModel; ranks: Map<string, number> };

/** Round r's choice: masks, or (lowrank) the re-factorised model. */
export function selectRound(i: RoundInputs): RoundChoice {
  if (i.p.method === 'lowrank') return selectRanks(i);
  return isTiled(i.p) ? { kind: 'masks', ...selectTiles(i) } : { kind: 'masks', masks: selectWeights(i), grids: i.targets.grids };
}

/**
 * lowrank: every layer re-factorised (by truncated SVD of what it computes
 * now) at this round's rank: prune.rank's schedule, or under prune.latency
 * the highest ranks whose plan meets the round's goal.
 */
function selectRanks({ model, p, round, targets, budget, compile, logger }: RoundInputs): RoundChoice {
  const ranks = budget ? budgetRanks(model, targets, budget.goal(round), compile, logger) : roundRanks(p, targets.ranks!, round);
  const { model: next, discarded } = lowRankModel(model, ranks);
  logger.info(
    `prune: round ${round}: ranks ${[...ranks].map(([n, r]) => `${n} ${r}`).join(', ')} (discarded ‖ΔW‖² ${[...discarded.values()].map((d) => d.toExponential(2)).join(', ')})`,
  );
  return { kind: 'model', model: next, ranks };
}

function budgetRanks(
  model: tf.LayersModel,
  targets: PruneTargets,
  goal: number,
  compile: (m: tf.LayersModel) => Plan,
  logger: Logger,
): Map<string, number> {
  // What each layer computes now: a layer factorised by an earlier round re-factorises within its rank.
  const current = new Map(targets.names.map((n) => [n, fullRank(model, n)]));
  const found = ranksForBudget(
    current,
    (ranks) => {
      const { model: f } = lowRankModel(model, ranks);
      try {
        return relativeCost(compile(f));
      } finally {
        f.dispose();
      }
    },
    goal,
  );
  const fig = `${found.cost.toFixed(0)} (goal ${goal.toFixed(0)})`;
  const at = [...found.ranks].map(([n, r]) => `${n} ${r}`).join(', ');
  if (!found.reached) logger.warn(`prune: estimated latency ${fig} even at ranks ${at}: the goal is out of reach`);
  else logger.info(`prune: estimated latency ${fig} at ranks ${at}`);
  return found.ranks;
}

function selectTiles({ model, p, round, targets, prior, data, task }: RoundInputs): { masks: Masks; grids: TileGrid[] } {
  const t = roundTargets(p, round);
  const grids = targets.grids;
  const importance = importanceOf(p) ?? 'magnitude';
  const scales =
    importance !== 'magnitude'
      ? () =>
          inputScales(
            model,
            grids.map((g) => g.layer),
            data,
            { centred: importance === 'variation' },
          )
      : undefined;
  // Ranked across layers: by the Taylor estimate (global), or by the measured loss of each tile and row (cost, see tile-ablation).
  const scoreWith = p.allocation === 'cost' ? tileAblationScores : p.allocation === 'global' ? tileTaylorScores : undefined;
  const globalScores =
    scoreWith &&
    ((g: TileGrid[], within?: Masks) => scoreWith({ model, task, numClasses: data.numClasses, shape: data.shape }, g, data, { within }));
  return tileRound(model, grids, {
    method: p.method as 'tile' | 'neuron',
    target: t.sparsity!,
    weightTarget: t.weightSparsity,
    permute: p.permute,
    permuteBoundary: p.permuteBoundary,
    expand: p.expand && round === p.steps,
    prior,
    scales,
    globalScores,
    costAware: p.allocation === 'cost',
  });
}

function selectWeights({ model, p, round, targets, prior, budget, compile, logger }: RoundInputs): Masks {
  const kernels = new Map(targets.names.map((n) => [n, kernelValues(model, n)]));
  const goal = budget?.goal(round);
  if (!budget || goal === undefined) {
    const target = roundTargets(p, round).sparsity!;
    return p.method === 'subblock'
      ? selectSubBlocksPerLayer(targets.blocks, kernels, target, prior)
      : selectMagnitude(kernels, target, { perLayer: true });
  }
  const found = sparsityForBudget(
    (sp) => selectSubBlocksPerLayer(targets.blocks, kernels, sp, prior),
    (m) => withMasks(model, m, () => budget.of(compile(model))),
    goal,
  );
  const fig = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(0));
  if (!found.reached)
    logger.warn(
      `prune: round ${round}: ${budget.what} ${fig(found.cost)} at the highest sparsity tried (${found.sparsity.toFixed(3)}), short of the goal ${fig(goal)}`,
    );
  else logger.info(`prune: round ${round}: ${budget.what} ${fig(found.cost)} (goal ${fig(goal)}) at sparsity ${found.sparsity.toFixed(3)}`);
  return found.masks;
}
