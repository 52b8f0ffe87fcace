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

describe('adaptThreads: each op on the pool or the caller, as measured', () => {
  it('a 2-thread session chooses after its probe runs, with the outputs of 1 thread; false keeps the pool', async () => {
    const one = await InferenceSession.create(model, { threads: 1 });
    const two = await InferenceSession.create(model, { threads: 2 });
    const pool = await InferenceSession.create(model, { threads: 2, adaptThreads: false });
    expect(one.threadChoiceOf()).toMatchObject({ threads: 1, adaptive: false, config: 'pool', callerOps: 0, choices: 0 });
    expect(two.threadChoiceOf()).toMatchObject({ threads: 2, adaptive: true, config: 'pool', choices: 0 });
    const want = Array.from(one.runSync(feeds(1)).logits.data as Float32Array);
    for (let i = 0; i < 40; i++) {  // 8 warm-up runs, 8 + 8 probe runs, 8 check runs, then the choice holds
      expect(Array.from(two.runSync(feeds(1)).logits.data as Float32Array)).toEqual(want);
      expect(Array.from(pool.runSync(feeds(1)).logits.data as Float32Array)).toEqual(want);
    }
    const c = two.threadChoiceOf();
    expect(c.choices).toBe(1);
    expect(['pool', 'caller', 'mixed']).toContain(c.config);
    if (c.config === 'pool') expect(c.callerOps).toBe(0);
    else if (c.config === 'caller') expect(c.callerOps).toBe(c.ops);
    else expect(c.callerOps > 0 && c.callerOps < c.ops).toBe(true);
    expect(pool.threadChoiceOf()).toMatchObject({ adaptive: false, config: 'pool', choices: 0 });
    for (const s of [one, two, pool]) await s.release();
  });

  it('rejects a non-boolean adaptThreads or rowRegions naming the option', async () => {
    await expect(InferenceSession.create(model, { adaptThreads: 'yes' as unknown as boolean })).rejects.toThrow(/adaptThreads must be a boolean/);
    await expect(InferenceSession.create(model, { rowRegions: 1 as unknown as boolean })).rejects.toThrow(/rowRegions must be a boolean, got 1/);
  });

  it('rowRegions: false makes every op its own pool job, with the same outputs', async () => {
    const two = await InferenceSession.create(model, { threads: 2 });
    const ops = await InferenceSession.create(model, { threads: 2, rowRegions: false });
    const want = Array.from(two.runSync(feeds(1)).logits.data as Float32Array);
    for (let i = 0; i < 40; i++) expect(Array.from(ops.runSync(feeds(1)).logits.data as Float32Array)).toEqual(want);
    const c = ops.threadChoiceOf();
    expect(c.jobs).toBe(c.ops);
    expect(two.threadChoiceOf().jobs).toBeLessThanOrEqual(c.ops);
    for (const s of [two, ops]) await s.release();
  });
});
