import * as tf from '@tensorflow/tfjs';
import { batchPixels, type PreparedData } from '../datasets/prepare.js';

/** Per layer: a scale of each of its input features over a calibration batch (RMS or standard deviation). */
export type InputScales = Map<string, Float32Array>;

/**
 * The RMS (or, `centred`, the standard deviation) of every input feature
 * of the named layers over the first `samples` training images.
 * Activation-aware importance (|w|·‖x‖, as in Wanda) needs it: a weight that reads a feature which is always zero does
 * nothing however large it is. MNIST's border pixels are such features, and
 * their weights never train, so they keep their initial size: by |w| alone
 * a tile of them outranks a tile of the digit's centre.
 */
export function inputScales(
  model: tf.LayersModel,
  layers: string[],
  data: Pick<PreparedData, 'train' | 'shape' | 'normalization'>,
  o: { samples?: number; centred?: boolean } = {},
): InputScales {
  const samples = o.samples ?? 512;
  const n = Math.min(samples, data.train.count);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const probe = tf.model({ inputs: model.inputs, outputs: layers.map((l) => model.getLayer(l).input as tf.SymbolicTensor) });
  const scales: InputScales = new Map();
  tf.tidy(() => {
    const xs = tf.tensor4d(batchPixels(data.train, idx, data.shape, data.normalization), [n, ...data.shape]);
    const outs = probe.predict(xs);
    const list = Array.isArray(outs) ? outs : [outs];
    layers.forEach((l, k) => {
      const x = list[k].reshape([n, -1]);
      // Centred: the standard deviation, what a feature carries beyond a constant (which the next bias can absorb).
      const v = o.centred ? x.sub(x.mean(0)) : x;
      scales.set(l, v.square().mean(0).sqrt().dataSync() as Float32Array);
    });
  });
  return scales;
}

/** Importance of each kernel weight (tfjs [nIn, nOut] order): |w| times its input's scale. */
export function scaledImportance(kernel: Float32Array, scale: Float32Array): Float32Array {
  const nOut = kernel.length / scale.length;
  return Float32Array.from(kernel, (w, k) => Math.abs(w) * scale[Math.floor(k / nOut)]);
}
