// A tensor shaped like onnxruntime-node's: type, data (a typed array), dims, size.
export type TensorType = 'float32' | 'int64' | 'int32' | 'int8' | 'uint8' | 'int16' | 'bool';
export type TensorData = Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Int16Array;

const CTORS = {
  float32: Float32Array, int64: BigInt64Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, bool: Uint8Array,
} as const;

export class Tensor {
  readonly type: TensorType;
  readonly data: TensorData;
  readonly dims: readonly number[];
  readonly size: number;

  constructor(type: TensorType, data: TensorData | number[] | boolean[] | bigint[], dims: readonly number[]) {
    const Ctor = CTORS[type];
    if (!Ctor) throw new TypeError(`Tensor: unknown type '${type}' (expected one of ${Object.keys(CTORS).join(', ')})`);
    if (!Array.isArray(dims) || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new TypeError(`Tensor: dims must be non-negative integers, got [${String(dims)}]`);
    }
    const size = dims.reduce((a, b) => a * b, 1);
    let arr: TensorData;
    if (Array.isArray(data)) {
      arr = type === 'int64'
        ? BigInt64Array.from((data as (number | bigint)[]).map((v) => BigInt(v)))
        : (Ctor as typeof Float32Array).from((data as number[]).map(Number));
    } else {
      if (!(data instanceof Ctor)) throw new TypeError(`Tensor: type '${type}' needs a ${Ctor.name}, got ${(data as object)?.constructor?.name}`);
      arr = data;
    }
    if (arr.length !== size) throw new RangeError(`Tensor: data has ${arr.length} elements but dims [${dims.join(',')}] need ${size}`);
    this.type = type;
    this.data = arr;
    this.dims = Object.freeze([...dims]);
    this.size = size;
  }
}

export const TYPE_BYTES: Record<TensorType, number> = { float32: 4, int64: 8, int32: 4, int8: 1, uint8: 1, int16: 2, bool: 1 };
