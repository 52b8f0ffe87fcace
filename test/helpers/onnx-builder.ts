// A tiny helper to build ONNX models in tests (onnx-proto): nodes, initializers in raw/typed/external
// form, inputs with symbolic dims, opset and metadata.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
const CODE: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };

export interface TensorSpec {
  name?: string;
  dtype?: DType;                 // default float32
  dims: number[];
  data: ArrayLike<number>;
  /** 'raw' (default): raw_data; 'typed': float_data/int32_data/int64_data/double_data; 'external': see external. */
  form?: 'raw' | 'typed' | 'external';
  external?: { location: string; offset?: number; length?: number };
}
export type AttrSpec = number | string | number[] | { f: number } | { floats: number[] } | { t: TensorSpec };
export interface NodeSpec { op: string; inputs: string[]; outputs: string[]; attrs?: Record<string, AttrSpec>; name?: string; domain?: string }
export interface ValueSpec { name: string; dtype?: DType; dims?: (number | string)[] }
export interface ModelSpec {
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: TensorSpec[];
  opset?: number;                // default 13
  metadata?: Record<string, string>;
}

/** Little-endian bytes of data as dtype. */
export function tensorBytes(dtype: DType, data: ArrayLike<number>): Uint8Array {
  const a = Array.from(data);
  switch (dtype) {
    case 'float32': return new Uint8Array(Float32Array.from(a).buffer);
    case 'float64': return new Uint8Array(Float64Array.from(a).buffer);
    case 'int64': return new Uint8Array(BigInt64Array.from(a.map((v) => BigInt(v))).buffer);
    case 'int32': return new Uint8Array(Int32Array.from(a).buffer);
    case 'int16': return new Uint8Array(Int16Array.from(a).buffer);
    case 'int8': return new Uint8Array(Int8Array.from(a).buffer);
    case 'uint8': case 'bool': return Uint8Array.from(a);
    case 'float16': return new Uint8Array(Uint16Array.from(a.map(toF16)).buffer);
  }
}

function toF16(v: number): number {
  // round-to-nearest float16 bits for test values (normal range only)
  if (v === 0) return 0;
  const s = v < 0 ? 0x8000 : 0;
  const av = Math.abs(v);
  const e = Math.floor(Math.log2(av));
  const m = Math.round((av / 2 ** e - 1) * 1024);
  return s | ((e + 15) << 10) | (m & 0x3ff);
}

export function tensorProto(t: TensorSpec, name?: string) {
  const dtype = t.dtype ?? 'float32';
  const p: Record<string, unknown> = { name: name ?? t.name ?? '', dataType: CODE[dtype], dims: t.dims };
  const form = t.form ?? 'raw';
  if (form === 'raw') p.rawData = tensorBytes(dtype, t.data);
  else if (form === 'external') {
    p.dataLocation = 1;
    const e = t.external!;
    p.externalData = [{ key: 'location', value: e.location }];
    if (e.offset !== undefined) (p.externalData as object[]).push({ key: 'offset', value: String(e.offset) });
    if (e.length !== undefined) (p.externalData as object[]).push({ key: 'length', value: String(e.length) });
  } else {
    const a = Array.from(t.data);
    if (dtype === 'float32') p.floatData = a;
    else if (dtype === 'float64') p.doubleData = a;
    else if (dtype === 'int64') p.int64Data = a;
    else if (dtype === 'float16') p.int32Data = a.map(toF16);
    else p.int32Data = a;
  }
  return onnx.TensorProto.create(p);
}

function attrProto(name: string, v: AttrSpec) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  if (Array.isArray(v)) return v.every(Number.isInteger) ? { name, type: A.INTS, ints: v } : { name, type: A.FLOATS, floats: v };
  if ('f' in v) return { name, type: A.FLOAT, f: v.f };
  if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
  return { name, type: A.TENSOR, t: tensorProto(v.t) };
}

function valueInfo(v: ValueSpec) {
  const dims = v.dims?.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return {
    name: v.name,
    type: { tensorType: { elemType: CODE[v.dtype ?? 'float32'], shape: dims ? { dim: dims } : undefined } },
  };
}

/** Builds a ModelProto and returns its bytes. */
export function buildModel(m: ModelSpec): Uint8Array {
  const graph = {
    name: 'test',
    node: m.nodes.map((n, i) => ({
      name: n.name ?? `${n.op}_${i}`, opType: n.op, domain: n.domain ?? '', input: n.inputs, output: n.outputs,
      attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attrProto(k, v)),
    })),
    initializer: (m.initializers ?? []).map((t) => tensorProto(t)),
    input: m.inputs.map(valueInfo),
    output: m.outputs.map(valueInfo),
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'swinq-test',
    opsetImport: [{ domain: '', version: m.opset ?? 13 }],
    graph,
    metadataProps: Object.entries(m.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Deterministic pseudo-random floats in [lo, hi). */
export function rand(n: number, seed = 1, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}
