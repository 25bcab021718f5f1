import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { headOf, imageSize, takeIndices, type ImageDataset, type Split } from './types.js';

/**
 * Per-channel affine normalisation x' = (x/255 - mean) / std. Recorded in the
 * run summary so export and evaluation normalise client inputs identically.
 */
export interface Normalization {
  kind: 'unit' | 'symmetric' | 'standard';
  mean: number[];
  std: number[];
}

export interface PreparedData {
  name: string;
  shape: readonly [number, number, number];
  numClasses: number;
  train: Split;
  validation: Split;
  test: Split;
  normalization: Normalization;
  synthetic: boolean;
  source: string;
}

export interface PrepareOptions {
  normalize: Normalization['kind'];
  /** Fraction of the training split held out for validation (0 = none). */
  validation: number;
  seed: number;
  /** Optional caps, for quick runs and tests. */
  trainLimit?: number;
  /** Caps the validation examples only: training keeps the same examples as without it. */
  validationLimit?: number;
  testLimit?: number;
}

function channelStats(split: Split, ch: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(ch),
    sq = new Float64Array(ch);
  const px = split.images;
  for (let i = 0; i < px.length; i++) {
    const v = px[i] / 255;
    sum[i % ch] += v;
    sq[i % ch] += v * v;
  }
  const n = px.length / ch;
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sq, (s, c) => Math.sqrt(Math.max(s / n - mean[c] ** 2, 1e-12)));
  return { mean, std };
}

export function normalizationFor(kind: Normalization['kind'], train: Split, ch: number): Normalization {
  if (kind === 'unit') return { kind, mean: Array(ch).fill(0), std: Array(ch).fill(1) };
  if (kind === 'symmetric') return { kind, mean: Array(ch).fill(0.5), std: Array(ch).fill(0.5) };
  return { kind, ...channelStats(train, ch) };
}

export function prepareData(ds: ImageDataset, o: PrepareOptions): PreparedData {
  const pixels = imageSize(ds.shape);
  if (!(o.validation >= 0 && o.validation < 1)) throw new UserError(`dataset.validation must be in [0, 1), got ${o.validation}`);
  // Shuffle once with the seed, then cut validation off the front: the same
  // seed always gives the same split, so a resumed run validates identically.
  const perm = new Rng(o.seed).permutation(ds.train.count);
  let train = takeIndices(ds.train, perm, pixels);
  const nVal = Math.round(train.count * o.validation);
  const validation = headOf(train, o.validationLimit !== undefined ? Math.min(nVal, o.validationLimit) : nVal, pixels);
  train = { images: train.images.subarray(nVal * pixels), labels: train.labels.subarray(nVal), count: train.count - nVal };
  if (o.trainLimit !== undefined) train = headOf(train, o.trainLimit, pixels);
  const test = o.testLimit !== undefined ? headOf(ds.test, o.testLimit, pixels) : ds.test;
  for (const [what, s] of [
    ['train', train],
    ['test', test],
  ] as const) {
    for (let i = 0; i < s.count; i++) {
      const l = s.labels[i];
      if (l < 0 || l >= ds.numClasses)
        throw new UserError(`${ds.source}: ${what} label ${l} at index ${i} is outside 0..${ds.numClasses - 1}`);
    }
  }
  return {
    name: ds.name,
    shape: ds.shape,
    numClasses: ds.numClasses,
    train,
    validation,
    test,
    normalization: normalizationFor(o.normalize, train, ds.shape[2]),
    synthetic: !!ds.synthetic,
    source: ds.source,
  };
}

/** Training-time augmentation: random translation by up to `shift` pixels (zero fill) and horizontal flips. */
export interface Augment {
  shift: number;
  flip: boolean;
  rng: Rng;
}

/**
 * Normalised float32 pixels of examples `indices`, HWC (only one batch is
 * materialised at a time), optionally augmented per image.
 */
export function batchPixels(
  split: Split,
  indices: ArrayLike<number>,
  shape: readonly [number, number, number],
  norm: Normalization,
  aug?: Augment,
): Float32Array {
  const [h, w, ch] = shape;
  const pixels = h * w * ch;
  const out = new Float32Array(indices.length * pixels);
  const scale = norm.std.map((s) => 1 / (255 * s));
  const shift = norm.mean.map((m, c) => m / norm.std[c]);
  const plain = !aug || (aug.shift === 0 && !aug.flip);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i] * pixels,
      dst = i * pixels;
    if (plain) {
      for (let p = 0; p < pixels; p++) {
        const c = p % ch;
        out[dst + p] = split.images[src + p] * scale[c] - shift[c];
      }
      continue;
    }
    const dy = aug.shift ? aug.rng.int(2 * aug.shift + 1) - aug.shift : 0;
    const dx = aug.shift ? aug.rng.int(2 * aug.shift + 1) - aug.shift : 0;
    const flip = aug.flip && aug.rng.next() < 0.5;
    for (let y = 0; y < h; y++) {
      const sy = y - dy;
      for (let x = 0; x < w; x++) {
        const sx0 = x - dx,
          sx = flip ? w - 1 - sx0 : sx0;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        for (let c = 0; c < ch; c++) {
          const v = inside ? split.images[src + (sy * w + sx) * ch + c] : 0;
          out[dst + (y * w + x) * ch + c] = v * scale[c] - shift[c];
        }
      }
    }
  }
  return out;
}

export function batchLabels(split: Split, indices: ArrayLike<number>): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = split.labels[indices[i]];
  return out;
}

/** Index batches over `count` examples; shuffled by `rng` when given. The last batch may be short. */
export function* batchIndices(count: number, batchSize: number, rng?: Rng): Generator<Int32Array> {
  const order = rng ? rng.permutation(count) : Int32Array.from({ length: count }, (_, i) => i);
  for (let s = 0; s < count; s += batchSize) yield order.subarray(s, Math.min(count, s + batchSize));
}
