import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { PLOT_CONFIG, writePlot } from '../common/plot.js';

/** What a reproduce plot reads of a table row. */
export interface PlotRow {
  row: string;
  label: string;
  accuracy?: number;
  mse?: number;
  latencyMs?: number;
  ciphertexts?: number;
  plaintexts?: number;
}

/**
 * Beside table.md: accuracy (MSE for reconstruction tables) against CKKS
 * server latency, and against the plan's ciphertexts and plaintexts (tiles),
 * one colour per table row, each point named by its method. A plot whose
 * axes no row fills is not drawn. Returns the files written.
 */
export async function writeReproducePlots(dir: string, table: string, rows: PlotRow[]): Promise<string[]> {
  const quality = rows.some((r) => r.accuracy !== undefined)
    ? { field: 'accuracy', title: 'test accuracy %', of: (r: PlotRow) => (r.accuracy === undefined ? undefined : 100 * r.accuracy) }
    : { field: 'mse', title: 'test MSE', of: (r: PlotRow) => r.mse };
  const point = (x: { field: string; title: string; log?: boolean }, values: Record<string, unknown>[]) => ({
    width: 360,
    height: 260,
    data: { values },
    layer: [
      {
        mark: { type: 'point' as const, filled: true, size: 80 },
        encoding: {
          x: {
            field: x.field,
            type: 'quantitative' as const,
            title: x.title,
            scale: x.log ? { type: 'log' as const } : { zero: false },
            ...(x.log ? {} : { axis: { format: 'd', tickMinStep: 1 } }),
          },
          y: { field: quality.field, type: 'quantitative' as const, title: quality.title, scale: { zero: false } },
          color: { field: 'row', type: 'nominal' as const, title: null },
          tooltip: [{ field: 'label' }, { field: x.field }, { field: quality.field }],
        },
      },
      {
        mark: { type: 'text' as const, align: 'left' as const, dx: 6, dy: -6, fontSize: 10 },
        encoding: {
          x: { field: x.field, type: 'quantitative' as const },
          y: { field: quality.field, type: 'quantitative' as const },
          text: { field: 'label' },
        },
      },
    ],
  });
  const base = (r: PlotRow) => ({ row: r.row, label: r.label, [quality.field]: quality.of(r) });
  const written: string[] = [];
  const timed = rows
    .filter((r) => r.latencyMs !== undefined && quality.of(r) !== undefined)
    .map((r) => ({ ...base(r), latency: r.latencyMs }));
  if (timed.length) {
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: `${table}: ${quality.title} against CKKS latency`,
      config: PLOT_CONFIG,
      ...point({ field: 'latency', title: 'CKKS server ms per image (median, log scale)', log: true }, timed),
    } as TopLevelSpec;
    written.push((await writePlot(join(dir, 'accuracy-latency'), spec)).png);
  }
  const sized = rows
    .filter((r) => r.ciphertexts !== undefined && quality.of(r) !== undefined)
    .map((r) => ({ ...base(r), ciphertexts: r.ciphertexts, plaintexts: r.plaintexts }));
  if (sized.length) {
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: `${table}: ${quality.title} against the plan's size`,
      config: PLOT_CONFIG,
      hconcat: [
        point({ field: 'ciphertexts', title: 'ciphertexts (inputs and intermediates)' }, sized),
        point({ field: 'plaintexts', title: 'plaintexts (weight diagonals or tiles)' }, sized),
      ],
    } as TopLevelSpec;
    written.push((await writePlot(join(dir, 'accuracy-size'), spec)).png);
  }
  return written;
}
