import { availableParallelism } from 'node:os';

/**
 * The part of onnxruntime-node's API the trainer uses, declared here because
 * the package is an optional dependency: the project builds and runs (on the
 * wasm backend) where it is absent.
 */
export interface OrtTensor {
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
  readonly dims: readonly number[];
  dispose?(): void;
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
  readonly inputNames: readonly string[];
}
export interface OrtApi {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  env: { versions?: { node?: string } };
}

let loaded: Promise<{ ort?: OrtApi; reason?: string }> | undefined;

/** Loads onnxruntime-node once; `reason` says why it is unavailable. */
export function loadOnnxRuntime(): Promise<{ ort?: OrtApi; reason?: string }> {
  // HEPRUNE_ONNX=off: behave as where the package is absent (the fallback, tested on machines that have it).
  if (process.env.HEPRUNE_ONNX === 'off') return Promise.resolve({ reason: 'disabled by HEPRUNE_ONNX=off' });
  loaded ??= import('onnxruntime-node' as string).then(
    (m: { default?: OrtApi } & OrtApi) => ({ ort: (m.InferenceSession ? m : m.default) as OrtApi }),
    (e: Error) => ({ reason: e.message.split('\n')[0] }),
  );
  return loaded;
}

/** Session options for training graphs: all graph optimisations, one op at a time on every core. */
export function sessionOptions(threads = availableParallelism()): Record<string, unknown> {
  return {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    enableCpuMemArena: true,
  };
}
