import {
  ATTR,
  DTYPE,
  encodeModel,
  type AttributeMessage,
  type DType,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from './proto.js';

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

/** A dimension: a number, or a name for a size known only at run time (the batch). */
export type Dim = number | string;

function attribute(name: string, v: AttrValue): AttributeMessage {
  if (typeof v === 'string') return { name, type: ATTR.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return { name, type: ATTR.INT, i: v };
  if (Array.isArray(v)) return { name, type: ATTR.INTS, ints: v };
  if ('float' in v) return { name, type: ATTR.FLOAT, f: v.float };
  return { name, type: ATTR.FLOATS, floats: v.floats };
}

function valueInfo(name: string, dtype: DType, dims: readonly Dim[]): ValueInfoMessage {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DTYPE[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/**
 * Builds one ONNX graph node by node. Values are named by the builder
 * (prefix + counter), so callers pass names around and never collide.
 */
export class Graph {
  private nodes: NodeMessage[] = [];
  private inits: TensorMessage[] = [];
  private inputs: ValueInfoMessage[] = [];
  private outputs: ValueInfoMessage[] = [];
  private count = 0;
  private constants = new Map<string, string>();

  fresh(prefix: string): string {
    return `${prefix}_${this.count++}`;
  }

  input(name: string, dtype: DType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Declares `value` a graph output under `name` (an Identity when the names differ). */
  output(name: string, value: string, dtype: DType, dims: readonly Dim[]): void {
    if (name !== value) this.nodes.push({ name: `out_${name}`, op_type: 'Identity', input: [value], output: [name], attribute: [] });
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  /** One node; returns its outputs' names (`outputs` of them). */
  ops(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({
      name: this.fresh(`n_${op}`),
      op_type: op,
      input: inputs,
      output: out,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.ops(op, inputs, attrs, 1)[0];
  }

  /** A constant tensor (float32 or int64), shared between uses of the same value. */
  constant(values: number[] | Float32Array, dims: number[] = [values.length], dtype: 'float' | 'int64' = 'float'): string {
    // Only small constants are shared (a key over a weight tensor's values would be megabytes).
    const key = values.length <= 64 ? `${dtype}:${dims.join('x')}:${Array.from(values).join(',')}` : undefined;
    const hit = key && this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh(dtype === 'float' ? 'cf' : 'ci');
    const bytes =
      dtype === 'float'
        ? new Uint8Array(Float32Array.from(values).buffer)
        : new Uint8Array(BigInt64Array.from(Array.from(values), (v) => BigInt(v)).buffer);
    this.inits.push({ name, dims, data_type: DTYPE[dtype], raw_data: bytes });
    if (key) this.constants.set(key, name);
    return name;
  }

  scalar(v: number): string {
    return this.constant([v], []);
  }
  ints(v: number[]): string {
    return this.constant(v, [v.length], 'int64');
  }

  // Shorthands for the operators used everywhere.
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm });
  }
  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.ints(shape)]);
  }
  reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceSumSquare', x: string, axes: number[] | null, keepdims: boolean): string {
    return this.op(op, axes ? [x, this.ints(axes)] : [x], { keepdims: keepdims ? 1 : 0 });
  }
  sumAll(xs: string[]): string {
    return xs.length === 1 ? xs[0] : this.op('Sum', xs);
  }

  encode(name: string): Uint8Array {
    return encodeModel({ name, node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs });
  }
}
