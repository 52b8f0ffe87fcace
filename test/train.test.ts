// Trainer: finite-difference check of every backward rule (through the binding, float32 forward,
// central differences with h = 1e-3 accumulated in float64; tolerance 1e-2·max(1, |g|)),
// few-bit GELU backward vs exact, losses, AdamW, a tiny Swin that learns, ONNX export equality.
import { mulberry32 as rng } from '../src/util/random.js';
import { describe, expect, it } from 'vitest';
import { native } from '../src/native.js';
import { APPROX_BP_TABLES, FEWBIT_FUNCTIONS } from '../src/fewbit.js';
import type { OpDesc } from '../src/train/op.js';
import { OnnxTrainGraph } from '../src/train/onnx-graph.js';
import { loadModel } from '../src/onnx/load.js';
import { OP_NAMES, TRAIN_OPS } from '../src/plan/ops.js';

function randn(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return a;
}

/** L = Σ y·w; checks dL/d inputs[i] from trainBackward against central differences on up to 24 elements each. */
function fdCheck(desc: OpDesc, inputs: Float32Array[], opts: { skip?: number[]; h?: number; tol?: number } = {}) {
  const r = rng(7);
  const h = opts.h ?? 1e-3;
  const tol = opts.tol ?? 1e-2;
  const y0 = native.trainForward(desc, inputs).y as Float32Array;
  const w = randn(y0.length, r);
  const loss = (ins: Float32Array[]) => {
    const y = native.trainForward(desc, ins).y as Float32Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * w[i];
    return s;
  };
  const need = inputs.map((_, i) => !(opts.skip ?? []).includes(i));
  const grads = native.trainBackward(desc, inputs, inputs.map((a) => a.length), desc.op === 'softmax' ? y0 : null, w, null, need);
  let checked = 0;
  inputs.forEach((x, i) => {
    if (!need[i]) return;
    const g = grads[i] as Float32Array;
    expect(g.length).toBe(x.length);
    const picks = x.length <= 24 ? [...Array(x.length).keys()] : Array.from({ length: 24 }, () => Math.floor(r() * x.length));
    for (const k of picks) {
      const orig = x[k];
      x[k] = orig + h;
      const lp = loss(inputs);
      x[k] = orig - h;
      const lm = loss(inputs);
      x[k] = orig;
      const num = (lp - lm) / (2 * h);
      expect(Math.abs(num - g[k]), `${desc.op} input ${i}[${k}]: fd ${num} vs backward ${g[k]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(g[k])));
      checked++;
    }
  });
  expect(checked).toBeGreaterThan(0);
}

/** Central differences (h = 1e-3) of loss() in every element of x against grad. */
function expectLossGrad(x: Float32Array, grad: Float32Array, loss: () => number) {
  for (let k = 0; k < x.length; k++) {
    const o = x[k];
    x[k] = o + 1e-3; const lp = loss();
    x[k] = o - 1e-3; const lm = loss();
    x[k] = o;
    expect(grad[k]).toBeCloseTo((lp - lm) / 2e-3, 3);
  }
}

describe('backward rules vs finite differences', () => {
  const r = rng(1);
  it('linear', () => fdCheck({ op: 'linear', K: 7, N: 5 }, [randn(3 * 7, r), randn(35, r), randn(5, r)]));
  it('linear, rows split across the pool (M = 70)', () => fdCheck({ op: 'linear', K: 9, N: 17 }, [randn(70 * 9, r), randn(9 * 17, r), randn(17, r)]));
  it('layernorm', () => fdCheck({ op: 'layernorm', D: 6, eps: 1e-5 }, [randn(4 * 6, r), randn(6, r), randn(6, r)]));
  it('matmul (batched, alpha)', () => fdCheck({ op: 'matmul', M: 3, K: 4, N: 5, alpha: 0.5 }, [randn(2 * 12, r), randn(2 * 20, r)]));
  it('matmul transB (q·kᵀ)', () => fdCheck({ op: 'matmul', M: 3, K: 4, N: 5, alpha: 0.7, transB: true }, [randn(2 * 12, r), randn(2 * 20, r)]));
  it('softmax', () => fdCheck({ op: 'softmax', D: 5 }, [randn(3 * 5, r, 2)]));
  it('add', () => fdCheck({ op: 'add' }, [randn(10, r), randn(10, r)]));
  it('add_bcast (relative bias over windows, mask over heads)', () => {
    fdCheck({ op: 'add_bcast', dims: [2, 3, 4], bdims: [2, 3, 4] }, [randn(3 * 24, r), randn(24, r)]);
    fdCheck({ op: 'add_bcast', dims: [2, 3, 4], bdims: [2, 1, 4] }, [randn(2 * 24, r), randn(8, r)]);
  });
  it('gather (repeated indices scatter-add, padding)', () => {
    const idx = Int32Array.from([4, 0, 4, -1, 2]);
    fdCheck({ op: 'gather', xItem: 6, block: 2, idx }, [randn(3 * 6, r)]);
  });
  it('mean_pool', () => fdCheck({ op: 'mean_pool', L: 4, C: 3 }, [randn(2 * 12, r)]));
  it('fakequant: values on the code grid; backward is the clipped straight-through estimator (by definition, not a derivative)', () => {
    const desc: OpDesc = { op: 'fakequant', scale: 0.25, zp: 8, qmin: 0, qmax: 20 };
    const x = Float32Array.from([-3, -2.06, -1.9, -0.1, 0.12, 0.125, 0.375, 2.9, 3.07, 3.2, 10]);
    const y = native.trainForward(desc, [x]).y as Float32Array;
    // codes: round_half_even(x/0.25) + 8 clamped to [0, 20], back to (code − 8)·0.25
    expect(Array.from(y)).toEqual([-2, -2, -2, 0, 0, 0.0, 0.5, 3, 3, 3, 3]);
    const dy = Float32Array.from(x, (_, i) => i + 1);
    const [dx] = native.trainBackward(desc, [x], [x.length], null, dy, null, [true]) as Float32Array[];
    // pass where x/0.25 + 8 lies in [−0.5, 20.5]: x in [−2.125, 3.125]
    expect(Array.from(dx)).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0]);
    expect(() => native.trainForward({ op: 'fakequant', scale: 0, zp: 0, qmin: 0, qmax: 255 }, [x])).toThrow(/scale must be a positive finite/);
    expect(() => native.trainForward({ op: 'fakequant', scale: 1, zp: 300, qmin: 0, qmax: 255 }, [x])).toThrow(/zp must lie in \[qmin, qmax\]/);
  });
  for (const fn of FEWBIT_FUNCTIONS) {
    it(`act ${fn}`, () => {
      // keep away from kinks (0, ±1, 3, 6, ±3) where the one-sided derivatives differ
      const x = randn(40, r, 2).map((v) => {
        for (const k of [0, 1, -1, 3, -3, 6]) if (Math.abs(v - k) < 0.01) return k + 0.05;
        return v;
      });
      fdCheck({ op: 'act', fn }, [x]);
    });
  }
  for (const [bop, name] of [[0, 'add'], [1, 'sub'], [2, 'mul'], [3, 'div']] as const) {
    it(`binary ${name} with broadcast strides (b over the batch dim, a transposed view)`, () => {
      // y[i, j] = a[j·3 + i] ∘ b[j] over output dims [3, 4]: a read transposed, b broadcast over i
      const b = randn(4, r).map((v) => (bop === 3 ? Math.sign(v) * (1 + Math.abs(v)) : v));
      fdCheck({ op: 'binary', bop, odims: [3, 4], sa: [1, 3], sb: [0, 1] }, [randn(12, r), b]);
    });
  }
  it('binary: same-shape operands, rank 3', () => fdCheck({ op: 'binary', bop: 2, odims: [2, 3, 5], sa: [15, 5, 1], sb: [15, 5, 1] }, [randn(30, r), randn(30, r)]));
  it('scale_shift', () => fdCheck({ op: 'scale_shift', alpha: -0.7, shift: 0.3 }, [randn(9, r)]));
  it('binary strides that read past an operand are refused', () => {
    expect(() => native.trainForward({ op: 'binary', bop: 0, odims: [3, 4], sa: [4, 1], sb: [0, 2] }, [new Float32Array(12), new Float32Array(4)])).toThrow(/binary: b has 4 elements, the strides read 7/);
    expect(() => native.trainForward({ op: 'binary', bop: 5, odims: [2], sa: [1], sb: [1] }, [new Float32Array(2), new Float32Array(2)])).toThrow(/bop must be/);
  });
  it('bad sizes name the op and field', () => {
    expect(() => native.trainForward({ op: 'linear', K: 3, N: 2 }, [new Float32Array(4), new Float32Array(6), new Float32Array(2)])).toThrow(/linear: x has 4 elements/);
    expect(() => native.trainForward({ op: 'gather', xItem: 4, block: 2, idx: Int32Array.from([3]) }, [new Float32Array(4)])).toThrow(/idx\[0\] = 3 reads past/);
    expect(() => native.trainForward({ op: 'conv' }, [])).toThrow(/unknown op 'conv'/);
    expect(() => native.trainBackward({ op: 'add' }, [new Float32Array(3), new Float32Array(3)], [3, 3], null, new Float32Array(2), null, [true, true])).toThrow(/dy has 2 elements/);
  });
  it('in place: a few-bit act writes y over x (codes taken first); act and softmax write dx over dy; other ops refuse', () => {
    const x = randn(37, r, 2);
    for (const bits of [0, 2, 3]) {
      const op = { op: 'act', fn: 'gelu', bits };
      const ref = native.trainForward(op, [Float32Array.from(x)]);
      const buf = Float32Array.from(x);
      const got = native.trainForward(op, [buf], buf);
      expect(got.y).toBe(buf);
      expect(Array.from(got.y)).toEqual(Array.from(ref.y));
      if (bits) expect(Array.from(got.codes)).toEqual(Array.from(ref.codes));
      const dy = randn(37, r);
      const gRef = native.trainBackward(op, [x], [37], null, dy, ref.codes ?? null, [true])[0];
      const dyBuf = Float32Array.from(dy);
      const gIn = native.trainBackward(op, [x], [37], null, dyBuf, ref.codes ?? null, [true], dyBuf)[0];
      expect(gIn).toBe(dyBuf);
      expect(Array.from(gIn)).toEqual(Array.from(gRef));
    }
    const sm = { op: 'softmax', D: 6 }, xs = randn(18, r, 2);
    const p = native.trainForward(sm, [xs]).y, dy = randn(18, r);
    const gRef = native.trainBackward(sm, [null], [18], p, dy, null, [true])[0];
    const dyBuf = Float32Array.from(dy);
    expect(Array.from(native.trainBackward(sm, [null], [18], p, dyBuf, null, [true], dyBuf)[0])).toEqual(Array.from(gRef));
    const lin = { op: 'linear', K: 3, N: 2 }, li = [randn(6, r), randn(6, r), randn(2, r)];
    expect(() => native.trainForward(lin, li, new Float32Array(4))).toThrow(/only accepted for act ops/);
    expect(() => native.trainBackward(lin, li, [6, 6, 2], null, new Float32Array(4), null, [true, false, false], new Float32Array(6))).toThrow(/only accepted for act and softmax/);
    expect(() => native.trainForward({ op: 'act', fn: 'gelu', bits: 0 }, [new Float32Array(5)], new Float32Array(4))).toThrow(/out has 4 elements, expected 5/);
  });
  it('act with a fixed table (Approx-BP ReGELU2): codes count the borders below x, backward is dy·level[code]; bad tables refused', () => {
    const t = APPROX_BP_TABLES.regelu2;
    const op = { op: 'act', fn: 'gelu', bits: 2, tableBorders: t.borders, tableLevels: t.levels };
    const x = Float32Array.from([-5, -3.2, -3.1, -1, -0.0011, -0.0012, 0, 0.7, 3.19, 3.2, 9, ...randn(29, r, 3)]);
    const f = native.trainForward(op, [x]);
    const plain = native.trainForward({ op: 'act', fn: 'gelu', bits: 0 }, [x]);
    expect(Array.from(f.y)).toEqual(Array.from(plain.y));  // forward unchanged
    const dy = randn(x.length, r);
    const g = native.trainBackward(op, [null], [x.length], null, dy, f.codes, [true])[0];
    const lv = Float32Array.from(t.levels), bd = Float32Array.from(t.borders);
    for (let i = 0; i < x.length; i++) {
      const code = bd.filter((b) => x[i] > b).length;
      expect(g[i], `x = ${x[i]}`).toBe(Math.fround(dy[i] * lv[code]));
    }
    expect(t.levels).toEqual([0, -0.04922261145617846, -0.04922261145617846 + 1.0979632065417297, -0.04922261145617846 + 1.0979632065417297 - 0.048740595085551286]);
    expect(() => native.trainForward({ ...op, tableLevels: [0, 1] }, [x])).toThrow(/needs 3 borders and 4 levels, got 3 and 2/);
    expect(() => native.trainForward({ ...op, tableBorders: [1, 0, 2] }, [x])).toThrow(/strictly ascending \(border 1\)/);
    expect(() => native.trainForward({ ...op, bits: 0 }, [x])).toThrow(/fixed table needs bits > 0/);
  });
  it('linear/matmul backward read x (A) only for dW (dB) and W (B) only for dx (dA): the trainer frees one between the two', () => {
    const lin = { op: 'linear', K: 4, N: 3 }, li = [randn(8, r), randn(12, r), randn(3, r)], dy = randn(6, r);
    const all = native.trainBackward(lin, li, [8, 12, 3], null, dy, null, [true, true, true]);
    const dx = native.trainBackward(lin, [null, li[1], null], [8, 12, 3], null, dy, null, [true, false, false]);
    const dw = native.trainBackward(lin, [li[0], null, null], [8, 12, 3], null, dy, null, [false, true, true]);
    expect(Array.from(dx[0])).toEqual(Array.from(all[0]));
    expect(Array.from(dw[1])).toEqual(Array.from(all[1]));
    expect(Array.from(dw[2])).toEqual(Array.from(all[2]));
    expect(() => native.trainBackward(lin, [null, li[1], null], [8, 12, 3], null, dy, null, [true, true, false])).toThrow(/saved input 0 missing/);
    expect(() => native.trainBackward(lin, [li[0], null, null], [8, 12, 3], null, dy, null, [true, false, false])).toThrow(/saved input 1 missing/);
    const mm = { op: 'matmul', M: 3, K: 4, N: 5, alpha: 0.7, transB: true }, mi = [randn(24, r), randn(40, r)], dm = randn(30, r);
    const both = native.trainBackward(mm, mi, [24, 40], null, dm, null, [true, true]);
    expect(Array.from(native.trainBackward(mm, [null, mi[1]], [24, 40], null, dm, null, [true, false])[0])).toEqual(Array.from(both[0]));
    expect(Array.from(native.trainBackward(mm, [mi[0], null], [24, 40], null, dm, null, [false, true])[1])).toEqual(Array.from(both[1]));
  });
  it('one op list: the train ops of ops.def (SWINQ_TRAIN_OP) are TRAIN_OPS, each naming a plan op or none', () => {
    const def = fs.readFileSync(path.join(__dirname, '..', 'native', 'include', 'swinq', 'ops.def'), 'utf8');
    const listed = [...def.matchAll(/^SWINQ_TRAIN_OP\((\w+), (\w+)\)/gm)].map((m) => [m[1], m[2]]);
    expect(listed).toEqual(TRAIN_OPS.map((o) => [...o]));
    for (const [kind, plan] of TRAIN_OPS) {
      expect(plan === 'none' || (OP_NAMES as readonly string[]).includes(plan), `${kind} → ${plan}`).toBe(true);
      // the native side knows the name (it refuses the empty attributes, not the op)
      let msg = '';
      try { native.trainReads({ op: kind }, []); } catch (e) { msg = (e as Error).message; }
      expect(msg, kind).not.toMatch(/unknown op/);
    }
    expect(() => native.trainReads({ op: 'conv' }, [])).toThrow(/unknown op 'conv'/);
  });
  it('trainReads states what each backward rule reads (the trainer keeps exactly that)', () => {
    const lin = { op: 'linear', K: 4, N: 3 };
    expect(native.trainReads(lin, [true, false, false]).inputs).toEqual([false, true, false]);
    expect(native.trainReads(lin, [false, true, true]).inputs).toEqual([true, false, false]);
    expect(native.trainReads(lin, [false, false, false]).inputs).toEqual([false, false, false]);
    expect(native.trainReads({ op: 'softmax', D: 5 }, [true])).toEqual({ inputs: [false], output: true, codes: false, aux: false });
    expect(native.trainReads({ op: 'act', fn: 'gelu', bits: 2 }, [true])).toEqual({ inputs: [false], output: false, codes: true, aux: false });
    expect(native.trainReads({ op: 'act', fn: 'gelu' }, [true]).inputs).toEqual([true]);
    expect(native.trainReads({ op: 'layernorm', D: 4 }, [true, true, true], true)).toEqual({ inputs: [false, true, true], output: true, codes: false, aux: true });
    expect(native.trainReads({ op: 'layernorm', D: 4 }, [false, false, true]).inputs).toEqual([true, true, false]);
    expect(native.trainReads({ op: 'binary', bop: 1, odims: [3], sa: [1], sb: [1] }, [true, true]).inputs).toEqual([false, false]);
    expect(native.trainReads({ op: 'binary', bop: 2, odims: [3], sa: [1], sb: [1] }, [true, false]).inputs).toEqual([true, true]);
    expect(() => native.trainReads(lin, [true, true])).toThrow(/train op linear: need has 2 entries, the op 3 inputs/);
    expect(() => native.trainReads({ op: 'softmax', D: 5 }, [true], true)).toThrow(/only layernorm/);
    // the 1/σ a memory-sharing LayerNorm saves: one per row, from the rule's own statistics
    const x = Float32Array.from([1, 2, 3, 4, 0, 0, 0, 2]);
    const rs = native.trainLayerNormRstd({ op: 'layernorm', D: 4, eps: 1e-5 }, x);
    expect(rs.length).toBe(2);
    expect(rs[0]).toBeCloseTo(1 / Math.sqrt(1.25 + 1e-5), 5);
    expect(rs[1]).toBeCloseTo(1 / Math.sqrt(0.75 + 1e-5), 5);
    expect(() => native.trainLayerNormRstd({ op: 'softmax', D: 4 }, x)).toThrow(/layernorm 1\/σ asked of a softmax op/);
  });
});

describe('few-bit activations', () => {
  it('GELU 4-bit backward is close to exact; codes are ≤ 1/8 of the fp32 input', () => {
    const r = rng(3);
    const x = randn(4096, r);
    const dy = randn(4096, r);
    const exact = native.trainBackward({ op: 'act', fn: 'gelu' }, [x], [x.length], null, dy, null, [true])[0] as Float32Array;
    const f = native.trainForward({ op: 'act', fn: 'gelu', bits: 4 }, [x]);
    expect(f.codes.length).toBe(4096 / 2);
    const fb = native.trainBackward({ op: 'act', fn: 'gelu', bits: 4 }, [null], [x.length], null, dy, f.codes, [true])[0] as Float32Array;
    let num = 0, den = 0, dot = 0, n1 = 0, n2 = 0;
    for (let i = 0; i < x.length; i++) {
      num += (fb[i] - exact[i]) ** 2; den += exact[i] ** 2;
      dot += fb[i] * exact[i]; n1 += fb[i] ** 2; n2 += exact[i] ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThan(0.1);
    expect(dot / Math.sqrt(n1 * n2)).toBeGreaterThan(0.99);
    // and forward is unchanged by few-bit
    expect(Array.from(f.y)).toEqual(Array.from(native.trainForward({ op: 'act', fn: 'gelu' }, [x]).y));
  });
});

describe('few-bit in the trainer', () => {
  it('ReLU with 1-bit codes trains exactly like the exact backward (its derivative is piecewise constant)', () => {
    const cfg = { ...TINY, act: 'relu' as const };
    const run = (bits: number) => {
      const g = tiny(cfg, 3);
      g.setFewbit(bits);
      const t = new Trainer(g, { lr: 1e-3, minLr: 0, weightDecay: 0.05, warmup: 1, totalSteps: 2, clip: 1, smoothing: 0, classes: 3 });
      const { x, labels } = synthetic(6, 4);
      const r = t.trainStep(x, labels);
      return { w: Array.from(g.params.get('layers.0.blocks.0.mlp.fc1.weight')!.data), saved: r.savedBytes };
    };
    const a = run(0), b = run(1);
    expect(b.w).toEqual(a.w);
    expect(b.saved).toBeLessThan(a.saved);  // fc1 outputs are kept as 1-bit codes instead of fp32
  });
});

describe('losses and optimiser', () => {
  it('cross-entropy with label smoothing: value and gradient by finite differences', () => {
    const r = rng(5);
    const x = randn(3 * 4, r);
    const lab = Int32Array.from([0, 3, 2]);
    const { loss, grad } = native.trainLoss('ce', x, lab, 4, 0.1);
    let ref = 0;
    for (let b = 0; b < 3; b++) {
      const row = Array.from(x.subarray(b * 4, b * 4 + 4));
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      for (let c = 0; c < 4; c++) ref -= ((c === lab[b] ? 0.9 : 0) + 0.1 / 4) * (row[c] - lse);
    }
    expect(loss).toBeCloseTo(ref / 3, 5);
    expectLossGrad(x, grad, () => native.trainLoss('ce', x, lab, 4, 0.1).loss);
    expect(() => native.trainLoss('ce', x, Int32Array.from([0, 9, 1]), 4, 0)).toThrow(/labels\[1\] = 9/);
  });
  it('KL divergence (distillation, T = 2): zero at the teacher, gradient by finite differences', () => {
    const r = rng(6);
    const s = randn(2 * 5, r);
    const t = randn(2 * 5, r);
    expect(native.trainLoss('kl', t, t, 5, 2).loss).toBeCloseTo(0, 6);
    const { loss, grad } = native.trainLoss('kl', s, t, 5, 2);
    expect(loss).toBeGreaterThan(0);
    expectLossGrad(s, grad, () => native.trainLoss('kl', s, t, 5, 2).loss);
  });
  it('AdamW matches the PyTorch update; warm-up + cosine schedule', () => {
    const p = Float32Array.from([1, -2]);
    const g = Float32Array.from([0.5, -0.1]);
    const m = new Float32Array(2), v = new Float32Array(2);
    native.trainAdamw(p, g, m, v, 1, { lr: 0.1, weightDecay: 0.01 });
    // step 1: m̂ = g, v̂ = g², update = lr·g/(|g|+eps) = ±lr; decay first
    expect(p[0]).toBeCloseTo(1 * (1 - 0.001) - 0.1, 5);
    expect(p[1]).toBeCloseTo(-2 * (1 - 0.001) + 0.1, 5);
    expect(native.trainLr(0, 100, 10, 1, 0)).toBeCloseTo(0.1);
    expect(native.trainLr(9, 100, 10, 1, 0)).toBeCloseTo(1);
    expect(native.trainLr(55, 100, 10, 1, 0)).toBeCloseTo(0.5);
    expect(native.trainLr(100, 100, 10, 1, 0.01)).toBeCloseTo(0.01);
    const gg = Float32Array.from([3, 4]);
    expect(native.trainSumSquares(gg)).toBe(25);
    native.trainScale(gg, 0.5);
    expect(Array.from(gg)).toEqual([1.5, 2]);
  });
});

import { initParams, readOnnxModel, swinOnnx, type SwinConfig } from '../src/train/swin.js';
import { Trainer } from '../src/train/trainer.js';

const TINY: SwinConfig = { imgSize: [16, 16], inChans: 1, patch: 2, embed: 16, depths: [2, 1], heads: [2, 2], window: 4, classes: 3, act: 'gelu', mlpRatio: 2 };

/** A fresh Swin of the config (the `swinq init` model) on the trainer. */
function tiny(cfg: SwinConfig, seed: number): OnnxTrainGraph {
  return new OnnxTrainGraph(swinOnnx(cfg, initParams(cfg, seed)), `tiny seed ${seed}`);
}

/** Three easily told apart synthetic classes: horizontal ramp, vertical ramp, flat, plus noise. */
function synthetic(B: number, seed: number) {
  const r = rng(seed);
  const x = new Float32Array(B * 256);
  const labels = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    labels[b] = b % 3;
    for (let i = 0; i < 256; i++) {
      const v = labels[b] === 0 ? (i % 16) / 16 : labels[b] === 1 ? Math.floor(i / 16) / 16 : 0.5;
      x[b * 256 + i] = v + 0.2 * (r() - 0.5);
    }
  }
  return { x, labels };
}

describe('tiny Swin (shifted windows + mask, patch merging)', () => {
  it('loss goes down over a few AdamW steps (exact and 2-bit few-bit GELU backward)', () => {
    for (const bits of [0, 2]) {
      const g = tiny(TINY, 1);
      g.setFewbit(bits);
      const t = new Trainer(g, { lr: 3e-3, minLr: 0, weightDecay: 0.05, warmup: 2, totalSteps: 25, clip: 1, smoothing: 0.1, classes: 3 });
      const { x, labels } = synthetic(12, 2);
      const losses: number[] = [];
      for (let i = 0; i < 25; i++) losses.push(t.trainStep(x, labels).loss);
      expect(losses[24], `bits ${bits}: ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(losses[0] * 0.6);
    }
  });
});

import * as ort from 'onnxruntime-node';
import { InferenceSession, Tensor } from '../src/index.js';

function maxRel(a: Float32Array, b: Float32Array): number {
  let scale = 0, diff = 0;
  for (let i = 0; i < a.length; i++) { scale = Math.max(scale, Math.abs(b[i])); diff = Math.max(diff, Math.abs(a[i] - b[i])); }
  return diff / Math.max(scale, 1e-6);
}

describe('ONNX export', () => {
  it('a trained tiny Swin exports; onnxruntime and swinq outputs equal the trainer forward (≤ 1e-4 rel), params round-trip', async () => {
    const g = tiny(TINY, 4);
    const t = new Trainer(g, { lr: 3e-3, minLr: 0, weightDecay: 0.05, warmup: 1, totalSteps: 4, clip: 1, smoothing: 0, classes: 3 });
    const { x, labels } = synthetic(6, 9);
    for (let i = 0; i < 4; i++) t.trainStep(x, labels);
    const B = 5;  // a batch size never seen in training
    const xb = x.subarray(0, B * 256);
    const ref = g.predict(xb, B);
    const bytes = g.exportOnnx();
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const yo = (await s.run({ input: new ort.Tensor('float32', xb, [B, 1, 16, 16]) })).logits;
    expect(yo.dims).toEqual([B, 3]);
    expect(maxRel(yo.data as Float32Array, ref)).toBeLessThan(1e-4);
    const sq = await InferenceSession.create(bytes, { threads: 1 });
    const ys = (await sq.run({ input: new Tensor('float32', xb, [B, 1, 16, 16]) })).logits.data as Float32Array;
    expect(maxRel(ys, ref)).toBeLessThan(1e-4);
    const back = readOnnxModel(bytes, 'exported');
    expect(back.config).toEqual(TINY);
    expect(back.params.get('head.weight')).toEqual(g.params.get('head.weight')!.data);
    const g2 = new OnnxTrainGraph(swinOnnx(back.config, back.params), 'rewritten');
    expect(Array.from(g2.predict(xb, B))).toEqual(Array.from(ref));
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Command } from 'commander';
import { vi } from 'vitest';
import { encodeIdx } from '../src/io/idx.js';
import { register as registerInit } from '../src/cli/init.js';
import { register as registerTrain } from '../src/cli/train.js';

/** Central differences of loss() along a random direction of each named parameter vs the backward gradient. */
function directionalCheck(g: OnnxTrainGraph, names: string[], grads: Map<string, Float32Array>, loss: () => number, r: () => number, abs: number) {
  for (const name of names) {
    const p = g.params.get(name)!.data;
    const gp = grads.get(name)!;
    const v = randn(p.length, r);
    let gv = 0;
    for (let i = 0; i < p.length; i++) gv += gp[i] * v[i];
    const h = 2e-3 / Math.sqrt(p.length / 64 + 1);
    const p0 = Float32Array.from(p);
    for (let i = 0; i < p.length; i++) p[i] = p0[i] + h * v[i];
    const lp = loss();
    for (let i = 0; i < p.length; i++) p[i] = p0[i] - h * v[i];
    const lm = loss();
    p.set(p0);
    const num = (lp - lm) / (2 * h);
    expect(Math.abs(num - gv), `${name}: fd ${num} vs backward ${gv}`).toBeLessThan(0.03 * Math.abs(gv) + abs);
  }
}

describe('whole Swin graph vs finite differences', () => {
  it('directional derivative of the CE loss along random directions of every parameter kind', () => {
    const g = tiny(TINY, 11);
    const { x, labels } = synthetic(3, 12);
    const loss = () => native.trainLoss('ce', g.predict(x, 3), labels, 3, 0.1).loss as number;
    const st = g.forward(x, 3);
    const grads = g.backward(st, native.trainLoss('ce', st.values.get(st.tape.output)!, labels, 3, 0.1).grad);
    const r = rng(13);
    const names = ['patch_embed.proj.weight', 'patch_embed.norm.weight', 'layers.0.blocks.1.attn.relative_position_bias_table', 'layers.0.blocks.1.attn.qkv.weight',
      'layers.0.blocks.0.mlp.fc1.bias', 'layers.1.downsample.reduction.weight', 'layers.1.blocks.0.attn.proj.weight', 'head.weight'];
    directionalCheck(g, names, grads, loss, r, 2e-3);
  });
});

import { featureLoss } from '../src/distill/distill.js';

describe('feature-distillation loss vs finite differences', () => {
  it('β·mean MSE of the block outputs: gradient seeds through backward match the directional derivative', () => {
    const g = tiny(TINY, 21);
    const t = tiny(TINY, 22); // a different "teacher"
    const { x } = synthetic(2, 23);
    const names = [...g.blockOut.values()];
    expect(names.length).toBe(3); // depths [2, 1]
    const tv = t.forward(x, 2, false, names).values;
    const beta = 0.7;
    const loss = () => featureLoss(g.forward(x, 2, false, names).values, tv, names, beta).loss;
    const st = g.forward(x, 2, true, names);
    const fl = featureLoss(st.values, tv, names, beta);
    expect(fl.loss).toBeGreaterThan(0);
    const grads = g.backward(st, new Float32Array(2 * 3), fl.seeds);
    const r = rng(24);
    directionalCheck(g, ['patch_embed.proj.weight', 'layers.0.blocks.0.mlp.fc2.weight', 'layers.0.blocks.1.attn.qkv.weight', 'layers.1.blocks.0.norm1.weight'], grads, loss, r, 2e-4);
    expect(() => g.backward(st, new Float32Array(6), new Map([['nope', new Float32Array(1)]]))).toThrow(/seed 'nope' is not an op output/);
  });
});

describe('threads', () => {
  it('a training step on 2 threads gives bit-identical parameters to 1 thread (rows are split, never reduced across threads)', () => {
    const run = (threads: number) => {
      native.trainSetThreads(threads);
      const g = tiny(TINY, 8);
      const t = new Trainer(g, { lr: 1e-3, minLr: 0, weightDecay: 0.05, warmup: 1, totalSteps: 2, clip: 1, smoothing: 0, classes: 3 });
      const { x, labels } = synthetic(24, 4);
      t.trainStep(x, labels);
      t.trainStep(x, labels);
      return g.params.get('layers.0.blocks.1.attn.qkv.weight')!.data;
    };
    try {
      expect(Array.from(run(2))).toEqual(Array.from(run(1)));
    } finally {
      native.trainSetThreads(1);
    }
    expect(() => native.trainSetThreads(0)).toThrow(/threads must be 1..256/);
  });
});

describe('async (AsyncWorker) ops', () => {
  it('trainForwardAsync / trainBackwardAsync equal the sync ops bit for bit and leave the event loop free', async () => {
    const r = rng(41);
    // 33 M multiply-adds forward (≈ 0.1 ms on AVX-512, far longer on AVX2 or scalar): 256×64×96 took
    // 6 µs on a Zen 5, done before the event loop turned once
    const M = 512, K = 256, N = 256;
    const lin = { op: 'linear', K, N }, ins = [randn(M * K, r), randn(K * N, r), randn(N, r)], dy = randn(M * N, r);
    // event-loop turns while each op is in flight: setImmediate callbacks, counted when it settles
    let ticks = 0, on = true;
    const spin = () => { ticks++; if (on) setImmediate(spin); };
    setImmediate(spin);
    const fa = await native.trainForwardAsync(lin, ins);
    const afterForward = ticks;
    const ba = await native.trainBackwardAsync(lin, ins, [ins[0].length, ins[1].length, N], null, dy, null, [true, true, true]);
    const afterBackward = ticks - afterForward;
    on = false;
    expect(Array.from(fa.y)).toEqual(Array.from(native.trainForward(lin, ins).y));
    const bs = native.trainBackward(lin, ins, [ins[0].length, ins[1].length, N], null, dy, null, [true, true, true]);
    for (let j = 0; j < 3; j++) expect(Array.from(ba[j]!)).toEqual(Array.from(bs[j]!));
    expect(afterForward).toBeGreaterThan(0);
    expect(afterBackward).toBeGreaterThan(0);
    // bad sizes are refused before anything is queued
    expect(() => native.trainForwardAsync({ op: 'softmax', D: 4 }, [new Float32Array(6)])).toThrow(/softmax: x has 6 elements/);
  });
});

describe('scalar ISA', () => {
  it('the trainer runs on the scalar kernels and agrees with AVX2 to float rounding', () => {
    const g = tiny(TINY, 2);
    const { x } = synthetic(2, 3);
    const isa = native.activeIsa();
    native.setIsa('avx2');
    const a = g.predict(x, 2);
    native.setIsa('scalar');
    try {
      expect(native.activeIsa()).toBe('scalar');
      const b = g.predict(x, 2);
      expect(maxRel(b, a)).toBeLessThan(1e-4);
    } finally {
      native.setIsa(isa);
    }
  });
});

describe('swinq init / swinq train', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-train-'));
  async function run(register: (p: Command) => void, args: string[]): Promise<{ out: string; err: string }> {
    const program = new Command('swinq').exitOverride();
    register(program);
    let out = '', err = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
    try {
      await program.parseAsync(['node', 'swinq', ...args]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    return { out, err };
  }
  function writeData(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    for (const [prefix, n, seed] of [['train', 48, 21], ['t10k', 24, 22]] as const) {
      const { x, labels } = synthetic(n, seed);
      const px = Uint8Array.from(x, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
      fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte.gz`), zlib.gzipSync(encodeIdx({ shape: [n, 16, 16], data: px })));
      fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx({ shape: [n], data: Uint8Array.from(labels) }));
    }
  }

  it('init writes a Swin ONNX + sidecar; train learns it, writes ONNX and JSON; onnxruntime runs the result', async () => {
    const model = path.join(tmp, 'tiny.onnx');
    const data = path.join(tmp, 'data');
    writeData(data);
    const init = await run(registerInit, ['init', model, '--img', '16', '--patch', '2', '--embed', '16', '--depths', '2,1', '--heads', '2,2',
      '--window', '4', '--classes', '3', '--mean', '0.5', '--std', '0.3', '--json']);
    const ij = JSON.parse(init.out.trim().split('\n').pop()!);
    expect(ij.config).toEqual(TINY);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'tiny.json'), 'utf8')).std).toBe(0.3);
    const out = path.join(tmp, 'trained.onnx');
    const tr = await run(registerTrain, ['train', model, '--data', data, '--epochs', '4', '--batch', '12', '--warmup', '2', '--lr', '3e-3',
      '--out', out, '--fewbit', '2', '--threads', '1', '--json']);
    const tj = JSON.parse(tr.out.trim().split('\n').pop()!);
    expect(Object.keys(tj)).toEqual(expect.arrayContaining(['accuracy', 'loss', 'out', 'seconds', 'peak_activation_bytes', 'saved_activation_bytes']));
    expect(tj.peak_activation_bytes).toBeGreaterThan(tj.saved_activation_bytes);
    expect(tj.out).toBe(out);
    expect(tj.steps).toBe(16);
    expect(tj.accuracy).toBeGreaterThan(0.6);  // 3 easy classes; chance is 1/3
    expect(tr.err).toMatch(/epoch 4\/4/);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const s = await ort.InferenceSession.create(out);
    const { x } = synthetic(2, 5);
    const y = (await s.run({ input: new ort.Tensor('float32', x, [2, 1, 16, 16]) })).logits;
    expect(y.dims).toEqual([2, 3]);
  });

  it('distils a ReLU student from a GELU teacher (KL only, --kd-weight 1): the student learns the teacher\'s classes', async () => {
    const out = path.join(tmp, 'student.onnx');
    const tr = await run(registerTrain, ['train', path.join(tmp, 'tiny.onnx'), '--data', path.join(tmp, 'data'), '--epochs', '4', '--batch', '12',
      '--warmup', '2', '--lr', '3e-3', '--out', out, '--teacher', path.join(tmp, 'trained.onnx'), '--kd-weight', '1', '--act', 'relu', '--threads', '1', '--json']);
    const tj = JSON.parse(tr.out.trim().split('\n').pop()!);
    expect(tj.accuracy).toBeGreaterThan(0.6);
    expect(readOnnxModel(fs.readFileSync(out), out).config.act).toBe('relu');  // the GELU→ReLU student
  });

  it('trains an exported layout (torchvision ViT with nn.MultiheadAttention) with --mean/--std and --no-progress; OUT keeps the graph', async () => {
    const file = path.join(__dirname, 'fixtures', 'layouts', 'tv-vit.onnx');
    const d28 = path.join(tmp, 'data28');
    fs.mkdirSync(d28, { recursive: true });
    for (const [prefix, n] of [['train', 24], ['t10k', 8]] as const) {
      const img = new Uint8Array(n * 784), lab = new Uint8Array(n);
      for (let i = 0; i < n; i++) { lab[i] = i % 10; for (let p = 0; p < 784; p++) img[i * 784 + p] = Math.floor(p / 28 / 2.8) === i % 10 ? 200 : (p * 7 + i) % 50; }
      fs.writeFileSync(path.join(d28, `${prefix}-images-idx3-ubyte`), encodeIdx({ shape: [n, 28, 28], data: img }));
      fs.writeFileSync(path.join(d28, `${prefix}-labels-idx1-ubyte`), encodeIdx({ shape: [n], data: lab }));
    }
    const out = path.join(tmp, 'tv-vit-trained.onnx');
    const tr = await run(registerTrain, ['train', file, '--data', d28, '--epochs', '1', '--batch', '8', '--out', out, '--fewbit', '2', '--threads', '1',
      '--mean', '0.2', '--std', '0.4', '--no-progress', '--json']);
    const tj = JSON.parse(tr.out.trim().split('\n').pop()!);
    expect(tj.steps).toBe(3);
    expect(tr.err).toMatch(/normalization: mean=0\.2 std=0\.4 \(mean from flag --mean/);
    const a = loadModel(file), b = loadModel(out);
    expect(b.nodes.map((n) => n.opType)).toEqual(a.nodes.map((n) => n.opType));
    expect(b.metadata!['swinq.std']).toBe('0.4');
    const w = [...a.initializers.keys()].find((k) => k.includes('out_proj.weight'))!;
    expect(Buffer.from(b.initializers.get(w)!.data.buffer).equals(Buffer.from(a.initializers.get(w)!.data.buffer))).toBe(false);
    // --no-recompute: the same trained weights (recomputation is bit-identical), a higher peak
    const out2 = path.join(tmp, 'tv-vit-trained-keep.onnx');
    const tr2 = await run(registerTrain, ['train', file, '--data', d28, '--epochs', '1', '--batch', '8', '--out', out2, '--fewbit', '2', '--threads', '1',
      '--mean', '0.2', '--std', '0.4', '--no-progress', '--no-recompute', '--json']);
    const tj2 = JSON.parse(tr2.out.trim().split('\n').pop()!);
    expect(tj2.peak_activation_bytes).toBeGreaterThan(tj.peak_activation_bytes);
    expect(tj2.accuracy).toBe(tj.accuracy);
    const c = loadModel(out2);
    for (const [k, t] of b.initializers) expect(Buffer.from(c.initializers.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
  });

  it('bad input: one clear error naming the flag or file', async () => {
    await expect(run(registerInit, ['init', path.join(tmp, 'x.onnx'), '--img', '15'])).rejects.toThrow(/not divisible by patch 2/);
    await expect(run(registerTrain, ['train', path.join(tmp, 'none.onnx'), '--data', tmp, '--out', path.join(tmp, 'o.onnx')])).rejects.toThrow(/none.onnx: no such model/);
    await expect(run(registerTrain, ['train', path.join(tmp, 'tiny.onnx'), '--data', path.join(tmp, 'data'), '--out', path.join(tmp, 'o.onnx'), '--fewbit', '5'])).rejects.toThrow(/--fewbit must be 0..4/);
    await expect(run(registerTrain, ['train', path.join(tmp, 'tiny.onnx'), '--data', path.join(tmp, 'data'), '--out', path.join(tmp, 'o.onnx'), '--fewbit', '3', '--fewbit-table', 'regelu2'])).rejects.toThrow(/is a 2-bit table: use it with --fewbit 2/);
    await expect(run(registerTrain, ['train', path.join(tmp, 'tiny.onnx'), '--data', path.join(tmp, 'data'), '--out', path.join(tmp, 'o.onnx'), '--fewbit', '2', '--fewbit-table', 'relu9'])).rejects.toThrow(/--fewbit-table must be regelu2 or resilu2/);
  });
});

describe('training on the imported graph (test/fixtures/layouts: timm, DeiT, Hugging Face ViT/Swin, torchvision ViT, Pad-fronted torchvision Swin)', () => {
  const dir = path.join(__dirname, 'fixtures', 'layouts');
  const layouts = ['timm-vit', 'deit-vit', 'hf-vit', 'hf-swin', 'tv-vit', 'tv-swin-pad'];
  for (const name of layouts) {
    it(`${name}: forward = InferenceSession, every parameter's gradient = central differences, student export keeps the layout`, async () => {
      const file = path.join(dir, `${name}.onnx`);
      const bytes = fs.readFileSync(file);
      const g = new OnnxTrainGraph(bytes, file);
      expect(g.actList.length).toBeGreaterThanOrEqual(2);
      expect(g.classes).toBe(10);
      const B = 2, per = g.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: B * per }, (_, i) => Math.sin(i * 0.37));
      const y = g.predict(x, B);
      const session = await InferenceSession.create(bytes);
      const want = (await session.run({ [g.input]: new Tensor('float32', x, [B, ...g.inputShape]) }))[g.outputName].data as Float32Array;
      for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - want[i])).toBeLessThan(1e-5);
      // L = Σ y·w: directional derivative along a random direction of each parameter (float64 sums)
      const r = rng(3);
      const w = randn(y.length, r);
      const grads = g.backward(g.forward(x, B), w);
      const L = () => { const yy = g.predict(x, B); let s = 0; for (let i = 0; i < yy.length; i++) s += yy[i] * w[i]; return s; };
      let checked = 0;
      for (const [k, p] of g.params) {
        const d = randn(p.data.length, r);
        const gk = grads.get(k)!;
        let dot = 0;
        for (let i = 0; i < d.length; i++) dot += d[i] * gk[i];
        const orig = Float32Array.from(p.data), h = 1e-3;
        for (let i = 0; i < d.length; i++) p.data[i] = orig[i] + h * d[i];
        const lp = L();
        for (let i = 0; i < d.length; i++) p.data[i] = orig[i] - h * d[i];
        const lm = L();
        p.data.set(orig);
        const fd = (lp - lm) / (2 * h);
        expect(Math.abs(fd - dot), `${name} ${k}: fd ${fd} vs backward ${dot}`).toBeLessThanOrEqual(2e-2 * Math.max(1, Math.abs(fd)));
        checked++;
      }
      expect(checked).toBe(g.params.size);
      // the ReLU student: same input/output names, one Relu per swapped activation, no Erf/Tanh left
      for (const a of g.acts.values()) a.fn = 'relu';
      const ys = g.predict(x, B);
      const out = g.exportOnnx({ 'swinq.mean': '0' });
      const m = loadModel(out);
      expect(m.inputs.map((i) => i.name)).toEqual([g.input]);
      expect(m.outputs[0].name).toBe(g.outputName);
      expect(m.nodes.filter((n) => n.opType === 'Relu').length).toBe(g.actList.length);
      expect(m.nodes.some((n) => n.opType === 'Erf' || n.opType === 'Tanh')).toBe(false);
      const got = (await (await InferenceSession.create(out)).run({ [g.input]: new Tensor('float32', x, [B, ...g.inputShape]) }))[g.outputName].data as Float32Array;
      for (let i = 0; i < ys.length; i++) expect(Math.abs(got[i] - ys[i])).toBeLessThan(1e-5);
      expect(ys.some((v, i) => Math.abs(v - y[i]) > 1e-4)).toBe(true);
    });
  }

  it('few-bit backward lowers the peak: the fp32 GELU input is released after its last forward reader (Pad-fronted Swin, batch 8)', () => {
    const file = path.join(dir, 'tv-swin-pad.onnx');
    const g = new OnnxTrainGraph(fs.readFileSync(file), file);
    const B = 8, per = g.inputShape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: B * per }, (_, i) => Math.cos(i * 0.11));
    const stats = (bits: number) => {
      g.setFewbit(bits);
      const st = g.forward(x, B);
      const y = st.values.get(st.tape.output)!;
      const grads = g.backward(st, new Float32Array(y.length).fill(0.1));
      return { peak: st.peakBytes, saved: st.savedBytes, grads };
    };
    // the options below are measured without recomputation (which drops the same tensors exactly)
    g.recompute = false;
    const exact = stats(0), two = stats(2);
    // what 2-bit codes save: per GELU, its fp32 input (4 B/element) minus the codes (0.25 B/element)
    const hidden = g.actList.reduce((a, act) => a + act.hidden, 0);
    expect(exact.saved - two.saved).toBeGreaterThan(0);
    expect(two.peak).toBeLessThan(exact.peak);
    expect(hidden).toBeGreaterThan(0);
    // the gradients differ only by the few-bit approximation of GELU′
    const k = [...exact.grads.keys()][0];
    let num = 0, den = 0;
    for (let i = 0; i < exact.grads.get(k)!.length; i++) { const d = exact.grads.get(k)![i] - two.grads.get(k)![i]; num += d * d; den += exact.grads.get(k)![i] ** 2; }
    expect(Math.sqrt(num / den)).toBeLessThan(0.3);
    // memory-sharing LayerNorm: the same gradients (to float rounding) from less saved memory
    g.shareLayerNorm = true;
    const shared = stats(2);
    g.shareLayerNorm = false;
    expect(shared.saved).toBeLessThan(two.saved);
    expect(shared.peak).toBeLessThan(two.peak);
    for (const [name, ref] of two.grads) {
      const got = shared.grads.get(name)!;
      let e = 0, n2 = 0;
      for (let i = 0; i < ref.length; i++) { e += (got[i] - ref[i]) ** 2; n2 += ref[i] ** 2; }
      expect(Math.sqrt(e / Math.max(n2, 1e-30)), name).toBeLessThan(1e-4);
    }
    // attention probabilities in 8 bits: less memory, gradients within a few per cent (|Δp| ≤ 1/510)
    g.attentionProbs8bit = true;
    const p8 = stats(2);
    g.attentionProbs8bit = false;
    expect(p8.saved).toBeLessThan(two.saved);
    // recomputation (the default) keeps less than either option
    g.recompute = true;
    const rec = stats(2);
    expect(rec.saved).toBeLessThan(Math.min(p8.saved, shared.saved));
    let e8 = 0, n8 = 0;
    for (const [name, ref] of two.grads) {
      const got = p8.grads.get(name)!;
      for (let i = 0; i < ref.length; i++) { e8 += (got[i] - ref[i]) ** 2; n8 += ref[i] ** 2; }
    }
    expect(Math.sqrt(e8 / n8)).toBeGreaterThan(0);
    expect(Math.sqrt(e8 / n8)).toBeLessThan(0.05);
    g.setFewbit(0);
  });

  it('recomputed attention probabilities and in-place/two-phase backward: bit-identical gradients, less saved and peak memory (shifted-window Swin, batch 8)', () => {
    const file = path.join(dir, 'tv-swin-pad.onnx');
    const g = new OnnxTrainGraph(fs.readFileSync(file), file);
    const B = 8, per = g.inputShape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: B * per }, (_, i) => Math.sin(i * 0.23));
    for (const bits of [0, 2]) {
      g.setFewbit(bits);
      const run = (recompute: boolean) => {
        g.recompute = recompute;
        const st = g.forward(x, B);
        const y = st.values.get(st.tape.output)!;
        const grads = g.backward(st, Float32Array.from(y, (_, i) => Math.cos(i)));
        return { st, grads };
      };
      const kept = run(false), rec = run(true);
      // every attention probability and every LayerNorm output a linear reads is rebuilt in backward
      const redo = new Set([...rec.st.recompute.values()].flat().map((e) => e.key));
      const nodes = rec.st.tape.nodes;
      const softmaxes = nodes.filter((n) => n.kind === 'native' && n.desc!.op === 'softmax');
      const linIn = new Set(nodes.filter((n) => n.kind === 'native' && n.desc!.op === 'linear').map((n) => n.inputs[0]));
      const lnToLinear = nodes.filter((n) => n.kind === 'native' && n.desc!.op === 'layernorm' && linIn.has(n.output));
      expect(softmaxes.length).toBeGreaterThan(0);
      expect(lnToLinear.length).toBeGreaterThan(0);
      for (const n of [...softmaxes, ...lnToLinear]) expect(redo.has(n.output), n.output).toBe(true);
      expect(rec.st.savedBytes).toBeLessThan(kept.st.savedBytes);
      expect(rec.st.peakBytes).toBeLessThan(kept.st.peakBytes);
      for (const [name, ref] of kept.grads) expect(rec.grads.get(name), name).toEqual(ref);
      // everything is released by the end of backward (the logits stay)
      expect(rec.st.live).toBe(rec.st.values.get(rec.st.tape.output)!.byteLength);
    }
    g.recompute = true;
    g.setFewbit(0);
  });

  it('parameters are the initializers (shift masks are not), trained values written back by name', () => {
    const file = path.join(dir, 'tv-swin-pad.onnx');
    const g = new OnnxTrainGraph(fs.readFileSync(file), file);
    const names = [...g.params.keys()];
    // the exporter folded the relative-position bias (table gathered) into one [1, heads, N, N] initializer
    expect(names.some((n) => { const d = g.params.get(n)!.shape; return d.length === 4 && d[1] === 2 && d[2] === 16 && d[3] === 16; })).toBe(true);
    expect(names.some((n) => /norm.*weight/.test(n))).toBe(true);
    for (const [n, c] of loadModel(file).initializers) {
      if (c.dtype === 'float32' && c.data.length > 1 && c.data.every((v) => v === 0 || v <= -100) && c.data.some((v) => v <= -100)) expect(g.params.has(n), n).toBe(false);
    }
    const p = g.params.get(names[0])!;
    p.data[0] += 0.5;
    const back = loadModel(g.exportOnnx()).initializers.get(names[0])!;
    expect(back.data[0]).toBeCloseTo(p.data[0], 6);
  });
});
