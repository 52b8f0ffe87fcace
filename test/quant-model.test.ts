// The shared micro-Swin end to end: calibrate on train images, onnxruntime and swinq run the QDQ
// file, accuracy close to fp32 on a slice of the test split, and swinq's outputs on the QDQ file are
// bit-identical across runs and thread counts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';
import { loadLabelledImages, normalizedImages } from '../src/io/idx.js';
import { calibrate } from '../src/calibrate/calibrate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '..', 'shared');
const MODEL = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const DATA = path.join(shared, 'data', 'fashion-mnist');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-quant-model-'));
const Q = path.join(tmp, 'q.onnx');
const N = 500;

function requireShared(): void {
  if (!fs.existsSync(MODEL) || !fs.existsSync(DATA)) {
    throw new Error(`shared models/data not found at ${shared} (expected ../shared relative to the repo root, with models/swin-micro-fmnist.onnx and data/fashion-mnist/)`);
  }
}

const argmax = (y: ArrayLike<number>, r: number) => { let b = 0; for (let k = 1; k < 10; k++) if (y[r * 10 + k] > y[r * 10 + b]) b = k; return b; };

describe('micro-Swin QDQ', () => {
  let x: Float32Array;
  let labels: Uint8Array;
  beforeAll(async () => {
    requireShared();
    await calibrate(MODEL, { data: DATA, samples: 64, method: 'minmax', out: Q, threads: 1 });
    const ds = loadLabelledImages(DATA, 'test');
    x = normalizedImages(ds, 0, N, 0.286, 0.353);
    labels = ds.labels.subarray(0, N);
  });

  it('onnxruntime and swinq run it; accuracy within 1.5 pp of fp32 on 500 test images; predictions agree', async () => {
    const acc = (y: ArrayLike<number>) => { let ok = 0; for (let r = 0; r < N; r++) if (argmax(y, r) === labels[r]) ok++; return ok / N; };
    const ortRun = async (file: string) => {
      const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
      const y = (await s.run({ input: new ort.Tensor('float32', x, [N, 1, 28, 28]) })).logits.data as Float32Array;
      await s.release();
      return y;
    };
    const fp = await ortRun(MODEL);
    const oq = await ortRun(Q);
    // swinq's fp32 simulation of the file (the integer-only plan is tested in quant-int.test.ts)
    const s = await InferenceSession.create(Q, { threads: 1, qdq: 'simulate' });
    const sq = (await s.run({ input: new Tensor('float32', x, [N, 1, 28, 28]) })).logits.data as Float32Array;
    expect(s.plan).toBe('qdq-simulated');
    s.release();
    expect(Math.abs(acc(oq) - acc(fp))).toBeLessThan(0.015);
    expect(Math.abs(acc(sq) - acc(oq))).toBeLessThan(0.006);
    let agree = 0;
    for (let r = 0; r < N; r++) if (argmax(sq, r) === argmax(oq, r)) agree++;
    expect(agree / N).toBeGreaterThan(0.98);
    let diff = 0;
    for (let i = 0; i < fp.length; i++) diff = Math.max(diff, Math.abs(fp[i] - oq[i]));
    expect(diff).toBeGreaterThan(1e-3); // the QDQ file really changes the numbers
  });

  it('swinq outputs on the QDQ file are bit-identical across runs and thread counts', async () => {
    const B = 16;
    const xb = x.subarray(0, B * 784);
    const outs: Float32Array[] = [];
    for (const threads of [1, 2]) {
      const s = await InferenceSession.create(Q, { threads });
      for (let rep = 0; rep < 2; rep++) outs.push((await s.run({ input: new Tensor('float32', xb, [B, 1, 28, 28]) })).logits.data as Float32Array);
      // batch 1 rows equal the batch-16 rows
      const one = (await s.run({ input: new Tensor('float32', xb.subarray(784 * 3, 784 * 4), [1, 1, 28, 28]) })).logits.data as Float32Array;
      expect(Array.from(one)).toEqual(Array.from(outs[outs.length - 1].subarray(30, 40)));
      s.release();
    }
    for (const o of outs.slice(1)) expect(Buffer.from(o.buffer).equals(Buffer.from(outs[0].buffer))).toBe(true);
  });
});
