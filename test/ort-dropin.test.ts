// swinq as an onnxruntime-node drop-in: one onnxruntime-style program, written against the
// onnxruntime-node API, run with both modules; same outputs. Plus the errors a drop-in user meets
// (unavailable provider, tensor misuse, wrong dtypes) and that they quote no whole arrays.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { InferenceSession, Tensor } from '../src/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelPath = path.join(repoRoot, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');
const imagesPath = path.join(repoRoot, '..', 'shared', 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
let images: Float32Array; // 3 images, [3,1,28,28]

beforeAll(() => {
  for (const p of [modelPath, imagesPath]) {
    if (!fs.existsSync(p)) throw new Error(`ort-dropin.test: missing ${p} — these tests need the shared data at ../shared relative to the repo root`);
  }
  const idx = zlib.gunzipSync(fs.readFileSync(imagesPath));
  images = new Float32Array(3 * 784);
  for (let i = 0; i < images.length; i++) images[i] = (idx[16 + i] / 255 - 0.2860) / 0.3530;
});

// The subset of onnxruntime-node's module the program uses: the program is typed against onnxruntime's
// own declarations, so swinq has to fit them.
type OrtModule = { InferenceSession: typeof ort.InferenceSession; Tensor: typeof ort.Tensor };

/** An onnxruntime-node program as its users write it; only the module it is handed differs. */
async function program(m: OrtModule, x: Float32Array) {
  const session = await m.InferenceSession.create(modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  });
  const [inName] = session.inputNames;
  const [outName] = session.outputNames;
  // type inferred from the Float32Array, as onnxruntime allows
  const input = new m.Tensor(x, [3, 1, 28, 28]);
  const all = await session.run({ [inName]: input });
  const named = await session.run({ [inName]: input }, [outName]);
  const pre = new m.Tensor('float32', new Float32Array(30), [3, 10]);
  const into = await session.run({ [inName]: input }, { [outName]: pre }, { tag: 'pre-allocated' });
  const withOptions = await session.run({ [inName]: input }, { logSeverityLevel: 3 });
  const flat = new m.Tensor(x.subarray(0, 784)); // dims default to [length]
  const one = await session.run({ [inName]: flat.reshape([1, 1, 28, 28]) });
  await session.release();
  return {
    keys: [Object.keys(all), Object.keys(named), Object.keys(into), Object.keys(withOptions)],
    type: all[outName].type,
    dims: [...all[outName].dims],
    logits: Array.from(all[outName].data as Float32Array),
    named: Array.from(named[outName].data as Float32Array),
    pre: Array.from(pre.data as Float32Array),
    into: Array.from(into[outName].data as Float32Array),
    withOptions: Array.from(withOptions[outName].data as Float32Array),
    one: Array.from(one[outName].data as Float32Array),
    flatDims: [...flat.dims],
  };
}

describe('onnxruntime-node drop-in', () => {
  it('runs the same onnxruntime-style program as onnxruntime-node, with equal outputs', async () => {
    const swinq = await program({ InferenceSession, Tensor } as unknown as OrtModule, images);
    const ref = await program(ort, images);
    expect(swinq.keys).toEqual(ref.keys);
    expect(swinq.type).toBe(ref.type);
    expect(swinq.dims).toEqual(ref.dims);
    expect(swinq.flatDims).toEqual([784]);
    for (const k of ['logits', 'named', 'pre', 'into', 'withOptions'] as const) {
      expect(swinq[k]).toHaveLength(30);
      for (let i = 0; i < 30; i++) expect(Math.abs(swinq[k][i] - ref[k][i])).toBeLessThan(1e-4);
    }
    // the pre-allocated output was written (not left zero) and equals the plain run
    expect(swinq.pre).toEqual(swinq.logits);
    expect(swinq.one).toEqual(swinq.logits.slice(0, 10));
  });

  it('refuses other execution providers and bad option values by name', async () => {
    await expect(InferenceSession.create(modelPath, { executionProviders: ['cuda'] })).rejects.toThrow(/execution provider 'cuda' is not available in swinq; only 'cpu'/);
    await expect(InferenceSession.create(modelPath, { executionProviders: [{ name: 'webgpu' }] })).rejects.toThrow(/'webgpu' is not available/);
    await expect(InferenceSession.create(modelPath, { graphOptimizationLevel: 'max' as never })).rejects.toThrow(/graphOptimizationLevel must be one of/);
    await expect(InferenceSession.create(modelPath, { intraOpNumThreads: 1.5 })).rejects.toThrow(/intraOpNumThreads must be an integer/);
    await expect(InferenceSession.create(modelPath, { threads: 2, intraOpNumThreads: 1 })).rejects.toThrow(/threads \(2\) and intraOpNumThreads \(1\) disagree/);
    await expect(InferenceSession.create(modelPath, { logSeverityLevel: 7 as never })).rejects.toThrow(/logSeverityLevel must be/);
    await expect(InferenceSession.create(modelPath, { executionMode: 'fast' as never })).rejects.toThrow(/executionMode must be/);
    const s = await InferenceSession.create(modelPath, { executionProviders: [{ name: 'cpu' }], intraOpNumThreads: 0 });
    await s.release();
  });

  it('infers tensor types like onnxruntime and quotes at most a short prefix of a bad value', () => {
    expect(new Tensor(new BigInt64Array(2), [2]).type).toBe('int64');
    expect(new Tensor(new Int32Array(2)).type).toBe('int32');
    expect(new Tensor(new Uint8ClampedArray(2)).type).toBe('uint8');
    expect(new Tensor(new Float64Array(2)).type).toBe('float64');
    expect(new Tensor([true, false]).type).toBe('bool');
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const messages: string[] = [];
    const grab = (f: () => unknown) => {
      try { f(); } catch (e) { messages.push((e as Error).message); return; }
      throw new Error('expected a throw');
    };
    grab(() => new Tensor(big as never, [100_000]));                 // plain number array: no type to infer
    grab(() => new Tensor('float32', new Float32Array(100_000), big)); // dims = the data by mistake
    grab(() => new Tensor(String(big) as never, new Float32Array(4), [4]));
    grab(() => new Tensor('float32', new Float32Array(100_000), [7]));
    for (const m of messages) expect(m.length).toBeLessThan(240);
    expect(messages[0]).toMatch(/cannot infer the type of array\(100000\) \[0,1,2,3,…\]/);
  });

  it('checks dtypes, fetches and pre-allocated outputs against the model, naming them', async () => {
    const s = await InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
    const x = images.subarray(0, 784);
    await expect(s.run({ input: new Tensor(Float64Array.from(x), [1, 1, 28, 28]) })).rejects.toThrow(/input 'input' has type float64, expected float32/);
    // a Tensor-like object whose label says float32 but whose data is not
    const liar = { type: 'float32', dims: [1, 1, 28, 28], data: Float64Array.from(x) } as unknown as Tensor;
    expect(() => s.runSync({ input: liar })).toThrow(/input 'input' has type float32 but its data is Float64Array\(784\), expected a Float32Array/);
    const input = new Tensor(x, [1, 1, 28, 28]);
    await expect(s.run({ input }, ['nope'])).rejects.toThrow(/fetches names 'nope', which is not an output \(model outputs: logits\)/);
    await expect(s.run({ input }, { logits: new Tensor(new Float32Array(20), [2, 10]) })).rejects.toThrow(/pre-allocated output 'logits' is 'float32' \[2,10\].*expected float32 \[1,10\]/);
    await expect(s.run({ input }, 'logits' as never)).rejects.toThrow(/fetches must be an array/);
    const sync = s.runSync({ input }, { logits: null });
    expect(sync.logits.dims).toEqual([1, 10]);
    await s.release();
    await expect(s.run({ input })).rejects.toThrow(/session was released/);
  });
});
