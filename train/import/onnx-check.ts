import * as tf from '@tensorflow/tfjs';
import { loadOnnxRuntime } from '../onnx/runtime.js';
import type { ImportedModel } from './onnx-import.js';

/**
 * The imported model against onnxruntime on the original file, for a few
 * seeded random inputs: the largest output difference relative to the
 * outputs' size. Skipped (with the reason) without onnxruntime-node.
 */
export async function checkImport(
  bytes: Uint8Array,
  m: ImportedModel,
  samples = 4,
): Promise<{ relativeError: number; samples: number } | { skipped: string }> {
  const { ort, reason } = await loadOnnxRuntime();
  if (!ort) return { skipped: reason ?? 'onnxruntime-node is not installed' };
  const [H, W, C] = m.inputShape;
  const session = await ort.InferenceSession.create(bytes);
  const inputName = (session as unknown as { inputNames: string[] }).inputNames[0];
  const outputName = (session as unknown as { outputNames: string[] }).outputNames[0];
  const nhwc = tf.tidy(() => tf.randomNormal([samples, H, W, C], 0, 1, 'float32', 17));
  try {
    const nchw = tf.tidy(() => tf.transpose(nhwc, [0, 3, 1, 2]).dataSync() as Float32Array);
    const Tensor = (ort as unknown as { Tensor: new (t: string, d: Float32Array, s: number[]) => unknown }).Tensor;
    const out = (await session.run({ [inputName]: new Tensor('float32', Float32Array.from(nchw), [samples, C, H, W]) } as never)) as Record<
      string,
      { data: Float32Array }
    >;
    const ref = out[outputName].data;
    const got = tf.tidy(() => (m.model.predict(nhwc) as tf.Tensor).dataSync());
    let diff = 0,
      size = 1;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - ref[i]));
      size = Math.max(size, Math.abs(ref[i]));
    }
    return { relativeError: diff / size, samples };
  } finally {
    nhwc.dispose();
  }
}
