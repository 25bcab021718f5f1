import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../common/errors.js';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import {
  decodeModel,
  tensorValues,
  type DecodedModel,
  type AttributeMessage,
  type NodeMessage,
  type TensorMessage,
} from '../onnx/proto.js';
import { Builder, plain, polyProduct, setWeightsFrom, type Const, type Val } from './onnx-graph.js';

/**
 * An HE-friendly ONNX model (as PyTorch's exporter writes it) as a tfjs
 * model of the toolkit's layers, with its weights: Conv (with groups),
 * Gemm and MatMul (+ Add), BatchNormalization, AveragePool,
 * GlobalAveragePool, Flatten and Reshape to a vector, Add of two tensors
 * (residual connections), and polynomial activations written as Mul, Add,
 * Sub, Div by constants and Pow 2. ONNX is channels-first, tfjs
 * channels-last: kernels are transposed and the dense layer after a
 * flatten has its input rows reordered, so both compute the same function.
 * Anything else is refused, naming the operator and the node.
 */
export interface ImportedModel {
  model: tf.LayersModel;
  /** Input [H, W, C] (tfjs order) and the output's length. */
  inputShape: [number, number, number];
  outputs: number;
  producer: string;
  opset: number;
}

const HINT_ACTIVATION = 'HE export needs polynomial activations (x², or a·x² + b·x + c written with Mul/Add): retrain the model with one';
const NON_POLY = new Set([
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Softmax',
  'LogSoftmax',
  'Elu',
  'Selu',
  'Gelu',
  'HardSigmoid',
  'HardSwish',
  'MaxPool',
  'Clip',
  'Softplus',
]);

export function importOnnx(bytes: Uint8Array, file: string, name = 'onnx'): ImportedModel {
  let decoded: DecodedModel;
  try {
    decoded = decodeModel(bytes);
  } catch (e) {
    throw new UserError(`${file}: not an ONNX model (${(e as Error).message})`);
  }
  const { graph } = decoded;
  const consts = new Map<string, Const>();
  for (const t of graph.initializer) consts.set(t.name, constOf(t));
  const inputs = graph.input.filter((i) => !consts.has(i.name));
  if (inputs.length !== 1)
    throw new UserError(`${file}: expected one input tensor, found ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`);
  const dims = inputs[0].type.tensor_type.shape.dim.map((d) => ('dim_value' in d && d.dim_value ? Number(d.dim_value) : undefined));
  if (dims.length !== 4 || dims.slice(1).some((d) => d === undefined))
    throw new UserError(
      `${file}: input ${inputs[0].name} is [${dims.map((d) => d ?? '?').join(', ')}]; expected an image [N, C, H, W] with C, H, W fixed`,
    );
  const [C, H, W] = dims.slice(1) as number[];
  const input = tf.input({ shape: [H, W, C], name: 'input' });
  const b = new Builder();
  const uses = new Map<string, number>();
  for (const n of graph.node) for (const i of n.input) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of graph.output) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
  const vals = new Map<string, Val>([[inputs[0].name, plain(input, [C, H, W])]]);
  try {
    return build();
  } catch (err) {
    b.dispose();
    throw err;
  }

  function build(): ImportedModel {
    for (const node of graph.node) {
      const where = `${file}: node ${node.name || node.output[0]} (${node.op_type})`;
      const r = readNode(node, { vals, consts, b, uses, where });
      if (r.const) consts.set(node.output[0], r.const);
      if (r.val) vals.set(node.output[0], r.val);
    }
    if (graph.output.length !== 1) throw new UserError(`${file}: expected one output, found ${graph.output.length}`);
    const out = vals.get(graph.output[0].name);
    if (!out) throw new UserError(`${file}: the output ${graph.output[0].name} is a constant`);
    if (out.shape.length !== 1 || out.chw)
      throw new UserError(
        `${file}: the output is [${out.shape.join(', ')}]; expected a vector (logits or a flat reconstruction from a dense layer)`,
      );
    const y = b.materialise(out, `${file}: output`);
    const model = tf.model({ inputs: input, outputs: y, name });
    return { model, inputShape: [H, W, C], outputs: out.shape[0], producer: decoded.producer, opset: decoded.opset };
  }
}

function constOf(t: TensorMessage): Const {
  return { dims: t.dims.map(Number), v: tensorValues(t) };
}

interface Env {
  vals: Map<string, Val>;
  consts: Map<string, Const>;
  b: Builder;
  uses: Map<string, number>;
  where: string;
}

const attr = (n: NodeMessage, name: string): AttributeMessage | undefined => n.attribute.find((a) => a.name === name);
const ints = (n: NodeMessage, name: string, dflt: number[]) => {
  const a = attr(n, name);
  return a ? a.ints!.map(Number) : dflt;
};
const int = (n: NodeMessage, name: string, dflt: number) => {
  const a = attr(n, name);
  return a ? Number(a.i) : dflt;
};
const float = (n: NodeMessage, name: string, dflt: number) => attr(n, name)?.f ?? dflt;

/** What one node makes: a constant, or a value. */
function readNode(n: NodeMessage, e: Env): { const?: Const; val?: Val } {
  const { vals, consts, where } = e;
  const val = (i: number) => {
    const v = vals.get(n.input[i]);
    if (!v) throw new UserError(`${where}: input ${i} (${n.input[i]}) must be a tensor computed from the model's input, not a constant`);
    return v;
  };
  const cst = (i: number) => {
    const c = consts.get(n.input[i]);
    if (!c) throw new UserError(`${where}: input ${i} (${n.input[i]}) must be a constant (an initializer)`);
    return c;
  };
  const isConst = (i: number) => consts.has(n.input[i]);
  /** A binary node with one constant operand: which input is the tensor (vi), which the constant (ci); undefined for two tensors. */
  const constOperand = () => {
    if (isConst(0) && isConst(1)) throw new UserError(`${where}: constant folding is not supported; export with do_constant_folding=True`);
    if (!isConst(0) && !isConst(1)) return undefined;
    const [vi, ci] = isConst(1) ? [0, 1] : [1, 0];
    return { vi, ci, v: val(vi), k: cst(ci).v };
  };
  // A value computed by a conv or dense layer keeps its fold target while this node is its only reader.
  const foldOf = (v: Val, i: number) => ((e.uses.get(n.input[i]) ?? 0) === 1 ? v.fold : undefined);
  switch (n.op_type) {
    case 'Constant': {
      const t = attr(n, 'value')?.t;
      if (!t) throw new UserError(`${where}: only tensor constants (attribute value) are supported`);
      return { const: constOf(t) };
    }
    case 'Pad': {
      // PyTorch writes a zero Pad before each AveragePool: nothing to do. Any real padding belongs in the conv.
      const pads = n.input[1] ? Array.from(cst(1).v) : ints(n, 'pads', []);
      if (pads.some(Boolean))
        throw new UserError(`${where}: only a zero Pad is supported (got [${pads.join(', ')}]); pad in the convolution`);
      return { val: val(0) };
    }
    case 'Identity':
    case 'Dropout':
      return isConst(0) ? { const: cst(0) } : { val: val(0) };
    case 'Conv':
      return { val: conv(n, e, val(0), cst(1), n.input[2] ? cst(2) : undefined) };
    case 'Gemm': {
      if (int(n, 'transA', 0)) throw new UserError(`${where}: transA = 1 is not supported`);
      const w = cst(1);
      const [r, c] = w.dims;
      // Kernel as [in, out]: B is [out, in] with transB (PyTorch's Linear), else [in, out].
      const kernel = int(n, 'transB', 0) ? transpose2(w.v, r, c) : w.v;
      const alpha = float(n, 'alpha', 1),
        beta = float(n, 'beta', 1);
      const bias = n.input[2] ? cst(2).v : undefined;
      return { val: dense(e, val(0), scaled(kernel, alpha), bias && scaled(bias, beta)) };
    }
    case 'MatMul':
      return { val: dense(e, val(0), cst(1).v, undefined) };
    case 'BatchNormalization': {
      const x = val(0);
      const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => cst(i).v);
      const layer = e.b.layer(tf.layers.batchNormalization({ name: e.b.names.next('bn'), axis: -1, epsilon: float(n, 'epsilon', 1e-5) }));
      const y = layer.apply(e.b.materialise(x, where)) as tf.SymbolicTensor;
      setWeightsFrom(
        layer,
        [gamma, beta, mean, variance].map((a) => ({ data: Float32Array.from(a), shape: [a.length] })),
      );
      return { val: plain(y, x.shape) };
    }
    case 'AveragePool': {
      const x = val(0);
      const [k, k2] = ints(n, 'kernel_shape', []);
      const [s, s2] = ints(n, 'strides', [1, 1]);
      if (k !== k2 || s !== k || s2 !== k || ints(n, 'pads', [0, 0, 0, 0]).some(Boolean) || int(n, 'ceil_mode', 0))
        throw new UserError(
          `${where}: only k×k average pooling with stride k and no padding is supported (got kernel ${k}×${k2}, strides ${s}×${s2})`,
        );
      const pool = e.b.layer(tf.layers.averagePooling2d({ name: e.b.names.next('pool'), poolSize: k, strides: k, padding: 'valid' }));
      const y = pool.apply(e.b.materialise(x, where));
      return { val: plain(y as tf.SymbolicTensor, [x.shape[0], Math.floor(x.shape[1] / k), Math.floor(x.shape[2] / k)]) };
    }
    case 'GlobalAveragePool': {
      const x = val(0);
      const y = e.b.layer(tf.layers.globalAveragePooling2d({ name: e.b.names.next('pool') })).apply(e.b.materialise(x, where));
      return { val: plain(y as tf.SymbolicTensor, [x.shape[0], 1, 1], { squeezed: true }) };
    }
    case 'Flatten':
      if (int(n, 'axis', 1) !== 1) throw new UserError(`${where}: only Flatten with axis 1 (keep the batch) is supported`);
      return { val: flatten(e, val(0)) };
    case 'Reshape': {
      const target = Array.from(cst(1).v);
      const x = val(0);
      const size = x.shape.reduce((a, v) => a * v, 1);
      const vector = target.length === 2 && (target[1] === -1 || target[1] === size) && [0, 1, -1].includes(target[0]);
      if (!vector) throw new UserError(`${where}: only a reshape to [batch, ${size}] (a flatten) is supported, got [${target.join(', ')}]`);
      return { val: flatten(e, x) };
    }
    case 'Add':
    case 'Sub': {
      const sign = n.op_type === 'Sub' ? -1 : 1;
      const withConst = constOperand();
      if (withConst) {
        const { vi, ci, v, k } = withConst;
        // x − k, k − x: the tensor's coefficient flips only in the second.
        const s = ci === 1 ? 1 : sign,
          t = ci === 1 ? sign : 1;
        if (k.length === 1) return { val: { ...v, c: [s * v.c[0] + t * k[0], s * v.c[1], s * v.c[2]], fold: foldOf(v, vi) } };
        return {
          val: shiftVector(
            e,
            v,
            Float64Array.from(k, (x) => t * x),
            s,
            foldOf(v, vi),
          ),
        };
      }
      const a = val(0),
        c = val(1);
      if (a.x === c.x && !a.chw && !c.chw)
        return { val: { ...a, c: [a.c[0] + sign * c.c[0], a.c[1] + sign * c.c[1], a.c[2] + sign * c.c[2]], fold: undefined } };
      if (sign < 0) throw new UserError(`${where}: the difference of two tensors is not supported`);
      if (a.shape.join() !== c.shape.join()) throw new UserError(`${where}: adds tensors of shapes [${a.shape}] and [${c.shape}]`);
      const y = e.b.layer(tf.layers.add({ name: e.b.names.next('add') })).apply([e.b.materialise(a, where), e.b.materialise(c, where)]);
      return { val: plain(y as tf.SymbolicTensor, a.shape) };
    }
    case 'Mul':
    case 'Div': {
      const withConst = constOperand();
      if (withConst) {
        const { vi, ci, v, k } = withConst;
        if (k.length !== 1) throw new UserError(`${where}: only a product by a scalar constant is supported`);
        if (n.op_type === 'Div' && ci === 0)
          throw new UserError(`${where}: a constant divided by a tensor is not a polynomial; ${HINT_ACTIVATION}`);
        const f = n.op_type === 'Div' ? 1 / k[0] : k[0];
        return { val: { ...v, c: [v.c[0] * f, v.c[1] * f, v.c[2] * f], fold: foldOf(v, vi) } };
      }
      if (n.op_type === 'Div') throw new UserError(`${where}: a quotient of tensors is not a polynomial; ${HINT_ACTIVATION}`);
      return { val: product(e, val(0), val(1)) };
    }
    case 'Pow': {
      const v = val(0),
        p = cst(1).v;
      if (p.length !== 1 || p[0] !== 2) throw new UserError(`${where}: only Pow 2 (x²) is supported`);
      return { val: product(e, v, v) };
    }
    default:
      if (NON_POLY.has(n.op_type)) throw new UserError(`${where}: ${n.op_type} is not HE-friendly; ${HINT_ACTIVATION}`);
      throw new UserError(`${where}: operator ${n.op_type} is not supported by heprune import (see docs/deploy.md, "ONNX in and out")`);
  }
}

function product(e: Env, a: Val, c: Val): Val {
  if (a.x !== c.x)
    throw new UserError(`${e.where}: a product of two different tensors is not a polynomial activation of one; ${HINT_ACTIVATION}`);
  const p = polyProduct(a.c, c.c);
  if (!p) throw new UserError(`${e.where}: the activation's degree passes 2 (CKKS export supports x² per activation)`);
  return { ...a, c: p, fold: undefined };
}

/** A per-feature (per-channel) shift: folded into the conv or dense layer computing the tensor. */
function shiftVector(e: Env, v: Val, k: Float64Array, s: number, fold: tf.layers.Layer | undefined): Val {
  const features = v.shape[0];
  if (k.length !== features || !fold || v.c[2] !== 0 || v.c[0] !== 0 || v.c[1] !== 1)
    throw new UserError(`${e.where}: a per-feature shift is supported right after a conv or dense layer only`);
  if (s !== 1) throw new UserError(`${e.where}: a constant vector minus a tensor is not supported`);
  const [kernel, bias] = fold.getWeights();
  const bv = bias.dataSync() as Float32Array;
  setWeightsFrom(fold, [
    { data: kernel.dataSync() as Float32Array, shape: kernel.shape },
    { data: Float32Array.from(bv, (b, o) => b + k[o]), shape: [bv.length] },
  ]);
  return { ...v, fold };
}

function transpose2(v: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
  return out;
}
const scaled = (v: Float64Array, f: number) => (f === 1 ? v : Float64Array.from(v, (x) => x * f));

function flatten(e: Env, x: Val): Val {
  if (x.shape.length === 1) return x;
  if (x.squeezed) return { ...x, shape: [x.shape[0]], squeezed: undefined };
  const y = e.b.layer(tf.layers.flatten({ name: e.b.names.next('flatten') })).apply(e.b.materialise(x, e.where));
  const [C, H, W] = x.shape;
  return plain(y as tf.SymbolicTensor, [C * H * W], { chw: [C, H, W] });
}

/** A dense layer: kernel [in, out] in ONNX's input order, rows reordered when the input was flattened from [C, H, W]. */
function dense(e: Env, x: Val, kernel: Float64Array, bias: Float64Array | undefined): Val {
  if (x.shape.length !== 1) throw new UserError(`${e.where}: the input is [${x.shape.join(', ')}]; flatten it first`);
  const nIn = x.shape[0],
    nOut = kernel.length / nIn;
  if (!Number.isInteger(nOut)) throw new UserError(`${e.where}: weights of ${kernel.length} values do not fit an input of ${nIn}`);
  const k = new Float32Array(kernel.length);
  const [C, H, W] = x.chw ?? [nIn, 1, 1];
  for (let c = 0; c < C; c++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        const from = (c * H + h) * W + w,
          to = (h * W + w) * C + c;
        for (let o = 0; o < nOut; o++) k[to * nOut + o] = kernel[from * nOut + o];
      }
  const layer = e.b.layer(tf.layers.dense({ name: e.b.names.next('fc'), units: nOut, useBias: true }));
  const y = layer.apply(e.b.materialise(x, e.where)) as tf.SymbolicTensor;
  setWeightsFrom(layer, [
    { data: k, shape: [nIn, nOut] },
    { data: Float32Array.from(bias ?? new Float64Array(nOut)), shape: [nOut] },
  ]);
  return plain(y, [nOut], { fold: layer });
}

function conv(n: NodeMessage, e: Env, x: Val, w: Const, bias: Const | undefined): Val {
  const { where } = e;
  if (x.shape.length !== 3 || x.squeezed) throw new UserError(`${where}: the input is not an image [C, H, W]`);
  const [O, cinG, kh, kw] = w.dims;
  const groups = int(n, 'group', 1);
  const [s, s2] = ints(n, 'strides', [1, 1]);
  const pads = ints(n, 'pads', [0, 0, 0, 0]);
  const auto = attr(n, 'auto_pad')?.s ? new TextDecoder().decode(attr(n, 'auto_pad')!.s) : 'NOTSET';
  if (kh !== kw || s !== s2 || ints(n, 'dilations', [1, 1]).some((d) => d !== 1))
    throw new UserError(
      `${where}: only square kernels, equal strides and no dilation are supported (kernel ${kh}×${kw}, strides ${s}×${s2})`,
    );
  let padding: 'same' | 'valid' | number;
  if (auto === 'SAME_UPPER') padding = 'same';
  else if (auto === 'VALID') padding = 'valid';
  else if (auto !== 'NOTSET') throw new UserError(`${where}: auto_pad ${auto} is not supported`);
  else if (pads.every((p) => p === pads[0])) padding = pads[0] === 0 ? 'valid' : pads[0];
  else throw new UserError(`${where}: asymmetric padding [${pads.join(', ')}] is not supported`);
  const [C, H, Wd] = x.shape;
  if (cinG * groups !== C) throw new UserError(`${where}: weights for ${cinG * groups} input channels, the input has ${C}`);
  const layer = e.b.layer(
    new GroupedConv2D({ name: e.b.names.next('conv'), filters: O, kernelSize: kh, strides: s, padding, groups, useBias: true }),
  );
  const y = layer.apply(e.b.materialise(x, where)) as tf.SymbolicTensor;
  // OIHW (per group) → [k, k, C/G, O].
  const k = new Float32Array(w.v.length);
  for (let o = 0; o < O; o++)
    for (let ci = 0; ci < cinG; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) k[((ky * kw + kx) * cinG + ci) * O + o] = w.v[((o * cinG + ci) * kh + ky) * kw + kx];
  setWeightsFrom(layer, [
    { data: k, shape: [kh, kw, cinG, O] },
    { data: Float32Array.from(bias?.v ?? new Float64Array(O)), shape: [O] },
  ]);
  const [, OH, OW] = y.shape.slice(1).length === 3 ? [O, y.shape[1]!, y.shape[2]!] : [O, H, Wd];
  return plain(y, [O, OH, OW], { fold: layer });
}
