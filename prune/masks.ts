import * as tf from '@tensorflow/tfjs';
import { applyKernelMasks, kernelOf, type KernelMasks } from '../train/kernel-masks.js';

/** Kernel masks by layer name (1 keep, 0 pruned), the kernel's flattened shape. */
export type Masks = KernelMasks;
export { kernelOf, applyKernelMasks as applyMasks };

export function kernelValues(model: tf.LayersModel, name: string): Float32Array {
  return kernelOf(model, name).read().dataSync() as Float32Array;
}

/** Fraction of masked-out weights over the masked layers. */
export function maskSparsity(masks: Masks): number {
  let zeros = 0,
    total = 0;
  for (const m of masks.values()) {
    total += m.length;
    for (const v of m) if (v === 0) zeros++;
  }
  return total ? zeros / total : 0;
}

/** Runs `f` with the masks applied, then restores every masked kernel exactly (for probing what a mask would cost). */
export function withMasks<T>(model: tf.LayersModel, masks: Masks, f: () => T): T {
  const saved = [...masks.keys()].map((name) => ({ v: kernelOf(model, name), values: kernelValues(model, name).slice() }));
  applyKernelMasks(model, masks);
  try {
    return f();
  } finally {
    for (const { v, values } of saved)
      tf.tidy(() => {
        v.write(tf.tensor(values, v.shape as number[]));
      });
  }
}
