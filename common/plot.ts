import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from './atomic-write.js';

/**
 * Renders a Vega-Lite chart headlessly to `<base>.svg` and `<base>.png`
 * (the SVG rasterised by sharp at 2x), both written atomically.
 */
export async function writePlot(base: string, spec: TopLevelSpec): Promise<{ svg: string; png: string }> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png` };
}

/** Common look: white background, readable fonts. */
export const PLOT_CONFIG = {
  background: 'white',
  font: 'DejaVu Sans',
  axis: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14 },
} as const;
