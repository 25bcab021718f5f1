import * as tf from '@tensorflow/tfjs';
import { GroupedConv2D } from './layers/grouped-conv.js';

/**
 * Starting a model from another trained model's weights (`train.init`),
 * layer by layer by name. The one shape change allowed is the one SpENCNN's
 * HE-group conversion needs: a convolution with more channel groups than the
 * source's takes the diagonal blocks of the source kernel (output channel o
 * of group g keeps its weights on group g's input channels and loses the
 * rest), so a trained dense model becomes a grouped one that fine-tuning
 * repairs, instead of a grouped model trained from scratch.
 */

/**
 * A [k, k, cin/from, cout] kernel (flattened, row-major) regrouped to
 * [k, k, cin/to, cout]. `to` must be a multiple of `from`: each new group's
 * input channels then lie inside its old group's, so every kept weight exists
 * in the source.
 */
export function regroupKernel(src: Float32Array, k2: number, cin: number, cout: number, from: number, to: number): Float32Array {
  if (to % from !== 0) throw new Error(`cannot regroup ${from} groups into ${to}: ${to} is not a multiple of ${from}`);
  if (cin % to !== 0 || cout % to !== 0)
    throw new Error(`cannot regroup into ${to} groups: channels ${cin}→${cout} not divisible by ${to}`);
  const srcIn = cin / from,
    dstIn = cin / to;
  if (src.length !== k2 * srcIn * cout) throw new Error(`kernel has ${src.length} values, expected ${k2}·${srcIn}·${cout}`);
  const out = new Float32Array(k2 * dstIn * cout);
  for (let o = 0; o < cout; o++) {
    const gDst = Math.floor((o * to) / cout),
      gSrc = Math.floor((o * from) / cout);
    // Absolute input channel a = gDst·dstIn + i sits at a − gSrc·srcIn in the source's group.
    const offset = gDst * dstIn - gSrc * srcIn;
    for (let p = 0; p < k2; p++) {
      for (let i = 0; i < dstIn; i++) out[(p * dstIn + i) * cout + o] = src[(p * srcIn + offset + i) * cout + o]!;
    }
  }
  return out;
}

export interface TransferReport {
  /** Layers whose weights were copied unchanged. */
  copied: string[];
  /** Convolutions regrouped, with the share of the source kernel's squared norm they kept. */
  regrouped: { layer: string; from: number; to: number; keptEnergy: number }[];
}

const sumSq = (a: Float32Array) => a.reduce((s, v) => s + v * v, 0);

/** Sets every weight of `target` from the layer of the same name in `source`. Throws, naming the layer, on anything else. */
export function transferWeights(source: tf.LayersModel, target: tf.LayersModel): TransferReport {
  const report: TransferReport = { copied: [], regrouped: [] };
  const srcNames = new Set(source.layers.map((l) => l.name));
  for (const layer of target.layers) {
    const dst = layer.getWeights();
    if (!dst.length) continue;
    if (!srcNames.has(layer.name))
      throw new Error(`layer ${layer.name} has no layer of that name in the source model (it has ${[...srcNames].join(', ')})`);
    const srcLayer = source.getLayer(layer.name);
    const src = srcLayer.getWeights();
    if (src.length !== dst.length) throw new Error(`layer ${layer.name}: the source has ${src.length} weights, this model ${dst.length}`);
    const values: tf.Tensor[] = [];
    let regrouped: TransferReport['regrouped'][number] | undefined;
    dst.forEach((d, j) => {
      const s = src[j]!;
      if (s.shape.join() === d.shape.join()) {
        values.push(s);
        return;
      }
      // The same convolution (kernel size, input and output channels) in other groups.
      const sameConv =
        layer instanceof GroupedConv2D &&
        srcLayer instanceof GroupedConv2D &&
        d.rank === 4 &&
        s.rank === 4 &&
        d.shape[0] === s.shape[0] &&
        d.shape[1] === s.shape[1] &&
        d.shape[3] === s.shape[3] &&
        d.shape[2]! * layer.groups === s.shape[2]! * srcLayer.groups;
      if (sameConv) {
        const [kh, kw, , cout] = d.shape as [number, number, number, number];
        const cin = s.shape[2]! * srcLayer.groups;
        const from = s.dataSync() as Float32Array;
        let kept: Float32Array;
        try {
          kept = regroupKernel(from, kh * kw, cin, cout, srcLayer.groups, layer.groups);
        } catch (e) {
          throw new Error(`layer ${layer.name}: ${(e as Error).message}`);
        }
        values.push(tf.tensor(kept, d.shape));
        regrouped = { layer: layer.name, from: srcLayer.groups, to: layer.groups, keptEnergy: sumSq(kept) / Math.max(sumSq(from), 1e-30) };
        return;
      }
      throw new Error(`layer ${layer.name}: weight ${j} has shape [${s.shape.join(', ')}] in the source and [${d.shape.join(', ')}] here`);
    });
    // getWeights hands back the variables' own tensors: only the regrouped ones made here are disposed.
    layer.setWeights(values);
    values.forEach((v) => {
      if (!src.includes(v)) v.dispose();
    });
    if (regrouped) report.regrouped.push(regrouped);
    else report.copied.push(layer.name);
  }
  return report;
}
