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
 *
 * Depthwise convolutions have no gradient kernels on stock wasm at all: dx
 * is the same flipped convolution (depthwise, nothing swapped), dW one
 * product and sum per kernel offset.
 *  BN: the same formula as tfjs-core, broadcasting instead of tiling.
 *
 * and three measured hot spots of a training step are replaced:
 *
 *  dW with few input channels (a first layer): the big-filter conv above runs
 *      at ~2.5 GFLOP/s there; one matrix product per kernel offset instead.
 *  AvgPoolGrad with window = stride and no padding: a broadcast of dy/k².
 *  Sum over every axis but the last (bias and batch-norm gradients): one
 *      matrix product with a row of ones instead of a transpose and a reduce.
 *
 * The kernels call the backend's registered kernel functions directly (not tf
 * ops), so every intermediate is a backend buffer freed here.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo, NamedAttrMap, KernelBackend } from '@tensorflow/tfjs';

export type Backend = KernelBackend & { disposeData(dataId: object, force?: boolean): boolean };
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

function call(name: string, backend: Backend, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>): TensorInfo {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm backend has no ${name} kernel`);
  return k.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

/** Runs `f`, then frees every temporary it registered (never the returned one). */
function withTemps(backend: Backend, f: (keep: (t: TensorInfo) => TensorInfo) => TensorInfo): TensorInfo {
  const temps: TensorInfo[] = [];
  const out = f((t) => {
    temps.push(t);
    return t;
  });
  for (const t of temps) if (t !== out) backend.disposeData(t.dataId);
  return out;
}

/** x[begin : end : strides] (no masks). */
function stridedSlice(backend: Backend, x: TensorInfo, begin: number[], end: number[], strides: number[]): TensorInfo {
  const masks = { beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 };
  return call('StridedSlice', backend, { x }, { begin, end, strides, ...masks });
}

export interface ConvGeometry {
  top: number;
  left: number;
  outH: number;
  outW: number;
  sh: number;
  sw: number;
}

function geometry(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  pad: unknown,
  dimRoundingMode: unknown,
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad as 'same',
    dimRoundingMode as 'floor' | undefined,
    false,
    'channelsLast',
  );
  return {
    top: info.padInfo.top,
    left: info.padInfo.left,
    outH: info.outHeight,
    outW: info.outWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
  };
}

type KernelArgs = { inputs: Record<string, TensorInfo>; backend: Backend; attrs: Record<string, unknown> };

/** Up to this many input channels, dW is one product per kernel offset (the swapped conv's filter would be the whole image). */
const FEW_CHANNELS = 4;

/** dW[a, b] = xpad[:, a + i·s, b + j·s, :]ᵀ · dy over K = N·Ho·Wo, for each of the k×k offsets. */
export function filterGradByOffsets(x: TensorInfo, dy: TensorInfo, backend: Backend, filterShape: number[], g: ConvGeometry): TensorInfo {
  const [kh, kw, ci, co] = filterShape;
  const [N, H, W] = x.shape;
  return withTemps(backend, (keep) => {
    const bottom = Math.max(0, kh - 1 + (g.outH - 1) * g.sh + 1 - H - g.top);
    const right = Math.max(0, kw - 1 + (g.outW - 1) * g.sw + 1 - W - g.left);
    // x as [Ci, N, H, W]: each offset's slice is then a [Ci, K] matrix with contiguous rows.
    const xt = keep(call('Transpose', backend, { x }, { perm: [3, 0, 1, 2] }));
    const xp =
      g.top || g.left || bottom || right
        ? keep(
            call(
              'PadV2',
              backend,
              { x: xt },
              {
                paddings: [
                  [0, 0],
                  [0, 0],
                  [g.top, bottom],
                  [g.left, right],
                ],
                constantValue: 0,
              },
            ),
          )
        : xt;
    const K = N * g.outH * g.outW;
    const dy3 = keep(call('Reshape', backend, { x: dy }, { shape: [1, K, co] }));
    const parts: TensorInfo[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const sl = keep(
          stridedSlice(backend, xp, [0, 0, a, b], [ci, N, a + (g.outH - 1) * g.sh + 1, b + (g.outW - 1) * g.sw + 1], [1, 1, g.sh, g.sw]),
        );
        const x3 = keep(call('Reshape', backend, { x: sl }, { shape: [1, ci, K] }));
        parts.push(keep(call('BatchMatMul', backend, { a: x3, b: dy3 }, { transposeA: false, transposeB: false })));
      }
    }
    const all = parts.length === 1 ? parts[0] : keep(call('Concat', backend, parts as unknown as Record<string, TensorInfo>, { axis: 0 }));
    return call('Reshape', backend, { x: all }, { shape: [kh, kw, ci, co] });
  });
}

/** dW as a forward conv in which the input's channels play the batch and dy plays the filter, dilated by the stride. */
export function filterGradBySwappedConv(
  x: TensorInfo,
  dy: TensorInfo,
  backend: Backend,
  filterShape: number[],
  g: ConvGeometry,
): TensorInfo {
  const [kh, kw] = filterShape;
  const [, H, W] = x.shape;
  return withTemps(backend, (keep) => {
    // [N,H,W,Ci] -> [Ci,H,W,N]: channels become the batch, the batch the channels.
    const xT = keep(call('Transpose', backend, { x }, { perm: [3, 1, 2, 0] }));
    // [N,Ho,Wo,Co] -> [Ho,Wo,N,Co]: dy is the filter, contracting over N.
    const dyT = keep(call('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }));
    // Output spatial size must be exactly kh x kw; pad bottom/right to get there (or slice off extra).
    const bottom = Math.max(0, kh + (g.outH - 1) * g.sh - H - g.top);
    const right = Math.max(0, kw + (g.outW - 1) * g.sw - W - g.left);
    const pad: Pad4 = [
      [0, 0],
      [g.top, bottom],
      [g.left, right],
      [0, 0],
    ];
    let r = keep(
      call(
        'Conv2D',
        backend,
        { x: xT, filter: dyT },
        { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [g.sh, g.sw], dimRoundingMode: undefined },
      ),
    );
    if (r.shape[1] !== kh || r.shape[2] !== kw) {
      r = keep(call('Slice', backend, { x: r }, { begin: [0, 0, 0, 0], size: [r.shape[0], kh, kw, r.shape[3]] }));
    }
    // [Ci,kh,kw,Co] -> [kh,kw,Ci,Co]
    return call('Transpose', backend, { x: r }, { perm: [1, 2, 0, 3] });
  });
}

function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as [number, number, number, number];
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC');
  const g = convGeometry(x.shape, filterShape, attrs);
  return x.shape[3] <= FEW_CHANNELS
    ? filterGradByOffsets(x, dy, backend, filterShape, g)
    : filterGradBySwappedConv(x, dy, backend, filterShape, g);
}

/** The geometry a Conv2DBackpropFilter call describes. */
export function convGeometry(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): ConvGeometry {
  return geometry(xShape, filterShape, attrs.strides as [number, number], attrs.pad, attrs.dimRoundingMode);
}

/**
 * dx of a convolution: a forward stride-1 convolution of the zero-dilated,
 * padded dy with the spatially flipped filter — its in/out channels swapped
 * for an ordinary convolution; for a depthwise one (channel multiplier 1,
 * filter [k, k, C, 1]) each channel is its own, so nothing is swapped.
 */
function inputGradByFlippedConv(depthwise: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const { dy, filter } = inputs;
    const kernel = depthwise ? 'DepthwiseConv2dNativeBackpropInput' : 'Conv2DBackpropInput';
    const inputShape = attrs.inputShape as [number, number, number, number];
    if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') throw new Error(`${kernel} (wasm): only NHWC`);
    if (depthwise && filter.shape[3] !== 1) throw new Error(`${kernel} (wasm): only channel multiplier 1`);
    const [kh, kw, ci] = filter.shape;
    const [N, H, W] = inputShape;
    const g = geometry(inputShape, filter.shape, attrs.strides as [number, number], attrs.pad, attrs.dimRoundingMode);
    const [, Ho, Wo, co] = dy.shape;
    return withTemps(backend, (keep) => {
      let d = dy;
      if (g.sh > 1 || g.sw > 1) {
        // Zero-dilate dy by the stride: [N,Ho,1,Wo,1,Co] padded to [N,Ho,sh,Wo,sw,Co], then trimmed.
        const r6 = keep(call('Reshape', backend, { x: dy }, { shape: [N, Ho, 1, Wo, 1, co] }));
        const p6 = keep(
          call(
            'PadV2',
            backend,
            { x: r6 },
            {
              paddings: [
                [0, 0],
                [0, 0],
                [0, g.sh - 1],
                [0, 0],
                [0, g.sw - 1],
                [0, 0],
              ],
              constantValue: 0,
            },
          ),
        );
        const r4 = keep(call('Reshape', backend, { x: p6 }, { shape: [N, Ho * g.sh, Wo * g.sw, co] }));
        d = keep(call('Slice', backend, { x: r4 }, { begin: [0, 0, 0, 0], size: [N, (Ho - 1) * g.sh + 1, (Wo - 1) * g.sw + 1, co] }));
      }
      const flipped = keep(call('Reverse', backend, { x: filter }, { dims: [0, 1] }));
      const swapped = depthwise ? flipped : keep(call('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] }));
      // Full-correlation padding; a forward pad larger than k-1 would need negative padding: crop instead.
      const top = kh - 1 - g.top,
        left = kw - 1 - g.left;
      const Hd = d.shape[1],
        Wd = d.shape[2];
      const bottom = H + kh - 1 - Hd - top,
        right = W + kw - 1 - Wd - left;
      const cropT = Math.max(0, -top),
        cropL = Math.max(0, -left);
      const pad: Pad4 = [
        [0, 0],
        [Math.max(0, top), Math.max(0, bottom)],
        [Math.max(0, left), Math.max(0, right)],
        [0, 0],
      ];
      let r = keep(
        call(
          depthwise ? 'DepthwiseConv2dNative' : 'Conv2D',
          backend,
          { x: d, filter: swapped },
          { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined },
        ),
      );
      if (r.shape[1] !== H || r.shape[2] !== W || cropT || cropL) {
        r = keep(call('Slice', backend, { x: r }, { begin: [0, cropT, cropL, 0], size: [N, H, W, ci] }));
      }
      return r;
    });
  };
}

/**
 * dW of a depthwise convolution (channel multiplier 1; stock wasm has no
 * kernel for it): dW[a, b, c] = Σ over N·Ho·Wo of xpad[n, a + i·s, b + j·s, c]·dy[n, i, j, c],
 * one strided slice, product and sum per kernel offset.
 */
function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as [number, number, number, number];
  const [kh, kw, C, multiplier] = filterShape;
  if (multiplier !== 1) throw new Error('DepthwiseConv2dNativeBackpropFilter (wasm): only channel multiplier 1');
  const g = convGeometry(x.shape, filterShape, attrs);
  const [N, H, W] = x.shape;
  return withTemps(backend, (keep) => {
    const bottom = Math.max(0, kh - 1 + (g.outH - 1) * g.sh + 1 - H - g.top);
    const right = Math.max(0, kw - 1 + (g.outW - 1) * g.sw + 1 - W - g.left);
    const paddings = [
      [0, 0],
      [g.top, bottom],
      [g.left, right],
      [0, 0],
    ];
    const xp = g.top || g.left || bottom || right ? keep(call('PadV2', backend, { x }, { paddings, constantValue: 0 })) : x;
    const parts: TensorInfo[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const sl = keep(
          stridedSlice(backend, xp, [0, a, b, 0], [N, a + (g.outH - 1) * g.sh + 1, b + (g.outW - 1) * g.sw + 1, C], [1, g.sh, g.sw, 1]),
        );
        const prod = keep(call('Multiply', backend, { a: sl, b: dy }, {}));
        parts.push(keep(call('Sum', backend, { x: prod }, { axis: [0, 1, 2], keepDims: true })));
      }
    }
    const all = parts.length === 1 ? parts[0] : keep(call('Concat', backend, parts as unknown as Record<string, TensorInfo>, { axis: 0 }));
    return call('Reshape', backend, { x: all }, { shape: filterShape });
  });
}

/** AvgPoolGrad when the window equals the stride and nothing is padded: every input gets its window's dy/k². */
export function avgPoolGradFast(original: tf.KernelFunc) {
  return (args: KernelArgs): TensorInfo => {
    const { dy, input } = args.inputs;
    const { backend, attrs } = args;
    const pair = (v: unknown) => (Array.isArray(v) ? (v as number[]) : [v as number, v as number]);
    const [fh, fw] = pair(attrs.filterSize),
      [sh, sw] = pair(attrs.strides);
    if (fh !== sh || fw !== sw || (attrs.pad !== 'valid' && attrs.pad !== 0) || dy.dtype !== 'float32')
      return original(args as never) as TensorInfo;
    const [N, Ho, Wo, C] = dy.shape;
    const [, H, W] = input.shape;
    return withTemps(backend, (keep) => {
      // Widen (each C-vector repeated fw times), then heighten (each widened row repeated fh times): two concatenations.
      const r5 = keep(call('Reshape', backend, { x: dy }, { shape: [N, Ho, Wo, 1, C] }));
      const wide = keep(call('Concat', backend, Array(fw).fill(r5) as unknown as Record<string, TensorInfo>, { axis: 3 }));
      const r4w = keep(call('Reshape', backend, { x: wide }, { shape: [N, Ho, 1, Wo * fw * C] }));
      const tall = keep(call('Concat', backend, Array(fh).fill(r4w) as unknown as Record<string, TensorInfo>, { axis: 2 }));
      const r4 = keep(call('Reshape', backend, { x: tall }, { shape: [N, Ho * fh, Wo * fw, C] }));
      const scale = keep(call('Fill', backend, {}, { shape: [], value: 1 / (fh * fw), dtype: 'float32' }));
      const dx = call('Multiply', backend, { a: r4, b: scale }, {});
      if (H === Ho * fh && W === Wo * fw) return dx;
      keep(dx);
      return call(
        'PadV2',
        backend,
        { x: dx },
        {
          paddings: [
            [0, 0],
            [0, H - Ho * fh],
            [0, W - Wo * fw],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
    });
  };
}

/** Sum over every axis but the last: a row of ones times the [M, C] matrix. */
export function sumFast(original: tf.KernelFunc) {
  return (args: KernelArgs): TensorInfo => {
    const { x } = args.inputs;
    const { backend, attrs } = args;
    const r = x.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
    const leading = r >= 2 && axes.length === r - 1 && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32') return original(args as never) as TensorInfo;
    const C = x.shape[r - 1],
      M = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    return withTemps(backend, (keep) => {
      const ones = keep(call('Fill', backend, {}, { shape: [1, 1, M], value: 1, dtype: 'float32' }));
      const x3 = keep(call('Reshape', backend, { x }, { shape: [1, M, C] }));
      const s = keep(call('BatchMatMul', backend, { a: ones, b: x3 }, { transposeA: false, transposeB: false }));
      return call('Reshape', backend, { x: s }, { shape: attrs.keepDims ? [...Array(r - 1).fill(1), C] : [C] });
    });
  };
}

let registered = false;

/** Registers the fast kernels on wasm and the broadcasting batch-norm gradient. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  const stock = (name: string) => {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`wasm backend has no ${name} kernel`);
    return k.kernelFunc;
  };
  const replacements: [string, unknown][] = [
    ['Conv2DBackpropFilter', conv2DBackpropFilter],
    ['Conv2DBackpropInput', inputGradByFlippedConv(false)],
    ['DepthwiseConv2dNativeBackpropInput', inputGradByFlippedConv(true)],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter],
    ['AvgPoolGrad', avgPoolGradFast(stock('AvgPoolGrad'))],
    ['Sum', sumFast(stock('Sum'))],
  ];
  for (const [kernelName, kernelFunc] of replacements) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
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
