// What the server needs of a model: its graph inputs/outputs (read from the ONNX file, so metadata
// and validation need no compile) and a session that runs feeds asynchronously.
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { readModelBytes } from '../onnx/load.js';
import type { DType, IoDesc, TypedArray } from './protocol.js';
import { type IsaOption } from '../native.js';

const { onnx } = onnxProto;

/** The part of InferenceSession / Tensor (src/session.ts, src/tensor.ts) the server uses. */
export interface TensorLike { type: string; data: TypedArray | ArrayLike<unknown>; dims: readonly number[] }
export interface SessionLike {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, TensorLike>): Promise<Record<string, TensorLike>>;
  release?(): void;
}
export type TensorFactory = (type: DType, data: TypedArray, dims: number[]) => TensorLike;

export interface ServedModel {
  name: string;
  path?: string;
  inputs: IoDesc[];
  outputs: IoDesc[];
  session: SessionLike;
  makeTensor: TensorFactory;
  /** which plan runs (swinq's 'integer-only' | 'fp32' | 'qdq-simulated', with what blocked the
   *  integer plan; 'onnxruntime' for that engine) and, for swinq, on which kernel set; shown in the
   *  model metadata */
  plan?: { plan: string; blockedBy?: { node: string; op: string; reason: string }; isa?: string };
}

// onnx TensorProto.DataType → Tensor type names
const ELEM: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof (v as { toNumber?: () => number }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** Graph inputs (without initializers) and outputs of an ONNX model; errors name the file. */
export function readModelIo(bytes: Uint8Array, file: string): { inputs: IoDesc[]; outputs: IoDesc[] } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let m: any;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${file}: not a valid ONNX model (${(e as Error).message.split('\n')[0]})`);
  }
  if (!m.graph) throw new Error(`${file}: not a valid ONNX model (no graph)`);
  const inits = new Set<string>((m.graph.initializer ?? []).map((t: { name: string }) => t.name));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const io = (v: any): IoDesc => {
    const tt = v.type?.tensorType;
    const dtype = tt ? (ELEM[tt.elemType] ?? `type#${tt.elemType}`) : 'non-tensor';
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const dims = tt?.shape ? tt.shape.dim.map((d: any) => (d.dimParam ? String(d.dimParam) : d.dimValue != null && num(d.dimValue) > 0 ? num(d.dimValue) : '')) : null;
    return { name: String(v.name), dtype, dims };
  };
  return {
    inputs: (m.graph.input ?? []).filter((v: { name: string }) => !inits.has(v.name)).map(io),
    outputs: (m.graph.output ?? []).map(io),
  };
}

/** Served name of a positional MODEL argument: the file name without `.onnx`. */
export function modelNameFromPath(p: string): string {
  return path.basename(p).replace(/\.onnx$/i, '');
}

export const MODEL_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface LoadOptions {
  threads?: number; isa?: IsaOption; engine?: 'swinq' | 'onnxruntime';
  /** a QDQ model that cannot run integer-only is refused (the error names node, op and reason) */
  requireInteger?: boolean;
}

/**
 * Loads a model through the InferenceSession API (or onnxruntime-node with engine 'onnxruntime', as a
 * baseline behind the same server). Imported lazily so the protocol code needs no addon.
 */
export async function loadModel(name: string, file: string, opts: LoadOptions = {}): Promise<ServedModel> {
  if (!MODEL_NAME_RE.test(name)) throw new Error(`model name '${name}' must match ${MODEL_NAME_RE} (from ${file})`);
  const bytes = readModelBytes(file);
  const io = readModelIo(bytes, file);
  const { openEngine } = await import('../engine.js');
  const threads = opts.threads ?? Math.max(1, os.availableParallelism());
  // new shapes (odd row counts, non-batchable models, --no-warmup) compile off the event loop
  const session = await openEngine(opts.engine ?? 'swinq', file, { threads, isa: opts.isa, requireInteger: opts.requireInteger, compileInBackground: true });
  // Engines take plain { type, data, dims } tensors and wrap them in their own Tensor class.
  return checkModel({ name, path: file, ...io, session: session as SessionLike, makeTensor: (type, data, dims) => ({ type, data, dims }), plan: session.planFor() });
}

/** Cross-checks the ONNX graph IO with the session's names; refuses dtypes the protocol cannot carry. */
export function checkModel(m: ServedModel): ServedModel {
  const names = new Set(m.session.inputNames);
  const inputs = m.inputs.filter((d) => names.has(d.name));
  for (const n of m.session.inputNames) {
    if (!inputs.some((d) => d.name === n)) inputs.push({ name: n, dtype: 'float32', dims: null });
  }
  for (const d of [...inputs, ...m.outputs]) {
    if (!['float32', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'].includes(String(d.dtype))) {
      throw new Error(`model '${m.name}': tensor '${d.name}' has type ${d.dtype}, which swinq serve does not support`);
    }
  }
  return { ...m, inputs };
}

/**
 * True when every input leads with the same symbolic (batch) dim and no output has a fixed leading dim.
 * Outputs are checked again at run time (split() falls back to one run per request).
 */
export function isBatchable(m: ServedModel): boolean {
  const lead = m.inputs[0]?.dims?.[0];
  if (typeof lead !== 'string' || lead === '') return false;
  if (!m.inputs.every((d) => d.dims !== null && d.dims.length > 0 && d.dims[0] === lead)) return false;
  return m.outputs.every((d) => d.dims === null || (d.dims.length > 0 && typeof d.dims[0] === 'string'));
}
