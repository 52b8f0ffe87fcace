// The fp32 plan executor through the binding: hand-built small plans for every op, checked against
// JS-computed expectations, on both kernel sets; invalid plans must be refused with clear errors.
import { afterAll, describe, expect, it } from 'vitest';
import { native, type PlanDescJS, type NativePlan } from '../src/native.js';
import { OpKind, DType, Storage } from '../src/plan/ops.js';
import { mulberry32 as rng } from '../src/util/random.js';

// ---------- a tiny plan builder ----------
type Arr = Float32Array | Int32Array | Int8Array | Uint8Array | BigInt64Array | Int16Array;
const ESIZE: Record<number, number> = { 0: 4, 1: 4, 2: 1, 3: 1, 4: 2, 5: 8 };

class Builder {
  tensors: PlanDescJS['tensors'] = [];
  ops: PlanDescJS['ops'] = [];
  chunks: { off: number; bytes: Uint8Array }[] = [];
  constBytes = 0;
  arenaBytes = 0;
  inputs: number[] = [];
  outputs: number[] = [];
  private add(dtype: number, dims: number[], storage: number, offset: number): number {
    this.tensors.push({ dtype, dims, storage, offset });
    return this.tensors.length - 1;
  }
  input(dims: number[], dtype = DType.f32): number {
    const id = this.add(dtype, dims, Storage.input, this.inputs.length);
    this.inputs.push(id);
    return id;
  }
  output(dims: number[], dtype = DType.f32): number {
    const id = this.add(dtype, dims, Storage.output, this.outputs.length);
    this.outputs.push(id);
    return id;
  }
  constant(data: Arr, dims: number[], dtype = DType.f32): number {
    const off = Math.ceil(this.constBytes / 64) * 64;
    this.chunks.push({ off, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    this.constBytes = off + data.byteLength;
    return this.add(dtype, dims, Storage.constant, off);
  }
  arena(dims: number[], dtype = DType.f32, offset?: number): number {
    const bytes = dims.reduce((a, b) => a * b, 1) * ESIZE[dtype];
    const off = offset ?? Math.ceil(this.arenaBytes / 64) * 64;
    this.arenaBytes = Math.max(this.arenaBytes, off + bytes);
    return this.add(dtype, dims, Storage.arena, off);
  }
  op(kind: number, inputs: number[], outputs: number[], ints: number[] = [], floats: number[] = [], name = ''): this {
    this.ops.push({ kind, inputs, outputs, ints, floats, name });
    return this;
  }
  build(): PlanDescJS {
    const constants = new Uint8Array(this.constBytes);
    for (const c of this.chunks) constants.set(c.bytes, c.off);
    return { tensors: this.tensors, ops: this.ops, constants, arenaBytes: this.arenaBytes, inputs: this.inputs, outputs: this.outputs };
  }
  plan(threads = 2): NativePlan {
    return native.createPlan!(this.build(), { threads });
  }
}

// ---------- helpers ----------
function randf(n: number, seed: number, lo = -2, hi = 2): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = lo + (hi - lo) * r();
  return a;
}
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5, atol = 1e-5, what = '') {
  expect(got.length).toBe(want.length);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < want.length; ++i) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue;
    const err = Math.abs(g - w) - (atol + rtol * Math.abs(w));
    if (!(err <= 0) && (worst < 0 || !(err <= worstErr))) { worst = i; worstErr = err; }
  }
  if (worst >= 0) throw new Error(`${what} element ${worst}: got ${got[worst]}, want ${want[worst]}`);
}
// erfc with < 1.2e-7 relative error (Numerical Recipes' Chebyshev fit), enough for fp32 checks.
function erf(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}
const geluErf = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
function act(kind: number, v: number): number {
  return kind === 1 ? Math.max(v, 0) : kind === 2 ? geluErf(v) : kind === 3 ? geluTanh(v) : v;
}

const ISAS: ('scalar' | 'auto')[] = native.cpuFeatures().avx2 ? ['scalar', 'auto'] : ['scalar'];
const before = native.activeIsa();
afterAll(() => native.setIsa(before));

describe.each(ISAS)('plan ops (isa %s)', (isa) => {
  const use = () => native.setIsa(isa);

  it('copy and index_map (transpose, pad, blocks, int8, several items)', () => {
    use();
    // transpose [5,7] -> [7,5] of f32, plus a copy to a second output
    const b = new Builder();
    const x = b.input([5, 7]);
    const idx = new Int32Array(35);
    for (let i = 0; i < 7; ++i) for (let j = 0; j < 5; ++j) idx[i * 5 + j] = j * 7 + i;
    const it = b.constant(idx, [35], DType.i32);
    const y = b.output([7, 5]);
    const z = b.output([5, 7]);
    b.op(OpKind.index_map, [x, it], [y], [1, 1, 35, 35]).op(OpKind.copy, [x], [z]);
    const xs = randf(35, 1);
    const ys = new Float32Array(35), zs = new Float32Array(35);
    b.plan().run([xs], [ys, zs]);
    for (let i = 0; i < 7; ++i) for (let j = 0; j < 5; ++j) expect(ys[i * 5 + j]).toBe(xs[j * 7 + i]);
    expect(Array.from(zs)).toEqual(Array.from(xs));

    // int8, blocks of 3, 2 items, padding rows (-1) and a reordering
    const b2 = new Builder();
    const x2 = b2.input([2, 9], DType.i8);
    const i2 = b2.constant(new Int32Array([6, -1, 0, 3]), [4], DType.i32);
    const y2 = b2.output([2, 12], DType.i8);
    b2.op(OpKind.index_map, [x2, i2], [y2], [3, 2, 9, 12]);
    const xv = Int8Array.from({ length: 18 }, (_, i) => i - 9);
    const yv = new Int8Array(24).fill(99);
    b2.plan().run([xv], [yv]);
    const want: number[] = [];
    for (let t = 0; t < 2; ++t) for (const r of [6, -1, 0, 3]) for (let j = 0; j < 3; ++j) want.push(r < 0 ? 0 : xv[t * 9 + r + j]);
    expect(Array.from(yv)).toEqual(want);
  });

  it.each([
    [1, 1, 1], [7, 13, 37], [50, 96, 70], [6, 16, 16], [13, 300, 17],
  ])('linear M=%i K=%i N=%i with bias, every act, residual', (M, K, N) => {
    use();
    const xs = randf(M * K, M * 1000 + K), w = randf(K * N, 7 + N), bias = randf(N, 3), res = randf(M * N, 4);
    for (const a of [0, 1, 2, 3]) {
      const b = new Builder();
      const x = b.input([M, K]);
      const r = b.input([M, N]);
      const wt = b.constant(w, [K, N]);
      const bt = b.constant(bias, [N]);
      const y = b.output([M, N]);
      b.op(OpKind.linear, [x, wt, bt, r], [y], [M, K, N, a], [], 'MatMul_1');
      const ys = new Float32Array(M * N);
      b.plan().run([xs, res], [ys]);
      const want = new Float64Array(M * N);
      for (let i = 0; i < M; ++i) for (let n = 0; n < N; ++n) {
        let s = bias[n];
        for (let k = 0; k < K; ++k) s += xs[i * K + k] * w[k * N + n];
        want[i * N + n] = act(a, s) + res[i * N + n];
      }
      expectClose(ys, want, 1e-4, 2e-5 * Math.sqrt(K) * 4, `act ${a}`);
    }
  });

  it('linear without bias, residual aliasing the output exactly (arena)', () => {
    use();
    const M = 9, K = 20, N = 33;
    const xs = randf(M * K, 11), w = randf(K * N, 12), res = randf(M * N, 13);
    const b = new Builder();
    const x = b.input([M, K]);
    const r = b.input([M, N]);
    const wt = b.constant(w, [K, N]);
    const acc = b.arena([M, N]);
    const y = b.output([M, N]);
    b.op(OpKind.copy, [r], [acc]).op(OpKind.linear, [x, wt, -1, acc], [acc], [M, K, N, 1]).op(OpKind.copy, [acc], [y]);
    const ys = new Float32Array(M * N);
    b.plan().run([xs, res], [ys]);
    const want: number[] = [];
    for (let i = 0; i < M; ++i) for (let n = 0; n < N; ++n) {
      let s = 0;
      for (let k = 0; k < K; ++k) s += xs[i * K + k] * w[k * N + n];
      want.push(Math.max(s, 0) + res[i * N + n]);
    }
    expectClose(ys, want, 1e-4, 1e-4);
  });

  it.each([
    [3, 5, 7, 9, 0, 1], [4, 49, 32, 49, 1, 1], [6, 2, 3, 4, 0, 0], [5, 7, 1, 3, 1, 2],
  ])('matmul batch=%i M=%i K=%i N=%i trans_b=%i (broadcast mode %i)', (batch, M, K, N, tb, mode) => {
    use();
    // mode 0: b broadcast; 1: both strided; 2: a broadcast
    const aStride = mode === 2 ? 0 : M * K, bStride = mode === 0 ? 0 : K * N;
    const an = mode === 2 ? M * K : batch * M * K, bn = mode === 0 ? K * N : batch * K * N;
    const A = randf(an, batch + M), B = randf(bn, K + N), alpha = 0.37;
    const b = new Builder();
    const a = b.input([an]);
    const bb = b.input([bn]);
    const y = b.output([batch, M, N]);
    b.op(OpKind.matmul, [a, bb], [y], [batch, M, K, N, tb, aStride, bStride], [alpha]);
    const ys = new Float32Array(batch * M * N);
    b.plan().run([A, B], [ys]);
    const want: number[] = [];
    for (let t = 0; t < batch; ++t) for (let i = 0; i < M; ++i) for (let n = 0; n < N; ++n) {
      let s = 0;
      for (let k = 0; k < K; ++k) {
        const bv = tb ? B[t * bStride + n * K + k] : B[t * bStride + k * N + n];
        s += A[t * aStride + i * K + k] * bv;
      }
      want.push(alpha * s);
    }
    expectClose(ys, want, 1e-4, 1e-4);
  });

  it.each([[1, 1], [3, 96], [5, 37], [2, 8]])('layernorm rows=%i D=%i (gamma/beta, and in place)', (rows, D) => {
    use();
    const xs = randf(rows * D, D, -3, 5), g = randf(D, 2), be = randf(D, 3), eps = 1e-5;
    for (const inPlace of [false, true]) {
      const b = new Builder();
      const x = b.input([rows, D]);
      const gt = b.constant(g, [D]);
      const bt = b.constant(be, [D]);
      const y = b.output([rows, D]);
      if (inPlace) {
        const t = b.arena([rows, D]);
        b.op(OpKind.copy, [x], [t]).op(OpKind.layernorm, [t, gt, bt], [t], [rows, D], [eps]).op(OpKind.copy, [t], [y]);
      } else {
        b.op(OpKind.layernorm, [x, gt, bt], [y], [rows, D], [eps]);
      }
      const ys = new Float32Array(rows * D);
      b.plan().run([xs], [ys]);
      const want: number[] = [];
      for (let r = 0; r < rows; ++r) {
        const row = Array.from(xs.subarray(r * D, r * D + D));
        const mean = row.reduce((s, v) => s + v, 0) / D;
        const v = row.reduce((s, q) => s + (q - mean) ** 2, 0) / D;
        for (let j = 0; j < D; ++j) want.push(((row[j] - mean) / Math.sqrt(v + eps)) * g[j] + be[j]);
      }
      expectClose(ys, want, 1e-4, 1e-4);
    }
  });

  it.each([[1, 1, 0], [6, 49, 3], [4, 10, 0], [7, 67, 7]])('softmax rows=%i D=%i bias_rows=%i (in place too)', (rows, D, br) => {
    use();
    const xs = randf(rows * D, rows + D, -8, 8), bias = randf(Math.max(br, 1) * D, 5, -3, 3);
    for (const inPlace of [false, true]) {
      const b = new Builder();
      const x = b.input([rows, D]);
      const bt = br ? b.constant(bias.subarray(0, br * D), [br, D]) : -1;
      const y = b.output([rows, D]);
      if (inPlace) {
        const t = b.arena([rows, D]);
        b.op(OpKind.copy, [x], [t]).op(OpKind.softmax, br ? [t, bt] : [t], [t], [rows, D, br]).op(OpKind.copy, [t], [y]);
      } else {
        b.op(OpKind.softmax, br ? [x, bt] : [x], [y], [rows, D, br]);
      }
      const ys = new Float32Array(rows * D);
      b.plan().run([xs], [ys]);
      const want: number[] = [];
      for (let r = 0; r < rows; ++r) {
        const v = Array.from({ length: D }, (_, j) => xs[r * D + j] + (br ? bias[(r % br) * D + j] : 0));
        const m = Math.max(...v);
        const e = v.map((q) => Math.exp(q - m));
        const s = e.reduce((a, q) => a + q, 0);
        want.push(...e.map((q) => q / s));
      }
      expectClose(ys, want, 1e-5, 1e-6);
    }
  });

  it('binary: every op on same shape, scalar and row broadcast, general strides, in place', () => {
    use();
    const fns = [(a: number, b: number) => a + b, (a: number, b: number) => a - b, (a: number, b: number) => a * b,
      (a: number, b: number) => a / b, (a: number, b: number) => a ** b, Math.max, Math.min];
    // shapes: [dims, aStrides, bStrides, aLen, bLen]
    const cases: [number[], number[], number[], number, number][] = [
      [[37], [1], [1], 37, 37],            // same shape
      [[5, 19], [19, 1], [0, 0], 95, 1],   // scalar b
      [[7, 9], [9, 1], [0, 1], 63, 9],     // row broadcast
      [[4, 1, 6], [6, 6, 1], [1, 0, 0], 24, 4], // column broadcast (b per row)
      [[2, 3, 5], [1, 2, 6], [15, 5, 1], 30, 30], // a transposed view
      [[3, 1, 1, 2, 3, 1, 2, 2], [24, 0, 0, 12, 4, 0, 2, 1], [0, 0, 0, 0, 1, 0, 0, 3], 72, 6], // rank 8
      [[3, 4], [0, 1], [1, 0], 4, 3],       // outer product via strides
    ];
    for (let op = 0; op < 7; ++op) {
      for (const [dims, as, bs, an, bn] of cases) {
        const A = randf(an, op + an, op === 4 ? 0.1 : -3, 3), B = randf(bn, op * 7 + bn, op === 4 ? -2 : -3, 3);
        const b = new Builder();
        const a = b.input([an]);
        const bb = b.input([bn]);
        const n = dims.reduce((p, q) => p * q, 1);
        const y = b.output(dims);
        b.op(OpKind.binary, [a, bb], [y], [op, dims.length, ...dims, ...as, ...bs]);
        const ys = new Float32Array(n);
        b.plan().run([A, B], [ys]);
        const want: number[] = [];
        const c = new Array(dims.length).fill(0);
        for (let i = 0; i < n; ++i) {
          let ai = 0, bi = 0;
          for (let k = 0; k < dims.length; ++k) { ai += c[k] * as[k]; bi += c[k] * bs[k]; }
          want.push(fns[op](A[ai], B[bi]));
          for (let k = dims.length - 1; k >= 0; --k) { if (++c[k] < dims[k]) break; c[k] = 0; }
        }
        expectClose(ys, want, 2e-6, 1e-6, `op ${op} dims ${dims}`);
      }
    }
    // in place: a (arena) += row-broadcast b
    const b = new Builder();
    const x = b.input([3, 5]);
    const bb = b.input([5]);
    const t = b.arena([3, 5]);
    const y = b.output([3, 5]);
    b.op(OpKind.copy, [x], [t]).op(OpKind.binary, [t, bb], [t], [0, 2, 3, 5, 5, 1, 0, 1]).op(OpKind.copy, [t], [y]);
    const A = randf(15, 1), B = randf(5, 2), ys = new Float32Array(15);
    b.plan().run([A, B], [ys]);
    expectClose(ys, Array.from(A, (v, i) => v + B[i % 5]), 1e-6, 1e-6);
  });

  it('unary: all 24 ops, including in place', () => {
    use();
    const p0 = 0.3, p1 = 1.7;
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const fns: ((x: number) => number)[] = [
      (x) => Math.max(x, 0), geluErf, geluTanh, erf, sig, Math.tanh, Math.exp, Math.log, Math.sqrt, (x) => -x, Math.abs,
      (x) => 1 / x, (x) => x * sig(x), (x) => Math.min(Math.max(x, p0), p1), (x) => (x < 0 ? p0 * x : x),
      (x) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6, (x) => Math.min(Math.max(p0 * x + p1, 0), 1), softplus,
      (x) => x * Math.tanh(softplus(x)), (x) => (x < 0 ? p0 * (Math.exp(x) - 1) : x), Math.floor, Math.ceil, roundHalfEven,
      (x) => p0 * x + p1,
    ];
    expect(fns.length).toBe(24);
    const n = 203;
    const xs = randf(n, 42, -6, 6);
    xs.set([0, -0.5, 0.5, 1.5, 2.5, -2.5, 3.49, -4, 4, 25, -25], 0);
    for (let op = 0; op < 24; ++op) {
      const src = op === 7 || op === 8 ? xs.map(Math.abs) : xs; // log/sqrt on positives
      for (const inPlace of [false, true]) {
        const b = new Builder();
        const x = b.input([n]);
        const y = b.output([n]);
        if (inPlace) {
          const t = b.arena([n]);
          b.op(OpKind.copy, [x], [t]).op(OpKind.unary, [t], [t], [op], [p0, p1]).op(OpKind.copy, [t], [y]);
        } else {
          b.op(OpKind.unary, [x], [y], [op], [p0, p1]);
        }
        const ys = new Float32Array(n);
        b.plan().run([src], [ys]);
        expectClose(ys, Array.from(src, fns[op]), 2e-6, 2e-6, `unary op ${op}`);
      }
    }
  });

  it('reduce (mean, sum, max, min), argmax, cast', () => {
    use();
    const outer = 3, red = 7, inner = 5;
    const xs = randf(outer * red * inner, 9);
    for (let op = 0; op < 4; ++op) {
      const b = new Builder();
      const x = b.input([outer, red, inner]);
      const y = b.output([outer, inner]);
      b.op(OpKind.reduce, [x], [y], [outer, red, inner, op]);
      const ys = new Float32Array(outer * inner);
      b.plan().run([xs], [ys]);
      const want: number[] = [];
      for (let o = 0; o < outer; ++o) for (let i = 0; i < inner; ++i) {
        const v = Array.from({ length: red }, (_, r) => xs[o * red * inner + r * inner + i]);
        const s = v.reduce((a, q) => a + q, 0);
        want.push([s / red, s, Math.max(...v), Math.min(...v)][op]);
      }
      expectClose(ys, want, 1e-5, 1e-5, `reduce ${op}`);
    }
    // argmax: first index of the maximum
    const b = new Builder();
    const x = b.input([3, 4]);
    const y = b.output([3], DType.i64);
    b.op(OpKind.argmax, [x], [y], [3, 4]);
    const ys = new BigInt64Array(3);
    b.plan().run([new Float32Array([1, 5, 5, 2, -1, -3, -1, -2, 0, 0, 0, 7])], [ys]);
    expect(Array.from(ys)).toEqual([1n, 0n, 3n]);
    // cast: float -> int truncates toward zero; int -> float; i32 -> i8 wraps
    const c = new Builder();
    const cx = c.input([6]);
    const cy = c.output([6], DType.i32);
    const cz = c.output([6], DType.i64);
    const ci = c.input([3], DType.i32);
    const cf = c.output([3]);
    const c8 = c.output([3], DType.i8);
    c.op(OpKind.cast, [cx], [cy]).op(OpKind.cast, [cx], [cz]).op(OpKind.cast, [ci], [cf]).op(OpKind.cast, [ci], [c8]);
    const y32 = new Int32Array(6), y64 = new BigInt64Array(6), yf = new Float32Array(3), y8 = new Int8Array(3);
    c.plan().run([new Float32Array([1.9, -1.9, 0.5, -0.5, 1e3, -7]), new Int32Array([3, -200, 300])], [y32, y64, yf, y8]);
    expect(Array.from(y32)).toEqual([1, -1, 0, 0, 1000, -7]);
    expect(Array.from(y64)).toEqual([1n, -1n, 0n, 0n, 1000n, -7n]);
    expect(Array.from(yf)).toEqual([3, -200, 300]);
    expect(Array.from(y8)).toEqual([3, 56, 44]);
  });

  it('a chain of ops through the arena matches step-by-step JS (layernorm → linear+gelu → add)', () => {
    use();
    const M = 11, D = 24, H = 40;
    const xs = randf(M * D, 77), w1 = randf(D * H, 78, -0.5, 0.5), b1 = randf(H, 79), w2 = randf(H * D, 80, -0.5, 0.5);
    const b = new Builder();
    const x = b.input([M, D]);
    const n1 = b.arena([M, D]);
    const h = b.arena([M, H]);
    const y = b.output([M, D]);
    b.op(OpKind.layernorm, [x], [n1], [M, D], [1e-5])
      .op(OpKind.linear, [n1, b.constant(w1, [D, H]), b.constant(b1, [H])], [h], [M, D, H, 2])
      .op(OpKind.linear, [h, b.constant(w2, [H, D]), -1, x], [y], [M, H, D, 0]);
    const ys = new Float32Array(M * D);
    b.plan(2).run([xs], [ys]);
    const want: number[] = [];
    for (let i = 0; i < M; ++i) {
      const row = Array.from(xs.subarray(i * D, i * D + D));
      const mean = row.reduce((s, v) => s + v, 0) / D;
      const v = row.reduce((s, q) => s + (q - mean) ** 2, 0) / D;
      const nrm = row.map((q) => (q - mean) / Math.sqrt(v + 1e-5));
      const hid = Array.from({ length: H }, (_, j) => geluErf(nrm.reduce((s, q, k) => s + q * w1[k * H + j], b1[j])));
      for (let j = 0; j < D; ++j) want.push(hid.reduce((s, q, k) => s + q * w2[k * D + j], 0) + row[j]);
    }
    expectClose(ys, want, 1e-4, 1e-4);
  });
});

describe('plan validation and the binding', () => {
  const linear = () => {
    const b = new Builder();
    const x = b.input([4, 6]);
    const w = b.constant(new Float32Array(60), [6, 10]);
    const y = b.output([4, 10]);
    b.op(OpKind.linear, [x, w], [y], [4, 6, 10, 0], [], 'MatMul_123');
    return b;
  };

  it('names op, node and field for inconsistent sizes', () => {
    const b = linear();
    b.tensors[1].dims = [5, 10];
    expect(() => b.plan()).toThrow("plan op #0 linear (node 'MatMul_123'): w has 50 elements, expected K·N = 60");
    const c = linear();
    c.ops[0].ints = [4, 6, 10];
    expect(() => c.plan()).toThrow(/ints has 3 values, expected 4/);
    const d = linear();
    d.tensors[0].dims = [2 ** 40, 2 ** 40];
    expect(() => d.plan()).toThrow(/tensor #0: element count overflows/);
    const e = linear();
    e.tensors[1].offset = 4096;
    expect(() => e.plan()).toThrow(/tensor #1: constant bytes .* exceed the constant region/);
    const f = linear();
    f.ops[0].inputs = [0, 1, 99];
    expect(() => f.plan()).toThrow(/input bias = 99 is not a tensor id/);
  });

  it('refuses index maps reading outside the item and partial overlaps', () => {
    const b = new Builder();
    const x = b.input([4]);
    const i = b.constant(new Int32Array([0, 3]), [2], DType.i32);
    const y = b.output([4]);
    b.op(OpKind.index_map, [x, i], [y], [2, 1, 4, 4], [], 'Slice_7');
    expect(() => b.plan()).toThrow(/index_map \(node 'Slice_7'\): idx\[1\] = 3 reads past the x item/);
    const c = new Builder();
    const a = c.arena([8]);
    const o = c.arena([8], DType.f32, 8);
    c.op(OpKind.unary, [a], [o], [0]);
    expect(() => c.plan()).toThrow(/partially overlaps x/);
  });

  it('gives TypeErrors naming the JS field', () => {
    const b = linear().build();
    b.tensors[3] = { dtype: 0, dims: [1, -1], storage: 0, offset: 0 };
    expect(() => native.createPlan!(b, { threads: 1 })).toThrow('createPlan: tensors[3].dims[1] must be a non-negative integer');
    const c = linear().build();
    (c.ops[0] as { ints: unknown }).ints = [4, 6, 'x', 0];
    expect(() => native.createPlan!(c, { threads: 1 })).toThrow(/ops\[0\]\.ints\[2\] must be an integer/);
    const d = linear().build() as Partial<PlanDescJS>;
    delete d.arenaBytes;
    expect(() => native.createPlan!(d as PlanDescJS, { threads: 1 })).toThrow(/arenaBytes is missing/);
    expect(() => native.createPlan!(linear().build(), { threads: 1.5 })).toThrow(/options.threads/);
  });

  it('checks run sizes, views and release', async () => {
    const p = linear().plan(1);
    expect(() => p.run([new Float32Array(23)], [new Float32Array(40)])).toThrow(/run: input 0 has 92 bytes, expected 96/);
    expect(() => p.run([new Float32Array(24)], [new Float32Array(41)])).toThrow(/run: output 0 has 164 bytes, expected 160/);
    expect(() => p.run([new Float32Array(24)], [])).toThrow(/got 0 outputs/);
    expect(() => p.run([[1, 2] as never], [new Float32Array(40)])).toThrow(/inputs\[0\] must be an ArrayBufferView/);
    await expect(p.runAsync([new Float32Array(2)], [new Float32Array(40)])).rejects.toThrow(/input 0 has 8 bytes/);
    const shared = new Float32Array(64);
    expect(() => p.run([shared.subarray(0, 24)], [shared.subarray(20, 60)])).toThrow(/output 0 overlaps input 0/);
    p.setThreads(2);
    expect(() => p.setThreads(-1)).toThrow(/setThreads/);
    p.release();
    expect(() => p.run([new Float32Array(24)], [new Float32Array(40)])).toThrow(/released/);
  });

  it('gives bit-identical results for 1, 2 and 3 threads (each output element has one owner)', () => {
    const M = 97, K = 64, N = 200;
    const b = new Builder();
    const x = b.input([M, K]);
    const h = b.arena([M, N]);
    const y = b.output([M, N]);
    b.op(OpKind.linear, [x, b.constant(randf(K * N, 31), [K, N]), b.constant(randf(N, 32), [N])], [h], [M, K, N, 2])
      .op(OpKind.softmax, [h], [h], [M, N, 0])
      .op(OpKind.layernorm, [h], [y], [M, N], [1e-5]);
    const xs = randf(M * K, 33);
    const outs = [1, 2, 3].map((t) => {
      const p = b.plan(t);
      const ys = new Float32Array(M * N);
      p.run([xs], [ys]);
      p.setThreads(t === 1 ? 2 : 1);  // and again after resizing the pool
      const again = new Float32Array(M * N);
      p.run([xs], [again]);
      expect(Array.from(again)).toEqual(Array.from(ys));
      return ys;
    });
    expect(Array.from(outs[1])).toEqual(Array.from(outs[0]));
    expect(Array.from(outs[2])).toEqual(Array.from(outs[0]));
    expect(outs[0].some((v) => v !== 0)).toBe(true);
  });

  it('release() during a runAsync lets the run finish; later calls fail cleanly', async () => {
    const b = new Builder();
    const x = b.input([64, 32]);
    const y = b.output([64, 48]);
    const w = randf(32 * 48, 8);
    b.op(OpKind.linear, [x, b.constant(w, [32, 48])], [y], [64, 32, 48, 1]);
    const p = b.plan(2);
    const xs = randf(64 * 32, 9), ys = new Float32Array(64 * 48);
    const pending = p.runAsync([xs], [ys]);
    p.release();
    await pending;
    let s = 0;
    for (let k = 0; k < 32; ++k) s += xs[k] * w[k * 48];
    expect(ys[0]).toBeCloseTo(Math.max(s, 0), 4);
    await expect(async () => p.runAsync([xs], [ys])).rejects.toThrow(/released/);
  });

  it('profiles per op when asked', () => {
    const b = linear();
    const p = native.createPlan!(b.build(), { threads: 1, profile: true });
    expect(p.profile()).toEqual([]);
    p.run([new Float32Array(24)], [new Float32Array(40)]);
    const prof = p.profile();
    expect(prof.length).toBe(1);
    expect(prof[0].op).toBe('linear');
    expect(prof[0].name).toBe('MatMul_123');
    expect(prof[0].ms).toBeGreaterThanOrEqual(0);
  });

  it('runAsync keeps the event loop free during a long run', async () => {
    // ~1.3 GFLOP of linear ops: hundreds of ms even with AVX2 on two cores
    const M = 256, K = 512, N = 512, L = 10;
    const b = new Builder();
    const x = b.input([M, K]);
    const w = b.constant(randf(K * N, 5, -0.05, 0.05), [K, N]);
    let cur = x;
    for (let l = 0; l < L; ++l) {
      const nxt = l === L - 1 ? b.output([M, N]) : b.arena([M, N], DType.f32, (l % 2) * M * N * 4);
      b.op(OpKind.linear, [cur, w], [nxt], [M, K, N, 0]);
      cur = nxt;
    }
    const p = b.plan(1);
    const ys = new Float32Array(M * N);
    let ticks = 0, settled = false;
    const timer = setInterval(() => { ticks++; }, 2);
    const t0 = performance.now();
    const done = p.runAsync([randf(M * K, 6)], [ys]).then(() => { settled = true; });
    expect(settled).toBe(false);
    await done;
    clearInterval(timer);
    const ms = performance.now() - t0;
    expect(ys.some((v) => v !== 0)).toBe(true);
    // the timer fired while the native run was going (a blocked loop would give 0 ticks)
    expect(ticks, `run took ${ms.toFixed(0)} ms`).toBeGreaterThanOrEqual(ms > 20 ? 2 : 0);
    expect(ms).toBeGreaterThan(5);
  });
});
