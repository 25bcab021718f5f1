import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { PolyActivation } from '../train/layers/poly-activation.js';
import { GroupedConv2D } from '../train/layers/grouped-conv.js';
import { avgPoolMap, channelAffineMap, compose, convMap, denseMap, identityMap, scaleWeights, sizeOf, type LinearMap } from './linear-map.js';

/**
 * A network as HE sees it: linear maps separated by squarings,
 * L0, x², L1, x², …, Lk. Lowering folds batch norm, pooling and flatten into
 * the linear maps and merges quadratic activations (HEMET coefficient
 * merging): a·y² + b·y + c = a(y + b/2a)² + c', with the shift folded into the
 * previous map's bias and a, c' into the next map, so each activation costs
 * exactly one ciphertext multiplication and one level.
 */
export interface HeChain {
  inShape: [number, number, number];
  linears: LinearMap[];
  /**
   * pools[i] = k: linear i reads a k×k sum pool of its input, done by
   * rotate-and-add (no level, no multiplication) rather than folded into its
   * weights, which would multiply its kernel taps by k² (a 5x5 conv after a
   * 2x2 pool folds into 100 taps instead of 25). The 1/k² is in its weights.
   */
  pools: (number | undefined)[];
}

function data(t: tf.Tensor): Float32Array { return t.dataSync() as Float32Array; }

export interface LowerOptions {
  /**
   * Largest |β/2α| merged into a square. Past it the merged form relies on
   * cancellation between huge terms (a nearly linear activation) that CKKS
   * precision cannot resolve, so export refuses rather than produce a plan
   * whose encrypted outputs are wrong.
   */
  maxQuadraticShift?: number;
  /** Average pooling right after an activation as a rotation step (default) or folded into the next linear map. */
  poolByRotation?: boolean;
}

export function lowerModel(model: tf.LayersModel, o: LowerOptions = {}): HeChain {
  const input = model.inputs[0].shape.slice(1) as number[];
  if (input.length !== 3) throw new UserError(`HE export expects an image input [H, W, C], got [${input.join(', ')}]`);
  const inShape = input as [number, number, number];
  if ((model as { layers: tf.layers.Layer[] }).layers.some((l) => l.getClassName() === 'Add')) {
    throw new UserError(`model ${model.name}: residual networks (Add layers) cannot be exported yet`);
  }
  let shape: number[] = [...inShape];
  let cur: LinearMap = identityMap(shape, shape);
  const linears: LinearMap[] = [];
  const acts: { alpha: number; beta: number; c: number; name: string }[] = [];
  const pools: (number | undefined)[] = [];
  // True while `cur` is still the identity just after an activation.
  let afterActivation = false;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const w = layer.getWeights();
    let next: LinearMap | undefined;
    if (layer instanceof GroupedConv2D) {
      next = convMap({ inShape: shape as [number, number, number], kernel: data(w[0]), bias: layer.useBias ? data(w[1]) : undefined, k: layer.kernelSize, stride: layer.strides, pad: layer.padding, groups: layer.groups, cout: layer.filters });
    } else if (cls === 'Dense') {
      const [nIn, nOut] = w[0].shape;
      if (nIn !== sizeOf(shape)) throw new UserError(`layer ${layer.name}: dense input ${nIn} does not match ${sizeOf(shape)}`);
      next = denseMap(data(w[0]), w[1] ? data(w[1]) : undefined, nIn, nOut, shape);
    } else if (cls === 'AveragePooling2D') {
      const size = (layer.getConfig().poolSize as number[])[0];
      next = avgPoolMap(shape as [number, number, number], size);
      if (afterActivation && (o.poolByRotation ?? true)) {
        pools[linears.length] = size;
        shape = next.outShape;
        cur = identityMap(shape, shape);
        scaleWeights(cur, 1 / (size * size));
        afterActivation = false;
        continue;
      }
    } else if (cls === 'GlobalAveragePooling2D') {
      next = avgPoolMap(shape as [number, number, number], 'global');
    } else if (cls === 'Flatten') {
      next = identityMap(shape, [sizeOf(shape)]);
    } else if (cls === 'BatchNormalization') {
      const eps = layer.getConfig().epsilon as number;
      const [gamma, beta, mean, variance] = w.map(data);
      const scale = Float64Array.from(gamma, (g, c) => g / Math.sqrt(variance[c] + eps));
      const shift = Float64Array.from(beta, (b, c) => b - mean[c] * scale[c]);
      next = channelAffineMap(shape, scale, shift);
    } else if (layer instanceof PolyActivation) {
      linears.push(cur);
      acts.push({ ...layer.coefficients(), name: layer.name });
      cur = identityMap(shape, shape);
      afterActivation = true;
      continue;
    } else if (cls === 'ReLU' || cls === 'Activation') {
      throw new UserError(`layer ${layer.name}: ${cls} is a plaintext-only activation; HE export needs square or quadratic activations`);
    } else {
      throw new UserError(`layer ${layer.name}: ${cls} layers cannot be exported to an HE plan`);
    }
    cur = compose(next, cur);
    shape = next.outShape;
    afterActivation = false;
  }
  linears.push(cur);
  // A sum pool before linear i+1 adds k² copies of the constant c', which its weights' 1/k² undoes.
  acts.forEach((a, i) => foldQuadratic(linears[i], linears[i + 1], a, o.maxQuadraticShift ?? 64, (pools[i + 1] ?? 1) ** 2));
  return { inShape, linears, pools: Array.from({ length: linears.length }, (_, i) => pools[i]) };
}

/** Folds a·y² + b·y + c between `prev` and `next` so that only y'² remains. */
function foldQuadratic(prev: LinearMap, next: LinearMap, a: { alpha: number; beta: number; c: number; name: string }, maxShift: number, poolArea: number): void {
  if (a.alpha === 1 && a.beta === 0 && a.c === 0) return;
  const shift = a.beta / (2 * a.alpha);
  if (!Number.isFinite(shift) || Math.abs(shift) > maxShift) {
    throw new UserError(
      `activation ${a.name}: α = ${a.alpha.toExponential(2)} is tiny next to β = ${a.beta.toPrecision(3)} (shift β/2α = ${shift.toPrecision(4)}), ` +
      `so merging a·y²+b·y+c into one square relies on cancellation CKKS cannot resolve and encrypted outputs would be wrong. ` +
      `Train with model.activation: square, or a larger quadraticInit.alpha, or raise export.maxQuadraticShift (now ${maxShift}) and check evaluate's CKKS error.`);
  }
  const cPrime = a.c - (a.beta * a.beta) / (4 * a.alpha);
  for (let o = 0; o < prev.bias.length; o++) prev.bias[o] += shift;
  next.rows.forEach((r, o) => { next.bias[o] += cPrime * poolArea * r.reduce((s, [, w]) => s + w, 0); });
  scaleWeights(next, a.alpha);
}
