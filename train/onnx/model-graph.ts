import type * as tf from '@tensorflow/tfjs';
import { Graph } from './graph.js';
import { LAYER_RULES, UnsupportedLayerError, type Forward, type LayerCtx } from './layers.js';

/**
 * Turns a tfjs model into ONNX graphs: one training step (forward, backward,
 * loss, clipping, optimizer update, masks) and one evaluation pass. The
 * trainable weights go in as one flat vector `theta` (model.trainableWeights
 * order, each in tfjs layout), so the optimizer is a dozen operators on one
 * vector rather than a dozen per weight; the step returns `theta.next`, and
 * the optimizer's slots likewise (`m`, `v`). Non-trainable weights (batch
 * norm's moving statistics) go in as w<i> (index into model.weights) and
 * come back as w<i>.next.
 */
export interface StepGraphOptions {
  model: tf.LayersModel;
  task: 'classification' | 'reconstruction';
  numClasses: number;
  /** Input [H, W, C] (channels last, as the data pipeline delivers it). */
  shape: readonly [number, number, number];
  optimizer: 'sgd' | 'momentum' | 'adam';
  momentum: number;
  clipNorm: number | null;
  weightDecay: number;
  rangePenalty?: { bound: number; weight: number };
  /** Names of kernels held at a mask after each update (the step then takes `mask` over theta). */
  masked: string[];
  /** Also output the gradient over theta (after clipping) as `grad`: for tests against tfjs. */
  exposeGradients?: boolean;
}

export interface WeightSlot {
  name: string;
  shape: number[];
  size: number;
  trainable: boolean;
  /** Start in theta (trainable only). */ offset: number;
}

export interface GraphLayout {
  /** model.weights in order. */
  weights: WeightSlot[];
  /** Length of theta: all trainable weights. */
  size: number;
  /** Optimizer slot vectors (0 for SGD, 1 for momentum: m, 2 for Adam: m and v). */
  slots: number;
}

/** Where each weight lives: trainable ones in theta, in model.trainableWeights order. */
export function layoutOf(model: tf.LayersModel): { weights: WeightSlot[]; size: number } {
  const at = new Map<string, number>();
  let size = 0;
  for (const w of model.trainableWeights) {
    at.set(w.name, size);
    size += w.shape.reduce((a: number, b) => a * (b as number), 1);
  }
  const weights = model.weights.map((w) => ({
    name: w.name,
    shape: w.shape as number[],
    size: w.shape.reduce((a: number, b) => a * (b as number), 1),
    trainable: at.has(w.name),
    offset: at.get(w.name) ?? -1,
  }));
  return { weights, size };
}

/** Graph layout of a tfjs shape (no batch): [H, W, C] → [C, H, W]. */
function graphShape(s: (number | null)[]): number[] {
  const d = s.slice(1) as number[];
  return d.length === 3 ? [d[2], d[0], d[1]] : d;
}

interface Walked {
  order: { layer: tf.layers.Layer; ctx: LayerCtx; inputs: string[]; fwd: Forward }[];
  output: string;
  outShape: number[];
}

function layerInputs(layer: tf.layers.Layer): tf.layers.Layer[] {
  if (layer.inboundNodes.length !== 1)
    throw new UnsupportedLayerError(
      `layer ${layer.name} is used ${layer.inboundNodes.length} times (shared layers are not supported by the onnx training backend)`,
    );
  return layer.inboundNodes[0].inboundLayers as tf.layers.Layer[];
}

function walkForward(
  g: Graph,
  model: tf.LayersModel,
  x: string,
  params: Map<string, string>,
  training: boolean,
  penalty?: LayerCtx['penalty'],
): Walked {
  const values = new Map<string, string>();
  const order: Walked['order'] = [];
  const valueOf = (l: tf.layers.Layer) => (l.getClassName() === 'InputLayer' ? x : values.get(l.name));
  let last: tf.layers.Layer | undefined;
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const rule = LAYER_RULES[layer.getClassName()];
    if (!rule) throw new UnsupportedLayerError(`layer ${layer.name} (${layer.getClassName()}) has no onnx training rule`);
    const inbound = layerInputs(layer);
    const inputs = inbound.map((l) => {
      const v = valueOf(l);
      if (!v) throw new UnsupportedLayerError(`layer ${layer.name}: input ${l.name} is not computed before it`);
      return v;
    });
    const ctx: LayerCtx = {
      g,
      layer,
      config: layer.getConfig() as Record<string, unknown>,
      inShapes: inbound.map((l) => graphShape(l.outputShape as (number | null)[])),
      outShape: graphShape(layer.outputShape as (number | null)[]),
      params: layer.weights.map((w) => params.get(w.name)!),
      training,
      penalty,
    };
    const fwd = LAYER_RULES[layer.getClassName()].forward(ctx, inputs);
    values.set(layer.name, fwd.y);
    order.push({ layer, ctx, inputs, fwd });
    last = layer;
  }
  if (!last || model.outputs.length !== 1) throw new UnsupportedLayerError('the onnx training backend needs a model with one output');
  return { order, output: values.get(last.name)!, outShape: graphShape(last.outputShape as (number | null)[]) };
}

/** Loss (mean over the batch) and its gradient with respect to the model's output; correct count for classifiers. */
function lossOf(
  g: Graph,
  task: StepGraphOptions['task'],
  out: string,
  outShape: number[],
  xNhwc: string,
  labels: string,
  numClasses: number,
) {
  if (task === 'reconstruction') {
    const target = g.reshape(xNhwc, [0, -1]);
    const diff = g.sub(out, target);
    const loss = g.reduce('ReduceMean', g.mul(diff, diff), null, false);
    const numel = g.op('Cast', [g.op('Size', [out])], { to: 1 });
    return { loss, correct: g.scalar(0), dOut: g.div(g.mul(diff, g.scalar(2)), numel) };
  }
  if (outShape.length !== 1 || outShape[0] !== numClasses)
    throw new UnsupportedLayerError(`the model's output [${outShape}] is not ${numClasses} logits`);
  const logp = g.op('LogSoftmax', [out], { axis: 1 });
  const onehot = g.op('OneHot', [labels, g.constant([numClasses], [], 'int64'), g.constant([0, 1])], { axis: -1 });
  const loss = g.op('Neg', [g.reduce('ReduceMean', g.reduce('ReduceSum', g.mul(onehot, logp), [1], false), null, false)]);
  const batch = g.op('Cast', [g.op('Gather', [g.op('Shape', [out]), g.constant([0], [], 'int64')])], { to: 1 });
  const dOut = g.div(g.sub(g.op('Exp', [logp]), onehot), batch);
  const hits = g.op('Equal', [g.op('ArgMax', [out], { axis: 1, keepdims: 0 }), labels]);
  const correct = g.reduce('ReduceSum', g.op('Cast', [hits], { to: 1 }), null, false);
  return { loss, correct, dOut };
}

function declareInputs(g: Graph, model: tf.LayersModel, shape: readonly [number, number, number]) {
  const x = g.input('x', 'float', ['B', ...shape]);
  const { weights, size } = layoutOf(model);
  const theta = g.input('theta', 'float', [size]);
  const trainable = weights.filter((w) => w.trainable);
  const pieces =
    trainable.length === 1 ? [theta] : g.ops('Split', [theta, g.ints(trainable.map((w) => w.size))], { axis: 0 }, trainable.length);
  const params = new Map<string, string>();
  trainable.forEach((w, j) => params.set(w.name, g.reshape(pieces[j], w.shape)));
  weights.forEach((w, i) => {
    if (!w.trainable) params.set(w.name, g.input(`w${i}`, 'float', w.shape));
  });
  return { x, params, weights, size, theta, xNchw: g.transpose(x, [0, 3, 1, 2]) };
}

export function buildStepGraph(o: StepGraphOptions): { bytes: Uint8Array; layout: GraphLayout } {
  const g = new Graph();
  const { x, params, weights, size, theta, xNchw } = declareInputs(g, o.model, o.shape);
  const labels = g.input('labels', 'int64', ['B']);
  const lr = g.input('lr', 'float', []);
  const penalty = o.rangePenalty ? { ...o.rangePenalty, terms: [] as string[] } : undefined;
  const fw = walkForward(g, o.model, xNchw, params, true, penalty);
  const { loss, correct, dOut } = lossOf(g, o.task, fw.output, fw.outShape, x, labels, o.numClasses);

  // Backward in reverse order, summing the gradients of values read twice (residual branches).
  const grads = new Map<string, string[]>([[fw.output, [dOut]]]);
  const dW = new Map<string, string>();
  for (const step of [...fw.order].reverse()) {
    const contributions = grads.get(step.fwd.y);
    if (!contributions) continue;
    const dy = g.sumAll(contributions);
    const needDx = step.inputs.some((v) => v !== xNchw);
    const b = LAYER_RULES[step.layer.getClassName()].backward(step.ctx, step.fwd, dy, needDx);
    b.dx.forEach((d, i) => {
      const v = step.inputs[i];
      if (d && v !== xNchw) grads.set(v, [...(grads.get(v) ?? []), d]);
    });
    for (const [i, d] of b.dParams) dW.set(step.layer.weights[i].name, d);
  }

  // New values of non-trainable weights (batch-norm statistics) come from the forward pass.
  const updates = new Map<string, string>();
  for (const step of fw.order) for (const [i, v] of step.fwd.updates ?? []) updates.set(step.layer.weights[i].name, v);

  const trainable = weights.filter((w) => w.trainable);
  let grad = g.op(
    'Concat',
    trainable.map((w) => {
      const d = dW.get(w.name);
      if (!d) throw new UnsupportedLayerError(`weight ${w.name} gets no gradient (is its layer connected to the output?)`);
      return g.reshape(d, [-1]);
    }),
    { axis: 0 },
  );
  if (o.clipNorm !== null) {
    const norm = g.op('Sqrt', [g.reduce('ReduceSumSquare', grad, null, false)]);
    grad = g.mul(grad, g.op('Min', [g.scalar(1), g.div(g.scalar(o.clipNorm), norm)]));
  }
  if (o.exposeGradients) g.output('grad', grad, 'float', [size]);

  const slots = o.optimizer === 'sgd' ? 0 : o.optimizer === 'momentum' ? 1 : 2;
  let next: string;
  if (o.optimizer === 'sgd') {
    next = g.sub(theta, g.mul(grad, lr));
  } else if (o.optimizer === 'momentum') {
    // tfjs: a ← m·a + g; w ← w − lr·a
    const acc = g.add(g.mul(g.input('m', 'float', [size]), g.scalar(o.momentum)), grad);
    g.output('m.next', acc, 'float', [size]);
    next = g.sub(theta, g.mul(acc, lr));
  } else {
    // tfjs Adam: bias-corrected moments (bc1 = 1/(1 − β1^t), bc2 likewise, from the caller), ε = 1e-7 added to the root of the second.
    const m = g.add(g.mul(g.input('m', 'float', [size]), g.scalar(0.9)), g.mul(grad, g.scalar(0.1)));
    const v = g.add(g.mul(g.input('v', 'float', [size]), g.scalar(0.999)), g.mul(g.mul(grad, grad), g.scalar(0.001)));
    g.output('m.next', m, 'float', [size]);
    g.output('v.next', v, 'float', [size]);
    const bc1 = g.input('bc1', 'float', []),
      bc2 = g.input('bc2', 'float', []);
    const stepDir = g.div(g.mul(m, bc1), g.add(g.op('Sqrt', [g.mul(v, bc2)]), g.scalar(1e-7)));
    next = g.sub(theta, g.mul(stepDir, lr));
  }
  if (o.weightDecay > 0) {
    // Decoupled weight decay on kernels (rank ≥ 2) only: w ← w·(1 − decay·isKernel), decay = lr·wd from the caller.
    const isKernel = new Float32Array(size);
    for (const w of trainable) if (w.shape.length >= 2) isKernel.fill(1, w.offset, w.offset + w.size);
    next = g.mul(next, g.sub(g.scalar(1), g.mul(g.constant(isKernel, [size]), g.input('decay', 'float', []))));
  }
  // Pruned weights held at zero: one mask over theta (ones outside the masked kernels).
  if (o.masked.length) next = g.mul(next, g.input('mask', 'float', [size]));
  g.output('theta.next', next, 'float', [size]);
  weights.forEach((w, i) => {
    const u = updates.get(w.name);
    if (!w.trainable && u) g.output(`w${i}.next`, u, 'float', w.shape);
  });
  g.output('loss', loss, 'float', []);
  g.output('correct', correct, 'float', []);
  if (penalty?.terms.length) g.output('penalty', g.sumAll(penalty.terms), 'float', []);
  return { bytes: g.encode(`${o.model.name}_train`), layout: { weights, size, slots } };
}

/** Forward pass in inference mode with the loss and correct count (validation and test). */
export function buildEvalGraph(o: Pick<StepGraphOptions, 'model' | 'task' | 'numClasses' | 'shape'>): Uint8Array {
  const g = new Graph();
  const { x, params, xNchw } = declareInputs(g, o.model, o.shape);
  const labels = g.input('labels', 'int64', ['B']);
  const fw = walkForward(g, o.model, xNchw, params, false);
  const { loss, correct } = lossOf(g, o.task, fw.output, fw.outShape, x, labels, o.numClasses);
  g.output('loss', loss, 'float', []);
  g.output('correct', correct, 'float', []);
  g.output('output', fw.output, 'float', ['B', ...fw.outShape]);
  return g.encode(`${o.model.name}_eval`);
}

/**
 * The model's forward pass as a stand-alone ONNX inference graph (what a
 * pruned model ships as, `export.onnx`): input `input` [B, C, H, W] (NCHW,
 * as PyTorch and most ONNX tools expect), output `output`, every weight an
 * initializer (batch norm with its moving statistics).
 */
export function buildInferenceGraph(model: tf.LayersModel, shape: readonly [number, number, number]): Uint8Array {
  const g = new Graph();
  const x = g.input('input', 'float', ['B', shape[2], shape[0], shape[1]]);
  const params = new Map<string, string>();
  for (const w of model.weights) params.set(w.name, g.constant(w.read().dataSync() as Float32Array, w.shape as number[]));
  const fw = walkForward(g, model, x, params, false);
  g.output('output', fw.output, 'float', ['B', ...fw.outShape]);
  return g.encode(model.name);
}
