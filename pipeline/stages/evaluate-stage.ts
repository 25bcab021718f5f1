import { UserError } from '../../common/errors.js';
import { evaluateExport } from '../../evaluate/evaluate.js';
import type { EvaluateConfig } from '../../evaluate/options.js';
import type { StageContext } from '../context.js';
import { fingerprint } from '../run-dir.js';
import { evaluateResultSchema } from '../stage-results.js';
import { exists } from '../../datasets/fs-util.js';

/** Plaintext, simulated and CKKS accuracy and cost of the run's export → runs/<name>/evaluation.json. */
export async function evaluateStage(ctx: StageContext, e: EvaluateConfig): Promise<void> {
  const { run, logger } = ctx;
  if (!ctx.fingerprints.export) throw new UserError('the evaluate stage needs an export section (it evaluates the exported plan)');
  const fp = fingerprint(ctx.fingerprints.export, e);
  const done = run.finished('evaluate', fp);
  if (done && (await exists(run.file('evaluation.json')))) {
    logger.info('evaluate: already complete; skipped');
    ctx.results.evaluate = done;
    return;
  }
  const report = await evaluateExport({
    exportDir: run.file('export'),
    test: ctx.data!.test,
    samples: e.samples,
    encrypted: e.encrypted,
    simulate: e.simulate,
    workers: e.workers,
    plaintextBudget: e.plaintextBudgetMB * 2 ** 20,
    maxEstimatedSeconds: e.maxEstimatedSeconds,
    tolerance: e.tolerance,
    outDir: run.path,
    logger,
  });
  const r = evaluateResultSchema.parse({ ...report, file: run.file('evaluation.json') });
  const pct = (v: number | undefined) => (v !== undefined ? `${(100 * v).toFixed(2)}%` : '-');
  const exp = (v: number | undefined) => v?.toExponential(3);
  const q =
    r.plaintextMse !== undefined || r.ckksMse !== undefined
      ? `MSE plaintext ${exp(r.plaintextMse)}, simulated ${exp(r.simulatedMse)}, CKKS ${exp(r.ckksMse)}`
      : `plaintext ${pct(r.plaintextAccuracy)}, simulated ${pct(r.simulatedAccuracy)}, CKKS ${pct(r.ckksAccuracy)}, agreement ${pct(r.agreement)}`;
  const err =
    r.maxAbsError !== undefined && r.relativeError !== undefined
      ? `, max error ${r.maxAbsError.toExponential(2)} (${(100 * r.relativeError).toPrecision(2)}% of the largest output)`
      : '';
  logger.info(`evaluate (${r.samples} images): ${q}${err}${r.latencyMs ? `, server ${r.latencyMs.server.mean.toFixed(0)} ms/image` : ''}`);
  ctx.results.evaluate = r;
  await run.markDone('evaluate', fp, r);
}
