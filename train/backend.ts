import * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { loadOnnxRuntime } from './onnx/runtime.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

export const BACKENDS = ['auto', 'onnx', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKENDS)[number];
export type BackendName = Exclude<BackendRequest, 'auto'>;

async function tryTensorflow(): Promise<boolean> {
  try {
    // Optional dependency: its install downloads libtensorflow, which fails
    // offline, and then the package is simply absent.
    await import('@tensorflow/tfjs-node' as string);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) return false;
    registerWasmTrainingKernels();
    return true;
  } catch {
    return false;
  }
}

/**
 * Selects the training backend: `onnx` (onnxruntime-node runs the training
 * step; tfjs still holds the model, on wasm or cpu) if it loads, else the
 * tfjs backend `tensorflow` (tfjs-node), else `wasm`, else `cpu`; an explicit
 * request that cannot be met is an error. Returns the backend in use, which
 * callers record in summaries.
 */
export async function initBackend(request: BackendRequest = 'auto'): Promise<BackendName> {
  // Production mode: no per-op debug checks and no console banners from tfjs
  // (set HEPRUNE_TFJS_DEBUG=1 to get tfjs's checks back).
  if (!process.env.HEPRUNE_TFJS_DEBUG) tf.env().set('PROD', true);
  if (request === 'onnx' || request === 'auto') {
    const { ort, reason } = await loadOnnxRuntime();
    if (ort) {
      // tfjs still holds the model (evaluation, pruning, export): its fastest backend here.
      const tfjsBackend = tf.getBackend();
      if (tfjsBackend !== 'tensorflow' && tfjsBackend !== 'wasm' && !(await tryTensorflow()) && !(await tryWasm()))
        await tf.setBackend('cpu');
      await tf.ready();
      return 'onnx';
    }
    if (request === 'onnx')
      throw new UserError(
        `train.backend onnx is not available on this machine: onnxruntime-node (an optional dependency) does not load (${reason}); use --backend wasm`,
      );
  }
  const current = tf.getBackend() as BackendName | undefined;
  if (request !== 'auto' && current === request) return current;
  const order: BackendName[] = request === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [request];
  for (const name of order) {
    const ok = name === 'tensorflow' ? await tryTensorflow() : name === 'wasm' ? await tryWasm() : await tf.setBackend('cpu');
    if (ok) {
      await tf.ready();
      return name;
    }
  }
  const hint =
    request === 'tensorflow'
      ? ' (@tensorflow/tfjs-node is an optional dependency that needs to download libtensorflow at install time; use --backend wasm)'
      : '';
  throw new UserError(`tfjs backend '${request}' is not available on this machine${hint}`);
}
