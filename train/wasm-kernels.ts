/**
 * Training on the wasm backend (DESIGN §2): stock tfjs-backend-wasm lacks
 * Conv2DBackpropFilter (training fails), its Conv2DBackpropInput is slow, and
 * the batch-norm gradient tiles 1/sqrt(var) to the input's shape. All three
 * are rebuilt here from the backend's fast forward conv (XNNPACK):
 *
 *  dW: a forward conv in which the input's channels play the batch and dy
 *      plays the filter, dilated by the forward stride.
 *  dx: a forward stride-1 conv of the zero-dilated, padded dy with the
 *      spatially flipped, in/out-swapped filter.
 *  BN: the same formula as tfjs-core, broadcasting instead of tiling.
 *
 * The kernels call the backend's registered kernel functions directly (not tf
 * ops), so every intermediate is a backend buffer freed here.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo, NamedAttrMap, KernelBackend } from '@tensorflow/tfjs';

type Backend = KernelBackend & { disposeData(dataId: object, force?: boolean): boolean };
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

function call(name: string, backend: Backend, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>): TensorInfo {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm backend has no ${name} kernel`);
  return k.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

/** Runs `f`, then frees every temporary it registered (never the returned one). */
function withTemps(backend: Backend, f: (keep: (t: TensorInfo) => TensorInfo) => TensorInfo): TensorInfo {
  const temps: TensorInfo[] = [];
  const out = f((t) => { temps.push(t); return t; });
  for (const t of temps) if (t !== out) backend.disposeData(t.dataId);
  return out;
}

interface ConvGeometry { top: number; left: number; outH: number; outW: number; sh: number; sw: number }

function geometry(xShape: number[], filterShape: number[], strides: number | [number, number], pad: unknown, dimRoundingMode: unknown): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, 1, pad as 'same', dimRoundingMode as 'floor' | undefined, false, 'channelsLast');
  return { top: info.padInfo.top, left: info.padInfo.left, outH: info.outHeight, outW: info.outWidth, sh: info.strideHeight, sw: info.strideWidth };
}

function conv2DBackpropFilter({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: Backend; attrs: Record<string, unknown> }): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC');
  const [kh, kw] = filterShape;
  const [, H, W] = x.shape;
  const g = geometry(x.shape, filterShape, attrs.strides as [number, number], attrs.pad, attrs.dimRoundingMode);
  return withTemps(backend, (keep) => {
    // [N,H,W,Ci] -> [Ci,H,W,N]: channels become the batch, the batch the channels.
    const xT = keep(call('Transpose', backend, { x }, { perm: [3, 1, 2, 0] }));
    // [N,Ho,Wo,Co] -> [Ho,Wo,N,Co]: dy is the filter, contracting over N.
    const dyT = keep(call('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }));
    // Output spatial size must be exactly kh x kw; pad bottom/right to get there (or slice off extra).
    const bottom = Math.max(0, kh + (g.outH - 1) * g.sh - H - g.top);
    const right = Math.max(0, kw + (g.outW - 1) * g.sw - W - g.left);
    const pad: Pad4 = [[0, 0], [g.top, bottom], [g.left, right], [0, 0]];
    let r = keep(call('Conv2D', backend, { x: xT, filter: dyT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [g.sh, g.sw], dimRoundingMode: undefined }));
    if (r.shape[1] !== kh || r.shape[2] !== kw) {
      r = keep(call('Slice', backend, { x: r }, { begin: [0, 0, 0, 0], size: [r.shape[0], kh, kw, r.shape[3]] }));
    }
    // [Ci,kh,kw,Co] -> [kh,kw,Ci,Co]
    return call('Transpose', backend, { x: r }, { perm: [1, 2, 0, 3] });
  });
}

function conv2DBackpropInput({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: Backend; attrs: Record<string, unknown> }): TensorInfo {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as [number, number, number, number];
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropInput (wasm): only NHWC');
  const [kh, kw, ci] = filter.shape;
  const [N, H, W] = inputShape;
  const g = geometry(inputShape, filter.shape, attrs.strides as [number, number], attrs.pad, attrs.dimRoundingMode);
  const [, Ho, Wo, co] = dy.shape;
  return withTemps(backend, (keep) => {
    let d = dy;
    if (g.sh > 1 || g.sw > 1) {
      // Zero-dilate dy by the stride: [N,Ho,1,Wo,1,Co] padded to [N,Ho,sh,Wo,sw,Co], then trimmed.
      const r6 = keep(call('Reshape', backend, { x: dy }, { shape: [N, Ho, 1, Wo, 1, co] }));
      const p6 = keep(call('PadV2', backend, { x: r6 }, { paddings: [[0, 0], [0, 0], [0, g.sh - 1], [0, 0], [0, g.sw - 1], [0, 0]], constantValue: 0 }));
      const r4 = keep(call('Reshape', backend, { x: p6 }, { shape: [N, Ho * g.sh, Wo * g.sw, co] }));
      d = keep(call('Slice', backend, { x: r4 }, { begin: [0, 0, 0, 0], size: [N, (Ho - 1) * g.sh + 1, (Wo - 1) * g.sw + 1, co] }));
    }
    const flipped = keep(call('Reverse', backend, { x: filter }, { dims: [0, 1] }));
    const swapped = keep(call('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] }));
    // Full-correlation padding; a forward pad larger than k-1 would need negative padding: crop instead.
    const top = kh - 1 - g.top, left = kw - 1 - g.left;
    const Hd = d.shape[1], Wd = d.shape[2];
    const bottom = H + kh - 1 - Hd - top, right = W + kw - 1 - Wd - left;
    const cropT = Math.max(0, -top), cropL = Math.max(0, -left);
    const pad: Pad4 = [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
    let r = keep(call('Conv2D', backend, { x: d, filter: swapped }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined }));
    if (r.shape[1] !== H || r.shape[2] !== W || cropT || cropL) {
      r = keep(call('Slice', backend, { x: r }, { begin: [0, cropT, cropL, 0], size: [N, H, W, ci] }));
    }
    return r;
  });
}

let registered = false;

/** Registers the fast kernels on wasm and the broadcasting batch-norm gradient. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  for (const [kernelName, kernelFunc] of [['Conv2DBackpropFilter', conv2DBackpropFilter], ['Conv2DBackpropInput', conv2DBackpropInput]] as const) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  registerBatchNormGradient();
}

/** tfjs-core's FusedBatchNorm gradient with broadcasting in place of tile() (same maths). */
export function registerBatchNormGradient(): void {
  const kernelName = 'FusedBatchNorm';
  if (tf.getGradient(kernelName)) tf.unregisterGradient(kernelName);
  tf.registerGradient({
    kernelName,
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const dyT = dy as tf.Tensor;
      const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
      const [x, mean, variance, scale] = saved;
      const scaleValue = scale == null ? tf.scalar(1) : scale;
      const reductionAxes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
      const xMinusMean = tf.sub(x, mean);
      const dyTimesScale = tf.mul(dyT, scaleValue);
      const rsqrtVar = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
      const minusHalfRCube = tf.mul(tf.mul(tf.mul(rsqrtVar, rsqrtVar), rsqrtVar), tf.scalar(-0.5));
      const reduce = (t: tf.Tensor) => tf.reshape(mean.rank === 1 ? tf.sum(t, reductionAxes) : t, mean.shape);
      return {
        x: () => tf.reshape(tf.mul(tf.mul(dyT, rsqrtVar), scaleValue), x.shape),
        mean: () => reduce(tf.mul(tf.mul(rsqrtVar, tf.scalar(-1)), dyTimesScale)),
        variance: () => reduce(tf.mul(tf.mul(minusHalfRCube, xMinusMean), dyTimesScale)),
        scale: () => reduce(tf.mul(dyT, tf.mul(xMinusMean, rsqrtVar))),
        offset: () => reduce(dyT),
      };
    },
  });
}
