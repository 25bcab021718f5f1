import protobuf from 'protobufjs';

/**
 * The part of the ONNX schema a training graph needs, and an imported
 * model is read with. Field numbers are those
 * of onnx/onnx.proto3 (the wire format is what matters; messages and fields
 * not listed are simply never written).
 */
const SCHEMA = `
syntax = "proto3";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; FLOATS = 6; INTS = 7; }
  string name = 1;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated TensorProto tensors = 9;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  repeated AttributeProto attribute = 5;
}
message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  GraphProto graph = 7;
}
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4;
  repeated int32 int32_data = 5;
  repeated int64 int64_data = 7;
  string name = 8;
  bytes raw_data = 9;
  repeated double double_data = 10;
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

/** Element types by their ONNX TensorProto.DataType number. */
export const DTYPE = { float: 1, int64: 7, bool: 9 } as const;
export type DType = keyof typeof DTYPE;

export const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorMessage {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}
export interface AttributeMessage {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
  t?: TensorMessage;
}
export interface NodeMessage {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: AttributeMessage[];
}
export interface ValueInfoMessage {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}
export interface GraphMessage {
  name: string;
  node: NodeMessage[];
  initializer: TensorMessage[];
  input: ValueInfoMessage[];
  output: ValueInfoMessage[];
}

/** Operator set the graphs are written for (every Reduce* takes its axes as an input from 18 on). */
export const OPSET = 18;

export function encodeModel(graph: GraphMessage): Uint8Array {
  const msg = ModelProto.fromObject({
    ir_version: 8,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'heprune',
    graph,
  });
  return ModelProto.encode(msg).finish();
}

export interface DecodedModel {
  producer: string;
  opset: number;
  graph: GraphMessage;
}

/** Reads an ONNX model (fields outside the schema above are skipped): int64s as numbers, tensors' data as given. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  const m = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: true, arrays: true }) as {
    producer_name: string;
    producer_version: string;
    opset_import: { domain: string; version: number }[];
    graph?: GraphMessage;
  };
  if (!m.graph) throw new Error('no graph in the model');
  const opset = m.opset_import.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  return { producer: `${m.producer_name} ${m.producer_version}`.trim(), opset, graph: m.graph };
}

/** A tensor's values as float64 (float, double, int32, int64 in raw_data or the typed fields). */
export function tensorValues(
  t: TensorMessage & { float_data?: number[]; int32_data?: number[]; int64_data?: number[]; double_data?: number[] },
): Float64Array {
  const raw = t.raw_data;
  if (raw && raw.length) {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    switch (t.data_type) {
      case 1:
        return Float64Array.from(new Float32Array(buf));
      case 6:
        return Float64Array.from(new Int32Array(buf));
      case 7:
        return Float64Array.from(new BigInt64Array(buf), Number);
      case 11:
        return new Float64Array(buf);
      default:
        throw new Error(`tensor ${t.name}: element type ${t.data_type} is not supported (float, double, int32, int64 are)`);
    }
  }
  const typed = t.float_data?.length
    ? t.float_data
    : t.int64_data?.length
      ? t.int64_data
      : t.int32_data?.length
        ? t.int32_data
        : (t.double_data ?? []);
  return Float64Array.from(typed);
}
