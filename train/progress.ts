import cliProgress from 'cli-progress';
import type { Logger } from '../common/log.js';

/**
 * Epoch progress: a live bar with loss, accuracy and ETA on a terminal; on a
 * pipe or in CI a plain line every ~10% so logs stay readable.
 */
export interface EpochProgress {
  update(step: number, metrics?: { loss: number; acc?: number }): void;
  stop(): void;
}

export function epochProgress(label: string, total: number, logger: Logger): EpochProgress {
  if (process.stderr.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} | loss {loss} | acc {acc} | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { loss: '-', acc: '-' });
    return {
      update: (step, m) =>
        bar.update(step, { loss: m ? m.loss.toFixed(4) : '-', acc: m?.acc === undefined ? '-' : (100 * m.acc).toFixed(2) + '%' }),
      stop: () => bar.stop(),
    };
  }
  const t0 = Date.now();
  let nextMark = 0.1;
  return {
    update(step, m) {
      const frac = step / total;
      if (frac >= nextMark && step < total) {
        nextMark += 0.1;
        const eta = (((Date.now() - t0) / step) * (total - step)) / 1000;
        const loss = m ? ` loss ${m.loss.toFixed(4)}` : '';
        logger.info(
          `${label} ${step}/${total}${loss}${m?.acc === undefined ? '' : ` acc ${(100 * m.acc).toFixed(2)}%`} ETA ${eta.toFixed(0)}s`,
        );
      }
    },
    stop() {},
  };
}
