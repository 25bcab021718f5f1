import type * as tf from '@tensorflow/tfjs';
import type { Graph } from './graph.js';

/**
 * Forward and backward rules per tfjs layer class, in ONNX. Inside the graph
 * image tensors are NCHW (ONNX's layout) and weights stay in tfjs's layout
 * (transposed in the graph where an operator needs another), so the weights
 * fed in and written back are exactly the tfjs model's.
 */

/** What a rule sees of one layer: shapes exclude the batch, in graph layout ([C, H, W] or [F]). */
export interface LayerCtx {
  g: Graph;
  layer: tf.layers.Layer;
  config: Record<string, unknown>;
  inShapes: number[][];
  outShape: number[];
  /** Graph values of layer.weights, in that order (tfjs layout). */
  params: string[];
  training: boolean;
  /** Activation range penalty (training only): rules add their terms' gradients and push the terms. */
  penalty?: { bound: number; weight: number; terms: string[] };
}

export interface Forward {
  y: string;
  saved: Record<string, string>;
  /** New values of non-trainable weights (batch norm's moving statistics), by index into params. */
  updates?: Map<number, string>;
}

export interface Backward {
  /** Gradient per input (null where not needed). */
  dx: (string | null)[];
  /** Gradients of trainable weights, by index into params. */
  dParams: Map<number, string>;
}

export interface LayerRule {
  forward(c: LayerCtx, x: string[]): Forward;
  backward(c: LayerCtx, f: Forward, dy: string, needDx: boolean): Backward;
}

export class UnsupportedLayerError extends Error {}

function unsupported(c: LayerCtx, what: string): never {
  throw new UnsupportedLayerError(
    `layer ${c.layer.name} (${c.layer.getClassName()}): ${what} is not supported by the onnx training backend`,
  );
}

/** Explicit ONNX pads [hBegin, wBegin, hEnd, wEnd] for tfjs's 'same' / 'valid' / symmetric-number padding. */
export function convPads(padding: unknown, k: number, s: number, h: number, w: number): number[] {
  if (typeof padding === 'number') return [padding, padding, padding, padding];
  if (padding === 'valid') return [0, 0, 0, 0];
  const total = (n: number) => Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
  const th = total(h),
    tw = total(w);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

const conv: LayerRule = {
  forward(c, [x]) {
    const { g, config } = c;
    const k = config.kernelSize as number,
      s = (config.strides as number) ?? 1,
      groups = (config.groups as number) ?? 1;
    const [, h, w] = c.inShapes[0];
    const pads = convPads(config.padding ?? 'same', k, s, h, w);
    // tfjs kernel [k, k, Cin/G, Cout] → ONNX [Cout, Cin/G, k, k].
    const W = g.transpose(c.params[0], [3, 2, 0, 1]);
    const inputs = [x, W, ...(config.useBias !== false ? [c.params[1]] : [])];
    const y = g.op('Conv', inputs, { kernel_shape: [k, k], strides: [s, s], pads, group: groups });
    return { y, saved: { x, W } };
  },
  backward(c, f, dy, needDx) {
    const { g, config } = c;
    const k = config.kernelSize as number,
      s = (config.strides as number) ?? 1,
      groups = (config.groups as number) ?? 1;
    const [cin, h, w] = c.inShapes[0];
    const [cout, ho, wo] = c.outShape;
    const pads = convPads(config.padding ?? 'same', k, s, h, w);
    const dParams = new Map<number, string>();
    // dW one kernel offset at a time, straight into tfjs's [k, k, Cin/G, Cout] layout:
    // dK[a, b] = Σ over K = batch·Ho·Wo of xpad[ci, n, i·s + a, j·s + b] · dy[co, n, i, j],
    // one matrix product per offset on a strided slice (no im2col matrix is materialised).
    const xt = g.transpose(f.saved.x, [1, 0, 2, 3]); // [Cin, B, H, W]
    const xp = pads.some((p) => p > 0) ? g.op('Pad', [xt, g.ints([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]])]) : xt;
    const cg = cin / groups,
      og = cout / groups;
    // dy as [K, Cout] (groups: [G, K, Cout/G]) for the right-hand side of every product.
    const dyT =
      groups === 1
        ? g.transpose(g.reshape(g.transpose(dy, [1, 0, 2, 3]), [cout, -1]), [1, 0])
        : g.transpose(g.reshape(g.transpose(dy, [1, 0, 2, 3]), [groups, og, -1]), [0, 2, 1]);
    const perOffset: string[] = [];
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        const sl = g.op('Slice', [
          xp,
          g.ints([a, b]),
          g.ints([a + (ho - 1) * s + 1, b + (wo - 1) * s + 1]),
          g.ints([2, 3]),
          g.ints([s, s]),
        ]);
        let d: string;
        if (groups === 1) {
          d = g.op('MatMul', [g.reshape(sl, [cin, -1]), dyT]); // [Cin, Cout]
        } else {
          const r = g.op('MatMul', [g.reshape(sl, [groups, cg, -1]), dyT]); // [G, Cin/G, Cout/G]
          d = g.reshape(g.transpose(r, [1, 0, 2]), [cg, cout]);
        }
        perOffset.push(k === 1 ? d : g.op('Unsqueeze', [d, g.ints([0])]));
      }
    }
    dParams.set(0, g.reshape(k === 1 ? perOffset[0] : g.op('Concat', perOffset, { axis: 0 }), [k, k, cg, cout]));
    if (config.useBias !== false) dParams.set(1, g.reduce('ReduceSum', dy, [0, 2, 3], false));
    if (!needDx) return { dx: [null], dParams };
    if (s === 1) {
      // Stride 1: dx is an ordinary convolution of dy with the kernel flipped and its
      // channel roles swapped (faster in onnxruntime than ConvTranspose).
      const flipped = g.op('Slice', [
        g.reshape(g.transpose(g.reshape(f.saved.W, [groups, og, cg, k, k]), [0, 2, 1, 3, 4]), [cin, og, k, k]),
        g.ints([-1, -1]),
        g.ints([-k - 1, -k - 1]),
        g.ints([2, 3]),
        g.ints([-1, -1]),
      ]);
      const back = [k - 1 - pads[0], k - 1 - pads[1], k - 1 - pads[2], k - 1 - pads[3]];
      const dx = g.op('Conv', [dy, flipped], { kernel_shape: [k, k], strides: [1, 1], pads: back, group: groups });
      return { dx: [dx], dParams };
    }
    // Strided: the transposed convolution; output_padding recovers rows a strided conv never read.
    const outPad = [h - ((ho - 1) * s + k - pads[0] - pads[2]), w - ((wo - 1) * s + k - pads[1] - pads[3])];
    const dx = g.op('ConvTranspose', [dy, f.saved.W], {
      kernel_shape: [k, k],
      strides: [s, s],
      pads,
      group: groups,
      output_padding: outPad,
    });
    return { dx: [dx], dParams };
  },
};

const dense: LayerRule = {
  forward(c, [x]) {
    const { g, config } = c;
    if (c.inShapes[0].length !== 1) unsupported(c, 'a dense layer on a tensor of rank > 2');
    if (config.activation && config.activation !== 'linear') unsupported(c, `dense activation '${config.activation}'`);
    const y = config.useBias !== false ? g.op('Gemm', [x, c.params[0], c.params[1]]) : g.op('MatMul', [x, c.params[0]]);
    return { y, saved: { x } };
  },
  backward(c, f, dy, needDx) {
    const { g, config } = c;
    const dParams = new Map<number, string>([[0, g.op('Gemm', [f.saved.x, dy], { transA: 1 })]]);
    if (config.useBias !== false) dParams.set(1, g.reduce('ReduceSum', dy, [0], false));
    return { dx: [needDx ? g.op('Gemm', [dy, c.params[0]], { transB: 1 }) : null], dParams };
  },
};

/** Channel axis reductions of a batch-norm input: [B, C, H, W] or [B, C]. */
function bnAxes(c: LayerCtx): { axes: number[]; shape: number[] } {
  const r = c.inShapes[0].length;
  if (r === 3) return { axes: [0, 2, 3], shape: [1, c.inShapes[0][0], 1, 1] };
  if (r === 1) return { axes: [0], shape: [1, c.inShapes[0][0]] };
  return unsupported(c, `batch norm on a rank-${r + 1} tensor`);
}

const batchNorm: LayerRule = {
  forward(c, [x]) {
    const { g, config } = c;
    if (config.axis !== -1 && config.axis !== c.inShapes[0].length) unsupported(c, `batch norm over axis ${config.axis}`);
    if (config.center === false || config.scale === false) unsupported(c, 'batch norm without center or scale');
    const { axes, shape } = bnAxes(c);
    const eps = g.scalar(config.epsilon as number);
    const [gamma, beta, movingMean, movingVar] = c.params.map((p) => g.reshape(p, shape));
    if (!c.training) {
      const scale = g.mul(gamma, g.op('Reciprocal', [g.op('Sqrt', [g.add(movingVar, eps)])]));
      return { y: g.add(g.mul(g.sub(x, movingMean), scale), beta), saved: {} as Record<string, string> };
    }
    const mean = g.reduce('ReduceMean', x, axes, true);
    const xc = g.sub(x, mean);
    const variance = g.reduce('ReduceMean', g.mul(xc, xc), axes, true);
    const invstd = g.op('Reciprocal', [g.op('Sqrt', [g.add(variance, eps)])]);
    // Per-channel factors first, so each full-size tensor is touched as few times as possible.
    const scale = g.mul(gamma, invstd);
    const y = g.add(g.mul(xc, scale), beta);
    // tfjs: moving ← moving − (moving − batch)·(1 − momentum), with the batch's biased variance.
    const keep = g.scalar(1 - (config.momentum as number));
    const C = c.inShapes[0][0];
    const upd = (moving: string, batch: string) => g.reshape(g.sub(moving, g.mul(g.sub(moving, batch), keep)), [C]);
    return {
      y,
      saved: { xc, invstd, scale },
      updates: new Map([
        [2, upd(movingMean, mean)],
        [3, upd(movingVar, variance)],
      ]),
    };
  },
  backward(c, f, dy) {
    const { g } = c;
    const { axes } = bnAxes(c);
    const { xc, invstd, scale } = f.saved;
    const count = axes.length === 3 ? c.inShapes[0][1] * c.inShapes[0][2] : 1;
    // M = batch·H·W, from the runtime batch size.
    const M = g.mul(g.op('Cast', [g.op('Gather', [g.op('Shape', [dy]), g.constant([0], [], 'int64')])], { to: 1 }), g.scalar(count));
    const sumDy = g.reduce('ReduceSum', dy, axes, true);
    const sumDyXc = g.reduce('ReduceSum', g.mul(dy, xc), axes, true);
    const C = c.inShapes[0][0];
    const dParams = new Map([
      [0, g.reshape(g.mul(sumDyXc, invstd), [C])],
      [1, g.reshape(sumDy, [C])],
    ]);
    // dx = γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M) with x̂ = xc·invstd, as per-channel factors on dy and xc.
    const onXc = g.div(g.mul(g.mul(scale, g.mul(invstd, invstd)), sumDyXc), M);
    const shift = g.div(g.mul(scale, sumDy), M);
    const dx = g.sub(g.sub(g.mul(dy, scale), g.mul(xc, onXc)), shift);
    return { dx: [dx], dParams };
  },
};

const poly: LayerRule = {
  forward(c, [x]): Forward {
    const { g } = c;
    if (c.config.kind !== 'quadratic') return { y: g.mul(x, x), saved: { x } };
    // αx² + βx + c as (αx + β)·x + c; αx and αx + β are kept for the backward pass.
    const ax = g.mul(x, c.params[0]);
    const axb = g.add(ax, c.params[1]);
    return { y: g.add(g.mul(axb, x), c.params[2]), saved: { x, ax, axb } };
  },
  backward(c, f, dy) {
    const { g } = c;
    const { x } = f.saved;
    const dParams = new Map<number, string>();
    let dx: string;
    if (c.config.kind === 'quadratic') {
      // dx = dy·(2αx + β); dα = Σ dy·x², dβ = Σ dy·x, dc = Σ dy.
      dx = g.mul(dy, g.add(f.saved.axb, f.saved.ax));
      const dyx = g.mul(dy, x);
      dParams.set(0, g.reduce('ReduceSum', g.mul(dyx, x), null, false));
      dParams.set(1, g.reduce('ReduceSum', dyx, null, false));
      dParams.set(2, g.reduce('ReduceSum', dy, null, false));
    } else {
      dx = g.mul(dy, g.mul(x, g.scalar(2)));
    }
    return { dx: [penalised(c, x, dx)], dParams };
  },
};

/**
 * Adds the range penalty mean(relu(|x| − bound)²) of an activation's input to
 * the loss terms and its gradient, weight·2·relu(|x| − bound)·sign(x)/numel, to dx.
 */
function penalised(c: LayerCtx, x: string, dx: string): string {
  const p = c.penalty;
  if (!p) return dx;
  const { g } = c;
  const over = g.op('Relu', [g.sub(g.op('Abs', [x]), g.scalar(p.bound))]);
  p.terms.push(g.reduce('ReduceMean', g.mul(over, over), null, false));
  const numel = g.op('Cast', [g.op('Size', [x])], { to: 1 });
  const grad = g.div(g.mul(g.mul(over, g.op('Sign', [x])), g.scalar(2 * p.weight)), numel);
  return g.add(dx, grad);
}

const relu: LayerRule = {
  forward(c, [x]) {
    if (c.config.maxValue != null || (c.config.negativeSlope as number | undefined)) unsupported(c, 'a capped or leaky ReLU');
    return { y: c.g.op('Relu', [x]), saved: { x } };
  },
  backward(c, f, dy) {
    const { g } = c;
    // (The range penalty is for polynomial activations only, as in the tfjs step.)
    return { dx: [g.mul(dy, g.op('Cast', [g.op('Greater', [f.saved.x, g.scalar(0)])], { to: 1 }))], dParams: new Map() };
  },
};

function poolWindow(c: LayerCtx): number {
  const size = c.config.poolSize as number[] | number,
    strides = (c.config.strides ?? size) as number[] | number;
  const [ph, pw] = Array.isArray(size) ? size : [size, size];
  const [sh, sw] = Array.isArray(strides) ? strides : [strides, strides];
  if (ph !== pw || sh !== ph || sw !== ph)
    unsupported(c, `average pooling ${ph}x${pw} with strides ${sh}x${sw} (square windows with stride = size only)`);
  if (c.config.padding !== 'valid') unsupported(c, `average pooling with padding '${c.config.padding}'`);
  return ph;
}

const avgPool: LayerRule = {
  forward(c, [x]) {
    const k = poolWindow(c);
    return { y: c.g.op('AveragePool', [x], { kernel_shape: [k, k], strides: [k, k] }), saved: {} };
  },
  backward(c, _f, dy) {
    const { g } = c;
    const k = poolWindow(c);
    const [, h, w] = c.inShapes[0];
    const [, ho, wo] = c.outShape;
    // Each output's gradient spread evenly over its k×k window: broadcast, not a convolution.
    const spread = g.op('Resize', [dy, '', g.constant([1, 1, k, k])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
    let dx = g.mul(spread, g.scalar(1 / (k * k)));
    // Rows and columns a valid pooling never read get no gradient.
    if (ho * k < h || wo * k < w) dx = g.op('Pad', [dx, g.ints([0, 0, 0, 0, 0, 0, h - ho * k, w - wo * k])]);
    return { dx: [dx], dParams: new Map() };
  },
};

const globalAvgPool: LayerRule = {
  forward(c, [x]) {
    if (c.config.dataFormat && c.config.dataFormat !== 'channelsLast') unsupported(c, 'channelsFirst pooling');
    return { y: c.g.reduce('ReduceMean', x, [2, 3], false), saved: {} };
  },
  backward(c, _f, dy) {
    const { g } = c;
    const [C, h, w] = c.inShapes[0];
    const dx = g.mul(g.op('Expand', [g.reshape(dy, [0, C, 1, 1]), g.ints([1, 1, h, w])]), g.scalar(1 / (h * w)));
    return { dx: [dx], dParams: new Map() };
  },
};

const flatten: LayerRule = {
  forward(c, [x]) {
    // tfjs flattens NHWC order: back to channels-last first.
    if (c.inShapes[0].length === 1) return { y: x, saved: {} };
    return { y: c.g.reshape(c.g.transpose(x, [0, 2, 3, 1]), [0, -1]), saved: {} };
  },
  backward(c, _f, dy) {
    if (c.inShapes[0].length === 1) return { dx: [dy], dParams: new Map() };
    const [C, h, w] = c.inShapes[0];
    return { dx: [c.g.transpose(c.g.reshape(dy, [0, h, w, C]), [0, 3, 1, 2])], dParams: new Map() };
  },
};

const add: LayerRule = {
  forward(c, xs) {
    return { y: c.g.sumAll(xs), saved: {} };
  },
  backward(c, _f, dy) {
    return { dx: c.inShapes.map(() => dy), dParams: new Map() };
  },
};

/** Channel concatenation (tfjs axis −1): ONNX axis 1 in NCHW, and of [B, F] vectors alike; its gradient splits dy back. */
const concatenate: LayerRule = {
  forward(c, xs) {
    const r = c.inShapes[0].length;
    if (c.config.axis !== -1 && c.config.axis !== r) unsupported(c, `concatenation along axis ${c.config.axis} (channels only)`);
    return { y: c.g.op('Concat', xs, { axis: 1 }), saved: {} };
  },
  backward(c, _f, dy) {
    const sizes = c.inShapes.map((s) => s[0]);
    return { dx: c.g.ops('Split', [dy, c.g.ints(sizes)], { axis: 1 }, sizes.length), dParams: new Map() };
  },
};

/** Rules by tfjs class name (getClassName()). */
export const LAYER_RULES: Record<string, LayerRule> = {
  HeGroupedConv2D: conv,
  Dense: dense,
  BatchNormalization: batchNorm,
  HePolyActivation: poly,
  ReLU: relu,
  AveragePooling2D: avgPool,
  GlobalAveragePooling2D: globalAvgPool,
  Flatten: flatten,
  Add: add,
  Concatenate: concatenate,
};
