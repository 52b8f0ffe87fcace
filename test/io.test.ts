import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy, readNpy, writeNpy, type NpyData, type NpyDType } from '../src/io/npy.js';
import { encodeIdx, loadLabelledImages, normalizedImages, parseIdx, readIdx } from '../src/io/idx.js';
import { describeNormalization, resolveNormalization } from '../src/normalize.js';
import { argmaxRows, median, randomFeeds } from '../src/engine.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-io-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

// Bytes written by numpy 2.4 (np.save / numpy.lib.format.write_array), so the reader is checked
// against the real producer, not only against our own writer.
const NUMPY = {
  f32_v1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAACDAAADAvwAAAL8AAAA/AADAPwAAIEA=',
  i64_v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8aTgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr//////////wIAAAAAAAAAAwAAAAAAAAD8/////////w==',
  bool_v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICd8YjEnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=',
  big_endian: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAQAAAAIAAAAD',
  fortran: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEA=',
  scalar: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAPBA',
};

describe('npy', () => {
  it('reads numpy-written v1, v2, v3 files', () => {
    const a = parseNpy(b64(NUMPY.f32_v1), 'a.npy');
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([2, 3]);
    expect([...a.data as Float32Array]).toEqual([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
    const b = parseNpy(b64(NUMPY.i64_v2), 'b.npy');
    expect(b.dtype).toBe('int64');
    expect(b.shape).toEqual([2, 2]);
    expect([...b.data as BigInt64Array]).toEqual([-1n, 2n, 3n, -4n]);
    const c = parseNpy(b64(NUMPY.bool_v3), 'c.npy');
    expect(c.dtype).toBe('bool');
    expect([...c.data as Uint8Array]).toEqual([1, 0, 1]);
    const s = parseNpy(b64(NUMPY.scalar), 's.npy');
    expect(s.shape).toEqual([]);
    expect([...s.data as Float32Array]).toEqual([7.5]);
  });

  const samples: Record<NpyDType, NpyData> = {
    float32: new Float32Array([0, -1.5, 3.25e-7, Infinity, -0, 65504, NaN]),
    float64: new Float64Array([Math.PI, -1e300, 5e-324, 0, 1, 2, 3]),
    int64: new BigInt64Array([0n, -1n, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n, 5n, 6n]),
    int32: new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31), 7, 8, 9]),
    int16: new Int16Array([0, -1, 32767, -32768, 1, 2, 3]),
    uint8: new Uint8Array([0, 1, 127, 128, 255, 3, 4]),
    int8: new Int8Array([0, -1, 127, -128, 1, 2, 3]),
    bool: new Uint8Array([1, 0, 1, 1, 0, 0, 1]),
  };
  for (const [dtype, data] of Object.entries(samples) as [NpyDType, NpyData][]) {
    for (const version of [1, 2, 3] as const) {
      it(`round-trips ${dtype} through a v${version} file`, () => {
        const file = path.join(tmp, `${dtype}-v${version}.npy`);
        writeNpy(file, { data, shape: [7, 1], dtype }, { version });
        const bytes = fs.readFileSync(file);
        expect(bytes[6]).toBe(version);
        const hlen = version === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
        expect(((version === 1 ? 10 : 12) + hlen) % 64).toBe(0); // data 64-byte aligned
        const r = readNpy(file);
        expect(r.dtype).toBe(dtype);
        expect(r.shape).toEqual([7, 1]);
        expect(r.data.constructor).toBe(data.constructor);
        expect([...r.data as Iterable<number | bigint>].map(String)).toEqual([...data as Iterable<number | bigint>].map(String));
      });
    }
  }

  it('writes the same header bytes numpy does (v1, 2-D float32)', () => {
    const ours = encodeNpy({ data: new Float32Array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]), shape: [2, 3] });
    expect(Buffer.from(ours).toString('base64')).toBe(NUMPY.f32_v1);
  });

  it('switches to v2 when the header does not fit v1', () => {
    const shape = Array.from({ length: 25000 }, () => 1); // a header longer than 65535 bytes
    const bytes = encodeNpy({ data: new Uint8Array([42]), shape });
    expect(bytes[6]).toBe(2);
    const r = parseNpy(bytes, 'long.npy');
    expect(r.shape.length).toBe(25000);
    expect(r.data[0]).toBe(42);
  });

  it('reads data at an unaligned offset inside a larger buffer', () => {
    const inner = encodeNpy({ data: new Float64Array([1.25, -2]), shape: [2] });
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    expect([...parseNpy(outer.subarray(3), 'x.npy').data as Float64Array]).toEqual([1.25, -2]);
  });

  it('refuses big-endian and Fortran-order files naming the file and field', () => {
    expect(() => parseNpy(b64(NUMPY.big_endian), 'be.npy')).toThrow(/be\.npy: header field 'descr' = '>i4' is big-endian/);
    expect(() => parseNpy(b64(NUMPY.fortran), 'f.npy')).toThrow(/f\.npy: header field 'fortran_order' is True/);
  });

  it('gives clear errors for truncated, garbage, and unsupported files', () => {
    const good = b64(NUMPY.f32_v1);
    expect(() => parseNpy(good.subarray(0, good.length - 1), 't.npy')).toThrow(/t\.npy: truncated data: shape \(2, 3\) float32 needs 24 bytes, file has 23/);
    expect(() => parseNpy(good.subarray(0, 40), 't.npy')).toThrow(/t\.npy: truncated header/);
    expect(() => parseNpy(good.subarray(0, 5), 't.npy')).toThrow(/t\.npy: not a \.npy file/);
    expect(() => parseNpy(new TextEncoder().encode('hello world, not numpy'), 'g.npy')).toThrow(/g\.npy: not a \.npy file/);
    const extra = new Uint8Array(good.length + 4);
    extra.set(good);
    expect(() => parseNpy(extra, 'x.npy')).toThrow(/x\.npy: 4 unexpected trailing bytes/);
    const v9 = good.slice();
    v9[6] = 9;
    expect(() => parseNpy(v9, 'v.npy')).toThrow(/v\.npy: unsupported \.npy format version 9\.0/);
    const mk = (dict: string) => {
      const h = dict + '\n';
      const out = new Uint8Array(10 + h.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
      new DataView(out.buffer).setUint16(8, h.length, true);
      out.set(new TextEncoder().encode(h), 10);
      return out;
    };
    expect(() => parseNpy(mk("{'descr': '<c8', 'fortran_order': False, 'shape': (0,), }"), 'c.npy')).toThrow(/c\.npy: header field 'descr' = '<c8' is not a supported dtype/);
    expect(() => parseNpy(mk("{'descr': '<f4', 'shape': (0,), }"), 'm.npy')).toThrow(/m\.npy: header field 'fortran_order' is missing/);
    expect(() => parseNpy(mk("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), 'n.npy')).toThrow(/n\.npy: header field 'shape' has a bad dimension -1/);
    expect(() => parseNpy(mk("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"), 'h.npy')).toThrow(/h\.npy: header field 'shape' .* is too large/);
    expect(() => parseNpy(mk("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), 's.npy')).toThrow(/s\.npy: header field 'descr' must be a simple dtype string/);
    expect(() => parseNpy(mk("{'descr': '<f4' 'fortran_order'"), 'p.npy')).toThrow(/p\.npy: bad header/);
    expect(() => readNpy(path.join(tmp, 'nope.npy'))).toThrow(/nope\.npy: no such file/);
    expect(() => readNpy(tmp)).toThrow(/is a directory/);
  });

  it('refuses to write data that does not match the shape or dtype', () => {
    expect(() => encodeNpy({ data: new Float32Array(5), shape: [2, 3] })).toThrow(/shape \[2, 3\] does not match the data length 5/);
    expect(() => encodeNpy({ data: new Float32Array(1), shape: [1], dtype: 'int32' })).toThrow(/does not match the data/);
  });
});

describe('idx', () => {
  const images = Uint8Array.from({ length: 5 * 3 * 4 }, (_, k) => (k * 37) & 255);
  const labels = Uint8Array.from([3, 1, 4, 1, 5]);

  it('parses every element type, big-endian', () => {
    const cases = [
      new Uint8Array([0, 255, 7]), new Int8Array([-128, 127, 0]), new Int16Array([-32768, 32767, 258]),
      new Int32Array([-(2 ** 31), 2 ** 31 - 1, 65536]), new Float32Array([1.5, -0, Infinity]), new Float64Array([Math.E, -1e-300, 0]),
    ];
    for (const data of cases) {
      const r = parseIdx(encodeIdx({ shape: [3], data }), 'x');
      expect(r.data.constructor).toBe(data.constructor);
      expect([...r.data]).toEqual([...data]);
    }
    const bytes = encodeIdx({ shape: [1], data: new Int16Array([258]) });
    expect([...bytes.subarray(8)]).toEqual([1, 2]); // big-endian on disk
  });

  it('reads gz and plain files and loads an MNIST-style directory', () => {
    const dir = path.join(tmp, 'mnist');
    fs.mkdirSync(dir, { recursive: true });
    // test split gzipped, train split plain: both are looked up.
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), zlib.gzipSync(encodeIdx({ shape: [5, 3, 4], data: images })));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), zlib.gzipSync(encodeIdx({ shape: [5], data: labels })));
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), encodeIdx({ shape: [2, 3, 4], data: images.subarray(0, 24) }));
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), encodeIdx({ shape: [2], data: labels.subarray(0, 2) }));
    const test = loadLabelledImages(dir, 'test');
    expect([test.count, test.height, test.width]).toEqual([5, 3, 4]);
    expect([...test.labels]).toEqual([...labels]);
    expect([...test.images]).toEqual([...images]);
    const train = loadLabelledImages(dir, 'train');
    expect(train.count).toBe(2);
    expect(train.imagesFile.endsWith('train-images-idx3-ubyte')).toBe(true);

    const x = normalizedImages(test, 1, 2, 0.5, 0.25);
    expect(x.length).toBe(24);
    for (let k = 0; k < 24; k++) expect(x[k]).toBeCloseTo((images[12 + k] / 255 - 0.5) / 0.25, 5);
    expect(() => normalizedImages(test, 4, 2, 0, 1)).toThrow(/out of range \(has 5\)/);
  });

  it('gives errors naming the file: bad magic, size mismatch, corrupt gzip, mismatched counts, missing files', () => {
    const file = path.join(tmp, 'bad.idx');
    const good = encodeIdx({ shape: [2, 2], data: new Uint8Array(4) });
    const bad = good.slice();
    bad[0] = 1;
    fs.writeFileSync(file, bad);
    expect(() => readIdx(file)).toThrow(/bad\.idx: bad IDX magic 0x01000802/);
    const badType = good.slice();
    badType[2] = 0x07;
    expect(() => parseIdx(badType, 'ty')).toThrow(/ty: bad IDX magic/);
    fs.writeFileSync(file, good.subarray(0, good.length - 1));
    expect(() => readIdx(file)).toThrow(/bad\.idx: size mismatch: header says \[2, 2\] uint8 = 4 bytes of data, file has 3/);
    fs.writeFileSync(file, Buffer.concat([good, Buffer.from([0])]));
    expect(() => readIdx(file)).toThrow(/bad\.idx: size mismatch/);
    fs.writeFileSync(file, good.subarray(0, 6));
    expect(() => readIdx(file)).toThrow(/bad\.idx: truncated IDX header/);
    fs.writeFileSync(file, Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    expect(() => readIdx(file)).toThrow(/bad\.idx: corrupt gzip data/);
    // a header claiming 2^32-ish elements must not allocate; it fails the size check
    const huge = encodeIdx({ shape: [65535, 65535, 4], data: new Uint8Array(0) });
    expect(() => parseIdx(huge, 'huge')).toThrow(/huge: size mismatch/);
    expect(() => readIdx(path.join(tmp, 'none.idx'))).toThrow(/none\.idx: no such file/);

    const dir = path.join(tmp, 'mismatch');
    fs.mkdirSync(dir, { recursive: true });
    expect(() => loadLabelledImages(dir, 'test')).toThrow(/t10k-images-idx3-ubyte\[\.gz\]: no such file/);
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), encodeIdx({ shape: [5, 3, 4], data: images }));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), encodeIdx({ shape: [4], data: labels.subarray(0, 4) }));
    expect(() => loadLabelledImages(dir, 'test')).toThrow(/t10k-labels-idx1-ubyte: 4 labels but .*t10k-images-idx3-ubyte has 5 images/);
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), encodeIdx({ shape: [5, 1], data: labels }));
    expect(() => loadLabelledImages(dir, 'test')).toThrow(/t10k-labels-idx1-ubyte: expected uint8 labels \[N\], got uint8 \[5, 1\]/);
    expect(() => loadLabelledImages(path.join(tmp, 'nodir'), 'test')).toThrow(/nodir: no such data directory/);
    expect(() => loadLabelledImages(dir, 'val' as never)).toThrow(/split must be 'test' or 'train'/);
  });
});

describe('Fashion-MNIST (shared data)', () => {
  it('loads both splits: 28×28 uint8 images, 1000 (test) / 6000 (train) labels per class', () => {
    const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'fashion-mnist');
    if (!fs.existsSync(dir)) throw new Error(`shared data not found at ${dir} (expected ../shared relative to the repo root)`);
    for (const [split, count] of [['test', 10000], ['train', 60000]] as const) {
      const ds = loadLabelledImages(dir, split);
      expect([ds.count, ds.height, ds.width]).toEqual([count, 28, 28]);
      expect(ds.images.length).toBe(count * 784);
      const hist = new Array(10).fill(0);
      for (const l of ds.labels) hist[l]++;
      expect(hist).toEqual(new Array(10).fill(count / 10));
    }
  });
});

describe('normalization', () => {
  it('prefers flags, then metadata_props, then the sidecar JSON, then 0/1', () => {
    const model = path.join(tmp, 'm.onnx');
    fs.writeFileSync(model, '');
    expect(resolveNormalization({ modelPath: model })).toMatchObject({ mean: 0, std: 1, meanSource: 'default' });
    fs.writeFileSync(`${model}.json`, JSON.stringify({ mean: 0.286, std: 0.353 }));
    const side = resolveNormalization({ modelPath: model });
    expect(side).toMatchObject({ mean: 0.286, std: 0.353 });
    expect(describeNormalization(side)).toMatch(/mean=0\.286 std=0\.353 \(from sidecar .*m\.onnx\.json\)/);
    const meta = resolveNormalization({ modelPath: model, metadata: { 'swinq.mean': '0.5', 'swinq.std': '[0.25]' } });
    expect(meta).toMatchObject({ mean: 0.5, std: 0.25, meanSource: 'metadata swinq.mean' });
    const flag = resolveNormalization({ modelPath: model, metadata: { 'swinq.mean': '0.5' }, mean: '0.1' });
    expect(flag).toMatchObject({ mean: 0.1, std: 0.353, meanSource: 'flag --mean' });
    expect(describeNormalization(flag)).toMatch(/mean from flag --mean, std from sidecar/);
    expect(() => resolveNormalization({ std: '0' })).toThrow(/std must be > 0/);
    expect(() => resolveNormalization({ mean: 'abc' })).toThrow(/--mean must be a finite number, got "abc"/);
    expect(() => resolveNormalization({ metadata: { 'swinq.std': '0.1,0.2' } })).toThrow(/metadata_props 'swinq\.std' must be a finite number/);
    fs.writeFileSync(`${model}.json`, '{not json');
    expect(() => resolveNormalization({ modelPath: model })).toThrow(/m\.onnx\.json: not valid JSON/);
  });
});

describe('engine helpers', () => {
  it('argmaxRows takes the first maximum per row and skips NaN', () => {
    expect([...argmaxRows([1, 3, 3, 0, /* row 2 */ -5, -6, -1, -1, /* row 3 */ NaN, 2, 7, 7], 3, 4)]).toEqual([1, 2, 2]);
  });
  it('median of odd and even counts', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
  it('randomFeeds sets the batch, is deterministic, and refuses what it cannot fill', () => {
    const inputs = [{ name: 'x', dtype: 'float32', dims: ['batch', 3] }, { name: 'ids', dtype: 'int64', dims: ['batch', 2] }];
    const a = randomFeeds(inputs, 5);
    const b = randomFeeds(inputs, 5);
    expect(a.x.dims).toEqual([5, 3]);
    expect(a.ids.dims).toEqual([5, 2]);
    expect([...a.x.data as Float32Array]).toEqual([...b.x.data as Float32Array]);
    expect(new Set(a.x.data as Float32Array).size).toBeGreaterThan(10);
    for (const v of a.ids.data as BigInt64Array) expect(v >= 0n && v < 10n).toBe(true);
    expect(() => randomFeeds([{ name: 'x', dtype: 'float32', dims: [1, 3] }], 4)).toThrow(/input 'x' has a fixed batch of 1 \[1, 3\]; cannot run batch 4/);
    expect(() => randomFeeds([{ name: 'x', dtype: 'float32', dims: ['b', 'h'] }], 1)).toThrow(/input 'x' has a symbolic dim 'h' at axis 1/);
    expect(() => randomFeeds([{ name: 's', dtype: 'string', dims: ['b'] }], 1)).toThrow(/input 's' has dtype string/);
  });
});
