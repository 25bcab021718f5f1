import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { PolyActivation } from '../train/layers/poly-activation.js';
import { GroupedConv2D } from '../train/layers/grouped-conv.js';
import {
  applyMap,
  avgPoolMap,
  channelAffineMap,
  compose,
  convMap,
  denseMap,
  identityMap,
  layersOf,
  scaleWeights,
  sizeOf,
  stackChannels,
  type LinearMap,
} from './linear-map.js';

/**
 * A network as HE sees it: linear maps separated by squarings,
 * L0, x², L1, x², …, Lk, where a map may also read one earlier square
 * (residual connections). Lowering walks the tfjs layer graph, folds batch
 * norm, pooling, flatten, residual additions and channel concatenations
 * (branches reading one tensor become one map) into the linear maps, and
 * merges quadratic activations (HEMET coefficient merging):
 * a·y² + b·y + c = a(y + b/2a)² + c', with the shift folded into the
 * previous map's bias and a, c' into the maps that read it, so each
 * activation costs exactly one ciphertext multiplication and one level.
 * An activation too close to linear for that (see splitQuadratic) keeps its
 * linear term in the square step instead: one plaintext product more, the
 * same level.
 */
export interface HeChain {
  inShape: [number, number, number];
  /** Linear map i reads the chain input (i = 0) or the square after linear map i−1. */
  linears: LinearMap[];
  /**
   * pools[i] = k: linear i reads a k×k sum pool of its input, done by
   * rotate-and-add (no level, no multiplication) rather than folded into its
   * weights, which would multiply its kernel taps by k² (a 5x5 conv after a
   * 2x2 pool folds into 100 taps instead of 25). The 1/k² is in its weights.
   */
  pools: (number | undefined)[];
  /**
   * skips[i]: linear i also reads an earlier activation (a residual
   * connection): `from` = j reads the square after linear j (−1: the chain
   * input), through `map`, added to linear i's output at no extra level.
   */
  skips: ({ from: number; map: LinearMap } | undefined)[];
  /** squareLinear[i] = λ: the square after linear i computes y² + λ·y (an unmerged quadratic, see splitQuadratic). */
  squareLinear?: (number | undefined)[];
  /**
   * unsquared[i]: linear i reads linear i−1's output itself, with no square
   * between: the second of a factorised pair (GroupedConv2D.factorOf: the
   * 1×1 half of an FFConv factorisation, the pointwise convolution of a
   * mobile block without its middle activation): one level, no ciphertext
   * multiplication. Absent when no map is unsquared.
   */
  unsquared?: (boolean | undefined)[];
}

function data(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

export interface LowerOptions {
  /**
   * Largest |β/2α| merged into a square. Past it the merged form relies on
   * cancellation between huge terms (a nearly linear activation) that CKKS
   * precision cannot resolve, so the activation is lowered unmerged
   * (splitQuadratic) instead.
   */
  maxQuadraticShift?: number;
  /** Average pooling right after an activation as a rotation step (default) or folded into the next linear map. */
  poolByRotation?: boolean;
}

/**
 * A tensor of the network as pending affine maps of materialised HE tensors
 * (the input, −1, or the square after linear j): Σ_t parts[t](A_t) + bias.
 */
interface Pending {
  parts: Map<number, LinearMap>;
  bias: Float64Array;
  shape: number[];
  fresh?: { tensor: number; alpha: number; c: number };
}

const withoutBias = (m: LinearMap): LinearMap => ({ ...m, bias: new Float64Array(m.bias.length) });

/** next ∘ pending. */
function apply(next: LinearMap, p: Pending): Pending {
  const linear = withoutBias(next);
  return { parts: new Map([...p.parts].map(([t, m]) => [t, compose(linear, m)])), bias: applyMap(next, p.bias), shape: next.outShape };
}

/** a + b (a residual addition): maps of the same tensor add up. */
function add(a: Pending, b: Pending, name: string): Pending {
  if (a.shape.join() !== b.shape.join()) throw new UserError(`layer ${name}: adds tensors of shapes [${a.shape}] and [${b.shape}]`);
  const parts = new Map(a.parts);
  for (const [t, m] of b.parts) {
    const have = parts.get(t);
    parts.set(t, have ? { ...have, rows: have.rows.map((r, o) => [...r, ...m.rows[o]]), layers: layersOf(have, m) } : m);
  }
  return { parts, bias: Float64Array.from(a.bias, (v, o) => v + b.bias[o]), shape: a.shape };
}

/**
 * Tensors concatenated along channels (a Fire module's expand branches): per
 * tensor they read, their maps stacked (stackChannels), so branches reading
 * the same tensor become one linear map, and the biases stacked alike.
 */
function concat(ps: Pending[], layer: tf.layers.Layer): Pending {
  const axis = layer.getConfig().axis as number;
  const rank = ps[0].shape.length;
  if (axis !== -1 && axis !== rank) throw new UserError(`layer ${layer.name}: HE export concatenates along channels only (axis ${axis})`);
  const lead = (p: Pending) => p.shape.slice(0, -1).join();
  if (ps.some((p) => lead(p) !== lead(ps[0])))
    throw new UserError(
      `layer ${layer.name}: concatenates tensors of shapes ${ps.map((p) => `[${p.shape}]`).join(', ')}: only channels may differ`,
    );
  const tensors = [...new Set(ps.flatMap((p) => [...p.parts.keys()]))];
  const parts = new Map(
    tensors.map((t) => {
      const inShape = ps.find((p) => p.parts.has(t))!.parts.get(t)!.inShape;
      return [
        t,
        stackChannels(
          inShape,
          ps.map((p) => ({ map: p.parts.get(t), shape: p.shape, bias: new Float64Array(p.bias.length) })),
        ),
      ];
    }),
  );
  const bias = stackChannels(
    [],
    ps.map((p) => ({ shape: p.shape, bias: p.bias })),
  ).bias;
  return { parts, bias, shape: [...ps[0].shape.slice(0, -1), ps.reduce((a, p) => a + p.shape[rank - 1], 0)] };
}

/** What an activation hands its consumers: α·A_t + c' (merged) or K·A_t + c (unmerged, K = α/r², see splitQuadratic). */
function activationOutput(tensor: number, shape: number[], alpha: number, c: number): Pending {
  const m = identityMap(shape, shape);
  scaleWeights(m, alpha);
  return { parts: new Map([[tensor, m]]), bias: new Float64Array(sizeOf(shape)).fill(c), shape, fresh: { tensor, alpha, c } };
}

const consumers = (l: tf.layers.Layer) => l.outboundNodes.length;

/** The chain being built while lowering walks the layers: its linear maps and what each is followed by. */
class Lowering {
  readonly linears: LinearMap[] = [];
  readonly pools: (number | undefined)[] = [];
  readonly skips: HeChain['skips'] = [];
  readonly squareLinear: (number | undefined)[] = [];
  readonly unsquared: (boolean | undefined)[] = [];
  constructor(
    readonly inShape: [number, number, number],
    private readonly o: LowerOptions,
  ) {}

  start(): Pending {
    return {
      parts: new Map([[-1, identityMap([...this.inShape], [...this.inShape])]]),
      bias: new Float64Array(sizeOf(this.inShape)),
      shape: [...this.inShape],
    };
  }

  /** Ends the pending maps at an activation (or the output): one linear step, its residual part a skip. */
  materialise(p: Pending, name: string): LinearMap {
    const main = p.parts.get(this.linears.length - 1);
    const others = [...p.parts].filter(([t]) => t !== this.linears.length - 1);
    if (!main || others.length > 1) {
      throw new UserError(
        `layer ${name}: HE export supports chains with at most one residual input per layer (reads tensors ${[...p.parts.keys()].join(', ')})`,
      );
    }
    if (others.length) this.skips[this.linears.length] = { from: others[0][0], map: others[0][1] };
    const out = { ...main, bias: Float64Array.from(p.bias) };
    this.linears.push(out);
    return out;
  }

  /**
   * The second convolution of a factorised pair (an FFConv 1×1 half, a
   * mobile block's pointwise convolution): the first ends as a linear step,
   * this one reads its output unsquared.
   */
  factorHalf(layer: GroupedConv2D, x: Pending): Pending {
    const first = layer.factorOf!;
    const read = [...x.parts.values()].flatMap((m) => m.layers ?? []).pop();
    if (read !== first) {
      throw new UserError(
        `layer ${layer.name}: completes the factorised pair of ${first} (factorOf) but reads ${read ? `the output of ${read}` : 'no weight layer'}; nothing but batch norm or pooling may stand between the two`,
      );
    }
    if (consumers(layer.inboundNodes[0].inboundLayers[0]) !== 1) {
      throw new UserError(`layer ${layer.name}: the first convolution of a factorised pair (${first}) must feed only the second`);
    }
    this.materialise(x, layer.name);
    this.unsquared[this.linears.length] = true;
    const t = this.linears.length - 1;
    return apply(linearMapOf(layer, x.shape), {
      parts: new Map([[t, identityMap(x.shape, x.shape)]]),
      bias: new Float64Array(sizeOf(x.shape)),
      shape: x.shape,
    });
  }

  /** A polynomial activation: merged into one square where the shift allows, else split (see splitQuadratic). */
  activation(layer: PolyActivation, x: Pending): Pending {
    const main = this.materialise(x, layer.name);
    const t = this.linears.length - 1;
    const a = { ...layer.coefficients(), name: layer.name };
    const merged = mergedQuadratic(a, this.o.maxQuadraticShift ?? 64);
    if (merged) {
      for (let i = 0; i < main.bias.length; i++) main.bias[i] += merged.shift;
      return activationOutput(t, x.shape, a.alpha, merged.cPrime);
    }
    const { root, factor, linear } = splitQuadratic(a);
    // Scaled copies: the maps' rows may be shared with tensors other layers still read.
    this.linears[t] = scaledMap(main, root);
    const sk = this.skips[t];
    if (sk) this.skips[t] = { from: sk.from, map: scaledMap(sk.map, root) };
    this.squareLinear[t] = linear;
    return activationOutput(t, x.shape, factor, a.c);
  }

  /** Right after a single-use activation, average pooling is a sum pool by rotations before the next linear map. */
  poolsByRotation(layer: tf.layers.Layer, x: Pending): boolean {
    return (
      layer.getClassName() === 'AveragePooling2D' &&
      !!x.fresh &&
      consumers(layer.inboundNodes[0].inboundLayers[0]) === 1 &&
      (this.o.poolByRotation ?? true)
    );
  }

  pool(layer: tf.layers.Layer, x: Pending): Pending {
    const size = (layer.getConfig().poolSize as number[])[0];
    const pooled = avgPoolMap(x.shape as [number, number, number], size).outShape;
    this.pools[this.linears.length] = size;
    const out = activationOutput(x.fresh!.tensor, pooled, x.fresh!.alpha / (size * size), x.fresh!.c);
    out.fresh = undefined;
    return out;
  }

  chain(): HeChain {
    const each = <T>(a: T[]) => Array.from({ length: this.linears.length }, (_, i) => a[i]);
    return {
      inShape: this.inShape,
      linears: this.linears,
      pools: each(this.pools),
      skips: each(this.skips),
      squareLinear: each(this.squareLinear),
      ...(this.unsquared.length ? { unsquared: each(this.unsquared) } : {}),
    };
  }
}

export function lowerModel(model: tf.LayersModel, o: LowerOptions = {}): HeChain {
  const input = model.inputs[0].shape.slice(1) as number[];
  if (input.length !== 3) throw new UserError(`HE export expects an image input [H, W, C], got [${input.join(', ')}]`);
  const lw = new Lowering(input as [number, number, number], o);
  const values = new Map<string, Pending>();
  let last: Pending | undefined;
  for (const layer of (model as { layers: tf.layers.Layer[] }).layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const ins = layer.inboundNodes[0].inboundLayers.map((l) => values.get(l.name) ?? lw.start());
    const out = lowerLayer(lw, layer, ins);
    values.set(layer.name, out);
    last = out;
  }
  lw.materialise(last ?? lw.start(), 'output');
  return lw.chain();
}

/** One layer's output as pending maps of its inputs'. */
function lowerLayer(lw: Lowering, layer: tf.layers.Layer, ins: Pending[]): Pending {
  const x = ins[0];
  if (layer.getClassName() === 'Add') return ins.slice(1).reduce((a, b) => add(a, b, layer.name), x);
  if (layer.getClassName() === 'Concatenate') return concat(ins, layer);
  if (layer instanceof GroupedConv2D && layer.factorOf) return lw.factorHalf(layer, x);
  if (layer instanceof PolyActivation) return lw.activation(layer, x);
  if (lw.poolsByRotation(layer, x)) return lw.pool(layer, x);
  return apply(linearMapOf(layer, x.shape), x);
}

const scaledMap = (m: LinearMap, r: number): LinearMap => ({
  ...m,
  rows: m.rows.map((row) => row.map((v, e) => (e % 2 ? v * r : v))),
  bias: m.bias.map((v) => v * r),
});

type Quadratic = { alpha: number; beta: number; c: number; name: string };

/**
 * HEMET coefficient merging: a·y² + b·y + c = a·(y + shift)² + c' with
 * shift = b/2a; the shift goes into the producing linear map's bias, a and c'
 * into every consumer, so each activation is exactly one square. Undefined
 * when |shift| > maxShift: a nearly linear activation (α ≪ β) would then
 * square values near shift and cancel a·shift² in the consumers, with folded
 * weights a·W so small that CKKS keeps few of their bits (measured: an
 * autoencoder with α ≈ 5e-6 gave MSE 0.57 under CKKS against 8.8e-3).
 */
function mergedQuadratic(a: Quadratic, maxShift: number): { shift: number; cPrime: number } | undefined {
  if (a.beta === 0) return { shift: 0, cPrime: a.c };
  const shift = a.beta / (2 * a.alpha);
  if (!Number.isFinite(shift) || Math.abs(shift) > maxShift) return undefined;
  return { shift, cPrime: a.c - (a.beta * a.beta) / (4 * a.alpha) };
}

/**
 * The unmerged form, with nothing to cancel: for z = r·y,
 * a·y² + b·y + c = K·(z² + λ·z) + c with K = a/r² and λ = b/(K·r). r goes
 * into the producing map, K and c into the consumers, λ into the square step
 * (one plaintext product and an addition more, the same level).
 *
 * r trades two losses of precision: the producer's values shrink by r
 * against CKKS's noise, the consumers' weights shrink by K against the
 * rounding of their encoding. The noise left by a linear step is far above
 * that rounding, so most of the smallness goes to the consumers:
 * r = |α|^(1/6). Measured under CKKS on a 2-hidden-layer MLP with α = 5e-6
 * at a 28-bit scale (largest error relative to the largest output, 3 runs
 * each): r = √|α| 0.06–0.18, |α|^(1/3) 0.018–0.036, |α|^(1/4) 0.005–0.011,
 * |α|^0.15 0.0015–0.0031, |α|^0.08 0.0021–0.0028, r = 1 0.012; merged, 825;
 * and at the chosen |α|^(1/6), 0.0036–0.0045 (5 runs).
 */
function splitQuadratic(a: Quadratic): { root: number; factor: number; linear: number } {
  if (!(Number.isFinite(a.alpha) && a.alpha !== 0 && Number.isFinite(a.beta))) {
    throw new UserError(
      `activation ${a.name}: α = ${a.alpha}, β = ${a.beta}: not a quadratic CKKS can evaluate (a linear or non-finite activation); retrain it`,
    );
  }
  const root = Math.abs(a.alpha) ** (1 / 6);
  const factor = a.alpha / (root * root);
  return { root, factor, linear: a.beta / (factor * root) };
}

/** The linear map of a layer that is one (conv, dense, pooling, flatten, batch norm); a clear error for any other. */
function linearMapOf(layer: tf.layers.Layer, shape: number[]): LinearMap {
  const cls = layer.getClassName();
  const w = layer.getWeights();
  if (layer instanceof GroupedConv2D) {
    const m = convMap({
      inShape: shape as [number, number, number],
      kernel: data(w[0]),
      bias: layer.useBias ? data(w[1]) : undefined,
      k: layer.kernelSize,
      stride: layer.strides,
      pad: layer.padding,
      groups: layer.groups,
      cout: layer.filters,
    });
    return { ...m, layers: [layer.name] };
  } else if (cls === 'Dense') {
    const [nIn, nOut] = w[0].shape;
    if (nIn !== sizeOf(shape)) throw new UserError(`layer ${layer.name}: dense input ${nIn} does not match ${sizeOf(shape)}`);
    return { ...denseMap(data(w[0]), w[1] ? data(w[1]) : undefined, nIn, nOut, shape), layers: [layer.name] };
  } else if (cls === 'AveragePooling2D') {
    return avgPoolMap(shape as [number, number, number], (layer.getConfig().poolSize as number[])[0]);
  } else if (cls === 'GlobalAveragePooling2D') {
    return avgPoolMap(shape as [number, number, number], 'global');
  } else if (cls === 'Flatten') {
    return identityMap(shape, [sizeOf(shape)]);
  } else if (cls === 'BatchNormalization') {
    const eps = layer.getConfig().epsilon as number;
    const [gamma, beta, mean, variance] = w.map(data);
    const scale = Float64Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + eps));
    const shift = Float64Array.from(beta, (b, c) => b - mean[c] * scale[c]);
    return channelAffineMap(shape, scale, shift);
  } else if (cls === 'ReLU' || cls === 'Activation') {
    throw new UserError(`layer ${layer.name}: ${cls} is a plaintext-only activation; HE export needs square or quadratic activations`);
  } else {
    throw new UserError(`layer ${layer.name}: ${cls} layers cannot be exported to an HE plan`);
  }
}
