// Memory safety across the JS/native boundary: an async run reads a copy of its inputs and writes
// its outputs on the JS thread after checking them, so buffers transferred, detached or resized while
// it is in flight are never touched from the worker thread; element types are checked against the plan.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/native.js';
import { InferenceSession, Tensor } from '../src/index.js';
import { DType, OpKind, Storage } from '../src/plan/ops.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelPath = path.join(repoRoot, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');
const imagesPath = path.join(repoRoot, '..', 'shared', 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const B = 8;
let images: Float32Array; // B images, [B,1,28,28]
let session: InferenceSession;
let expected: Float32Array;

beforeAll(async () => {
  for (const p of [modelPath, imagesPath]) {
    if (!fs.existsSync(p)) throw new Error(`boundary.test: missing ${p} — these tests need the shared data at ../shared relative to the repo root`);
  }
  const idx = zlib.gunzipSync(fs.readFileSync(imagesPath));
  images = new Float32Array(B * 784);
  for (let i = 0; i < images.length; i++) images[i] = (idx[16 + i] / 255 - 0.2860) / 0.3530;
  session = await InferenceSession.create(modelPath, { threads: 1 });
  expected = session.runSync({ input: new Tensor(images.slice(), [B, 1, 28, 28]) }).logits.data as Float32Array;
});
afterAll(async () => { await session?.release(); });

describe('async run vs buffers changed mid-run', () => {
  it('an input transferred (structuredClone) and overwritten by its new owner mid-run does not change the result', async () => {
    for (let rep = 0; rep < 5; rep++) {
      const x = images.slice();
      const pending = session.run({ input: new Tensor(x, [B, 1, 28, 28]) });
      const moved = structuredClone(x.buffer, { transfer: [x.buffer] });
      expect(x.length).toBe(0); // detached
      new Float32Array(moved).fill(Number.NaN);
      const got = (await pending).logits.data as Float32Array;
      expect(Array.from(got)).toEqual(Array.from(expected));
    }
  });

  it('an input on a resizable ArrayBuffer shrunk and regrown mid-run does not change the result', async () => {
    const buf = new ArrayBuffer(images.byteLength, { maxByteLength: images.byteLength });
    const x = new Float32Array(buf);
    x.set(images);
    const pending = session.run({ input: new Tensor(x, [B, 1, 28, 28]) });
    buf.resize(0);
    buf.resize(images.byteLength); // zero-filled again
    expect(Array.from((await pending).logits.data as Float32Array)).toEqual(Array.from(expected));
  });

  it('a pre-allocated output transferred mid-run rejects the run instead of being written', async () => {
    const out = new Tensor(new Float32Array(B * 10), [B, 10]);
    const pending = session.run({ input: new Tensor(images.slice(), [B, 1, 28, 28]) }, { logits: out });
    const moved = structuredClone(out.data.buffer, { transfer: [out.data.buffer] });
    await expect(pending).rejects.toThrow(/outputs\[0\] was detached, transferred or resized during the run/);
    expect(new Float32Array(moved).every((v) => v === 0)).toBe(true);
    // the session is still usable
    const again = await session.run({ input: new Tensor(images.slice(), [B, 1, 28, 28]) });
    expect(Array.from(again.logits.data as Float32Array)).toEqual(Array.from(expected));
  });

  it('a detached input is refused by name before any run', async () => {
    const x = images.slice();
    const t = new Tensor(x, [B, 1, 28, 28]);
    structuredClone(x.buffer, { transfer: [x.buffer] });
    await expect(session.run({ input: t })).rejects.toThrow(/input 'input' has 0 elements, dims \[8,1,28,28\] need 6272/);
  });
});

describe('element types checked against the plan (native)', () => {
  // y = copy(x), one float32 [2, 3] input and output
  function plan() {
    return native.createPlan!({
      tensors: [{ dtype: DType.f32, dims: [2, 3], storage: Storage.input, offset: 0 }, { dtype: DType.f32, dims: [2, 3], storage: Storage.output, offset: 0 }],
      ops: [{ kind: OpKind.copy, inputs: [0], outputs: [1], ints: [], floats: [], name: 'copy' }],
      constants: new Uint8Array(0), arenaBytes: 0, inputs: [0], outputs: [1],
    }, { threads: 1 });
  }
  it('run and runAsync refuse typed arrays of another element type, naming the index', async () => {
    const p = plan();
    expect(() => p.run([new Float64Array(3)], [new Float32Array(6)])).toThrow(/run: input 0 is a Float64Array, the plan's float32 needs a Float32Array/);
    expect(() => p.run([new Int32Array(6)], [new Float32Array(6)])).toThrow(/input 0 is an Int32Array/);
    expect(() => p.run([new Float32Array(6)], [new Uint8Array(24)])).toThrow(/run: output 0 is a Uint8Array, the plan's float32 needs a Float32Array/);
    await expect(p.runAsync([new Float64Array(3)], [new Float32Array(6)])).rejects.toThrow(/runAsync: input 0 is a Float64Array/);
    expect(() => p.run([new DataView(new ArrayBuffer(24)) as never], [new Float32Array(6)])).toThrow(/inputs\[0\] must be an ArrayBufferView: a typed array/);
    const y = new Float32Array(6);
    await p.runAsync([new Float32Array([-1, 2, -3, 4, -5, 6])], [y]);
    expect(Array.from(y)).toEqual([-1, 2, -3, 4, -5, 6]);
    p.release();
  });
});
