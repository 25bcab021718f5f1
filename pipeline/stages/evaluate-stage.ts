import { UserError } from '../../common/errors.js';
import { evaluateExport } from '../../evaluate/evaluate.js';
import type { EvaluateConfig } from '../../evaluate/options.js';
import type { StageContext } from '../context.js';
import { fingerprint } from '../run-dir.js';
import { exists } from '../../datasets/fs-util.js';

/** Plaintext, simulated and CKKS accuracy and cost of the run's export → runs/<name>/evaluation.json. */
export async function evaluateStage(ctx: StageContext, e: EvaluateConfig): Promise<void> {
  const { run, logger } = ctx;
  if (!ctx.fingerprints.export) throw new UserError('the evaluate stage needs an export section (it evaluates the exported plan)');
  const fp = fingerprint(ctx.fingerprints.export, e);
  const done = run.completed('evaluate', fp);
  if (done && await exists(run.file('evaluation.json'))) { logger.info('evaluate: already complete; skipped'); ctx.summary.evaluate = done.result; return; }
  const r = await evaluateExport({ exportDir: run.file('export'), test: ctx.data!.test, samples: e.samples, encrypted: e.encrypted, simulate: e.simulate, workers: e.workers, plaintextBudget: e.plaintextBudgetMB * 2 ** 20, maxEstimatedSeconds: e.maxEstimatedSeconds, tolerance: e.tolerance, outDir: run.path, logger });
  const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(2)}%` : '-');
  const lat = r.latencyMs as { server: { mean: number } } | undefined;
  const q = r.plaintextMse !== undefined || r.ckksMse !== undefined
    ? `MSE plaintext ${(r.plaintextMse as number)?.toExponential(3)}, simulated ${(r.simulatedMse as number)?.toExponential(3)}, CKKS ${(r.ckksMse as number)?.toExponential(3)}`
    : `plaintext ${pct(r.plaintextAccuracy)}, simulated ${pct(r.simulatedAccuracy)}, CKKS ${pct(r.ckksAccuracy)}, agreement ${pct(r.agreement)}`;
  const err = typeof r.maxAbsError === 'number' && typeof r.relativeError === 'number'
    ? `, max error ${r.maxAbsError.toExponential(2)} (${(100 * r.relativeError).toPrecision(2)}% of the largest output)` : '';
  logger.info(`evaluate (${r.samples} images): ${q}${err}${lat ? `, server ${lat.server.mean.toFixed(0)} ms/image` : ''}`);
  const result = { ...r, file: run.file('evaluation.json') };
  ctx.summary.evaluate = result;
  await run.markDone('evaluate', fp, result);
}
