import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.js';
import { writeExport } from '../../export/artifact.js';
import { COMPILER_VERSION } from '../../export/compile.js';
import { compileModel } from '../../export/compile-model.js';
import type { ExportConfig } from '../../export/options.js';
import { estimatedServerSeconds, planCiphertexts, planCounts, SECONDS_PER_COST_UNIT, stepCosts } from '../../plan/cost.js';
import { sentCiphertexts } from '../../plan/plan.js';
import { galoisSteps } from '../../plan/rotations.js';
import { loadModel, writeModelFiles } from '../../train/checkpoint.js';
import { taskOf } from '../../train/zoo/registry.js';
import type { StageContext } from '../context.js';
import { fingerprint } from '../run-dir.js';
import type { ExportResult } from '../stage-results.js';
import { trainedModel } from './train-stage.js';
import { exists } from '../../datasets/fs-util.js';
import { buildInferenceGraph } from '../../train/onnx/model-graph.js';
import { UnsupportedLayerError } from '../../train/onnx/layers.js';

/** The model as an ONNX inference graph (export.onnx), or a clear error naming the layer ONNX cannot express. */
function onnxOf(model: Parameters<typeof buildInferenceGraph>[0], shape: readonly [number, number, number]): Uint8Array {
  try {
    return buildInferenceGraph(model, shape);
  } catch (err) {
    if (err instanceof UnsupportedLayerError) throw new UserError(`export.onnx: ${err.message}`);
    throw err;
  }
}

/** Compiles the trained model to a packed CKKS plan in runs/<name>/export (with the tfjs model beside it as plaintext reference). */
export async function exportStage(ctx: StageContext, e: ExportConfig): Promise<void> {
  const { run, logger } = ctx;
  if (!ctx.fingerprints.train) throw new UserError('the export stage needs a trained model (model and train sections)');
  // A pruned model is exported with the block geometry its sub-blocks were aligned to.
  const pruned = ctx.results.prune;
  const fp = fingerprint(ctx.fingerprints.prune ?? ctx.fingerprints.train, e, COMPILER_VERSION);
  ctx.fingerprints.export = fp;
  const done = run.finished('export', fp);
  if (done && (await exists(run.file('export', 'manifest.json')))) {
    logger.info('export: already complete; skipped');
    ctx.results.export = done;
    return;
  }
  const model = pruned ? await loadModel(pruned.checkpoint) : await trainedModel(ctx);
  const t0 = performance.now();
  const plan = compileModel(model, e, pruned ?? {});
  const data = ctx.data!;
  const meta = {
    model: ctx.config.model!.name,
    task: taskOf(ctx.config.model!),
    dataset: data.name,
    shape: data.shape,
    numClasses: data.numClasses,
    normalization: data.normalization,
    source: pruned?.checkpoint ?? run.file('train', 'best'),
    // How to load the evaluation data again (heprune evaluate needs only this export and the dataset).
    datasetConfig: ctx.config.dataset,
  };
  const dir = run.file('export');
  const manifest = await writeExport(dir, plan, meta, async (tmp) => {
    await writeModelFiles(join(tmp, 'model'), model);
    if (e.onnx) await writeFile(join(tmp, 'model.onnx'), onnxOf(model, data.shape));
  });
  model.dispose();
  const counts = planCounts(plan);
  // Where the cost model puts the server's time, per step.
  const costs = stepCosts(plan);
  const result: ExportResult = {
    dir,
    compileSeconds: +((performance.now() - t0) / 1000).toFixed(2),
    params: plan.params,
    depth: manifest.depth,
    rotations: counts.total.rotate,
    plaintextMultiplications: counts.total.mulPlain,
    ciphertextMultiplications: counts.total.mul,
    rescales: counts.total.rescale,
    plaintexts: counts.plaintexts,
    galoisKeys: galoisSteps(plan).length,
    composedRotations: !!plan.rotationKeys,
    weightsBytes: manifest.weights.bytes,
    ciphertexts: planCiphertexts(plan),
    memory: manifest.totals.memory,
    ...(plan.tiles ? { tiles: plan.tiles } : {}),
    estimatedSeconds: +estimatedServerSeconds(plan).toPrecision(4),
    ...(manifest.depthPerBlock ? { depthPerBlock: manifest.depthPerBlock } : {}),
    perStep: counts.perStep.map((s, i) => {
      const st = plan.steps[i];
      return {
        name: s.name,
        ...(st.kind === 'linear' && st.layers?.length ? { layers: st.layers.join(' + ') } : {}),
        ...s.counts,
        estimatedMs: +(costs[i] * SECONDS_PER_COST_UNIT * 1000).toFixed(1),
      };
    }),
  };
  logger.info(
    `export: N=${plan.params.polyModulusDegree} [${plan.params.coeffModulusBits.join(', ')}], depth ${manifest.depth}, ` +
      `${counts.total.rotate} rotations, ${counts.total.mulPlain} plaintext mults, ${counts.total.mul} ciphertext mults, ${result.galoisKeys} Galois keys, ${(manifest.totals.memory!.plaintextBytes / 2 ** 20).toFixed(0)} MiB of plaintexts${plan.tiles ? `, tiles ${plan.tiles.t1}x${plan.tiles.t2} (first input ${plan.tiles.first})` : ''}${plan.rotationKeys ? ' (key memory budget: rotations composed from ±2^i and the most used steps)' : ''}${plan.clientRotations ? `, client sends ${sentCiphertexts(plan)} input ciphertexts (${plan.clientRotations.length} rotated copies)` : ''} → ${dir}`,
  );
  ctx.results.export = result;
  await run.markDone('export', fp, result);
}
