import * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { GroupedConv2D } from './layers/grouped-conv.js';

/**
 * FFConv's factorised convolution: a d×d convolution C_in → C_out becomes a
 * d×d convolution C_in → r (same stride and padding, no bias) followed by a
 * 1×1 convolution r → C_out (the bias), with no activation between. The d×d
 * half keeps the layer's name, the 1×1 half is `<name>_1x1` and records the
 * pair (GroupedConv2D.factorOf), so HE lowering keeps them two linear steps.
 */

/** The 1×1 half's name for a factorised convolution `name`. */
export const pointwiseName = (name: string) => `${name}_1x1`;

/** Weights of one factorised convolution: d×d kernel [d, d, C_in, r], 1×1 kernel [1, 1, r, C_out], the bias [C_out]. */
export interface ConvFactors {
  spatial: Float32Array;
  pointwise: Float32Array;
  bias?: Float32Array;
}

/** How to factorise one layer: its rank, and its weights (absent: freshly initialised, for training from scratch). */
export interface FactorSpec {
  rank: number;
  factors?: ConvFactors;
}

/** The 1×1 half of the factorised convolution `name` in `model`, if it is factorised. */
export function pointwiseOf(model: tf.LayersModel, name: string): GroupedConv2D | undefined {
  return model.layers.find((l): l is GroupedConv2D => l instanceof GroupedConv2D && l.factorOf === name);
}

/** A convolution the factorisation can split: an ungrouped GroupedConv2D that is not already a 1×1 half. */
export function factorizableConv(model: tf.LayersModel, name: string, where: string): GroupedConv2D {
  const l = model.layers.find((x) => x.name === name);
  const convs = model.layers.filter((x) => x instanceof GroupedConv2D && !x.factorOf).map((x) => x.name);
  if (!(l instanceof GroupedConv2D) || l.factorOf)
    throw new UserError(`${where}: "${name}" is not a convolution of ${model.name} (they are: ${convs.join(', ')})`);
  if (l.groups !== 1)
    throw new UserError(
      `${where}: "${name}" is a grouped convolution (${l.groups} groups); factorising grouped convolutions is not supported`,
    );
  return l;
}

function cloneLayer(layer: tf.layers.Layer): tf.layers.Layer {
  const cls = layer.constructor as tf.serialization.SerializableConstructor<tf.layers.Layer> & {
    fromConfig: (c: unknown, cfg: tf.serialization.ConfigDict) => tf.layers.Layer;
  };
  return cls.fromConfig(cls, layer.getConfig());
}

/** The new pair for convolution l (or for the d×d half l of a factorised one, whose 1×1 half `pw` gives C_out and the bias). */
function halves(l: GroupedConv2D, pw: GroupedConv2D | undefined, rank: number): [GroupedConv2D, GroupedConv2D] {
  const spatial = new GroupedConv2D({
    name: l.name,
    filters: rank,
    kernelSize: l.kernelSize,
    strides: l.strides,
    padding: l.padding,
    useBias: false,
  });
  const last = pw ?? l;
  const pointwise = new GroupedConv2D({
    name: pointwiseName(l.name),
    filters: last.filters,
    kernelSize: 1,
    padding: 'valid',
    useBias: last.useBias,
    factorOf: l.name,
  });
  return [spatial, pointwise];
}

/**
 * A copy of `model` (sequential or functional, layers in topological order)
 * with the convolutions in `specs` factorised and every other layer cloned
 * with its weights. A layer already factorised is replaced pair for pair
 * (its 1×1 half dropped, the new pair's weights given).
 */
export function factorizedModel(model: tf.LayersModel, specs: Map<string, FactorSpec>): tf.LayersModel {
  const input = tf.input({ shape: model.inputs[0].shape.slice(1) as number[] });
  const outputs = new Map<string, tf.SymbolicTensor>();
  const replaced = new Map<string, string>();
  const weighted: { layer: tf.layers.Layer; weights: tf.Tensor[]; owned?: boolean }[] = [];
  let last: tf.SymbolicTensor = input;
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const ins = layer.inboundNodes[0].inboundLayers.map((l) => outputs.get(replaced.get(l.name) ?? l.name) ?? input);
    const spec = specs.get(layer.name);
    if (layer instanceof GroupedConv2D && layer.factorOf && specs.has(layer.factorOf)) {
      replaced.set(layer.name, layer.factorOf);
      continue;
    }
    let out: tf.SymbolicTensor;
    if (spec && layer instanceof GroupedConv2D) {
      const [sp, pw] = halves(layer, pointwiseOf(model, layer.name), spec.rank);
      out = pw.apply(sp.apply(ins[0]) as tf.SymbolicTensor) as tf.SymbolicTensor;
      if (spec.factors) {
        const f = spec.factors,
          k = layer.kernelSize;
        weighted.push({
          layer: sp,
          weights: [tf.tensor(f.spatial, [k, k, f.spatial.length / (k * k * spec.rank), spec.rank])],
          owned: true,
        });
        weighted.push({
          layer: pw,
          weights: [
            tf.tensor(f.pointwise, [1, 1, spec.rank, pw.filters]),
            ...(pw.useBias ? [tf.tensor(f.bias ?? new Float32Array(pw.filters))] : []),
          ],
          owned: true,
        });
      }
    } else {
      const clone = cloneLayer(layer);
      out = clone.apply(ins.length === 1 ? ins[0] : ins) as tf.SymbolicTensor;
      weighted.push({ layer: clone, weights: layer.getWeights() });
    }
    outputs.set(layer.name, out);
    last = out;
  }
  const m = tf.model({ inputs: input, outputs: last, name: model.name });
  for (const { layer, weights, owned } of weighted) {
    layer.setWeights(weights);
    if (owned) tf.dispose(weights);
  }
  return m;
}

/** `model.factorize`: the named convolutions factorised at their ranks, freshly initialised (trained from scratch). */
export function factorizeForTraining(
  model: tf.LayersModel,
  f: { layers: string[]; rank: number | Record<string, number> },
): tf.LayersModel {
  const specs = new Map<string, FactorSpec>();
  for (const name of f.layers) {
    const l = factorizableConv(model, name, 'model.factorize.layers');
    const rank = typeof f.rank === 'number' ? f.rank : f.rank[name];
    if (rank === undefined) throw new UserError(`model.factorize.rank: no rank for "${name}"`);
    if (rank > l.filters)
      throw new UserError(`model.factorize.rank: ${rank} for "${name}" exceeds its ${l.filters} output channels (no saving)`);
    specs.set(name, { rank });
  }
  const out = factorizedModel(model, specs);
  model.dispose();
  return out;
}
