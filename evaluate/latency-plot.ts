import type { TopLevelSpec } from 'vega-lite';
import { PLOT_CONFIG, writePlot } from '../common/plot.js';

/** The server's time per plan step (median over the images), in plan order: evaluation-latency.svg/png. */
export async function writeLatencyPlot(base: string, perStep: Record<string, { median: number }>, title: string): Promise<void> {
  const rows = Object.entries(perStep).map(([step, s], i) => ({ step: `${i + 1}. ${step}`, ms: s.median }));
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    config: PLOT_CONFIG,
    width: 420,
    height: { step: 22 },
    data: { values: rows },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'step', type: 'nominal', sort: null, title: 'plan step' },
          x: { field: 'ms', type: 'quantitative', title: 'server ms per image (median)' },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 3 },
        encoding: {
          y: { field: 'step', type: 'nominal', sort: null },
          x: { field: 'ms', type: 'quantitative' },
          text: { field: 'ms', type: 'quantitative', format: '.0f' },
        },
      },
    ],
  };
  await writePlot(base, spec);
}
