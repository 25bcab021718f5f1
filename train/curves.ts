import type { TopLevelSpec } from 'vega-lite';
import { PLOT_CONFIG, writePlot } from '../common/plot.js';
import type { EpochMetrics } from './metrics-csv.js';

/** Loss (and accuracy for classifiers) per epoch, training against validation: train/curves.svg and curves.png. */
export async function writeTrainingCurves(base: string, history: EpochMetrics[], title: string): Promise<void> {
  const rows = history.flatMap((h) => [
    { epoch: h.epoch, metric: 'loss', split: 'train', value: h.trainLoss },
    { epoch: h.epoch, metric: 'loss', split: 'validation', value: h.valLoss },
    ...(h.trainAccuracy !== undefined ? [{ epoch: h.epoch, metric: 'accuracy %', split: 'train', value: 100 * h.trainAccuracy }] : []),
    ...(h.valAccuracy !== undefined ? [{ epoch: h.epoch, metric: 'accuracy %', split: 'validation', value: 100 * h.valAccuracy }] : []),
  ]);
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    config: PLOT_CONFIG,
    data: { values: rows },
    hconcat: metrics.map((m) => ({
      width: 320,
      height: 220,
      transform: [{ filter: { field: 'metric', equal: m } }],
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: m, scale: m === 'loss' ? { type: 'log' } : { zero: false } },
        color: { field: 'split', type: 'nominal', title: null },
      },
    })),
  };
  await writePlot(base, spec);
}
