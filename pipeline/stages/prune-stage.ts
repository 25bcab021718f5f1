import type * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { UserError } from '../../common/errors.js';
import { compileModel } from '../../export/compile-model.js';
import { exportSchema, type ExportConfig } from '../../export/options.js';
import { estimatedServerSeconds, planCiphertexts, planCounts, planMemory, relativeCost } from '../../plan/cost.js';
import type { Plan } from '../../plan/plan.js';
import { costBudget } from '../../prune/budget-target.js';
import { chooseLayers, isTiled, type PruneTargets } from '../../prune/layer-choice.js';
import { applyMasks, maskSparsity, type Masks } from '../../prune/masks.js';
import type { PruneConfig } from '../../prune/options.js';
import { importanceOf, selectRound } from '../../prune/round-select.js';
import { roundTargets } from '../../prune/schedule.js';
import { boundaryOrders, withBoundaryOrders } from '../../prune/tiles.js';
import { TILE_PRUNING_VERSION, tilesKept } from '../../prune/tile-rounds.js';
import { loadModel, saveCheckpoint } from '../../train/checkpoint.js';
import { evaluateSplit } from '../../train/evaluate-model.js';
import { fit } from '../../train/fit.js';
import { initBackend } from '../../train/backend.js';
import { taskOf } from '../../train/zoo/registry.js';
import { exists } from '../../datasets/fs-util.js';
import type { StageContext } from '../context.js';
import { fingerprint } from '../run-dir.js';
import type { PlanCost, PruneResult, PruneRound } from '../stage-results.js';
import { RoundDir } from './prune-rounds.js';

/** What the plan costs, for the prune result: per step and in total. */
function planCost(plan: Plan): PlanCost {
  const c = planCounts(plan);
  const m = planMemory(plan);
  return {
    mulPlain: c.total.mulPlain,
    rotations: c.total.rotate,
    estimatedCost: +relativeCost(plan).toFixed(1),
    plaintexts: c.plaintexts,
    ciphertexts: planCiphertexts(plan),
    plaintextBytes: m.plaintextBytes,
    peakCiphertextBytes: m.peakCiphertextBytes,
    perStep: Object.fromEntries(c.perStep.map((s) => [s.name, { mulPlain: s.counts.mulPlain, rotations: s.counts.rotate }])),
  };
}

/**
 * What round r computes from: the trained model, the export geometry, the
 * layers, the method's and fine-tuning settings, and the targets of rounds
 * 1..r (each round starts from the one before). A round on disk is reused
 * only under the same key, so a changed config never resumes from stale
 * rounds, while a longer schedule with the same first rounds reuses them.
 */
export function roundKey(train: string, e: ExportConfig, p: PruneConfig, layers: string[], r: number): string {
  const targets = Array.from({ length: r }, (_, i) => roundTargets(p, i + 1));
  // Tile and neuron rounds also depend on the tile-pruning algorithm's version and its newer settings (sub-block keys are unchanged).
  const tiled = isTiled(p)
    ? [{ version: TILE_PRUNING_VERSION, permuteBoundary: p.permuteBoundary, importance: importanceOf(p), allocation: p.allocation }]
    : [];
  return fingerprint(
    train,
    e,
    { method: p.method, layers, permute: p.permute, fineTuneEpochs: p.fineTuneEpochs, learningRate: p.learningRate, rank: p.rank },
    targets,
    p.expand && r === p.steps,
    ...tiled,
    // Only the last round's key holds its own epoch count, so a longer last round reuses the rounds before it.
    ...(r === p.steps && p.finalFineTuneEpochs !== undefined ? [{ finalFineTuneEpochs: p.finalFineTuneEpochs }] : []),
  );
}

/** Fine-tunes the masked model with the masks held (none: saves it as the round's best); returns the model to go on with. */
async function fineTune(
  ctx: StageContext,
  p: PruneConfig,
  model: tf.LayersModel,
  masks: Masks,
  at: { dir: string; round: number },
): Promise<tf.LayersModel> {
  const epochs = at.round === p.steps ? (p.finalFineTuneEpochs ?? p.fineTuneEpochs) : p.fineTuneEpochs;
  const dir = at.dir;
  if (epochs === 0) {
    await saveCheckpoint(join(dir, 'best'), model, { epoch: 0 });
    return model;
  }
  const trainCfg = ctx.config.train!;
  const cfg = { ...trainCfg, epochs, learningRate: p.learningRate ?? trainCfg.learningRate / 10, warmupEpochs: 0 };
  const res = await fit({
    model,
    data: ctx.data!,
    task: taskOf(ctx.config.model!),
    cfg,
    dir,
    logger: ctx.logger,
    backend: await initBackend(trainCfg.backend),
    masks: masks.size ? masks : undefined,
  });
  if (res.model !== model) model.dispose();
  applyMasks(res.model, masks);
  return res.model;
}

/** A model's validation accuracy (classification with a validation split; else undefined). */
async function validationAccuracy(ctx: StageContext, model: tf.LayersModel): Promise<number | undefined> {
  const data = ctx.data!;
  if (taskOf(ctx.config.model!) !== 'classification' || !data.validation.count) return undefined;
  const m = await evaluateSplit(model, data.validation, {
    task: 'classification',
    normalization: data.normalization,
    shape: data.shape,
    numClasses: data.numClasses,
    batchSize: ctx.config.train!.evalBatchSize,
  });
  return m.accuracy;
}

/** Points of validation accuracy a round lost against the trained model, past prune.accuracyBudget; undefined within it. */
function pastBudget(p: PruneConfig, dense: number | undefined, round: PruneRound): number | undefined {
  if (p.accuracyBudget === undefined || dense === undefined || round.validationAccuracy === undefined) return undefined;
  const lost = 100 * (dense - round.validationAccuracy);
  return lost > p.accuracyBudget ? lost : undefined;
}

/**
 * Runs (or reuses from disk) rounds 1..prune.steps; returns the last round's
 * model, masks and targets — under prune.accuracyBudget, the last round
 * within it (the rounds after the first one past it are not run).
 */
async function pruneRounds(
  ctx: StageContext,
  p: PruneConfig,
  e: ExportConfig,
  start: { model: tf.LayersModel; dense: Plan; targets: PruneTargets },
) {
  const { run, logger } = ctx;
  const budget = costBudget(p, start.dense);
  let { model, targets } = start;
  let masks: Masks | undefined;
  const rounds: PruneRound[] = [];
  const dense = p.accuracyBudget === undefined ? undefined : await validationAccuracy(ctx, start.model);
  if (p.accuracyBudget !== undefined && dense === undefined)
    throw new UserError('prune.accuracyBudget: needs a classification model and a validation split (dataset.validation > 0)');
  // The model and targets of the round before, to go back to when a round is past the accuracy budget.
  let before = { masks, targets, round: 0 };
  let kept = 0;
  for (let r = 1; r <= p.steps; r++) {
    kept = r;
    const back = async (round: PruneRound) => {
      const lost = pastBudget(p, dense, round);
      if (lost === undefined) return false;
      if (before.round > 0) kept = before.round;
      if (before.round === 0) {
        logger.warn(
          `prune: round ${r} lost ${lost.toFixed(2)} validation points, past the budget of ${p.accuracyBudget}; no round is within it, round 1 is kept`,
        );
        return true;
      }
      logger.info(
        `prune: round ${r} lost ${lost.toFixed(2)} validation points, past the budget of ${p.accuracyBudget}; keeping round ${before.round}`,
      );
      model.dispose();
      model = await loadModel(run.file('prune', `round${before.round}`, 'best'));
      ({ masks, targets } = before);
      return true;
    };
    const dir = run.file('prune', `round${r}`);
    const round = new RoundDir(dir, roundKey(ctx.fingerprints.train, e, p, targets.names, r));
    const saved = await round.open(() => logger.info(`prune: round ${r} on disk was pruned with other settings; redoing it`));
    if (saved) {
      model.dispose();
      model = await loadModel(join(dir, 'best'));
      masks = saved.masks;
      if (isTiled(p)) targets = { ...targets, grids: withBoundaryOrders(targets.grids, saved.orders ?? {}) };
      // A round reused under another accuracy budget (or saved without its validation figure) is judged by this run's.
      const result = { ...saved.result };
      if (p.accuracyBudget !== undefined) {
        result.validationAccuracy ??= await validationAccuracy(ctx, model);
        delete result.overBudget;
        if (pastBudget(p, dense, result) !== undefined) result.overBudget = true;
      }
      rounds.push(result);
      logger.info(`prune: round ${r} already complete; skipped`);
      if (await back(result)) break;
      before = { masks, targets, round: r };
      continue;
    }
    const chosen = selectRound({
      model,
      p,
      round: r,
      targets,
      prior: masks,
      data: ctx.data!,
      task: taskOf(ctx.config.model!),
      budget,
      // A factorised model aligns nothing with the dense plan's geometry: its own cheapest plan.
      compile: (m) => (p.method === 'lowrank' ? compileModel(m, e) : compileModel(m, e, start.dense)),
      logger,
    });
    // A masking round holds weights of this model at zero; a lowrank round hands back a new model (no masks) to fine-tune instead.
    if (chosen.kind === 'model') {
      model.dispose();
      model = chosen.model;
      masks = new Map();
    } else {
      masks = chosen.masks;
      targets = { ...targets, grids: chosen.grids };
      applyMasks(model, masks);
    }
    model = await fineTune(ctx, p, model, masks, { dir, round: r });
    const goal = budget ? { [budget.key]: budget.goal(r) } : { target: roundTargets(p, r).sparsity };
    // A lowrank round's plan is compiled for the rank/latency curve (a masking round's is the export's geometry, compiled once at the end).
    const ranks =
      chosen.kind === 'model'
        ? { ranks: Object.fromEntries(chosen.ranks), estimatedSeconds: +estimatedServerSeconds(compileModel(model, e)).toPrecision(4) }
        : {};
    const val = await validationAccuracy(ctx, model);
    const result: PruneRound = {
      round: r,
      ...goal,
      sparsity: maskSparsity(masks),
      ...(isTiled(p) ? { tiles: tilesKept(model, targets.grids) } : {}),
      ...ranks,
      ...(val !== undefined ? { validationAccuracy: val } : {}),
    };
    if (pastBudget(p, dense, result) !== undefined) result.overBudget = true;
    await round.finish({ masks, ...(isTiled(p) ? { orders: boundaryOrders(targets.grids) } : {}), result });
    rounds.push(result);
    logger.info(
      `prune: round ${r}: ${chosen.kind === 'model' ? `factorised and fine-tuned at ranks ${JSON.stringify(result.ranks)} (estimated ${result.estimatedSeconds} s/image)` : `sparsity ${maskSparsity(masks).toFixed(3)}`}${val !== undefined ? `, validation accuracy ${(100 * val).toFixed(2)}%` : ''}`,
    );
    if (await back(result)) break;
    before = { masks, targets, round: r };
  }
  return { model, masks, targets, rounds, dense, kept };
}

/**
 * Prunes the trained model in `prune.steps` rounds (prune to a rising
 * sparsity, then fine-tune with the masks held), into runs/<name>/prune.
 * Sub-blocks are read off the plan the export stage would compile, so they
 * are exactly its plaintext diagonals. A finished round is not redone.
 */
export async function pruneStage(ctx: StageContext, p: PruneConfig): Promise<void> {
  const { run, logger, config } = ctx;
  if (!ctx.fingerprints.train) throw new UserError('the prune stage needs a trained model (model and train sections)');
  const e: ExportConfig = config.export ?? exportSchema.parse({});
  // The importance default is resolved first, so a run that names the default shares its fingerprint with one that does not.
  const fp = fingerprint(ctx.fingerprints.train, { ...p, importance: importanceOf(p) }, e, ...(isTiled(p) ? [TILE_PRUNING_VERSION] : []));
  ctx.fingerprints.prune = fp;
  const done = run.finished('prune', fp);
  if (done && (await exists(run.file('prune', 'best', 'model.json')))) {
    logger.info('prune: already complete; skipped');
    ctx.results.prune = done;
    return;
  }
  const data = ctx.data!,
    task = taskOf(config.model!);
  const trained = await loadModel(run.file('train', 'best'));
  // The pruned model is compiled with the dense plan's geometry: its sub-blocks and tiles are the ones pruning aligned with.
  const dense = compileModel(trained, e);
  const chosen = chooseLayers(trained, dense, p, run.file('config.yaml'));
  const allocation = {
    global: ' (tiles of all layers ranked together)',
    cost: ' (tiles and whole tile rows of all layers ranked by the loss their removal adds, measured, per HE cost saved)',
    layer: '',
  }[p.allocation ?? 'layer'];
  const aim =
    p.rotations !== undefined
      ? `${p.rotations} rotations`
      : p.latency !== undefined
        ? `${p.latency} of the dense plan's estimated latency`
        : p.rank !== undefined
          ? `rank ${JSON.stringify(p.rank)}`
          : `sparsity ${p.sparsity}`;
  const denseCounts = planCounts(dense).total;
  logger.info(
    `prune: ${p.method}${allocation} to ${aim} in ${p.steps} round(s) over ${chosen.names.join(', ')}; dense plan ${denseCounts.mulPlain} plaintext mults, ${denseCounts.rotate} rotations`,
  );

  const {
    model,
    masks,
    targets,
    rounds,
    dense: denseValidation,
    kept,
  } = await pruneRounds(ctx, p, e, { model: trained, dense, targets: chosen });
  await saveCheckpoint(run.file('prune', 'best'), model, { epoch: 0 });
  const test = await evaluateSplit(model, data.test, {
    task,
    normalization: data.normalization,
    shape: data.shape,
    numClasses: data.numClasses,
    batchSize: config.train!.evalBatchSize,
  });
  // Tile pruning with permute may have reordered the client's inputs and outputs: the plan carries that order.
  const tiles = dense.tiles && { ...dense.tiles, ...boundaryOrders(targets.grids) };
  // A factorised model aligned nothing with the dense plan's geometry: its own cheapest plan.
  const pruned = p.method === 'lowrank' ? compileModel(model, e) : compileModel(model, e, { ...dense, tiles });
  const result: PruneResult = {
    method: p.method,
    layers: chosen.names,
    sparsity: masks ? maskSparsity(masks) : 0,
    rounds,
    ...(denseValidation !== undefined
      ? { denseValidationAccuracy: denseValidation, keptRound: kept, withinBudget: !rounds[kept - 1]?.overBudget }
      : {}),
    testLoss: test.loss,
    testAccuracy: test.accuracy,
    ...(task === 'reconstruction' ? { testMse: test.loss } : {}),
    densePlan: planCost(dense),
    prunedPlan: planCost(pruned),
    channelBlocks: (p.method === 'lowrank' ? pruned : dense).channelBlocks,
    ...(tiles ? { tiles } : {}),
    checkpoint: run.file('prune', 'best'),
  };
  model.dispose();
  logger.info(
    `prune: test ${task === 'classification' ? `accuracy ${(100 * test.accuracy!).toFixed(2)}%` : `MSE ${test.loss.toExponential(4)}`}; plan ${result.densePlan.mulPlain} → ${result.prunedPlan.mulPlain} plaintext mults, ${result.densePlan.rotations} → ${result.prunedPlan.rotations} rotations`,
  );
  ctx.results.prune = result;
  await run.markDone('prune', fp, result);
}
