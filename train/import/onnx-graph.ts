import * as tf from '@tensorflow/tfjs';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { PolyActivation } from '../layers/poly-activation.js';
import { Namer } from '../zoo/common.js';

/**
 * The state of an ONNX import while nodes are read: each ONNX value is a
 * constant, or a polynomial c0 + c1·x + c2·x² of one tfjs tensor x (a plain
 * tensor is 0 + 1·x), so the Mul/Add/Pow nodes PyTorch writes for x² and
 * a·x² + b·x + c collapse into one polynomial activation, and a scalar
 * scale or shift right after a conv or dense layer folds into its weights.
 */
export interface Const {
  dims: number[];
  v: Float64Array;
}

export interface Val {
  x: tf.SymbolicTensor;
  c: [number, number, number];
  /** ONNX shape without the batch: [C, H, W] or [n]. tfjs holds [H, W, C] or [n]. */
  shape: number[];
  /** A vector flattened from [C, H, W] (ONNX order c·H·W + h·W + w; tfjs's is (h·W + w)·C + c). */
  chw?: [number, number, number];
  /** A [C, 1, 1] value that tfjs holds as [C] (global average pooling). */
  squeezed?: boolean;
  /** The conv or dense layer computing x, while nothing else reads its output: an affine map of x folds into it. */
  fold?: tf.layers.Layer;
}

export const plain = (x: tf.SymbolicTensor, shape: number[], extra: Partial<Val> = {}): Val => ({ x, c: [0, 1, 0], shape, ...extra });
export const isPlain = (v: Val) => v.c[0] === 0 && v.c[1] === 1 && v.c[2] === 0;

/** (a ∘ coefficients) · (b ∘ coefficients) of one tensor, degree at most 2. */
export function polyProduct(a: Val['c'], b: Val['c']): Val['c'] | undefined {
  const p = [0, 0, 0, 0, 0];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) p[i + j] += a[i] * b[j];
  return p[3] === 0 && p[4] === 0 ? [p[0], p[1], p[2]] : undefined;
}

/** Builds the tfjs layers: names as the zoo's (conv1, fc1, bn1, act1, pool1, add1) so configs address them alike. */
export class Builder {
  readonly names = new Namer();
  /** Every layer made, so a failed import frees their weights (tfjs keeps variables in a global registry). */
  readonly layers: tf.layers.Layer[] = [];
  /** Each value becomes one tensor, however many nodes read it (a fold or an activation happens once). */
  private readonly made = new WeakMap<Val, tf.SymbolicTensor>();

  materialise(v: Val, where: string): tf.SymbolicTensor {
    const had = this.made.get(v);
    if (had) return had;
    const x = this.make(v, where);
    this.made.set(v, x);
    return x;
  }

  layer<L extends tf.layers.Layer>(l: L): L {
    this.layers.push(l);
    return l;
  }

  /** Frees the weights of every layer made (after a failed import). */
  dispose(): void {
    for (const l of this.layers) if (l.built) for (const w of l.weights) w.dispose();
  }

  /** The value as a tensor: x itself, an affine map folded into the layer computing x, or a polynomial activation. */
  private make(v: Val, where: string): tf.SymbolicTensor {
    if (isPlain(v)) return v.x;
    const [c0, c1, c2] = v.c;
    if (c2 === 0) {
      if (!v.fold)
        throw new Error(
          `${where}: an affine map (${c1}·x + ${c0}) of a tensor no conv or dense layer computes alone; HE export needs it folded into a layer`,
        );
      foldAffine(v.fold, c1, c0);
      return v.x;
    }
    const square = c0 === 0 && c1 === 0 && c2 === 1;
    const act = this.layer(
      new PolyActivation({
        name: this.names.next('act'),
        kind: square ? 'square' : 'quadratic',
        ...(square ? {} : { init: { alpha: c2, beta: c1, c: c0 } }),
      }),
    );
    return act.apply(v.x) as tf.SymbolicTensor;
  }
}

/** layer(x)·scale + shift, written into the layer's weights (every imported conv and dense layer has a bias). */
export function foldAffine(layer: tf.layers.Layer, scale: number | Float64Array, shift: number | Float64Array): void {
  const [k, b] = layer.getWeights();
  const out = b.shape[0];
  const s = (o: number) => (typeof scale === 'number' ? scale : scale[o]);
  const t = (o: number) => (typeof shift === 'number' ? shift : shift[o]);
  const kv = k.dataSync() as Float32Array,
    bv = b.dataSync() as Float32Array;
  const nk = Float32Array.from(kv, (w, i) => w * s(i % out));
  const nb = Float32Array.from(bv, (w, o) => w * s(o) + t(o));
  setWeightsFrom(layer, [
    { data: nk, shape: k.shape },
    { data: nb, shape: b.shape },
  ]);
}

/** layer.setWeights from arrays, freeing the temporary tensors (the variables keep their own reference). */
export function setWeightsFrom(layer: tf.layers.Layer, values: { data: Float32Array; shape: number[] }[]): void {
  const ts = values.map((v) => tf.tensor(v.data, v.shape));
  try {
    layer.setWeights(ts);
  } finally {
    tf.dispose(ts);
  }
}

export function isWeightLayer(l: tf.layers.Layer): boolean {
  return l instanceof GroupedConv2D || l.getClassName() === 'Dense';
}
