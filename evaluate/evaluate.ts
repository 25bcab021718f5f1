import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { createObjectCsvStringifier } from 'csv-writer';
import { tmpdir } from 'node:os';
import { assertWritableDir, writeFileAtomic } from '../common/atomic-write.js';
import { UserError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { batchPixels, type Normalization } from '../datasets/prepare.js';
import type { Split } from '../datasets/types.js';
import { loadExport } from '../export/artifact.js';
import { CkksContext } from '../he/context.js';
import { prepare, run, packInput, unpackOutput } from '../plan/interpreter.js';
import { SlotSimulator } from '../plan/slot-sim.js';
import { sentCiphertexts } from '../plan/plan.js';
import { estimatedServerSeconds } from '../plan/cost.js';
import { loadModel } from '../train/checkpoint.js';
import { epochProgress } from '../train/progress.js';
import { writeLatencyPlot } from './latency-plot.js';
import { argmax, maxAbs, maxAbsError, precisionBits, summarize } from './metrics.js';
import { evaluateEncrypted } from './pool.js';
import { exists } from '../datasets/fs-util.js';

export interface EvaluateOptions {
  exportDir: string;
  test: Split;
  samples: number;
  encrypted: boolean;
  simulate: boolean;
  workers: number;
  /** Bytes of encoded plaintexts each CKKS worker keeps (see plan/interpreter prepare). */
  plaintextBudget?: number;
  /** Skip CKKS (simulator only, said in the report) when the cost model estimates more server seconds per image than this. */
  maxEstimatedSeconds?: number;
  /** Where evaluation.json and evaluation.csv go. */
  outDir: string;
  logger: Logger;
  /** Largest CKKS deviation from the simulator (or plaintext) accepted, relative to the largest output (default 0.05). */
  tolerance?: number;
}

/**
 * Writes a finished result into the output directory; should that fail after
 * all the CKKS work (the directory went away), it goes to the temp directory
 * instead and the error says where: a finished evaluation is never lost.
 */
async function keepResult(o: EvaluateOptions, name: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(join(o.outDir, name), text);
  } catch (e) {
    const rescue = join(tmpdir(), `heprune-${Date.now()}-${name}`);
    await writeFileAtomic(rescue, text);
    throw new UserError(`${errorMessage(e)}; the finished result was saved to ${rescue}`, { cause: e });
  }
}

export interface ExportMeta {
  normalization: Normalization;
  shape: [number, number, number];
  task: string;
  dataset: string;
  numClasses: number;
}

/**
 * Plaintext (tfjs), simulated (plan on the slot simulator) and CKKS
 * (node-seal, real keys, client/server by bytes) outputs for the same test
 * images, with accuracy, agreement, error, latency, op counts, key and
 * ciphertext sizes and memory.
 */
export async function evaluateExport(o: EvaluateOptions): Promise<Record<string, unknown>> {
  await assertWritableDir(o.outDir, 'the evaluation output directory');
  const { plan, manifest } = await loadExport(o.exportDir);
  const meta = manifest.meta as unknown as ExportMeta;
  const n = Math.min(o.samples, o.test.count);
  if (n <= 0) throw new UserError('evaluate.samples must be at least 1 and the test split non-empty');
  const pixels = meta.shape[0] * meta.shape[1] * meta.shape[2];
  if (o.test.images.length / o.test.count !== pixels)
    throw new UserError(`${o.exportDir}: the plan expects ${meta.shape.join('x')} images, the dataset has another size`);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const xs = batchPixels(o.test, idx, meta.shape, meta.normalization);
  const labels = Array.from(o.test.labels.subarray(0, n));
  const inputs = Array.from({ length: n }, (_, i) => packInput(plan, xs.subarray(i * pixels, (i + 1) * pixels)));
  const report: Record<string, unknown> = {
    exportDir: o.exportDir,
    dataset: meta.dataset,
    samples: n,
    params: plan.params,
    depth: manifest.depth,
    staticCounts: manifest.totals.counts,
    plaintexts: manifest.totals.plaintexts,
    ...(manifest.totals.memory ? { memory: manifest.totals.memory } : {}),
    ...(plan.tiles ? { tiles: plan.tiles } : {}),
    galoisKeys: manifest.galoisKeySteps.length,
    composedRotations: manifest.composedRotations,
  };
  const estimated = estimatedServerSeconds(plan);
  report.estimatedServerSeconds = +estimated.toFixed(2);
  // A smoke check (reproduce --quick) should not wait many minutes per CKKS image.
  let encrypted = o.encrypted;
  if (encrypted && o.maxEstimatedSeconds !== undefined && estimated > o.maxEstimatedSeconds) {
    encrypted = false;
    report.ckksSkipped = `estimated ${estimated.toFixed(1)} s of server time per image > evaluate.maxEstimatedSeconds ${o.maxEstimatedSeconds}`;
    o.logger.info(`evaluate: CKKS not run: ${String(report.ckksSkipped)}; simulator only`);
  }
  const classify = meta.task === 'classification';
  const acc = (outs: number[][]) => outs.filter((y, i) => argmax(y) === labels[i]).length / n;
  // Reconstruction: mean squared error against the (normalised) input.
  const mse = (outs: number[][]) =>
    outs.reduce((a, y, i) => a + y.reduce((b, v, j) => b + (v - xs[i * pixels + j]) ** 2, 0) / y.length, 0) / n;
  const quality = (prefix: string, outs: number[][]) => (classify ? { [`${prefix}Accuracy`]: acc(outs) } : { [`${prefix}Mse`]: mse(outs) });

  // Plaintext reference: the tfjs model saved beside the plan.
  let plain: number[][] | undefined;
  if (await exists(join(o.exportDir, 'model', 'model.json'))) {
    const model = await loadModel(join(o.exportDir, 'model'));
    plain = tf.tidy(() => {
      const out = model.predict(tf.tensor4d(xs, [n, ...meta.shape])) as tf.Tensor;
      return out.arraySync() as number[][];
    });
    model.dispose();
    Object.assign(report, quality('plaintext', plain));
  }

  let simOut: number[][] | undefined;
  if (o.simulate) {
    const ctx = await CkksContext.create(plan.params); // only for the exact rescale primes; no keys
    const sim = new SlotSimulator({ slots: plan.slots, rescalePrimes: ctx.rescalePrimes, scale: ctx.scale });
    ctx.delete();
    const prepared = prepare(sim, plan);
    const t0 = performance.now();
    simOut = inputs.map((v) =>
      Array.from(
        unpackOutput(
          plan,
          run(
            sim,
            prepared,
            v.map((c) => sim.encrypt(sim.encode(c, sim.topLevel))),
            undefined,
            sim.refreshChannel(),
          ).map((c) => sim.decrypt(c)),
        ),
      ),
    );
    Object.assign(report, quality('simulated', simOut));
    report.simulatedMsPerImage = +((performance.now() - t0) / n).toFixed(2);
    if (plain) report.simulatedMaxAbsError = maxAbsError(simOut, plain);
  }
  let deviation: { value: number; from: string } | undefined;

  if (encrypted) {
    const bar = epochProgress('CKKS', n, o.logger);
    const { results, setups, wallMs } = await evaluateEncrypted({
      exportDir: o.exportDir,
      inputs,
      workers: o.workers,
      plaintextBudget: o.plaintextBudget,
      onResult: (d) => bar.update(d),
    });
    bar.stop();
    const outs = results.map((r) => r.output);
    Object.assign(report, quality('ckks', outs));
    if (plain) {
      if (classify) report.agreement = outs.filter((y, i) => argmax(y) === argmax(plain![i])).length / n;
      const err = maxAbsError(outs, plain);
      report.maxAbsError = err;
      report.precisionBits = precisionBits(err);
      // An absolute error means little without the outputs' size (an x² CNN's logits measured here run to 164).
      const size = maxAbs(plain);
      report.maxAbsOutput = size;
      report.relativeError = size > 0 ? err / size : err;
    }
    // What CKKS itself loses: its outputs against the simulator's (exact arithmetic on the same plan), else the plaintext model's.
    const ref = simOut ?? plain;
    if (ref) {
      const size = maxAbs(ref);
      deviation = {
        value: size > 0 ? maxAbsError(outs, ref) / size : maxAbsError(outs, ref),
        from: simOut ? 'simulator' : 'plaintext model',
      };
      report.ckksDeviation = { ...deviation, tolerance: o.tolerance ?? 0.05 };
    }
    const stepNames = results[0].steps.map((s) => s.name);
    report.latencyMs = {
      server: summarize(results.map((r) => r.serverMs)),
      encrypt: summarize(results.map((r) => r.encryptMs)),
      decrypt: summarize(results.map((r) => r.decryptMs)),
      perStep: Object.fromEntries(stepNames.map((s, j) => [s, summarize(results.map((r) => r.steps[j].ms))])),
    };
    report.throughput = {
      workers: setups.length,
      wallSeconds: +(wallMs / 1000).toFixed(2),
      imagesPerSecond: +(n / (wallMs / 1000)).toFixed(3),
    };
    report.opCountsPerImage = results[0].counts;
    report.perStepOpCounts = Object.fromEntries(manifest.steps.map((s) => [s.name, s.counts]));
    // The keys really generated (with composed rotations the manifest lists none per step).
    report.galoisKeys = setups[0].galoisKeys;
    report.keys = {
      keygenMs: summarize(setups.map((s) => s.keygenMs)),
      prepareMs: summarize(setups.map((s) => s.prepareMs)),
      galoisKeys: setups[0].galoisKeys,
      galoisKeyBytes: setups[0].galoisKeyBytes,
      relinKeyBytes: setups[0].relinKeyBytes,
      lazyOperands: setups[0].lazyOperands,
    };
    report.ciphertextBytes = { up: summarize(results.map((r) => r.bytesUp)), down: summarize(results.map((r) => r.bytesDown)) };
    // More than the input's own when the client also sends rotated copies (export.clientRotations).
    report.ciphertextsUp = sentCiphertexts(plan);
    if (results[0].refreshes) {
      report.refresh = {
        perImage: results[0].refreshes,
        maskBits: plan.refresh?.maskBits,
        bytesPerImage: summarize(results.map((r) => r.refreshBytes)),
        clientMsPerImage: summarize(results.map((r) => r.refreshClientMs)),
      };
    }
    report.memory = { peakSealHeapBytes: Math.max(...results.map((r) => r.heapBytes)), mainRssBytes: process.memoryUsage().rss };
    const csv = createObjectCsvStringifier({
      header: [
        { id: 'i', title: 'image' },
        { id: 'label', title: 'label' },
        { id: 'plain', title: 'plaintext_pred' },
        { id: 'ckks', title: 'ckks_pred' },
        { id: 'server', title: 'server_ms' },
        { id: 'enc', title: 'encrypt_ms' },
        { id: 'dec', title: 'decrypt_ms' },
        { id: 'up', title: 'bytes_up' },
        { id: 'down', title: 'bytes_down' },
        { id: 'err', title: 'max_abs_error' },
      ],
    });
    const rows = results.map((r, i) => ({
      i,
      label: labels[i],
      plain: plain ? argmax(plain[i]) : '',
      ckks: argmax(r.output),
      server: r.serverMs.toFixed(1),
      enc: r.encryptMs.toFixed(1),
      dec: r.decryptMs.toFixed(1),
      up: r.bytesUp,
      down: r.bytesDown,
      err: plain ? Math.max(...r.output.map((v, j) => Math.abs(v - plain![i][j]))).toExponential(3) : '',
    }));
    await keepResult(o, 'evaluation.csv', csv.getHeaderString()! + csv.stringifyRecords(rows));
  }
  await keepResult(o, 'evaluation.json', JSON.stringify(report, null, 2) + '\n');
  const lat = report.latencyMs as { perStep?: Record<string, { median: number }>; server?: { median: number } } | undefined;
  if (lat?.perStep) {
    const title = `${String((manifest.meta as { model?: string }).model ?? 'model')} under CKKS: ${lat.server!.median.toFixed(0)} ms per image, N=${plan.params.polyModulusDegree}`;
    await writeLatencyPlot(join(o.outDir, 'evaluation-latency'), lat.perStep, title).catch((e) =>
      o.logger.warn(`evaluate: latency plot not drawn: ${(e as Error).message}`),
    );
  }
  const tolerance = o.tolerance ?? 0.05;
  if (deviation && !(deviation.value <= tolerance)) {
    throw new UserError(
      `CKKS outputs deviate from the ${deviation.from}'s by ${(100 * deviation.value).toPrecision(3)}% of the largest output, beyond the tolerance ` +
        `of ${+(100 * tolerance).toPrecision(3)}% (evaluate.tolerance): the encrypted results are noise, not the model's. Likely causes: a scale too small for the values ` +
        `(export.scaleBits), too few levels of headroom, or a model whose values explode (check its training curves). The evaluation is kept in ${join(o.outDir, 'evaluation.json')}`,
    );
  }
  return report;
}
