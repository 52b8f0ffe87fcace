// The shared micro-Swin (../shared/models/swin-micro-fmnist.onnx) end to end: equals onnxruntime and
// the PyTorch reference logits in its .json, at batch 1 and 7, on both kernel sets.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { native } from '../src/native.js';
import { InferenceSession } from '../src/session.js';
import { Tensor } from '../src/tensor.js';
import { loadModel } from '../src/onnx/load.js';
import { BatchCompiler, compileGraph } from '../src/compile/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(repoRoot, '..', 'shared');
const modelPath = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const imagesPath = path.join(shared, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

interface Ref { mean: number; std: number; reference_logits_first8: number[][] }
let ref: Ref;
let images: Float32Array; // first 8 images, normalized, [8,1,28,28]
let session: InferenceSession;
let ortSession: ort.InferenceSession;

beforeAll(async () => {
  for (const p of [modelPath, `${modelPath}.json`, imagesPath]) {
    if (!fs.existsSync(p)) throw new Error(`model.test: missing ${p} — these tests need the shared data at ../shared relative to the repo root`);
  }
  ref = JSON.parse(fs.readFileSync(`${modelPath}.json`, 'utf8')) as Ref;
  const idx = zlib.gunzipSync(fs.readFileSync(imagesPath));
  if (idx.readUInt32BE(0) !== 0x803 || idx.readUInt32BE(8) !== 28 || idx.readUInt32BE(12) !== 28) throw new Error(`model.test: ${imagesPath} is not a 28×28 IDX image file`);
  images = new Float32Array(8 * 784);
  for (let i = 0; i < images.length; i++) images[i] = (idx[16 + i] / 255 - ref.mean) / ref.std;
  session = await InferenceSession.create(modelPath);
  ortSession = await ort.InferenceSession.create(modelPath);
});
afterAll(() => {
  session?.release();
  native.setIsa('auto');
});

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; ref: number } {
  let diff = 0;
  let r = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    r = Math.max(r, Math.abs(b[i]));
  }
  return { diff, ref: r };
}

describe('micro-Swin (Fashion-MNIST)', () => {
  for (const isa of ['scalar', 'auto'] as const) {
    for (const [batch, first] of [[1, 7], [7, 0]] as const) {
      it(`equals onnxruntime and the PyTorch reference logits at batch ${batch} (isa ${isa})`, async () => {
        native.setIsa(isa);
        const x = images.slice(first * 784, (first + batch) * 784);
        const got = (await session.run({ input: new Tensor('float32', x, [batch, 1, 28, 28]) })).logits;
        expect(got.dims).toEqual([batch, 10]);
        const want = (await ortSession.run({ input: new ort.Tensor('float32', x, [batch, 1, 28, 28]) })).logits.data as Float32Array;
        const vs = maxDiff(got.data as Float32Array, want);
        expect(vs.diff, `max|diff| vs onnxruntime (max|ref| ${vs.ref})`).toBeLessThanOrEqual(1e-4 * vs.ref);
        const pt = ref.reference_logits_first8.slice(first, first + batch).flat();
        const vp = maxDiff(got.data as Float32Array, pt);
        expect(vp.diff, `max|diff| vs PyTorch reference logits (max|ref| ${vp.ref})`).toBeLessThanOrEqual(1e-4 * vp.ref);
      });
    }
  }

  it('compiles to a short plan whose constants do not grow with batch', () => {
    const s1 = session.planStats({ input: [1, 1, 28, 28] });
    const s64 = session.planStats({ input: [64, 1, 28, 28] });
    expect(s1.onnxNodes).toBe(1726);
    expect(s1.planOps).toBeLessThanOrEqual(63);
    expect(s64.planOps).toBe(s1.planOps);
    expect(s64.opCounts).toEqual(s1.opCounts);
    // index maps and the softmax bias/mask tables are per batch item: same constant bytes at batch 64
    expect(s64.constantBytes).toBe(s1.constantBytes);
    expect(s1.opCounts.linear).toBe(19);
    expect(s1.opCounts.layernorm).toBe(11);
    expect(s1.opCounts.softmax).toBe(4);
    expect(s1.opCounts.unary ?? 0).toBe(0); // GELU fused into the linear epilogue
    expect(s1.opCounts.binary ?? 0).toBe(0); // every residual Add is in a linear epilogue
  });

  it('extrapolates large-batch plans from batch 2/3 exactly as a full compile would build them', () => {
    const g = loadModel(modelPath);
    const bc = new BatchCompiler(g);
    const e = bc.compile({ input: [9, 1, 28, 28] });
    expect(e.stats.extrapolated).toBe(true);
    const full = compileGraph(g, { input: [9, 1, 28, 28] });
    expect(full.stats.extrapolated).toBe(false);
    expect(e.desc.ops).toEqual(full.desc.ops);
    expect(e.desc.tensors).toEqual(full.desc.tensors);
    expect(e.desc.arenaBytes).toBe(full.desc.arenaBytes);
    expect(Buffer.from(e.desc.constants).equals(Buffer.from(full.desc.constants))).toBe(true);
    expect(e.outputDims).toEqual([[9, 10]]);
    expect(session.planStats({ input: [64, 1, 28, 28] }).extrapolated).toBe(true);
  });

  it('caches one plan per input shape and runs batch 64', async () => {
    const x = new Float32Array(64 * 784);
    for (let b = 0; b < 64; b++) x.set(images.subarray((b % 8) * 784, (b % 8 + 1) * 784), b * 784);
    native.setIsa('auto');
    const out = session.runSync({ input: new Tensor('float32', x, [64, 1, 28, 28]) }).logits.data as Float32Array;
    const want = (await ortSession.run({ input: new ort.Tensor('float32', x, [64, 1, 28, 28]) })).logits.data as Float32Array;
    const v = maxDiff(out, want);
    expect(v.diff).toBeLessThanOrEqual(1e-4 * v.ref);
  });
});
