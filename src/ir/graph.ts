// The graph IR: ONNX nodes with decoded attributes, values with dtype/shape, constant tensors.
// Constant data lives in Float32Array (float32) or Float64Array (every other dtype: integers are
// exact up to 2^53, which covers shape arithmetic and index tables).

export type DT = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const ONNX_DTYPE: Record<number, DT> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64',
};
export const DT_TO_ONNX: Record<DT, number> = {
  float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11,
};

export interface ConstTensor {
  dtype: DT;
  dims: number[];
  data: Float32Array | Float64Array;
}

export type AttrValue = number | string | number[] | string[] | ConstTensor;
export interface Attr { type: 'int' | 'float' | 'string' | 'ints' | 'floats' | 'strings' | 'tensor'; value: AttrValue }

export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];   // '' = absent optional input
  outputs: string[];
  attrs: Record<string, Attr>;
}

/** A graph input/output: dims are numbers, symbolic names, or null (unknown). */
export interface ValueDecl { name: string; dtype: DT; dims: (number | string | null)[] }

export interface Graph {
  nodes: Node[];
  inputs: ValueDecl[];          // real inputs (initializers excluded)
  outputs: ValueDecl[];
  initializers: Map<string, ConstTensor>;
  opset: number;
  metadata: Record<string, string>;
  source: string;               // file path or '<buffer>' for messages
  nodeCount: number;            // ONNX nodes in the file, Constant nodes included
}

/** Refuse tensors bigger than this many elements anywhere (hostile dims). */
export const MAX_ELEMENTS = 2 ** 31 - 1;

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function makeConst(dtype: DT, dims: number[], values?: ArrayLike<number>): ConstTensor {
  const n = numel(dims);
  if (!(n <= 2 ** 31 - 1)) throw new Error(`constant [${dims.join(',')}] has ${n} elements, more than the limit ${2 ** 31 - 1}`);
  const data = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  if (values) {
    if (values.length !== n) throw new Error(`internal: constant of dims [${dims}] given ${values.length} values`);
    data.set(values as ArrayLike<number>);
  }
  return { dtype, dims, data };
}

export function isFloat(dt: DT): boolean {
  return dt === 'float32' || dt === 'float64' || dt === 'float16';
}

/** Rounds/wraps a JS number to what dtype can hold (ONNX Cast semantics: float→int truncates). */
export function castValue(v: number, dt: DT): number {
  switch (dt) {
    case 'float32': return Math.fround(v);
    case 'float64': case 'float16': return v;
    case 'bool': return v !== 0 && !Number.isNaN(v) ? 1 : 0;
    case 'int64': return Number.isFinite(v) ? Math.trunc(v) : 0;
    case 'int32': return Number.isFinite(v) ? Math.trunc(v) | 0 : 0;
    case 'int16': return Number.isFinite(v) ? ((Math.trunc(v) << 16) >> 16) : 0;
    case 'int8': return Number.isFinite(v) ? ((Math.trunc(v) << 24) >> 24) : 0;
    case 'uint8': return Number.isFinite(v) ? (Math.trunc(v) & 0xff) : 0;
  }
}

export function attrInt(n: Node, name: string, def?: number): number {
  const a = n.attrs[name];
  if (!a) {
    if (def === undefined) throw new Error(`node '${n.name}' (${n.opType}): missing attribute '${name}'`);
    return def;
  }
  if (a.type !== 'int') throw new Error(`node '${n.name}' (${n.opType}): attribute '${name}' must be an int`);
  return a.value as number;
}
export function attrFloat(n: Node, name: string, def?: number): number {
  const a = n.attrs[name];
  if (!a) {
    if (def === undefined) throw new Error(`node '${n.name}' (${n.opType}): missing attribute '${name}'`);
    return def;
  }
  if (a.type !== 'float' && a.type !== 'int') throw new Error(`node '${n.name}' (${n.opType}): attribute '${name}' must be a float`);
  return a.value as number;
}
export function attrInts(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  if (!a) return undefined;
  if (a.type !== 'ints') throw new Error(`node '${n.name}' (${n.opType}): attribute '${name}' must be ints`);
  return a.value as number[];
}
export function attrString(n: Node, name: string, def: string): string {
  const a = n.attrs[name];
  if (!a) return def;
  if (a.type !== 'string') throw new Error(`node '${n.name}' (${n.opType}): attribute '${name}' must be a string`);
  return a.value as string;
}
