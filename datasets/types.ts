/**
 * A loaded image-classification dataset. Pixels stay as raw uint8 in HWC
 * order (channels last, like tfjs); normalisation happens per batch, so a
 * 50k-image CIFAR-10 split holds 150 MB, not 600 MB of float32.
 */
export interface Split {
  /** count × height × width × channels bytes, image-major, HWC. */
  readonly images: Uint8Array;
  readonly labels: Int32Array;
  readonly count: number;
}

export interface ImageDataset {
  readonly name: string;
  /** [height, width, channels] */
  readonly shape: readonly [number, number, number];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly train: Split;
  readonly test: Split;
  /** Where the data came from, for the run summary. */
  readonly source: string;
  /** True for generated data (tests only). Reports mark it. */
  readonly synthetic?: boolean;
}

export function imageSize(shape: readonly [number, number, number]): number {
  return shape[0] * shape[1] * shape[2];
}

/** Sub-split holding the given indices (copied, so the source can be freed). */
export function takeIndices(split: Split, indices: ArrayLike<number>, pixels: number): Split {
  const n = indices.length;
  const images = new Uint8Array(n * pixels);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i];
    images.set(split.images.subarray(j * pixels, (j + 1) * pixels), i * pixels);
    labels[i] = split.labels[j];
  }
  return { images, labels, count: n };
}

/** The first `n` examples (a view, no copy). */
export function headOf(split: Split, n: number, pixels: number): Split {
  const k = Math.min(n, split.count);
  return { images: split.images.subarray(0, k * pixels), labels: split.labels.subarray(0, k), count: k };
}
