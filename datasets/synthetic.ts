import { Rng } from '../common/rng.js';
import type { DatasetSource } from './source.js';
import type { ImageDataset, Split } from './types.js';

/**
 * SYNTHETIC data, for fast tests only: class k is a bright square at a
 * class-dependent place plus noise. Learnable in a few steps, so tests can
 * check that training moves; never a stand-in for a real accuracy figure.
 */
function makeSplit(count: number, h: number, w: number, ch: number, classes: number, rng: Rng): Split {
  const pixels = h * w * ch;
  const images = new Uint8Array(count * pixels);
  const labels = new Int32Array(count);
  const side = Math.max(2, Math.floor(Math.min(h, w) / 3));
  for (let n = 0; n < count; n++) {
    const k = rng.int(classes);
    labels[n] = k;
    const oy = Math.floor((((k * 7) % classes) / classes) * (h - side));
    const ox = Math.floor((k / classes) * (w - side));
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const inside = y >= oy && y < oy + side && x >= ox && x < ox + side;
        for (let c = 0; c < ch; c++) {
          const v = (inside ? 200 : 30) + 25 * rng.normal();
          images[n * pixels + (y * w + x) * ch + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
  }
  return { images, labels, count };
}

export const syntheticSource: DatasetSource = {
  name: 'synthetic',
  description: 'SYNTHETIC generated images for tests only (not a real dataset)',
  async locate() {
    return { found: true, path: '(generated)', howToGet: 'always available' };
  },
  async load(opts): Promise<ImageDataset> {
    const [h, w] = opts.imageSize ?? [28, 28];
    const ch = opts.channels ?? 1;
    const classes = opts.numClasses ?? 10;
    const rng = new Rng(opts.seed ?? 1);
    return {
      name: 'synthetic',
      shape: [h, w, ch],
      numClasses: classes,
      classNames: Array.from({ length: classes }, (_, i) => `class${i}`),
      train: makeSplit(opts.trainCount ?? 512, h, w, ch, classes, rng),
      test: makeSplit(opts.testCount ?? 128, h, w, ch, classes, rng),
      source: 'SYNTHETIC (generated, tests only)',
      synthetic: true,
    };
  },
};
