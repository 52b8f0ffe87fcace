// compileInBackground: run() of a new shape compiles on a worker thread. The event loop keeps turning
// meanwhile, results equal the inline compile bit for bit, concurrent runs of one new shape share one
// compile, and release() during a compile rejects the run instead of leaving it pending.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const model = path.join(repoRoot, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');

function input(rows: number, seed: number): Tensor {
  const x = Float32Array.from({ length: rows * 784 }, (_, i) => Math.sin(i * 0.37 + seed));
  return new Tensor('float32', x, [rows, 1, 28, 28]);
}

describe('compileInBackground', () => {
  it('keeps the event loop free while a new shape compiles; results equal the inline compile', async () => {
    if (!fs.existsSync(model)) throw new Error(`background-compile.test: missing ${model} — needs the shared models at ../shared`);
    const bg = await InferenceSession.create(model, { threads: 1, compileInBackground: true });
    const inline = await InferenceSession.create(model, { threads: 1 });
    try {
      const name = bg.inputNames[0];
      let ticks = 0;
      const iv = setInterval(() => ticks++, 1);
      const t0 = performance.now();
      // two runs of one new shape at once: one compile, both answered
      const [a, b] = await Promise.all([bg.run({ [name]: input(5, 1) }), bg.run({ [name]: input(5, 2) })]);
      const ms = performance.now() - t0;
      clearInterval(iv);
      // the timer fired throughout (an inline compile would hold it for the whole compile)
      expect(ticks, `${ticks} ticks in ${ms.toFixed(0)} ms`).toBeGreaterThan(Math.min(20, ms / 10));
      const ra = inline.runSync({ [name]: input(5, 1) });
      const rb = inline.runSync({ [name]: input(5, 2) });
      const out = bg.outputNames[0];
      expect(a[out].data).toEqual(ra[out].data);
      expect(b[out].data).toEqual(rb[out].data);
      expect(a[out].data).not.toEqual(b[out].data);
      expect(bg.planStats({ [name]: [5, 1, 28, 28] }).planOps).toBe(inline.planStats({ [name]: [5, 1, 28, 28] }).planOps);
    } finally {
      await bg.release();
      await inline.release();
    }
  });

  it('copies the inputs before the compile: the caller may overwrite them at once', async () => {
    if (!fs.existsSync(model)) throw new Error(`background-compile.test: missing ${model}`);
    const s = await InferenceSession.create(model, { threads: 1, compileInBackground: true });
    try {
      const name = s.inputNames[0];
      const want = s.runSync({ [name]: input(3, 4) }); // compiles inline; now cached, so use a new shape below
      const y = input(6, 4);
      const keep = Float32Array.from(y.data as Float32Array);
      const p = s.run({ [name]: y });
      (y.data as Float32Array).fill(0);
      const got = await p;
      const ref = s.runSync({ [name]: new Tensor('float32', keep, [6, 1, 28, 28]) });
      expect(got[s.outputNames[0]].data).toEqual(ref[s.outputNames[0]].data);
      expect(want[s.outputNames[0]].dims).toEqual([3, 10]);
    } finally {
      await s.release();
    }
  });

  it('release() during a compile rejects the pending run; bad option values are refused', async () => {
    if (!fs.existsSync(model)) throw new Error(`background-compile.test: missing ${model}`);
    const s = await InferenceSession.create(model, { threads: 1, compileInBackground: true });
    const p = s.run({ [s.inputNames[0]]: input(9, 5) });
    await s.release();
    await expect(p).rejects.toThrow(/released/);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    await expect(InferenceSession.create(model, { compileInBackground: 'yes' as any })).rejects.toThrow(/compileInBackground must be a boolean/);
  });
});
