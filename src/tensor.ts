// A tensor shaped like onnxruntime-node's: type, data (a typed array), dims, size. Both constructor
// forms of onnxruntime are accepted: new Tensor(type, data, dims?) and new Tensor(data, dims?) with
// the type inferred from the typed array. Types the engine cannot run (float64, uint16, …) can still
// be built, so onnxruntime programs construct their tensors unchanged; run() then names the input.
export type TensorType =
  | 'float32' | 'int64' | 'int32' | 'int8' | 'uint8' | 'int16' | 'bool'
  | 'float64' | 'uint16' | 'uint32' | 'uint64';
export type TensorData =
  | Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Int16Array
  | Float64Array | Uint16Array | Uint32Array | BigUint64Array;

const CTORS = {
  float32: Float32Array, int64: BigInt64Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, bool: Uint8Array,
  float64: Float64Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
} as const;

/** onnxruntime's inference: the typed array's class names the type (Uint8ClampedArray is uint8). */
function inferType(data: unknown): TensorType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return 'uint8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigUint64Array) return 'uint64';
  if (Array.isArray(data) && data.length > 0 && typeof data[0] === 'boolean') return 'bool';
  return undefined;
}

/** A short, printable description of any value: never more than ~60 characters of it. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (ArrayBuffer.isView(v)) {
    const len = (v as unknown as { length?: number }).length;
    return `${v.constructor.name}${len !== undefined ? `(${len})` : ''}`;
  }
  if (Array.isArray(v)) {
    const head = v.slice(0, 4).map((x) => (typeof x === 'object' && x !== null ? '…' : String(x))).join(',');
    return `array(${v.length}) [${head.slice(0, 40)}${v.length > 4 || head.length > 40 ? ',…' : ''}]`;
  }
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  const s = String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function dimsText(dims: readonly unknown[]): string {
  const head = dims.slice(0, 8).map((d) => describe(d)).join(',');
  return `[${head}${dims.length > 8 ? ',…' : ''}]`;
}

export class Tensor {
  readonly type: TensorType;
  readonly data: TensorData;
  readonly dims: readonly number[];
  readonly size: number;

  constructor(type: TensorType, data: TensorData | number[] | boolean[] | bigint[], dims?: readonly number[]);
  constructor(data: TensorData | boolean[], dims?: readonly number[]);
  constructor(a: unknown, b?: unknown, c?: unknown) {
    let type: TensorType;
    let data: unknown;
    let dims: unknown;
    if (typeof a === 'string') {
      type = a as TensorType;
      data = b;
      dims = c;
      if (!Object.prototype.hasOwnProperty.call(CTORS, type)) throw new TypeError(`Tensor: unknown type ${describe(a)} (expected one of ${Object.keys(CTORS).join(', ')})`);
    } else {
      const t = inferType(a);
      if (!t) {
        throw new TypeError(`Tensor: cannot infer the type of ${describe(a)}; pass a typed array (Float32Array, BigInt64Array, …) or new Tensor(type, data, dims)`);
      }
      type = t;
      data = a;
      dims = b;
    }
    const Ctor = CTORS[type];
    let arr: TensorData;
    if (Array.isArray(data)) {
      arr = type === 'int64' || type === 'uint64'
        ? (Ctor as typeof BigInt64Array).from((data as (number | bigint)[]).map((v) => BigInt(v)))
        : (Ctor as typeof Float32Array).from((data as number[]).map(Number));
    } else if (data instanceof Ctor || (type === 'uint8' && data instanceof Uint8ClampedArray)) {
      arr = data instanceof Uint8ClampedArray ? new Uint8Array(data.buffer, data.byteOffset, data.length) : (data as TensorData);
    } else {
      throw new TypeError(`Tensor: type '${type}' needs a ${Ctor.name}, got ${describe(data)}`);
    }
    if (dims === undefined) dims = [arr.length];
    if (!Array.isArray(dims) || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new TypeError(`Tensor: dims must be an array of non-negative integers, got ${Array.isArray(dims) ? dimsText(dims) : describe(dims)}`);
    }
    const size = (dims as number[]).reduce((x, y) => x * y, 1);
    if (arr.length !== size) throw new RangeError(`Tensor: data has ${arr.length} elements but dims ${dimsText(dims)} need ${size}`);
    this.type = type;
    this.data = arr;
    this.dims = Object.freeze([...(dims as number[])]);
    this.size = size;
  }

  /** onnxruntime-node's field: the data lives in CPU memory. */
  get location(): 'cpu' { return 'cpu'; }

  /**
   * A tensor from parts the caller has already checked (data of `type`'s class, length = product of
   * dims, dims frozen): the per-run output path, which the constructor's checks would slow down.
   */
  static trusted(type: TensorType, data: TensorData, dims: readonly number[], size: number): Tensor {
    const t = Object.create(Tensor.prototype) as { -readonly [K in keyof Tensor]: Tensor[K] };
    t.type = type;
    t.data = data;
    t.dims = dims;
    t.size = size;
    return t as Tensor;
  }

  /** onnxruntime-node's accessor for the data of a CPU tensor. */
  get cpuData(): TensorData { return this.data; }

  /** Same data, other dims (onnxruntime-node's reshape); the element count must match. */
  reshape(dims: readonly number[]): Tensor {
    return new Tensor(this.type, this.data, dims);
  }

  /** onnxruntime-node's dispose(): CPU data is garbage-collected, so there is nothing to free. */
  dispose(): void {}
}

export const TYPE_BYTES: Record<TensorType, number> = {
  float32: 4, int64: 8, int32: 4, int8: 1, uint8: 1, int16: 2, bool: 1, float64: 8, uint16: 2, uint32: 4, uint64: 8,
};
