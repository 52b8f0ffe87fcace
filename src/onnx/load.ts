// ONNX import: decodes a ModelProto (onnx-proto/protobufjs) into the graph IR. Initializers in every
// layout exporters write (raw_data, typed fields, external data next to the model), Constant nodes
// become initializers, opset checked. Every failure names the file and, where there is one, the tensor.
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { MAX_ELEMENTS, ONNX_DTYPE, attrInt, makeConst, numel, type Attr, type ConstTensor, type DT, type Graph, type Node, type ValueDecl } from '../ir/graph.js';

const { onnx } = onnxProto;
type LongLike = number | { toNumber(): number };

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

function toNum(v: LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function decodeF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Decodes little-endian bytes of dtype into the IR's numeric array (copying: raw_data may be unaligned). */
function fromBytes(dt: DT, bytes: Uint8Array, n: number, what: string): Float32Array | Float64Array {
  const size = { float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 }[dt];
  if (bytes.length !== n * size) {
    throw new Error(`${what}: has ${bytes.length} bytes of data, expected ${n} elements × ${size} bytes = ${n * size}`);
  }
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const buf = copy.buffer;
  switch (dt) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'float16': { const u = new Uint16Array(buf); const o = new Float64Array(n); for (let i = 0; i < n; i++) o[i] = decodeF16(u[i]); return o; }
    case 'int64': { const b = new BigInt64Array(buf); const o = new Float64Array(n); for (let i = 0; i < n; i++) o[i] = Number(b[i]); return o; }
    case 'int32': return Float64Array.from(new Int32Array(buf));
    case 'int16': return Float64Array.from(new Int16Array(buf));
    case 'int8': return Float64Array.from(new Int8Array(buf));
    case 'uint8': return Float64Array.from(copy);
    case 'bool': return Float64Array.from(copy, (x) => (x ? 1 : 0));
  }
}

export interface LoadContext { source: string; baseDir?: string }

/** Converts a TensorProto to a ConstTensor (resolving external data relative to ctx.baseDir). */
export function tensorFromProto(t: InstanceType<typeof onnx.TensorProto> | Record<string, any>, ctx: LoadContext, label?: string): ConstTensor {
  const name = label ?? t.name ?? '';
  const what = `${ctx.source}: tensor '${name}'`;
  const dt = ONNX_DTYPE[t.dataType ?? 0];
  if (!dt) throw new Error(`${what}: unsupported data type ${t.dataType}`);
  const dims = (t.dims ?? []).map((d: LongLike) => toNum(d));
  for (const d of dims) if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${what}: invalid dim ${d}`);
  const n = numel(dims);
  if (n > MAX_ELEMENTS) throw new Error(`${what}: ${n} elements is too large`);
  if (t.dataLocation === 1) {
    const entries: Record<string, string> = {};
    for (const e of t.externalData ?? []) entries[e.key ?? ''] = e.value ?? '';
    const loc = entries.location;
    if (!loc) throw new Error(`${what}: external data without a location`);
    if (!ctx.baseDir) throw new Error(`${what}: external data file '${loc}' cannot be resolved for a model loaded from a buffer`);
    if (path.isAbsolute(loc) || loc.split(/[\\/]/).includes('..')) {
      throw new Error(`${what}: external data location '${loc}' must be a relative path inside the model directory`);
    }
    const file = path.join(ctx.baseDir, loc);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new Error(`${what}: cannot open external data file '${loc}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      const offset = entries.offset ? Number(entries.offset) : 0;
      const elemSize = { float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 }[dt];
      const length = entries.length ? Number(entries.length) : n * elemSize;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new Error(`${what}: external data range offset ${entries.offset ?? 0} length ${length} is outside '${loc}' (${size} bytes)`);
      }
      const bytes = new Uint8Array(length);
      fs.readSync(fd, bytes, 0, length, offset);
      return { dtype: dt, dims, data: fromBytes(dt, bytes, n, what) };
    } finally {
      fs.closeSync(fd);
    }
  }
  if (t.rawData && t.rawData.length > 0) return { dtype: dt, dims, data: fromBytes(dt, t.rawData, n, what) };
  let vals: ArrayLike<number> = [];
  if (dt === 'float32') vals = t.floatData ?? [];
  else if (dt === 'float64') vals = t.doubleData ?? [];
  else if (dt === 'int64') vals = (t.int64Data ?? []).map(toNum);
  else if (dt === 'float16') vals = (t.int32Data ?? []).map((h: number) => decodeF16(h & 0xffff));
  else vals = t.int32Data ?? [];
  if (vals.length !== n) throw new Error(`${what}: has ${vals.length} values, expected ${n} for dims [${dims.join(',')}]`);
  const c = makeConst(dt, dims);
  for (let i = 0; i < n; i++) c.data[i] = dt === 'bool' ? (vals[i] ? 1 : 0) : vals[i];
  return c;
}

function decodeAttr(a: Record<string, any>, ctx: LoadContext, nodeName: string): Attr | undefined {
  switch (a.type) {
    case 1: return { type: 'float', value: a.f ?? 0 };
    case 2: return { type: 'int', value: toNum(a.i) };
    case 3: return { type: 'string', value: Buffer.from(a.s ?? []).toString('utf8') };
    case 4:
      if (!a.t) throw new Error(`${ctx.source}: node '${nodeName}': attribute '${a.name}' is of type TENSOR but holds no tensor`);
      return { type: 'tensor', value: tensorFromProto(a.t, ctx, `${nodeName}.${a.name}`) };
    case 6: return { type: 'floats', value: [...(a.floats ?? [])] };
    case 7: return { type: 'ints', value: (a.ints ?? []).map(toNum) };
    case 8: return { type: 'strings', value: (a.strings ?? []).map((s: Uint8Array) => Buffer.from(s).toString('utf8')) };
    default: return undefined; // graphs, sparse tensors, type protos: no supported op reads them
  }
}

function decl(v: Record<string, any>, ctx: LoadContext): ValueDecl {
  const tt = v.type?.tensorType;
  if (!tt) throw new Error(`${ctx.source}: graph input/output '${v.name}' is not a tensor`);
  const dtype = ONNX_DTYPE[tt.elemType ?? 0];
  if (!dtype) throw new Error(`${ctx.source}: graph input/output '${v.name}' has unsupported element type ${tt.elemType}`);
  // protobufjs only sets own properties for fields present on the wire.
  const dims = (tt.shape?.dim ?? []).map((d: Record<string, any>) =>
    d.dimParam ? String(d.dimParam) : Object.prototype.hasOwnProperty.call(d, 'dimValue') ? toNum(d.dimValue) : null);
  return { name: v.name, dtype, dims };
}

/** Loads an ONNX model from a path or bytes into the graph IR. */
/** Opset 21's blocked quantization and Q's output_dtype change what a Q/DQ node means: refused, named. */
function checkQdqAttrs(n: Node, source: string): void {
  const block = n.attrs.block_size ? attrInt(n, 'block_size', 0) : 0;
  if (block !== 0) throw new Error(`${source}: node '${n.name}' (${n.opType}): blocked quantization (block_size ${block}) is not supported`);
  const dt = n.attrs.output_dtype ? attrInt(n, 'output_dtype', 0) : 0;
  if (dt !== 0 && !n.inputs[2]) throw new Error(`${source}: node '${n.name}' (${n.opType}): output_dtype ${dt} without a zero point is not supported (give y_zero_point)`);
}

/** A model file's bytes; a missing or unreadable file is an error naming it and the reason. */
export function readModelBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read model (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export function loadModel(src: string | Uint8Array): Graph {
  const source = typeof src === 'string' ? src : '<buffer>';
  const bytes = typeof src === 'string' ? readModelBytes(src) : src;
  const ctx: LoadContext = { source, baseDir: typeof src === 'string' ? path.dirname(path.resolve(src)) : undefined };
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  const g = model.graph;
  if (!g || !g.node || g.node.length === 0 || !model.opsetImport || model.opsetImport.length === 0) {
    throw new Error(`${source}: not a valid ONNX model (no graph, nodes or opset_import)`);
  }
  let opset = -1;
  for (const o of model.opsetImport) if (!o.domain || o.domain === 'ai.onnx') opset = toNum(o.version as LongLike);
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new Error(`${source}: default-domain opset ${opset < 0 ? 'missing' : opset} is not supported (need ${MIN_OPSET}–${MAX_OPSET})`);
  }
  const initializers = new Map<string, ConstTensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', tensorFromProto(t, ctx));
  const nodes: Node[] = [];
  let anon = 0;
  for (const n of g.node) {
    const name = n.name || `${n.opType}_${anon++}`;
    const attrs: Record<string, Attr> = {};
    for (const a of n.attribute ?? []) {
      const v = decodeAttr(a, ctx, name);
      if (v) attrs[a.name ?? ''] = v;
    }
    const domain = n.domain === 'ai.onnx' ? '' : n.domain ?? '';
    if (n.opType === 'Constant' && domain === '') {
      const out = n.output?.[0];
      if (!out) throw new Error(`${source}: Constant node '${name}' has no output`);
      initializers.set(out, constantValue(name, attrs, source));
      continue;
    }
    const node: Node = { name, opType: n.opType ?? '', domain, inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
    if (domain === '' && (node.opType === 'QuantizeLinear' || node.opType === 'DequantizeLinear')) checkQdqAttrs(node, source);
    nodes.push(node);
  }
  const inputs = (g.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map((v) => decl(v, ctx));
  const outputs = (g.output ?? []).map((v) => decl(v, ctx));
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) metadata[p.key ?? ''] = p.value ?? '';
  // QDQ files keep their QuantizeLinear/DequantizeLinear nodes: the session decides how they run
  // (src/runtime/model-compiler.ts: integer-only when it can, else the fp32 simulation, and says which)
  return { nodes, inputs, outputs, initializers, opset, metadata, source, nodeCount: g.node.length };
}

function constantValue(name: string, attrs: Record<string, Attr>, source: string): ConstTensor {
  const a = attrs.value ?? attrs.value_float ?? attrs.value_floats ?? attrs.value_int ?? attrs.value_ints;
  if (!a) throw new Error(`${source}: Constant node '${name}' has no supported value attribute`);
  if (attrs.value) return a.value as ConstTensor;
  if (attrs.value_float) return makeConst('float32', [], [a.value as number]);
  if (attrs.value_floats) return makeConst('float32', [(a.value as number[]).length], a.value as number[]);
  if (attrs.value_int) return makeConst('int64', [], [a.value as number]);
  return makeConst('int64', [(a.value as number[]).length], a.value as number[]);
}
