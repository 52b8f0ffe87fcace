// NumPy .npy reader/writer (format versions 1.0, 2.0, 3.0; little-endian, C order).
// Spec: numpy/lib/format.py. Every error names the file and the offending header field.
import fs from 'node:fs';

export type NpyDType = 'float32' | 'float64' | 'int64' | 'int32' | 'int16' | 'uint8' | 'int8' | 'bool';
export type NpyData =
  | Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Uint8Array | Int8Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  /** bool is stored as a Uint8Array of 0/1. */
  data: NpyData;
}

interface DTypeInfo { descr: string; size: number; make: (buf: ArrayBuffer, n: number) => NpyData }
const DTYPES: Record<NpyDType, DTypeInfo> = {
  float32: { descr: '<f4', size: 4, make: (b, n) => new Float32Array(b, 0, n) },
  float64: { descr: '<f8', size: 8, make: (b, n) => new Float64Array(b, 0, n) },
  int64: { descr: '<i8', size: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  int32: { descr: '<i4', size: 4, make: (b, n) => new Int32Array(b, 0, n) },
  int16: { descr: '<i2', size: 2, make: (b, n) => new Int16Array(b, 0, n) },
  uint8: { descr: '|u1', size: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  int8: { descr: '|i1', size: 1, make: (b, n) => new Int8Array(b, 0, n) },
  bool: { descr: '|b1', size: 1, make: (b, n) => new Uint8Array(b, 0, n) },
};
// descr type code (after the byte-order char) → dtype
const CODES: Record<string, NpyDType> = {
  f4: 'float32', f8: 'float64', i8: 'int64', i4: 'int32', i2: 'int16', u1: 'uint8', i1: 'int8', b1: 'bool',
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export class NpyError extends Error {}

// ---- a tiny parser for the header's Python dict literal ----------------------------------------
type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue };

function parsePyLiteral(src: string, where: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new NpyError(`${where}: bad header (${what} at column ${i}): ${JSON.stringify(src.slice(0, 120))}`);
  };
  const ws = () => { while (i < src.length && /\s/.test(src[i])) i++; };
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: PyValue } = {};
      for (;;) {
        ws();
        if (src[i] === '}') { i++; return obj; }
        const k = value();
        if (typeof k !== 'string') fail('dict key is not a string');
        ws();
        if (src[i] !== ':') fail("expected ':'");
        i++;
        obj[k as string] = value();
        ws();
        if (src[i] === ',') { i++; continue; }
        if (src[i] === '}') { i++; return obj; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const arr: PyValue[] = [];
      for (;;) {
        ws();
        if (src[i] === close) { i++; return arr; }
        arr.push(value());
        ws();
        if (src[i] === ',') { i++; continue; }
        if (src[i] === close) { i++; return arr; }
        fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+L?)/.exec(src.slice(i));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace('L', ''));
  };
  const v = value();
  ws();
  if (i !== src.length) fail('trailing characters');
  return v;
}

// ---- reading -------------------------------------------------------------------------------------

/** Parses the bytes of a .npy file; `name` (the file path) is used in error messages. */
export function parseNpy(bytes: Uint8Array, name = '<buffer>'): NpyArray {
  const where = `${name}`;
  if (bytes.length < 10 || !MAGIC.every((b, k) => bytes[k] === b)) {
    throw new NpyError(`${where}: not a .npy file (missing \\x93NUMPY magic)`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError(`${where}: truncated header (file is ${bytes.length} bytes)`);
    headerLen = dv.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyError(`${where}: unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) {
    throw new NpyError(`${where}: truncated header (needs ${dataStart} bytes, file is ${bytes.length})`);
  }
  const headerBytes = bytes.subarray(headerStart, dataStart);
  // v1/v2 headers are latin1, v3 utf8; the fields we read are ASCII either way.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes).trim();
  const dict = parsePyLiteral(header, where);
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) {
    throw new NpyError(`${where}: bad header: expected a dict, got ${JSON.stringify(header.slice(0, 80))}`);
  }
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!(key in dict)) throw new NpyError(`${where}: header field '${key}' is missing`);
  }
  const descr = dict.descr;
  if (typeof descr !== 'string') {
    throw new NpyError(`${where}: header field 'descr' must be a simple dtype string (structured dtypes are not supported), got ${JSON.stringify(descr)}`);
  }
  if (dict.fortran_order !== false) {
    if (dict.fortran_order === true) {
      throw new NpyError(`${where}: header field 'fortran_order' is True; only C order is supported (save with np.ascontiguousarray)`);
    }
    throw new NpyError(`${where}: header field 'fortran_order' must be True or False, got ${JSON.stringify(dict.fortran_order)}`);
  }
  const order = descr[0];
  const code = descr.slice(1);
  const dtype = CODES[code];
  if (!dtype || !'<>|='.includes(order) || descr.length < 2) {
    throw new NpyError(`${where}: header field 'descr' = '${descr}' is not a supported dtype (float32, float64, int64, int32, int16, uint8, int8, bool)`);
  }
  const info = DTYPES[dtype];
  if (order === '>' && info.size > 1) {
    throw new NpyError(`${where}: header field 'descr' = '${descr}' is big-endian; only little-endian is supported`);
  }
  const shapeV = dict.shape;
  if (!Array.isArray(shapeV)) throw new NpyError(`${where}: header field 'shape' must be a tuple, got ${JSON.stringify(shapeV)}`);
  const shape: number[] = [];
  for (const d of shapeV) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new NpyError(`${where}: header field 'shape' has a bad dimension ${JSON.stringify(d)}`);
    }
    shape.push(d);
  }
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (!Number.isSafeInteger(count * info.size)) {
      throw new NpyError(`${where}: header field 'shape' (${shape.join(', ')}) is too large`);
    }
  }
  const need = count * info.size;
  const have = bytes.length - dataStart;
  if (have < need) {
    throw new NpyError(`${where}: truncated data: shape (${shape.join(', ')}) ${dtype} needs ${need} bytes, file has ${have}`);
  }
  if (have > need) {
    throw new NpyError(`${where}: ${have - need} unexpected trailing bytes after the data of shape (${shape.join(', ')}) ${dtype}`);
  }
  // Copy: the file's data offset need not be aligned for the element type.
  const buf = new ArrayBuffer(need);
  new Uint8Array(buf).set(bytes.subarray(dataStart, dataStart + need));
  const data = info.make(buf, count);
  if (dtype === 'bool') {
    const u = data as Uint8Array;
    for (let k = 0; k < u.length; k++) if (u[k] > 1) u[k] = 1;
  }
  return { dtype, shape, data };
}

/** Reads a .npy file; errors name the file. */
export function readNpy(file: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new NpyError(`${file}: no such file`);
    if (err.code === 'EISDIR') throw new NpyError(`${file}: is a directory, expected a .npy file`);
    throw new NpyError(`${file}: cannot read (${err.message})`);
  }
  return parseNpy(bytes, file);
}

// ---- writing -------------------------------------------------------------------------------------

function dtypeOf(data: NpyData): NpyDType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

/**
 * Encodes an array as .npy bytes. The dtype defaults to the typed array's (pass 'bool' explicitly
 * for a Uint8Array of 0/1). Version 1.0 unless the header does not fit (then 2.0) or one is asked for.
 */
export function encodeNpy(
  arr: { data: NpyData; shape: readonly number[]; dtype?: NpyDType },
  options: { version?: 1 | 2 | 3 } = {},
): Uint8Array {
  const dtype = arr.dtype ?? dtypeOf(arr.data);
  const info = DTYPES[dtype];
  if (!info) throw new NpyError(`cannot write dtype '${dtype}' to .npy`);
  if (dtypeOf(arr.data) !== (dtype === 'bool' ? 'uint8' : dtype)) {
    throw new NpyError(`dtype '${dtype}' does not match the data (${arr.data.constructor.name})`);
  }
  const count = arr.shape.reduce((a, b) => a * b, 1);
  if (arr.shape.some((d) => !Number.isSafeInteger(d) || d < 0) || count !== arr.data.length) {
    throw new NpyError(`shape [${arr.shape.join(', ')}] does not match the data length ${arr.data.length}`);
  }
  const shapeStr = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  const dict = `{'descr': '${info.descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  let version = options.version ?? 1;
  const pre = (v: number) => (v === 1 ? 10 : 12);
  // Pad so the data starts on a 64-byte boundary (numpy ≥ 1.?? does the same); header ends in '\n'.
  const padded = (v: number) => Math.ceil((pre(v) + dict.length + 1) / 64) * 64 - pre(v);
  if (version === 1 && padded(1) > 0xffff) version = 2;
  const hlen = padded(version);
  const out = new Uint8Array(pre(version) + hlen + count * info.size);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  const header = dict + ' '.repeat(hlen - dict.length - 1) + '\n';
  for (let k = 0; k < header.length; k++) out[pre(version) + k] = header.charCodeAt(k);
  const src = new Uint8Array(arr.data.buffer, arr.data.byteOffset, count * info.size);
  out.set(src, pre(version) + hlen);
  if (dtype === 'bool') {
    const body = out.subarray(pre(version) + hlen);
    for (let k = 0; k < body.length; k++) body[k] = body[k] ? 1 : 0;
  }
  return out;
}

/** Writes a .npy file (see encodeNpy). */
export function writeNpy(
  file: string,
  arr: { data: NpyData; shape: readonly number[]; dtype?: NpyDType },
  options: { version?: 1 | 2 | 3 } = {},
): void {
  const bytes = encodeNpy(arr, options);
  try {
    fs.writeFileSync(file, bytes);
  } catch (e) {
    throw new NpyError(`${file}: cannot write (${(e as Error).message})`);
  }
}
