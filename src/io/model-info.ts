// Reads what the CLI needs to know about a model without compiling it: graph inputs/outputs
// (name, dtype, dims with symbolic names) and metadata_props. Errors name the file.
import fs from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type Dim = number | string; // fixed size, or a symbolic name ('' when unnamed)
export interface ValueInfo { name: string; dtype: string; dims: Dim[] | null }
export interface ModelInfo {
  path?: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  metadata: Record<string, string>;
}

// onnx TensorProto.DataType → the Tensor type names used by the API.
const ELEM: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof (v as { toNumber?: () => number }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function valueInfo(v: any): ValueInfo {
  const tt = v.type?.tensorType;
  const dtype = tt ? (ELEM[tt.elemType] ?? `type#${tt.elemType}`) : 'non-tensor';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const dims = tt?.shape ? tt.shape.dim.map((d: any) => (d.dimParam ? String(d.dimParam) : d.dimValue != null && toNum(d.dimValue) > 0 ? toNum(d.dimValue) : '')) : null;
  return { name: v.name, dtype, dims };
}

export function modelInfoFromBytes(bytes: Uint8Array, name = '<buffer>'): ModelInfo {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let m: any;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${name}: not a valid ONNX model (${(e as Error).message.split('\n')[0]})`);
  }
  if (!m.graph) throw new Error(`${name}: not a valid ONNX model (no graph)`);
  const inits = new Set<string>((m.graph.initializer ?? []).map((t: { name: string }) => t.name));
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key] = p.value;
  return {
    inputs: (m.graph.input ?? []).filter((v: { name: string }) => !inits.has(v.name)).map(valueInfo),
    outputs: (m.graph.output ?? []).map(valueInfo),
    metadata,
  };
}

export function readModelInfo(file: string): ModelInfo {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`${file}: no such model file`);
    if (err.code === 'EISDIR') throw new Error(`${file}: is a directory, expected an .onnx model`);
    throw new Error(`${file}: cannot read (${err.message})`);
  }
  return { ...modelInfoFromBytes(bytes, file), path: file };
}

export function formatDims(dims: readonly Dim[] | null): string {
  return dims ? `[${dims.map((d) => (d === '' ? '?' : d)).join(', ')}]` : '[?]';
}
