// Open Inference Protocol v2 (KServe v2 / Triton HTTP) request parsing and response encoding,
// including the binary-tensor extension. Pure functions: no I/O, no sessions. Every rejection is a
// ProtocolError (HTTP 400) whose message names the input, field or byte count that is wrong.

export type DType = 'float32' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type TypedArray = Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

interface DTypeInfo {
  kserve: string;
  bytes: number;
  make(n: number): TypedArray;
  view(buf: ArrayBuffer, off: number, n: number): TypedArray;
  min?: number;
  max?: number;
}

export const DTYPES: Record<DType, DTypeInfo> = {
  float32: { kserve: 'FP32', bytes: 4, make: (n) => new Float32Array(n), view: (b, o, n) => new Float32Array(b, o, n) },
  int64: { kserve: 'INT64', bytes: 8, make: (n) => new BigInt64Array(n), view: (b, o, n) => new BigInt64Array(b, o, n),
    min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER },
  int32: { kserve: 'INT32', bytes: 4, make: (n) => new Int32Array(n), view: (b, o, n) => new Int32Array(b, o, n),
    min: -2147483648, max: 2147483647 },
  int16: { kserve: 'INT16', bytes: 2, make: (n) => new Int16Array(n), view: (b, o, n) => new Int16Array(b, o, n),
    min: -32768, max: 32767 },
  int8: { kserve: 'INT8', bytes: 1, make: (n) => new Int8Array(n), view: (b, o, n) => new Int8Array(b, o, n),
    min: -128, max: 127 },
  uint8: { kserve: 'UINT8', bytes: 1, make: (n) => new Uint8Array(n), view: (b, o, n) => new Uint8Array(b, o, n),
    min: 0, max: 255 },
  bool: { kserve: 'BOOL', bytes: 1, make: (n) => new Uint8Array(n), view: (b, o, n) => new Uint8Array(b, o, n) },
};

const FROM_KSERVE = new Map(Object.entries(DTYPES).map(([k, v]) => [v.kserve, k as DType]));

/** A graph input or output as the server advertises it. `dims`: a number is fixed, a string is symbolic. */
export interface IoDesc { name: string; dtype: DType | string; dims: (number | string)[] | null }

export class ProtocolError extends Error {
  statusCode = 400;
}

export interface ParsedInput { name: string; dtype: DType; dims: number[]; data: TypedArray }
export interface RequestedOutput { name: string; binary: boolean }
export interface ParsedRequest {
  id?: string;
  inputs: Map<string, ParsedInput>;
  outputs: RequestedOutput[];
}

export const MAX_RANK = 16;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return `string '${v.length > 40 ? v.slice(0, 40) + '…' : v}'`;
  return typeof v;
}

/** Element count of validated dims (each a positive safe integer); Infinity when it overflows. */
function elementCount(dims: number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return Number.isSafeInteger(n) ? n : Infinity;
}

/**
 * Flattens `data` (flat or nested row-major) into `out`, checking every element's type and range.
 * Nesting deeper than the rank is refused, so hostile depth cannot recurse far.
 */
function fillFromJson(name: string, dtype: DType, data: unknown[], out: TypedArray, rank: number): void {
  const info = DTYPES[dtype];
  let k = 0;
  const bad = (v: unknown, why: string) =>
    new ProtocolError(`input '${name}': data element ${k} is ${describe(v)}, ${why}`);
  const walk = (arr: unknown[], depth: number): void => {
    if (depth > rank) throw new ProtocolError(`input '${name}': data is nested deeper than the shape's rank ${rank}`);
    for (const v of arr) {
      if (Array.isArray(v)) { walk(v, depth + 1); continue; }
      if (k >= out.length) throw new ProtocolError(`input '${name}': data has more than the ${out.length} elements its shape implies`);
      if (dtype === 'bool') {
        if (typeof v !== 'boolean') throw bad(v, 'expected true or false (BOOL)');
        (out as Uint8Array)[k++] = v ? 1 : 0;
      } else if (dtype === 'float32') {
        if (typeof v !== 'number') throw bad(v, 'expected a number (FP32)');
        (out as Float32Array)[k++] = v;
      } else {
        if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(v, `expected an integer (${info.kserve})`);
        if (v < info.min! || v > info.max!) throw bad(v, `out of ${info.kserve} range [${info.min}, ${info.max}]`);
        if (dtype === 'int64') (out as BigInt64Array)[k++] = BigInt(v);
        else (out as Exclude<TypedArray, BigInt64Array>)[k++] = v;
      }
    }
  };
  walk(data, 1);
  if (k !== out.length) throw new ProtocolError(`input '${name}': data has ${k} elements, shape implies ${out.length}`);
}

/** The JSON part of the body (all of it, or the first Inference-Header-Content-Length bytes). */
function parseJsonHeader(body: Buffer, headerLength: string | undefined): { req: Record<string, unknown>; jsonEnd: number } {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    if (!/^\d{1,12}$/.test(headerLength.trim())) {
      throw new ProtocolError(`Inference-Header-Content-Length must be a non-negative integer, got '${headerLength.slice(0, 40)}'`);
    }
    jsonEnd = Number(headerLength.trim());
    if (jsonEnd > body.length) {
      throw new ProtocolError(`Inference-Header-Content-Length is ${jsonEnd} but the body has only ${body.length} bytes`);
    }
  }
  let req: unknown;
  try {
    req = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (e) {
    throw new ProtocolError(`malformed JSON in request body: ${(e as Error).message}`);
  }
  if (!isObject(req)) throw new ProtocolError(`request body must be a JSON object, got ${describe(req)}`);
  return { req, jsonEnd };
}

/** An input's shape, checked against the model's dims; symbolic dims must agree across inputs. */
function parseShape(name: string, shape0: unknown, desc: IoDesc, symbols: Map<string, { value: number; input: string }>): number[] {
  if (!Array.isArray(shape0)) throw new ProtocolError(`input '${name}': shape must be an array of integers, got ${describe(shape0)}`);
  const shape = shape0 as unknown[];
  if (shape.length > MAX_RANK || (desc.dims && shape.length !== desc.dims.length)) {
    throw new ProtocolError(`input '${name}': shape has rank ${shape.length}, the model expects rank ${desc.dims?.length ?? `≤ ${MAX_RANK}`} [${(desc.dims ?? []).map((d) => (typeof d === 'number' ? d : -1)).join(',')}]`);
  }
  const dims: number[] = [];
  for (let a = 0; a < shape.length; a++) {
    const d = shape[a];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) {
      throw new ProtocolError(`input '${name}': shape[${a}] must be an integer ≥ 1, got ${typeof d === 'number' ? d : describe(d)}`);
    }
    const md = desc.dims?.[a];
    if (typeof md === 'number' && d !== md) throw new ProtocolError(`input '${name}': shape[${a}] is ${d}, the model expects ${md}`);
    if (typeof md === 'string' && md !== '') {
      const prev = symbols.get(md);
      if (prev && prev.value !== d) {
        throw new ProtocolError(`input '${name}': shape[${a}] is ${d} but dimension '${md}' is ${prev.value} in input '${prev.input}'`);
      }
      symbols.set(md, { value: d, input: name });
    }
    dims.push(d);
  }
  return dims;
}

/** binary_data_size bytes of the body at `offset`, copied into an aligned typed array. */
function binaryData(name: string, dtype: DType, dims: number[], binSize: unknown, body: Buffer, offset: number): TypedArray {
  const count = elementCount(dims);
  const info = DTYPES[dtype];
  if (typeof binSize !== 'number' || !Number.isSafeInteger(binSize) || binSize < 0) {
    throw new ProtocolError(`input '${name}': binary_data_size must be a non-negative integer, got ${describe(binSize)}`);
  }
  if (count === Infinity || binSize !== count * info.bytes) {
    throw new ProtocolError(`input '${name}': binary_data_size is ${binSize} bytes, shape [${dims.join(',')}] × ${info.kserve} needs ${count * info.bytes}`);
  }
  if (offset + binSize > body.length) {
    throw new ProtocolError(`input '${name}': binary data ends at byte ${offset + binSize} but the body has ${body.length} bytes`);
  }
  // Copy into a fresh, aligned buffer: the body's offset need not be a multiple of the element size.
  const ab = new ArrayBuffer(binSize);
  new Uint8Array(ab).set(body.subarray(offset, offset + binSize));
  const data = info.view(ab, 0, count);
  if (dtype === 'bool') {
    for (let k = 0; k < count; k++) if (data[k] as number > 1) throw new ProtocolError(`input '${name}': BOOL byte ${k} is ${data[k]}, expected 0 or 1`);
  }
  return data;
}

/** The requested outputs (default: all, binary when parameters.binary_data_output is true). */
function parseOutputs(reqOutputs: unknown, outputs: IoDesc[], binaryAll: boolean): RequestedOutput[] {
  if (reqOutputs === undefined) return outputs.map((o) => ({ name: o.name, binary: binaryAll }));
  if (!Array.isArray(reqOutputs)) throw new ProtocolError(`'outputs' must be an array, got ${describe(reqOutputs)}`);
  const known = new Set(outputs.map((o) => o.name));
  const seen = new Set<string>();
  const outs: RequestedOutput[] = [];
  for (let i = 0; i < reqOutputs.length; i++) {
    const o = reqOutputs[i];
    if (!isObject(o) || typeof o.name !== 'string') throw new ProtocolError(`outputs[${i}] must be an object with a string name`);
    if (!known.has(o.name)) throw new ProtocolError(`unknown output '${o.name.slice(0, 100)}'; the model's outputs are ${outputs.map((d) => `'${d.name}'`).join(', ')}`);
    if (seen.has(o.name)) throw new ProtocolError(`output '${o.name}' is requested twice`);
    seen.add(o.name);
    if (o.parameters !== undefined && !isObject(o.parameters)) throw new ProtocolError(`output '${o.name}': parameters must be an object`);
    const bd = (o.parameters as Record<string, unknown> | undefined)?.binary_data;
    if (bd !== undefined && typeof bd !== 'boolean') throw new ProtocolError(`output '${o.name}': binary_data must be true or false`);
    outs.push({ name: o.name, binary: bd ?? binaryAll });
  }
  return outs;
}

/**
 * Parses an infer request body against the model's inputs/outputs.
 * `headerLength` is the Inference-Header-Content-Length header (binary-tensor extension) or undefined.
 */
export function parseInferRequest(body: Buffer, headerLength: string | undefined, inputs: IoDesc[], outputs: IoDesc[]): ParsedRequest {
  const { req, jsonEnd } = parseJsonHeader(body, headerLength);
  let id: string | undefined;
  if (req.id !== undefined) {
    if (typeof req.id !== 'string') throw new ProtocolError(`'id' must be a string, got ${describe(req.id)}`);
    id = req.id;
  }
  if (req.parameters !== undefined && !isObject(req.parameters)) throw new ProtocolError(`'parameters' must be an object`);
  const params = (req.parameters ?? {}) as Record<string, unknown>;
  if (!Array.isArray(req.inputs) || req.inputs.length === 0) {
    throw new ProtocolError(`'inputs' must be a non-empty array, got ${describe(req.inputs)}`);
  }
  const byName = new Map(inputs.map((d) => [d.name, d]));
  const parsed = new Map<string, ParsedInput>();
  const symbols = new Map<string, { value: number; input: string }>();
  let binOffset = jsonEnd;
  for (let i = 0; i < req.inputs.length; i++) {
    const inp = req.inputs[i];
    if (!isObject(inp)) throw new ProtocolError(`inputs[${i}] must be an object, got ${describe(inp)}`);
    if (typeof inp.name !== 'string') throw new ProtocolError(`inputs[${i}].name must be a string, got ${describe(inp.name)}`);
    const name = inp.name;
    const desc = byName.get(name);
    if (!desc) throw new ProtocolError(`unknown input '${name.slice(0, 100)}'; the model's inputs are ${inputs.map((d) => `'${d.name}'`).join(', ')}`);
    if (parsed.has(name)) throw new ProtocolError(`input '${name}' is given twice`);
    if (typeof inp.datatype !== 'string') throw new ProtocolError(`input '${name}': datatype must be a string, got ${describe(inp.datatype)}`);
    const dtype = FROM_KSERVE.get(inp.datatype);
    const want = DTYPES[desc.dtype as DType]?.kserve ?? desc.dtype;
    if (dtype !== desc.dtype) throw new ProtocolError(`input '${name}': datatype ${inp.datatype.slice(0, 20)}, the model expects ${want}`);
    const dims = parseShape(name, inp.shape, desc, symbols);
    const ip = inp.parameters;
    if (ip !== undefined && !isObject(ip)) throw new ProtocolError(`input '${name}': parameters must be an object`);
    const binSize = (ip as Record<string, unknown> | undefined)?.binary_data_size;
    let data: TypedArray;
    if (binSize !== undefined) {
      if (headerLength === undefined) throw new ProtocolError(`input '${name}': binary_data_size needs the Inference-Header-Content-Length header`);
      if (inp.data !== undefined) throw new ProtocolError(`input '${name}': give either data or binary_data_size, not both`);
      data = binaryData(name, dtype, dims, binSize, body, binOffset);
      binOffset += binSize as number;
    } else {
      if (!Array.isArray(inp.data)) throw new ProtocolError(`input '${name}': data must be an array, got ${describe(inp.data)}`);
      // Data is bounded by the body size; a shape implying more elements than the body could hold is refused
      // before allocating.
      const count = elementCount(dims);
      if (count > body.length) throw new ProtocolError(`input '${name}': shape [${dims.join(',')}] implies ${count} elements, more than the request could carry`);
      data = DTYPES[dtype].make(count);
      fillFromJson(name, dtype, inp.data, data, dims.length);
    }
    parsed.set(name, { name, dtype, dims, data });
  }
  for (const d of inputs) if (!parsed.has(d.name)) throw new ProtocolError(`missing input '${d.name}'`);
  if (binOffset !== body.length) {
    throw new ProtocolError(`the body has ${body.length - binOffset} bytes after the JSON header and binary inputs that no input claims`);
  }
  return { id, inputs: parsed, outputs: parseOutputs(req.outputs, outputs, params.binary_data_output === true) };
}

export interface OutputTensor { name: string; dtype: DType; dims: number[]; data: TypedArray }

function toJsonArray(dtype: DType, data: TypedArray): unknown[] {
  if (dtype === 'bool') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (dtype === 'int64') return Array.from(data as BigInt64Array, (v) => Number(v));
  return Array.from(data as Exclude<TypedArray, BigInt64Array>);
}

/** Encodes an infer response: plain JSON, or JSON header + binary tensors when any output asks for binary. */
export function encodeInferResponse(modelName: string, id: string | undefined, outs: { tensor: OutputTensor; binary: boolean }[]):
  { body: Buffer | string; headerLength?: number } {
  const chunks: Buffer[] = [];
  const outputs = outs.map(({ tensor, binary }) => {
    const datatype = DTYPES[tensor.dtype].kserve;
    if (!binary) return { name: tensor.name, datatype, shape: tensor.dims, data: toJsonArray(tensor.dtype, tensor.data) };
    const b = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    chunks.push(b);
    return { name: tensor.name, datatype, shape: tensor.dims, parameters: { binary_data_size: b.length } };
  });
  const head = JSON.stringify({ model_name: modelName, model_version: '1', ...(id !== undefined ? { id } : {}), outputs });
  if (chunks.length === 0) return { body: head };
  const hb = Buffer.from(head, 'utf8');
  return { body: Buffer.concat([hb, ...chunks]), headerLength: hb.length };
}

/** The model metadata response: -1 for symbolic/unknown dims. */
export function modelMetadata(name: string, inputs: IoDesc[], outputs: IoDesc[], plan?: { plan: string; blockedBy?: { node: string; op: string; reason: string }; isa?: string }) {
  const t = (d: IoDesc) => ({
    name: d.name,
    datatype: DTYPES[d.dtype as DType]?.kserve ?? String(d.dtype).toUpperCase(),
    shape: (d.dims ?? [-1]).map((x) => (typeof x === 'number' ? x : -1)),
  });
  // "plan" (and "blocked_by", "isa") beside the protocol's keys: which plan this model runs, on which kernel set
  const p = plan ? { plan: plan.plan, ...(plan.blockedBy ? { blocked_by: plan.blockedBy } : {}), ...(plan.isa ? { isa: plan.isa } : {}) } : {};
  return { name, versions: ['1'], platform: 'swinq', inputs: inputs.map(t), outputs: outputs.map(t), ...p };
}
