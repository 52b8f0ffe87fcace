// run() on the calling thread for short plans (inlineBelowMs), on the libuv pool otherwise: the same
// outputs either way, the place visible as session.lastRunOn, the option validated.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const model = path.join(root, 'demo', 'teacher-gelu.onnx');  // bundled tiny Swin, [batch,1,28,28]

function feeds(batch: number) {
  const x = new Float32Array(batch * 784).map((_, i) => ((i * 37) % 255) / 255 - 0.3);
  return { input: new Tensor('float32', x, [batch, 1, 28, 28]) };
}

describe('run(): calling thread or pool', () => {
  it('runs a shape first on the pool, then on the caller while its runs stay under inlineBelowMs', async () => {
    const s = await InferenceSession.create(model, { inlineBelowMs: 1e6 });
    expect(s.lastRunOn).toBeUndefined();
    const a = await s.run(feeds(1));
    expect(s.lastRunOn).toBe('pool');  // nothing measured yet for this shape
    const b = await s.run(feeds(1));
    expect(s.lastRunOn).toBe('caller');
    expect(Array.from(b.logits.data as Float32Array)).toEqual(Array.from(a.logits.data as Float32Array));
    await s.run(feeds(2));  // a new shape: measured on the pool first
    expect(s.lastRunOn).toBe('pool');
    s.runSync(feeds(2));
    expect(s.lastRunOn).toBe('caller');
    await s.release();
  });

  it('inlineBelowMs 0 keeps every run() on the pool, with the outputs of the default', async () => {
    const pool = await InferenceSession.create(model, { inlineBelowMs: 0 });
    const dflt = await InferenceSession.create(model);
    for (let i = 0; i < 3; i++) {
      const [p, d] = [await pool.run(feeds(1)), await dflt.run(feeds(1))];
      expect(pool.lastRunOn).toBe('pool');
      expect(Array.from(d.logits.data as Float32Array)).toEqual(Array.from(p.logits.data as Float32Array));
    }
    await pool.release();
    await dflt.release();
  });

  it('rejects a bad inlineBelowMs naming the option', async () => {
    for (const bad of [-1, Number.NaN, '1', Infinity]) {
      await expect(InferenceSession.create(model, { inlineBelowMs: bad as number })).rejects.toThrow(/inlineBelowMs must be a number of ms in \[0, 1e6\]/);
    }
  });

  it('the inputs are the caller\'s again when run() returns, on either path', async () => {
    const s = await InferenceSession.create(model, { inlineBelowMs: 1e6 });
    const f = feeds(1);
    const want = Array.from((await s.run(feeds(1))).logits.data as Float32Array);
    const p = s.run(f);  // now inline: the run has happened before run() returns
    (f.input.data as Float32Array).fill(0);
    expect(Array.from((await p).logits.data as Float32Array)).toEqual(want);
    expect(s.lastRunOn).toBe('caller');
    await s.release();
  });
});
