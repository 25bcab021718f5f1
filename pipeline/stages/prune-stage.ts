import type * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { readFile, rm } from 'node:fs/promises';
import { UserError } from '../../common/errors.js';
import { writeJsonAtomic } from '../../common/atomic-write.js';
import { compileChain } from '../../export/compile.js';
import { lowerModel } from '../../export/lower.js';
import { compileOptions, exportSchema, type ExportConfig } from '../../export/options.js';
import { planCiphertexts, planCounts, planMemory, relativeCost } from '../../plan/cost.js';
import type { Plan } from '../../plan/plan.js';
import { withMasks, applyMasks, kernelValues, maskSparsity, type Masks } from '../../prune/masks.js';
import type { PruneConfig } from '../../prune/options.js';
import { selectMagnitude, selectSubBlocksPerLayer } from '../../prune/select.js';
import { sparsityForBudget } from '../../prune/budget-target.js';
import { boundaryOrders, tileGrids, withBoundaryOrders } from '../../prune/tiles.js';
import { inputScales } from '../../prune/input-scales.js';
import { TILE_PRUNING_VERSION, tileRound, tilesKept } from '../../prune/tile-rounds.js';
import { tileTaylorScores } from '../../prune/tile-taylor.js';
import { tileAblationScores } from '../../prune/tile-ablation.js';
import { convSubBlocks, denseSubBlocks, residualShortcuts, stepOfLayer } from '../../prune/subblocks.js';
import { loadModel, saveCheckpoint } from '../../train/checkpoint.js';
import { evaluateSplit } from '../../train/evaluate-model.js';
import { fit } from '../../train/fit.js';
import { initBackend } from '../../train/backend.js';
import { GroupedConv2D } from '../../train/layers/grouped-conv.js';
import { taskOf } from '../../train/zoo/registry.js';
import { exists } from '../../datasets/fs-util.js';
import type { StageContext } from '../context.js';
import { fingerprint } from '../run-dir.js';

/** What the plan costs, for the summary: per step and in total. */
function planCost(plan: Plan) {
  const c = planCounts(plan);
  const m = planMemory(plan);
  return { mulPlain: c.total.mulPlain, rotations: c.total.rotate, estimatedCost: +relativeCost(plan).toFixed(1), plaintexts: c.plaintexts, ciphertexts: planCiphertexts(plan), plaintextBytes: m.plaintextBytes, peakCiphertextBytes: m.peakCiphertextBytes, perStep: Object.fromEntries(c.perStep.map((s) => [s.name, { mulPlain: s.counts.mulPlain, rotations: s.counts.rotate }])) };
}

const masksToJson = (m: Masks) => Object.fromEntries([...m].map(([k, v]) => [k, Array.from(v)]));
const masksFromJson = (o: Record<string, number[]>): Masks => new Map(Object.entries(o).map(([k, v]) => [k, Float32Array.from(v)]));

/** Tile pruning's weight importance (default: variation); other methods have none. */
const importanceOf = (p: PruneConfig) => (p.method === 'tile' ? p.importance ?? 'variation' : undefined);
/** Tile and neuron pruning work on the tile grids of a tile-packed plan. */
const isTiled = (p: PruneConfig) => p.method === 'tile' || p.method === 'neuron';

/**
 * What round r computes from: the trained model, the export geometry, the
 * layers, the method's and fine-tuning settings, and the targets of rounds
 * 1..r (each round starts from the one before). A round on disk is reused
 * only under the same key, so a changed config never resumes from stale
 * rounds, while a longer schedule with the same first rounds reuses them.
 */
export function roundKey(train: string, e: ExportConfig, p: PruneConfig, layers: string[], r: number): string {
  const targets = Array.from({ length: r }, (_, i) => ({
    sparsity: p.sparsity === undefined ? undefined : (p.sparsity * (i + 1)) / p.steps,
    rotations: p.rotations === undefined ? undefined : { final: p.rotations, share: (i + 1) / p.steps },
    latency: p.latency === undefined ? undefined : { final: p.latency, share: (i + 1) / p.steps },
    weightSparsity: p.weightSparsity === undefined ? undefined : (p.weightSparsity * (i + 1)) / p.steps,
  }));
  // Tile and neuron rounds also depend on the tile-pruning algorithm's version and its newer settings (sub-block keys are unchanged).
  const tiled = isTiled(p) ? [{ version: TILE_PRUNING_VERSION, permuteBoundary: p.permuteBoundary, importance: importanceOf(p), allocation: p.allocation }] : [];
  return fingerprint(train, e, { method: p.method, layers, permute: p.permute, fineTuneEpochs: p.fineTuneEpochs, learningRate: p.learningRate }, targets, p.expand && r === p.steps, ...tiled);
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
  const done = run.completed('prune', fp);
  if (done && await exists(run.file('prune', 'best', 'model.json'))) { logger.info('prune: already complete; skipped'); ctx.summary.prune = done.result; return; }
  const data = ctx.data!, trainCfg = config.train!, task = taskOf(config.model!);
  let model: tf.LayersModel = await loadModel(run.file('train', 'best'));
  // The pruned model is compiled with the dense plan's geometry: its sub-blocks and tiles are the ones pruning aligned with.
  const compile = (m: tf.LayersModel, like?: Plan) =>
    compileChain(lowerModel(m, { maxQuadraticShift: e.maxQuadraticShift }), { ...compileOptions(e), ...(like?.channelBlocks ? { channelBlocks: like.channelBlocks } : {}), ...(like?.tiles ? { tiles: like.tiles } : {}) });
  const dense = compile(model);
  const tiled = isTiled(p);
  let grids = tiled ? tileGrids(model, dense) : [];
  const weightLayers = model.layers.filter((l) => l instanceof GroupedConv2D || l.getClassName() === 'Dense');
  // Residual shortcut projections are no plan step of their own (they join the next step's residual input): sub-blocks leave them whole.
  const shortcuts = p.method === 'subblock' ? residualShortcuts(model) : new Set<string>();
  const convs = weightLayers.filter((l) => l instanceof GroupedConv2D && !shortcuts.has(l.name)).map((l) => l.name);
  const denseNames = weightLayers.filter((l) => !(l instanceof GroupedConv2D)).map((l) => l.name);
  const prunable = tiled ? grids.map((g) => g.layer) : weightLayers.map((l) => l.name).filter((n) => !shortcuts.has(n));
  // Default: every convolution (every dense layer for tile and neuron pruning, and in a network without convolutions).
  const names = p.layers ?? (tiled ? prunable : convs.length ? convs : denseNames);
  for (const n of names) {
    if (shortcuts.has(n)) throw new UserError(`${run.file('config.yaml')}: prune.layers: "${n}" is a residual shortcut projection; sub-block pruning keeps it whole (it is part of the next layer's plan step)`);
    if (!prunable.includes(n)) throw new UserError(`${run.file('config.yaml')}: prune.layers: "${n}" is not a ${tiled ? 'dense' : 'convolution or dense'} layer of ${model.name} (they are: ${prunable.join(', ')})`);
  }
  if (tiled && names.length !== grids.length) throw new UserError(`${run.file('config.yaml')}: prune.layers: ${p.method} pruning covers every dense layer (permutations tie neighbours together); leave prune.layers out`);
  // Sub-blocks are read off the plan step of each layer (only sub-block pruning needs one step per layer).
  const stepOf = p.method === 'subblock' ? stepOfLayer(model, dense) : undefined;
  const blocks = stepOf
    ? names.map((n) => { const l = model.getLayer(n); return l instanceof GroupedConv2D ? convSubBlocks(l, dense, stepOf.get(n)!) : denseSubBlocks(l, dense, stepOf.get(n)!); })
    : [];
  const denseRotations = planCounts(dense).total.rotate;
  // An HE-cost target instead of a sparsity: the plan figure it bounds, and each round's goal, ramping from the dense plan's value
  // (as a sparsity target ramps from 0).
  const budget = p.rotations !== undefined
    ? { key: 'rotationGoal', what: 'rotations', of: (pl: Plan) => planCounts(pl).total.rotate, goal: (r: number) => Math.round(denseRotations + ((p.rotations! - denseRotations) * r) / p.steps) }
    : p.latency !== undefined
      ? { key: 'latencyGoal', what: 'estimated latency (cost-model units)', of: relativeCost, goal: (r: number) => relativeCost(dense) * (1 - ((1 - p.latency!) * r) / p.steps) }
      : undefined;
  const allocation = { global: ' (tiles of all layers ranked together)', cost: ' (tiles and whole tile rows of all layers ranked by the loss their removal adds, measured, per HE cost saved)', layer: '' }[p.allocation ?? 'layer'];
  logger.info(`prune: ${p.method}${allocation} to ${p.rotations !== undefined ? `${p.rotations} rotations` : p.latency !== undefined ? `${p.latency} of the dense plan's estimated latency` : `sparsity ${p.sparsity}`} in ${p.steps} round(s) over ${names.join(', ')}; dense plan ${planCounts(dense).total.mulPlain} plaintext mults, ${denseRotations} rotations`);

  let masks: Masks | undefined;
  const rounds: Record<string, unknown>[] = [];
  for (let r = 1; r <= p.steps; r++) {
    const dir = run.file('prune', `round${r}`);
    const marker = join(dir, 'round.json');
    const key = roundKey(ctx.fingerprints.train, e, p, names, r);
    const saved = await exists(marker) ? JSON.parse(await readFile(marker, 'utf8')) as { key?: string; masks: Record<string, number[]>; orders?: ReturnType<typeof boundaryOrders>; result: Record<string, unknown> } : undefined;
    if (saved && saved.key !== key) logger.info(`prune: round ${r} on disk was pruned with other settings; redoing it`);
    // A round computed anew starts from an empty directory: its fine-tuning must not resume (and adopt the best weights of)
    // the checkpoints of a round made with other settings. An interrupted round of the same settings resumes its fine-tuning.
    const startedFile = join(dir, 'round-started.json');
    const startedKey = !saved && await exists(startedFile) ? (JSON.parse(await readFile(startedFile, 'utf8')) as { key?: string }).key : undefined;
    if (saved ? saved.key !== key : startedKey !== key) await rm(dir, { recursive: true, force: true });
    if (!saved || saved.key !== key) await writeJsonAtomic(startedFile, { key });
    if (saved && saved.key === key) {
      model.dispose();
      model = await loadModel(join(dir, 'best'));
      masks = masksFromJson(saved.masks);
      if (tiled) grids = withBoundaryOrders(grids, saved.orders ?? {});
      rounds.push(saved.result);
      logger.info(`prune: round ${r} already complete; skipped`);
      continue;
    }
    const target = p.sparsity === undefined ? undefined : (p.sparsity * r) / p.steps;
    const goal = budget?.goal(r);
    if (tiled) {
      const weightTarget = p.weightSparsity === undefined ? undefined : (p.weightSparsity * r) / p.steps;
      const importance = importanceOf(p) ?? 'magnitude';
      const scales = importance !== 'magnitude' ? () => inputScales(model, grids.map((g) => g.layer), data, { centred: importance === 'variation' }) : undefined;
      // Ranked across layers: by the Taylor estimate (global), or by the measured loss of each tile and row (cost, see tile-ablation).
      const scoreWith = p.allocation === 'cost' ? tileAblationScores : p.allocation === 'global' ? tileTaylorScores : undefined;
      const globalScores = scoreWith && ((g: typeof grids, within?: Masks) => scoreWith({ model, task, numClasses: data.numClasses, shape: data.shape }, g, data, { within }));
      ({ masks, grids } = tileRound(model, grids, { method: p.method as 'tile' | 'neuron', target: target!, weightTarget, permute: p.permute, permuteBoundary: p.permuteBoundary, expand: p.expand && r === p.steps, prior: masks, scales, globalScores, costAware: p.allocation === 'cost' }));
    } else {
      const kernels = new Map(names.map((n) => [n, kernelValues(model, n)]));
      const prior = masks;
      if (budget && goal !== undefined) {
        const found = sparsityForBudget((sp) => selectSubBlocksPerLayer(blocks, kernels, sp, prior),
          (m) => withMasks(model, m, () => budget.of(compile(model, dense))), goal);
        const fig = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(0));
        if (!found.reached) logger.warn(`prune: round ${r}: ${budget.what} ${fig(found.cost)} at the highest sparsity tried (${found.sparsity.toFixed(3)}), short of the goal ${fig(goal)}`);
        else logger.info(`prune: round ${r}: ${budget.what} ${fig(found.cost)} (goal ${fig(goal)}) at sparsity ${found.sparsity.toFixed(3)}`);
        masks = found.masks;
      } else {
        masks = p.method === 'subblock' ? selectSubBlocksPerLayer(blocks, kernels, target!, prior) : selectMagnitude(kernels, target!, { perLayer: true });
      }
    }
    applyMasks(model, masks);
    const held = masks;
    if (p.fineTuneEpochs > 0) {
      const cfg = { ...trainCfg, epochs: p.fineTuneEpochs, learningRate: p.learningRate ?? trainCfg.learningRate / 10, warmupEpochs: 0 };
      const res = await fit({ model, data, task, cfg, dir, logger, backend: await initBackend(trainCfg.backend), masks: held });
      if (res.model !== model) model.dispose();
      model = res.model;
      applyMasks(model, held);
    } else {
      await saveCheckpoint(join(dir, 'best'), model, { epoch: 0 });
    }
    const result = { round: r, ...(budget ? { [budget.key]: goal } : { target }), sparsity: maskSparsity(held), ...(tiled ? { tiles: tilesKept(model, grids) } : {}) };
    await writeJsonAtomic(marker, { key, masks: masksToJson(held), ...(tiled ? { orders: boundaryOrders(grids) } : {}), result });
    rounds.push(result);
    logger.info(`prune: round ${r}: sparsity ${maskSparsity(held).toFixed(3)}`);
  }
  await saveCheckpoint(run.file('prune', 'best'), model, { epoch: 0 });
  const test = await evaluateSplit(model, data.test, { task, normalization: data.normalization, shape: data.shape, numClasses: data.numClasses, batchSize: trainCfg.evalBatchSize });
  // Tile pruning with permute may have reordered the client's inputs and outputs: the plan carries that order.
  const tiles = dense.tiles && { ...dense.tiles, ...boundaryOrders(grids) };
  const pruned = compile(model, { ...dense, tiles });
  const result = {
    method: p.method, layers: names, sparsity: masks ? maskSparsity(masks) : 0, rounds,
    testLoss: test.loss, testAccuracy: test.accuracy, ...(task === 'reconstruction' ? { testMse: test.loss } : {}),
    densePlan: planCost(dense), prunedPlan: planCost(pruned), channelBlocks: dense.channelBlocks, ...(tiles ? { tiles } : {}), checkpoint: run.file('prune', 'best'),
  };
  model.dispose();
  logger.info(`prune: test ${task === 'classification' ? `accuracy ${(100 * test.accuracy!).toFixed(2)}%` : `MSE ${test.loss.toExponential(4)}`}; plan ${result.densePlan.mulPlain} → ${result.prunedPlan.mulPlain} plaintext mults, ${result.densePlan.rotations} → ${result.prunedPlan.rotations} rotations`);
  ctx.summary.prune = result;
  await run.markDone('prune', fp, result);
}
