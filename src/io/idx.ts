// IDX files (the MNIST format: big-endian header, magic 0x0000TTNN) and an MNIST/Fashion-MNIST
// directory loader. Every error names the file.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export class IdxError extends Error {}

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
export interface IdxArray { shape: number[]; data: IdxData; type: 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64' }

const TYPES: Record<number, { type: IdxArray['type']; size: number }> = {
  0x08: { type: 'uint8', size: 1 },
  0x09: { type: 'int8', size: 1 },
  0x0b: { type: 'int16', size: 2 },
  0x0c: { type: 'int32', size: 4 },
  0x0d: { type: 'float32', size: 4 },
  0x0e: { type: 'float64', size: 8 },
};

function readBytes(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new IdxError(`${file}: no such file`);
    throw new IdxError(`${file}: cannot read (${err.message})`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return zlib.gunzipSync(raw);
    } catch (e) {
      throw new IdxError(`${file}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return raw;
}

/** Parses IDX bytes (already decompressed). */
export function parseIdx(bytes: Uint8Array, name = '<buffer>'): IdxArray {
  if (bytes.length < 4) throw new IdxError(`${name}: too short for an IDX header (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const t = TYPES[bytes[2]];
  const rank = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !t || rank === 0) {
    const magic = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join('');
    throw new IdxError(`${name}: bad IDX magic 0x${magic} (expected 0x0000TTNN with type 08/09/0b/0c/0d/0e and rank ≥ 1)`);
  }
  const headerLen = 4 + 4 * rank;
  if (bytes.length < headerLen) throw new IdxError(`${name}: truncated IDX header (rank ${rank} needs ${headerLen} bytes, file has ${bytes.length})`);
  const shape: number[] = [];
  let count = 1;
  for (let k = 0; k < rank; k++) {
    const d = dv.getUint32(4 + 4 * k, false);
    shape.push(d);
    count *= d;
  }
  const need = count * t.size;
  const have = bytes.length - headerLen;
  if (need !== have) {
    throw new IdxError(`${name}: size mismatch: header says [${shape.join(', ')}] ${t.type} = ${need} bytes of data, file has ${have}`);
  }
  let data: IdxData;
  const body = bytes.subarray(headerLen);
  switch (t.type) {
    case 'uint8': data = Uint8Array.from(body); break;
    case 'int8': data = Int8Array.from(new Int8Array(body.buffer, body.byteOffset, count)); break;
    default: {
      // Big-endian multi-byte values.
      const out = t.type === 'int16' ? new Int16Array(count) : t.type === 'int32' ? new Int32Array(count)
        : t.type === 'float32' ? new Float32Array(count) : new Float64Array(count);
      const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
      for (let k = 0; k < count; k++) {
        const o = k * t.size;
        out[k] = t.type === 'int16' ? bv.getInt16(o, false) : t.type === 'int32' ? bv.getInt32(o, false)
          : t.type === 'float32' ? bv.getFloat32(o, false) : bv.getFloat64(o, false);
      }
      data = out;
    }
  }
  return { shape, data, type: t.type };
}

/** Reads an IDX file, gzipped or not (detected by the gzip magic, not the name). */
export function readIdx(file: string): IdxArray {
  return parseIdx(readBytes(file), file);
}

/** Encodes an IDX array (used by tests to generate fixtures). */
export function encodeIdx(arr: { shape: readonly number[]; data: IdxData; type?: IdxArray['type'] }): Uint8Array {
  const type = arr.type ?? (arr.data instanceof Uint8Array ? 'uint8' : arr.data instanceof Int8Array ? 'int8'
    : arr.data instanceof Int16Array ? 'int16' : arr.data instanceof Int32Array ? 'int32'
      : arr.data instanceof Float32Array ? 'float32' : 'float64');
  const code = Number(Object.keys(TYPES).find((k) => TYPES[Number(k)].type === type));
  const size = TYPES[code].size;
  const headerLen = 4 + 4 * arr.shape.length;
  const out = new Uint8Array(headerLen + arr.data.length * size);
  const dv = new DataView(out.buffer);
  out[2] = code;
  out[3] = arr.shape.length;
  arr.shape.forEach((d, k) => dv.setUint32(4 + 4 * k, d, false));
  for (let k = 0; k < arr.data.length; k++) {
    const o = headerLen + k * size;
    const v = arr.data[k];
    switch (type) {
      case 'uint8': dv.setUint8(o, v); break;
      case 'int8': dv.setInt8(o, v); break;
      case 'int16': dv.setInt16(o, v, false); break;
      case 'int32': dv.setInt32(o, v, false); break;
      case 'float32': dv.setFloat32(o, v, false); break;
      default: dv.setFloat64(o, v, false);
    }
  }
  return out;
}

// ---- MNIST-style labelled image sets -------------------------------------------------------------

export type Split = 'train' | 'test';

export interface LabelledImages {
  /** count × height × width pixels, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  imagesFile: string;
  labelsFile: string;
}

function findFile(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  throw new IdxError(`${path.join(dir, base)}[.gz]: no such file (expected an MNIST-style data directory)`);
}

/**
 * Loads `DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`. Checks that images are uint8
 * [N, H, W], labels uint8 [N], and that the counts agree.
 */
export function loadLabelledImages(dir: string, split: Split = 'test'): LabelledImages {
  if (split !== 'test' && split !== 'train') throw new IdxError(`split must be 'test' or 'train', got '${split}'`);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new IdxError(`${dir}: no such data directory`);
  }
  if (!st.isDirectory()) throw new IdxError(`${dir}: not a directory (expected an MNIST-style data directory)`);
  const prefix = split === 'test' ? 't10k' : 'train';
  const imagesFile = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const img = readIdx(imagesFile);
  if (img.type !== 'uint8' || img.shape.length !== 3) {
    throw new IdxError(`${imagesFile}: expected uint8 images [N, H, W], got ${img.type} [${img.shape.join(', ')}]`);
  }
  const lab = readIdx(labelsFile);
  if (lab.type !== 'uint8' || lab.shape.length !== 1) {
    throw new IdxError(`${labelsFile}: expected uint8 labels [N], got ${lab.type} [${lab.shape.join(', ')}]`);
  }
  if (lab.shape[0] !== img.shape[0]) {
    throw new IdxError(`${labelsFile}: ${lab.shape[0]} labels but ${imagesFile} has ${img.shape[0]} images`);
  }
  return {
    images: img.data as Uint8Array,
    labels: lab.data as Uint8Array,
    count: img.shape[0],
    height: img.shape[1],
    width: img.shape[2],
    imagesFile,
    labelsFile,
  };
}

/**
 * Images [start, start+count) as float32 [count, 1, H, W] (the caller picks the dims) with
 * x = (pixel/255 − mean)/std, computed in float32 like the PyTorch ToTensor + Normalize pipeline.
 */
export function normalizedImages(ds: LabelledImages, start: number, count: number, mean: number, std: number): Float32Array {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > ds.count) {
    throw new IdxError(`${ds.imagesFile}: images [${start}, ${start + count}) out of range (has ${ds.count})`);
  }
  const px = ds.height * ds.width;
  const src = ds.images.subarray(start * px, (start + count) * px);
  const out = new Float32Array(src.length);
  // Per-pixel lookup: every uint8 value maps to the same float, computed once.
  const lut = new Float32Array(256);
  const m = Math.fround(mean);
  const s = Math.fround(std);
  for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
  for (let k = 0; k < src.length; k++) out[k] = lut[src[k]];
  return out;
}
