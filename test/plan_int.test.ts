// Integer plan ops (ops.def "integer ops", native/ops/*_q.cc, quantize.cc): hand-built plans for every
// op checked against a JS model (exact for the integer-exact ops, stated code bounds for softmax,
// LayerNorm, GELU, add and avgpool), scalar vs AVX2 bit-exact outputs for every op, validation
// errors, and a whole integer Swin block vs the same block in float64.
import { afterAll, describe, expect, it } from 'vitest';
import { native, type IsaName, type PlanDescJS } from '../src/native.js';
import { OpKind, DType } from '../src/plan/ops.js';
// @ts-expect-error plain JS module shared with the benchmark
import { Builder, rng, gelu, makeBlock, makeInput, floatBlock, buildIntBlock, buildF32Block, toWindows, fromWindows } from '../bench/int-block.js';
import { ALL_ISAS, SIMD_ISAS } from './helpers/isas.js';

type Arr = Float32Array | Int32Array | Int8Array | Uint8Array | Int16Array | BigInt64Array;
type Case = { name: string; desc: PlanDescJS; inputs: Arr[]; outputs: () => Arr[]; check: (outs: Arr[]) => void };

const HAVE_AVX2 = native.cpuFeatures().avx2;
const ISAS: IsaName[] = ALL_ISAS;
const before = native.activeIsa();
afterAll(() => native.setIsa(before));

function run(desc: PlanDescJS, inputs: Arr[], outputs: Arr[], isa: IsaName, threads = 2): Arr[] {
  native.setIsa(isa);
  const p = native.createPlan!(desc, { threads });
  p.run(inputs, outputs);
  p.release();
  return outputs;
}
const bytes = (a: Arr) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// ---------- JS models ----------
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const RANGE: Record<number, [number, number]> = {
  [DType.i8]: [-128, 127], [DType.u8]: [0, 255], [DType.i16]: [-32768, 32767], [DType.i32]: [-(2 ** 31), 2 ** 31 - 1],
};
const ALLOC: Record<number, (n: number) => Arr> = {
  [DType.i8]: (n) => new Int8Array(n), [DType.u8]: (n) => new Uint8Array(n), [DType.i16]: (n) => new Int16Array(n),
  [DType.i32]: (n) => new Int32Array(n), [DType.f32]: (n) => new Float32Array(n),
};
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
/** the library's requantization: clamp(((v·m + 2^(s−1)) >> s) + zp), >> a floor shift */
function requant(v: number, m: number, s: number, zp: number, dt: number): number {
  const p = BigInt(v) * BigInt(m) + ((1n << BigInt(s)) >> 1n);
  const [lo, hi] = RANGE[dt];
  return clamp(Number(p >> BigInt(s)) + zp, lo, hi);
}
function randInts(n: number, lo: number, hi: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
}
function expectExact(got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>, what: string) {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; ++i)
    if (got[i] !== want[i]) throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
}
function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  expect(got.length, what).toBe(want.length);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; ++i) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  if (worst > tol) throw new Error(`${what}: element ${at}: got ${got[at]}, want ${want[at]} (|err| ${worst} > ${tol})`);
}

// ---------- per-op cases ----------
function cases(): Case[] {
  const out: Case[] = [];

  // quantize: halfway values (round half to even), saturation, NaN, every output dtype
  for (const [dt, zp] of [[DType.u8, 7], [DType.i8, -3], [DType.i16, 100], [DType.i32, 0]] as const) {
    const b = new Builder();
    const x = b.input([103]);
    const y = b.output([103], dt);
    const scale = 0.5;
    b.op(OpKind.quantize, [x], [y], [zp], [scale], 'q');
    const xs = Float32Array.from({ length: 103 }, (_, i) => (i - 50) * 0.25 + (i % 7 === 0 ? 0.1 : 0));
    xs[0] = 1e9; xs[1] = -1e9; xs[2] = NaN; xs[3] = -0; xs[4] = 70000.75;
    out.push({
      name: `quantize → ${dt}`, desc: b.build(), inputs: [xs], outputs: () => [ALLOC[dt](103)],
      check: ([ys]) => {
        const want = Array.from(xs, (v) => {
          const q = roundHalfEven(Math.fround(v / scale));
          return clamp((Number.isNaN(q) ? 0 : q) + zp, ...RANGE[dt]);
        });
        expectExact(ys as Int32Array, want, 'quantize');
      },
    });
  }

  // dequantize: per tensor and per channel (last dim)
  for (const [dt, zp, C] of [[DType.i8, 3, 0], [DType.u8, 128, 5], [DType.i32, 0, 0], [DType.i16, 0, 7], [DType.u8, 200, 0], [DType.i16, -7, 0]] as const) {
    const b = new Builder();
    const n = 35;
    const x = b.input([n], dt);
    const y = b.output([n]);
    const sc = Float32Array.from({ length: C || 1 }, (_, i) => 0.01 * (i + 1));
    b.op(OpKind.dequantize, C ? [x, b.constant(sc, [C], DType.f32)] : [x], [y], [zp], [0.1], 'dq');
    const [lo, hi] = RANGE[dt];
    const xs = ALLOC[dt](n);
    randInts(n, Math.max(lo, -1e6), Math.min(hi, 1e6), 3).forEach((v, i) => (xs[i] = v));
    out.push({
      name: `dequantize ${dt}${C ? ' per channel' : ''}`, desc: b.build(), inputs: [xs], outputs: () => [new Float32Array(n)],
      check: ([ys]) => expectExact(ys as Float32Array,
        Array.from(xs as Int32Array, (v, i) => Math.fround(Math.fround(v - zp) * (C ? sc[i % C] : Math.fround(0.1)))), 'dequantize'),
    });
  }

  // linear_q: s32 / u8 (relu, per channel) / i8 + table / i16; fast (x_max 127) and exact kernels; M = 1 (GEMV), 7, 70
  const linCases = [
    { M: 7, K: 13, N: 19, ydt: DType.i32, relu: 0, xmax: 255, xz: 3, wz: -2, table: false, perCh: false },
    { M: 70, K: 64, N: 40, ydt: DType.u8, relu: 1, xmax: 127, xz: 60, wz: 0, table: false, perCh: true },
    { M: 7, K: 33, N: 17, ydt: DType.i8, relu: 0, xmax: 255, xz: 128, wz: 1, table: true, perCh: false },
    { M: 1, K: 50, N: 37, ydt: DType.i16, relu: 0, xmax: 255, xz: 0, wz: 0, table: false, perCh: true },
    { M: 5, K: 8, N: 3, ydt: DType.u8, relu: 0, xmax: 255, xz: 255, wz: -128, table: true, perCh: true },
  ];
  linCases.forEach((c, ci) => {
    const { M, K, N, ydt } = c;
    const b = new Builder();
    const x = b.input([M, K], DType.u8);
    const y = b.output([M, N], ydt);
    const w = Int8Array.from(randInts(K * N, -128, 127, 10 + ci));
    const bias = Int32Array.from(randInts(N, -3000, 3000, 20 + ci));
    const ch = c.perCh ? N : 1;
    const mult = Int32Array.from(randInts(ch, 2 ** 30, 2 ** 31 - 1, 30 + ci));
    const shift = Int32Array.from(randInts(ch, ydt === DType.i16 ? 32 : 38, ydt === DType.i16 ? 36 : 42, 40 + ci));
    const table = Uint8Array.from(randInts(256, 0, 255, 50 + ci));
    const ins = [x, b.constant(w, [K, N], DType.i8), b.constant(bias, [N], DType.i32)];
    if (ydt !== DType.i32) ins.push(b.constant(mult, [ch], DType.i32), b.constant(shift, [ch], DType.i32));
    if (c.table) ins.push(b.constant(table, [256], DType.u8));
    const yzp = ydt === DType.u8 ? 10 : ydt === DType.i8 ? -5 : 0;
    b.op(OpKind.linear_q, ins, [y], [M, K, N, c.xz, c.wz, yzp, c.relu, c.xmax], [], `fc${ci}`);
    const xs = Uint8Array.from(randInts(M * K, 0, c.xmax, 60 + ci));
    if (c.xmax === 255) xs.fill(255, 0, K);  // a row of maximal codes: the pair-saturation case
    out.push({
      name: `linear_q #${ci} ${M}x${K}x${N} → ${ydt}${c.table ? ' + table' : ''}${c.relu ? ' relu' : ''}`,
      desc: b.build(), inputs: [xs], outputs: () => [ALLOC[ydt](M * N)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let m = 0; m < M; ++m)
          for (let n = 0; n < N; ++n) {
            let v = bias[n];
            for (let k = 0; k < K; ++k) v += (xs[m * K + k] - c.xz) * (w[k * N + n] - c.wz);
            if (c.relu) v = Math.max(v, 0);
            if (ydt === DType.i32) { want.push(v); continue; }
            const cc = c.perCh ? n : 0;
            let q = requant(v, mult[cc], shift[cc], yzp, ydt);
            if (c.table) q = ydt === DType.i8 ? (table[q & 255] << 24) >> 24 : table[q & 255];
            want.push(q);
          }
        expectExact(ys as Int32Array, want, 'linear_q');
      },
    });
  });

  // matmul_q: trans_b both ways, u8/s8 b, broadcast b (stride 0), s32 and requantized outputs
  const mmCases = [
    { batch: 3, M: 5, K: 37, N: 9, tb: 1, bdt: DType.u8, ydt: DType.i32, bstride: -1 },
    { batch: 4, M: 7, K: 16, N: 4, tb: 0, bdt: DType.i8, ydt: DType.u8, bstride: -1 },
    { batch: 2, M: 3, K: 5, N: 13, tb: 0, bdt: DType.u8, ydt: DType.i16, bstride: 0 },
    { batch: 6, M: 49, K: 49, N: 32, tb: 0, bdt: DType.u8, ydt: DType.u8, bstride: -1 },
    { batch: 1, M: 2, K: 1, N: 3, tb: 1, bdt: DType.i8, ydt: DType.i8, bstride: -1 },
  ];
  mmCases.forEach((c, ci) => {
    const { batch, M, K, N, tb, bdt, ydt } = c;
    const bs = c.bstride < 0 ? K * N : 0;
    const b = new Builder();
    const a = b.input([batch, M, K], DType.u8);
    const bt = b.input([bs ? batch : 1, K * N], bdt);
    const y = b.output([batch, M, N], ydt);
    const az = 17, bz = bdt === DType.u8 ? 128 : -3, yz = ydt === DType.u8 ? 100 : ydt === DType.i8 ? 1 : 0;
    const mult = 1518500250, shift = ydt === DType.i16 ? 36 : 42;
    const ins = [a, bt];
    if (ydt !== DType.i32) ins.push(b.i32([mult]), b.i32([shift]));
    b.op(OpKind.matmul_q, ins, [y], [batch, M, K, N, tb, M * K, bs, az, bz, yz], [], `mm${ci}`);
    const as = Uint8Array.from(randInts(batch * M * K, 0, 255, 70 + ci));
    const [blo, bhi] = RANGE[bdt];
    const bv = ALLOC[bdt]((bs ? batch : 1) * K * N);
    randInts(bv.length, blo, bhi, 80 + ci).forEach((v, i) => (bv[i] = v));
    out.push({
      name: `matmul_q #${ci} ${batch}×${M}x${K}x${N}${tb ? ' trans_b' : ''} b ${bdt} → ${ydt}`,
      desc: b.build(), inputs: [as, bv], outputs: () => [ALLOC[ydt](batch * M * N)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let t = 0; t < batch; ++t)
          for (let m = 0; m < M; ++m)
            for (let n = 0; n < N; ++n) {
              let v = 0;
              for (let k = 0; k < K; ++k)
                v += (as[(t * M + m) * K + k] - az) * ((bv[t * bs + (tb ? n * K + k : k * N + n)] as number) - bz);
              want.push(ydt === DType.i32 ? v : requant(v, mult, shift, yz, ydt));
            }
        expectExact(ys as Int32Array, want, 'matmul_q');
      },
    });
  });

  // softmax_q with a periodic table (rows not a multiple of the period, chunks crossing it) and masks
  {
    const rows = 400, D = 49, tr = 7, sc = 0.01;
    const b = new Builder();
    const x = b.input([rows, D], DType.i32);
    const y = b.output([rows, D], DType.u8);
    const table = Int32Array.from(randInts(tr * D, -200, 200, 90));
    for (let j = 0; j < D; j += 5) table[2 * D + j] = -(2 ** 30);  // period row 2: masked columns
    b.op(OpKind.softmax_q, [x, b.constant(table, [tr, D], DType.i32)], [y], [rows, D, tr], [sc], 'attn');
    const xs = Int32Array.from(randInts(rows * D, -600, 600, 91));
    out.push({
      name: 'softmax_q (periodic table, masks)', desc: b.build(), inputs: [xs], outputs: () => [new Uint8Array(rows * D)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let r = 0; r < rows; ++r) {
          const t = (r % tr) * D;
          const z = Array.from({ length: D }, (_, j) => (table[t + j] <= -(2 ** 30) ? -Infinity : sc * (xs[r * D + j] + table[t + j])));
          const mx = Math.max(...z);
          const e = z.map((v) => Math.exp(v - mx));
          const s = e.reduce((p, v) => p + v, 0);
          for (let j = 0; j < D; ++j) {
            want.push(Math.min(255, (256 * e[j]) / s));
            if (z[j] === -Infinity && ys[r * D + j] !== 0) throw new Error(`softmax_q: masked (${r}, ${j}) is ${ys[r * D + j]}`);
          }
        }
        expectWithin(Array.from(ys as Uint8Array), want, 2, 'softmax_q (≤ 2 codes, docs/integer-kernels.md)');
      },
    });
  }

  // attention_q: q·kᵀ, biased softmax and P·V per (window, head) read from one qkv tensor; odd N and
  // dh, a period of bias rows shorter than the heads, masks, the y_max clamp. Bound: P codes are within
  // ±2 of 256·softmax, so |y − ratio·Σ_j 256·p_j·v_j| ≤ ratio·2·Σ_j|v_j| + 1 (v_j = code − zp).
  for (const [W, N, H, dh, zp, yz, ymax, brows] of [[2, 49, 3, 16, 64, 64, 127, 147], [3, 13, 2, 5, 0, 3, 255, 26], [1, 7, 1, 32, 200, 0, 63, 0]]) {
    const C = H * dh, sc = 0.03, ratio = 1 / 1024;
    const b = new Builder();
    const x = b.input([W, N, 3 * C], DType.u8);
    const y = b.output([W, H, N, dh], DType.u8);
    const table = Int32Array.from(randInts(brows * N, -40, 40, 120 + N));
    for (let j = 0; j < brows * N; j += 7) if (j % N !== 0) table[j] = -(2 ** 30);
    const m = native.qQuantizeMultiplier(ratio);
    b.op(OpKind.attention_q, [x, brows ? b.constant(table, [brows, N], DType.i32) : -1, b.i32([m.mult]), b.i32([m.shift])], [y],
      [W, N, H, dh, zp, yz, ymax, brows], [sc], 'attn');
    const xs = Uint8Array.from(randInts(W * N * 3 * C, 0, 255, 130 + N));
    out.push({
      name: `attention_q ${W}×${H} heads, N ${N}, dh ${dh}${brows ? `, ${brows} bias rows` : ''}`, desc: b.build(), inputs: [xs],
      outputs: () => [new Uint8Array(W * H * N * dh)],
      check: ([ys]) => {
        let bad = '';
        for (let t = 0; t < W * H; t++) {
          const w = Math.floor(t / H), h = t % H, base = w * N * 3 * C;
          for (let i = 0; i < N; i++) {
            const z: number[] = [];
            for (let j = 0; j < N; j++) {
              let d = 0;
              for (let k = 0; k < dh; k++) d += (xs[base + i * 3 * C + h * dh + k] - zp) * (xs[base + j * 3 * C + C + h * dh + k] - zp);
              const tb = brows ? table[((t * N + i) % brows) * N + j] : 0;
              z.push(tb <= -(2 ** 30) ? -Infinity : sc * (d + tb));
            }
            const mx = Math.max(...z);
            const e = z.map((v) => Math.exp(v - mx));
            const sum = e.reduce((p, v) => p + v, 0);
            for (let k = 0; k < dh; k++) {
              let o = 0, av = 0;
              for (let j = 0; j < N; j++) { const v = xs[base + j * 3 * C + 2 * C + h * dh + k] - zp; o += (256 * e[j] / sum) * v; av += Math.abs(v); }
              const want = clamp(o * ratio + yz, 0, ymax);
              const got = (ys as Uint8Array)[(t * N + i) * dh + k];
              if (got > ymax || Math.abs(got - want) > ratio * 2 * av + 1) bad ||= `(${t}, ${i}, ${k}): got ${got}, want ${want.toFixed(2)}`;
            }
          }
        }
        if (bad) throw new Error(`attention_q outside the bound at ${bad}`);
      },
    });
  }

  // linear_q with a residual (input 6): the requantized int16 value added to an int16 residual by
  // add_q's rule in the epilogue; M = 49 splits rows across 2 threads, N = 40 leaves a ragged panel
  {
    const M = 49, K = 32, N = 40, rs = 0.0021, vs = 0.0017, ys = 0.0017;
    const b = new Builder();
    const xq = b.input([M, K], DType.u8);
    const r = b.input([M, N], DType.i16);
    const y = b.output([M, N], DType.i16);
    const wv = Int8Array.from(randInts(K * N, -127, 127, 150));
    const bias = Int32Array.from(randInts(N, -5000, 5000, 151));
    const mult = Int32Array.from(randInts(N, 2 ** 30, 2 ** 31 - 1, 152));
    const shift = Int32Array.from(randInts(N, 30, 33, 153));
    b.op(OpKind.linear_q, [xq, b.constant(wv, [K, N], DType.i8), b.constant(bias, [N], DType.i32), b.constant(mult, [N], DType.i32),
      b.constant(shift, [N], DType.i32), -1, r], [y], [M, K, N, 7, 0, 0, 0, 255], [rs, vs, ys], 'proj');
    const xs = Uint8Array.from(randInts(M * K, 0, 255, 154));
    const rv = Int16Array.from(randInts(M * N, -32768, 32767, 155));
    out.push({
      name: 'linear_q with a residual (int16)', desc: b.build(), inputs: [xs, rv], outputs: () => [new Int16Array(M * N)],
      check: ([yo]) => {
        const ra = Math.fround(rs) / Math.fround(ys), rb = Math.fround(vs) / Math.fround(ys);
        let sh = 0;
        while (sh < 30 && (ra + rb) * 2 ** (sh + 1) < 32766) ++sh;
        const ma = Math.round(ra * 2 ** sh), mb = Math.round(rb * 2 ** sh);
        const want: number[] = [];
        let saturated = 0;
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let v = bias[n];
          for (let k = 0; k < K; k++) v += (xs[m * K + k] - 7) * wv[k * N + n];
          const q = requant(v, mult[n], shift[n], 0, DType.i16);
          if (Math.abs(q) === 32767 || q === -32768) saturated++;
          want.push(clamp(Math.floor((rv[m * N + n] * ma + q * mb + (2 ** sh >> 1)) / 2 ** sh), -32768, 32767));
        }
        expect(saturated, 'some GEMM values saturate int16 before the add').toBeGreaterThan(0);
        expectExact(yo as Int16Array, want, 'linear_q + residual');
      },
    });
  }

  // y_max clamps: linear_q with a uint8 y and layernorm_q (7-bit codes for the next GEMM's fast kernel)
  {
    const M = 9, K = 6, N = 5, ymax = 100;
    const b = new Builder();
    const xq = b.input([M, K], DType.u8);
    const y = b.output([M, N], DType.u8);
    const wv = Int8Array.from(randInts(K * N, -127, 127, 140));
    const bias = Int32Array.from(randInts(N, -500, 500, 141));
    b.op(OpKind.linear_q, [xq, b.constant(wv, [K, N], DType.i8), b.i32(Array.from(bias)), b.i32([1518500250]), b.i32([40])], [y],
      [M, K, N, 3, 0, 20, 0, 255, ymax], [], 'lin-ymax');
    const xs = Uint8Array.from(randInts(M * K, 0, 255, 142));
    out.push({
      name: 'linear_q with y_max', desc: b.build(), inputs: [xs], outputs: () => [new Uint8Array(M * N)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let v = bias[n];
          for (let k = 0; k < K; k++) v += (xs[m * K + k] - 3) * wv[k * N + n];
          want.push(Math.min(ymax, requant(v, 1518500250, 40, 20, DType.u8)));
        }
        expect(want.some((v) => v === ymax), 'the case reaches the clamp').toBe(true);
        expectExact(ys as Uint8Array, want, 'linear_q y_max');
      },
    });
  }

  // layernorm_q: s8 → u8 and s16 → s8 / s16, gamma/beta, odd D
  for (const [xdt, ydt, D, yz] of [[DType.i8, DType.u8, 33, 128], [DType.i16, DType.i8, 96, -2], [DType.i16, DType.i16, 7, 0]] as const) {
    const rows = 41;
    const b = new Builder();
    const x = b.input([rows, D], xdt);
    const y = b.output([rows, D], ydt);
    const r = rng(100 + D);
    const g = Float32Array.from({ length: D }, () => 0.5 + r());
    const be = Float32Array.from({ length: D }, () => r() - 0.5);
    const ys_ = ydt === DType.i16 ? 1 / 4096 : 4 / 127;
    b.op(OpKind.layernorm_q, [x, b.constant(g, [D], DType.f32), b.constant(be, [D], DType.f32)], [y], [rows, D, yz], [ys_], 'ln');
    const [lo, hi] = RANGE[xdt];
    const xs = ALLOC[xdt](rows * D);
    randInts(rows * D, lo, hi, 110 + D).forEach((v, i) => (xs[i] = v));
    out.push({
      name: `layernorm_q ${xdt} → ${ydt} D=${D}`, desc: b.build(), inputs: [xs], outputs: () => [ALLOC[ydt](rows * D)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let t = 0; t < rows; ++t) {
          const row = Array.from(xs.subarray(t * D, (t + 1) * D) as Int16Array);
          const mu = row.reduce((p, v) => p + v, 0) / D;
          const sd = Math.sqrt(row.reduce((p, v) => p + (v - mu) ** 2, 0) / D);
          for (let c = 0; c < D; ++c) want.push(clamp(Math.round((((row[c] - mu) / sd) * g[c] + be[c]) / ys_) + yz, ...RANGE[ydt]));
        }
        expectWithin(Array.from(ys as Int16Array), want, 1, 'layernorm_q (≤ 1 code)');
      },
    });
  }

  // gelu_q: every s8 code → u8, and u8 → s8
  for (const [xdt, xz, xs_, ydt, yz, ys_] of [[DType.i8, 0, 0.05, DType.u8, 20, 0.03], [DType.u8, 128, 0.04, DType.i8, -100, 0.025]] as const) {
    const b = new Builder();
    const x = b.input([256], xdt);
    const y = b.output([256], ydt);
    b.op(OpKind.gelu_q, [x], [y], [xz, yz], [xs_, ys_], 'gelu');
    const xv = ALLOC[xdt](256);
    for (let i = 0; i < 256; ++i) xv[i] = xdt === DType.i8 ? i - 128 : i;
    out.push({
      name: `gelu_q ${xdt} → ${ydt}`, desc: b.build(), inputs: [xv], outputs: () => [ALLOC[ydt](256)],
      check: ([ys]) => expectWithin(Array.from(ys as Int8Array),
        Array.from(xv as Int8Array, (v) => clamp(Math.round(gelu((v - xz) * xs_) / ys_) + yz, ...RANGE[ydt])), 1, 'gelu_q (≤ 1 code)'),
    });
  }

  // relu_q
  for (const [dt, zp] of [[DType.i8, -7], [DType.u8, 131]] as const) {
    const b = new Builder();
    const x = b.input([77], dt);
    const y = b.output([77], dt);
    b.op(OpKind.relu_q, [x], [y], [zp], [], 'relu');
    const xv = ALLOC[dt](77);
    randInts(77, ...RANGE[dt], 120).forEach((v, i) => (xv[i] = v));
    out.push({
      name: `relu_q ${dt}`, desc: b.build(), inputs: [xv], outputs: () => [ALLOC[dt](77)],
      check: ([ys]) => expectExact(ys as Int8Array, Array.from(xv as Int8Array, (v) => Math.max(v, zp)), 'relu_q'),
    });
  }

  // requant: per channel with relu (u8), per tensor (i16), saturating extremes
  for (const [ydt, perCh, relu, zp] of [[DType.u8, true, 1, 5], [DType.i16, false, 0, 0], [DType.i8, true, 0, -1]] as const) {
    const rows = 6, C = 11, ch = perCh ? C : 1;
    const b = new Builder();
    const x = b.input([rows, C], DType.i32);
    const y = b.output([rows, C], ydt);
    const mult = Int32Array.from(randInts(ch, 2 ** 30, 2 ** 31 - 1, 130));
    const shift = Int32Array.from(randInts(ch, 30, 45, 131));
    b.op(OpKind.requant, [x, b.constant(mult, [ch], DType.i32), b.constant(shift, [ch], DType.i32)], [y], [rows, C, zp, relu], [], 'rq');
    const xs = Int32Array.from(randInts(rows * C, -(2 ** 24), 2 ** 24, 132));
    xs[0] = -(2 ** 31); xs[1] = 2 ** 31 - 1; xs[2] = 0; xs[3] = -1;
    out.push({
      name: `requant → ${ydt}${relu ? ' relu' : ''}`, desc: b.build(), inputs: [xs], outputs: () => [ALLOC[ydt](rows * C)],
      check: ([ys]) => expectExact(ys as Int16Array, Array.from(xs, (v, i) => {
        const c = perCh ? i % C : 0;
        return requant(relu ? Math.max(v, 0) : v, mult[c], shift[c], zp, ydt);
      }), 'requant'),
    });
  }

  // add_q: s16 + s8 → s16, u8 + u8 → u8 (odd count)
  for (const [adt, za, sa, bdt, zb, sb, ydt, zy, sy] of [
    [DType.i16, 0, 0.001, DType.i8, 4, 0.05, DType.i16, 0, 0.0015],
    [DType.u8, 100, 0.02, DType.u8, 30, 0.03, DType.u8, 128, 0.04],
  ] as const) {
    const n = 101;
    const b = new Builder();
    const a = b.input([n], adt);
    const bb = b.input([n], bdt);
    const y = b.output([n], ydt);
    b.op(OpKind.add_q, [a, bb], [y], [za, zb, zy], [sa, sb, sy], 'add');
    const av = ALLOC[adt](n), bv = ALLOC[bdt](n);
    randInts(n, ...RANGE[adt], 140).forEach((v, i) => (av[i] = v));
    randInts(n, ...RANGE[bdt], 141).forEach((v, i) => (bv[i] = v));
    out.push({
      name: `add_q ${adt} + ${bdt} → ${ydt}`, desc: b.build(), inputs: [av, bv], outputs: () => [ALLOC[ydt](n)],
      check: ([ys]) => {
        // exact: the dyadic multipliers of qkernels add_params (largest shift with ma + mb < 2^15)
        const ra = Math.fround(sa) / Math.fround(sy), rb = Math.fround(sb) / Math.fround(sy);
        let sh = 0;
        while (sh < 30 && (ra + rb) * 2 ** (sh + 1) < 32766) ++sh;
        const ma = Math.round(ra * 2 ** sh), mb = Math.round(rb * 2 ** sh);
        const got = Array.from(ys as Int16Array);
        expectExact(got, Array.from(av as Int16Array, (v, i) =>
          clamp(Math.floor(((v - za) * ma + ((bv[i] as number) - zb) * mb + (2 ** sh >> 1)) / 2 ** sh) + zy, ...RANGE[ydt])), 'add_q');
        // vs float: ≤ 1 code + the multipliers' rounding, 2^−(shift+1)·(|a − za| + |b − zb|)
        got.forEach((g, i) => {
          const da = Math.abs((av[i] as number) - za), db = Math.abs((bv[i] as number) - zb);
          const f = clamp(Math.round(((av[i] as number) - za) * (sa / sy) + ((bv[i] as number) - zb) * (sb / sy)) + zy, ...RANGE[ydt]);
          expect(Math.abs(g - f), `add_q element ${i}`).toBeLessThanOrEqual(1 + (da + db) / 2 ** (sh + 1));
        });
      },
    });
  }

  // avgpool_q: [2, 49, 7] u8 → i8, and s16 → s16
  for (const [xdt, xz, ydt, yz] of [[DType.u8, 5, DType.i8, -3], [DType.i16, 0, DType.i16, 0]] as const) {
    const B = 2, Tn = 49, C = 7, xs_ = 0.1, ys_ = xdt === DType.i16 ? 50 : 0.2;
    const b = new Builder();
    const x = b.input([B, Tn, C], xdt);
    const y = b.output([B, C], ydt);
    b.op(OpKind.avgpool_q, [x], [y], [B, Tn, C, xz, yz], [xs_, ys_], 'pool');
    const xv = ALLOC[xdt](B * Tn * C);
    randInts(xv.length, ...RANGE[xdt], 150).forEach((v, i) => (xv[i] = v));
    out.push({
      name: `avgpool_q ${xdt} → ${ydt}`, desc: b.build(), inputs: [xv], outputs: () => [ALLOC[ydt](B * C)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let bi = 0; bi < B; ++bi)
          for (let c = 0; c < C; ++c) {
            let s = 0;
            for (let t = 0; t < Tn; ++t) s += (xv[(bi * Tn + t) * C + c] as number) - xz;
            want.push(clamp(Math.round((s * xs_) / (Tn * ys_)) + yz, ...RANGE[ydt]));
          }
        expectWithin(Array.from(ys as Int16Array), want, 1, 'avgpool_q (≤ 1 code)');
      },
    });
  }

  // argmax_q (ties: first index) and index_map on 1- and 2-byte elements
  for (const dt of [DType.i8, DType.u8, DType.i16, DType.i32]) {
    const rows = 9, D = 10;
    const b = new Builder();
    const x = b.input([rows, D], dt);
    const y = b.output([rows], DType.i64);
    b.op(OpKind.argmax_q, [x], [y], [rows, D], [], 'am');
    const xv = ALLOC[dt](rows * D);
    randInts(rows * D, 0, 5, 160).forEach((v, i) => (xv[i] = v - 2));  // many ties
    out.push({
      name: `argmax_q ${dt}`, desc: b.build(), inputs: [xv], outputs: () => [new BigInt64Array(rows)],
      check: ([ys]) => {
        const want: bigint[] = [];
        for (let r = 0; r < rows; ++r) {
          let bi = 0;
          for (let j = 1; j < D; ++j) if ((xv[r * D + j] as number) > (xv[r * D + bi] as number)) bi = j;
          want.push(BigInt(bi));
        }
        expectExact(ys as BigInt64Array, want, 'argmax_q');
      },
    });
  }
  for (const dt of [DType.i8, DType.i16]) {
    const b = new Builder();
    const x = b.input([3, 10], dt);
    const idx = Int32Array.from([7, -1, 0, 4, 2]);
    const y = b.output([3, 15], dt);
    b.op(OpKind.index_map, [x, b.constant(idx, [5], DType.i32)], [y], [3, 3, 10, 15], [], 'im');
    const xv = ALLOC[dt](30);
    randInts(30, -100, 100, 170).forEach((v, i) => (xv[i] = v));
    out.push({
      name: `index_map ${dt}`, desc: b.build(), inputs: [xv], outputs: () => [ALLOC[dt](45)],
      check: ([ys]) => {
        const want: number[] = [];
        for (let t = 0; t < 3; ++t) for (const r of idx) for (let j = 0; j < 3; ++j) want.push(r < 0 ? 0 : (xv[t * 10 + r + j] as number));
        expectExact(ys as Int8Array, want, 'index_map');
      },
    });
  }
  return out;
}

const CASES = cases();

describe.each(ISAS)('integer plan ops vs JS model (isa %s)', (isa) => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    c.check(run(c.desc, c.inputs, c.outputs(), isa));
  });
});

// Every SIMD set the CPU has (avx2, avx512vnni); reported as skipped (not passed) on a CPU without AVX2.
describe.skipIf(!HAVE_AVX2)('integer plan ops: scalar and every SIMD set agree bit-exactly', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const s = run(c.desc, c.inputs, c.outputs(), 'scalar');
    for (const isa of SIMD_ISAS) {
      const v = run(c.desc, c.inputs, c.outputs(), isa);
      const t1 = run(c.desc, c.inputs, c.outputs(), isa, 1);
      s.forEach((o, i) => {
        expect(bytes(v[i]).equals(bytes(o)), `${c.name}: output ${i} scalar vs ${isa}`).toBe(true);
        expect(bytes(t1[i]).equals(bytes(o)), `${c.name}: output ${i} ${isa} 1 vs 2 threads`).toBe(true);
      });
    }
  });
});

describe('integer op validation', () => {
  const plan = (f: (b: InstanceType<typeof Builder>) => void) => {
    const b = new Builder();
    f(b);
    return () => native.createPlan!(b.build(), { threads: 1 });
  };
  it('names op, node and field', () => {
    expect(plan((b) => {
      const x = b.input([2, 3]);
      b.op(OpKind.linear_q, [x, b.constant(new Int8Array(12), [3, 4], DType.i8)], [b.output([2, 4], DType.i32)], [2, 3, 4, 0, 0, 0, 0, 255], [], 'fc');
    })).toThrow(/plan op #0 linear_q \(node 'fc'\): x is float32, expected uint8/);
    expect(plan((b) => {
      const x = b.input([2, 3], DType.u8);
      const w = b.constant(new Int8Array(12), [3, 4], DType.i8);
      b.op(OpKind.linear_q, [x, w], [b.output([2, 4], DType.u8)], [2, 3, 4, 0, 0, 0, 0, 255], [], 'fc');
    })).toThrow(/linear_q \(node 'fc'\): a uint8 y needs mult and shift/);
    expect(plan((b) => {
      const x = b.input([2, 3], DType.u8);
      const w = b.constant(new Int8Array(12), [3, 4], DType.i8);
      b.op(OpKind.linear_q, [x, w, -1, b.i32([1 << 30]), b.i32([63])], [b.output([2, 4], DType.u8)], [2, 3, 4, 0, 0, 0, 0, 255], [], 'fc');
    })).toThrow(/shift\[0\] = 63 is outside \[0, 62\]/);
    // a residual: int16 y and residual, three scales
    const withResidual = (ydt: DType, rdt: DType, floats: number[]) => plan((b) => {
      const x = b.input([2, 3], DType.u8);
      const w = b.constant(new Int8Array(12), [3, 4], DType.i8);
      b.op(OpKind.linear_q, [x, w, -1, b.i32([1 << 30]), b.i32([40]), -1, b.input([2, 4], rdt)], [b.output([2, 4], ydt)],
        [2, 3, 4, 0, 0, 0, 0, 255], floats, 'proj');
    });
    expect(withResidual(DType.u8, DType.i16, [1, 1, 1])).toThrow(/linear_q \(node 'proj'\): a residual needs an int16 y/);
    expect(withResidual(DType.i16, DType.i8, [1, 1, 1])).toThrow(/linear_q \(node 'proj'\): residual is int8, expected int16/);
    expect(withResidual(DType.i16, DType.i16, [1, 1])).toThrow(/linear_q \(node 'proj'\): floats.*r_scale, v_scale, y_scale/);
    expect(withResidual(DType.i16, DType.i16, [1, 0, 1])).toThrow(/linear_q \(node 'proj'\): floats\[1\] v_scale/);
    expect(withResidual(DType.i16, DType.i16, [1, 1, 1])().release).toBeTypeOf('function');
    expect(plan((b) => {  // the residual in y's own bytes: the epilogue would read values it already replaced
      const x = b.input([2, 3], DType.u8);
      const r = b.arena([2, 4], DType.i16);
      b.op(OpKind.copy, [b.input([2, 4], DType.i16)], [r], [], [], 'res');
      b.op(OpKind.linear_q, [x, b.constant(new Int8Array(12), [3, 4], DType.i8), -1, b.i32([1 << 30]), b.i32([40]), -1, r], [r],
        [2, 3, 4, 0, 0, 0, 0, 255], [1, 1, 1], 'proj');
      b.op(OpKind.copy, [r], [b.output([2, 4], DType.i16)], [], [], 'out');
    })).toThrow(/linear_q \(node 'proj'\): .*residual/);
    expect(plan((b) => {
      const a = b.input([2, 4, 5], DType.u8);
      const bb = b.input([2, 5, 3], DType.i8);
      b.op(OpKind.matmul_q, [a, bb], [b.output([2, 4, 3], DType.i32)], [2, 4, 5, 3, 0, 20, 16, 0, 0, 0], [], 'mm');
    })).toThrow(/matmul_q \(node 'mm'\): b has 30 elements, but batch 2 × stride 16 needs 31/);
    expect(plan((b) => {
      const x = b.input([4], DType.i8);
      b.op(OpKind.quantize, [b.input([4])], [b.output([4], DType.u8)], [256], [1], 'q');
      void x;
    })).toThrow(/quantize \(node 'q'\): ints\[0\] zero_point = 256 is outside uint8/);
    expect(plan((b) => {
      b.op(OpKind.softmax_q, [b.input([2, 3], DType.i32)], [b.output([2, 3], DType.u8)], [2, 3, 0], [1.0], 'sm');
    })).toThrow(/softmax_q \(node 'sm'\): x_scale: softmax_params: input_scale 1.0+ ≥ ln2/);
    expect(plan((b) => {
      b.op(OpKind.attention_q, [b.input([1, 4, 13], DType.u8), -1, b.i32([1 << 30]), b.i32([40])], [b.output([1, 2, 4, 2], DType.u8)],
        [1, 4, 2, 2, 0, 0, 255, 0], [0.01], 'att');
    })).toThrow(/attention_q \(node 'att'\): qkv has 52 elements/);
    expect(plan((b) => {
      b.op(OpKind.attention_q, [b.input([1, 4, 12], DType.u8), -1, b.i32([1 << 30]), b.i32([40])], [b.output([1, 2, 4, 2], DType.u8)],
        [1, 4, 2, 2, 0, 9, 8, 0], [0.01], 'att');
    })).toThrow(/attention_q \(node 'att'\): ints\[6\] y_max = 8 is outside \[y_zp, 255\]/);
    expect(plan((b) => {
      b.op(OpKind.layernorm_q, [b.input([2, 3], DType.i16)], [b.output([2, 3], DType.u8)], [2, 3, 10, 5], [0.1], 'ln');
    })).toThrow(/layernorm_q \(node 'ln'\): ints\[3\] y_max = 5 is outside \[y_zp, 255\]/);
    expect(plan((b) => {
      b.op(OpKind.add_q, [b.input([3], DType.i16), b.input([3], DType.i8)], [b.output([3], DType.i16)], [5, 0, 0], [1, 1, 1], 'add');
    })).toThrow(/add_q \(node 'add'\): ints\[0\] a_zp = 5 must be 0 for an int16 tensor/);
    expect(plan((b) => {
      b.op(OpKind.layernorm_q, [b.input([2, 3], DType.u8)], [b.output([2, 3], DType.i8)], [2, 3, 0], [0.1], 'ln');
    })).toThrow(/layernorm_q \(node 'ln'\): x is uint8, expected int8 or int16/);
    expect(plan((b) => {
      b.op(OpKind.requant, [b.input([2, 3], DType.i32), b.i32([-5]), b.i32([3])], [b.output([2, 3], DType.u8)], [2, 3, 0, 1], [], 'rq');
    })).toThrow(/requant \(node 'rq'\): mult\[0\] = -5 must be > 0 with relu/);
  });
});

// ---------- a whole integer Swin block ----------
describe('integer Swin block plan', () => {
  const p = makeBlock({ windows: 4, dim: 32, heads: 2, seed: 7 });
  const x = makeInput(p, 8) as Float32Array;
  const ref = floatBlock(p, toWindows(p, x));  // the reference works in window layout
  const refY = fromWindows(p, ref.y) as Float64Array;
  const desc = buildIntBlock(p, ref) as PlanDescJS;

  it('has no f32 tensor between the first quantize and the last dequantize', () => {
    const kinds = desc.ops.map((o) => o.kind);
    const first = kinds.indexOf(OpKind.quantize), last = kinds.lastIndexOf(OpKind.dequantize);
    expect(first).toBe(0);
    expect(last).toBe(desc.ops.length - 1);
    // the shift + window partition and its reverse move int16 codes
    expect(desc.ops[1].kind).toBe(OpKind.index_map);
    expect(desc.tensors[desc.ops[1].outputs[0]].dtype).toBe(DType.i16);
    expect(desc.ops[last - 1].kind).toBe(OpKind.index_map);
    const seen = new Set<string>();
    for (let i = 0; i < desc.ops.length; ++i) {
      const o = desc.ops[i];
      seen.add(String(o.kind));
      const ids = [...o.inputs.filter((t) => t >= 0).map((t) => ['in', t] as const), ...o.outputs.map((t) => ['out', t] as const)];
      for (const [role, t] of ids) {
        const td = desc.tensors[t];
        if (td.dtype !== DType.f32) continue;
        const allowed = (i === first && role === 'in') || (i === last && role === 'out') ||
          // LayerNorm gamma/beta are load-time constants turned into integer multipliers
          (o.kind === OpKind.layernorm_q && role === 'in' && td.storage === 1);
        expect(allowed, `op #${i} (${o.name}) ${role} tensor #${t} is f32`).toBe(true);
      }
    }
    for (const k of ['layernorm_q', 'linear_q', 'matmul_q', 'softmax_q', 'add_q', 'index_map'] as const)
      expect(seen.has(String(OpKind[k])), k).toBe(true);
    expect(desc.ops.some((o) => [OpKind.linear, OpKind.matmul, OpKind.softmax, OpKind.layernorm, OpKind.binary, OpKind.unary].includes(o.kind))).toBe(false);
  });

  it('matches the float64 block within 2 % of max|y| (max) and 0.5 % (mean)', () => {
    for (const isa of ISAS) {
      const [y] = run(desc, [x], [new Float32Array(x.length)], isa) as Float32Array[];
      let maxErr = 0, sumErr = 0, ymax = 0;
      for (let i = 0; i < y.length; ++i) {
        const e = Math.abs(y[i] - refY[i]);
        maxErr = Math.max(maxErr, e);
        sumErr += e;
        ymax = Math.max(ymax, Math.abs(refY[i]));
      }
      expect(maxErr, `${isa}: max |y − ref| ${maxErr} vs max|y| ${ymax}`).toBeLessThan(0.02 * ymax);
      expect(sumErr / y.length, `${isa}: mean error`).toBeLessThan(0.005 * ymax);
    }
  });

  it.skipIf(!HAVE_AVX2)('is bit-exact between scalar and every SIMD set and across thread counts', () => {
    const s = run(desc, [x], [new Float32Array(x.length)], 'scalar')[0];
    for (const isa of SIMD_ISAS) {
      const v = run(desc, [x], [new Float32Array(x.length)], isa)[0];
      const v1 = run(desc, [x], [new Float32Array(x.length)], isa, 1)[0];
      expect(bytes(v).equals(bytes(s)), isa).toBe(true);
      expect(bytes(v1).equals(bytes(s)), isa).toBe(true);
    }
  });

  it('the fp32 plan of the same block matches float64 (sanity of the shared builder)', () => {
    const [y] = run(buildF32Block(p) as PlanDescJS, [x], [new Float32Array(x.length)], ISAS[ISAS.length - 1]) as Float32Array[];
    let e = 0;
    for (let i = 0; i < y.length; ++i) e = Math.max(e, Math.abs(y[i] - refY[i]));
    expect(e).toBeLessThan(1e-4);
  });

  it('profiles per integer op', () => {
    native.setIsa(ISAS[ISAS.length - 1]);
    const plan = native.createPlan!(desc, { threads: 1, profile: true });
    plan.run([x], [new Float32Array(x.length)]);
    const prof = plan.profile();
    expect(prof.map((r) => r.op)).toEqual(desc.ops.map((o) => ['quantize', 'dequantize', 'linear_q', 'matmul_q', 'softmax_q',
      'layernorm_q', 'gelu_q', 'relu_q', 'requant', 'add_q', 'avgpool_q', 'argmax_q'][o.kind - OpKind.quantize] ?? 'index_map'));
    expect(prof.every((r) => r.ms >= 0)).toBe(true);
    plan.release();
  });
});

// Row placements folded into stores (src/quant/row-folds.ts): attention_q heads_merged (rows in order or
// placed by y_rows) and layernorm_q y_rows write the plain op's bytes at the moved places.
describe('row placements in attention_q and layernorm_q stores', () => {
  const shuffled = (n: number, seed: number) => {
    const p = Int32Array.from({ length: n }, (_, i) => i);
    const r = rng(seed);
    for (let i = n - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [p[i], p[j]] = [p[j], p[i]]; }
    return p;
  };
  for (const [W, N, H, dh, brows] of [[2, 49, 3, 16, 147], [3, 13, 2, 5, 26], [1, 197, 2, 64, 0]]) {
    it(`attention_q ${W}×${H} heads, N ${N}, dh ${dh}: heads merged, in order and permuted`, () => {
      const C = H * dh, m = native.qQuantizeMultiplier(1 / 1024);
      const table = Int32Array.from(randInts(Math.max(1, brows) * N, -40, 40, 7));
      const xs = Uint8Array.from(randInts(W * N * 3 * C, 0, 255, 8));
      const perm = shuffled(W * N, 9);
      const build = (mode: number) => {
        const b = new Builder();
        const x = b.input([W, N, 3 * C], DType.u8);
        const y = b.output(mode ? [W * N, C] : [W, H, N, dh], DType.u8);
        const ins = [x, brows ? b.constant(table, [brows, N], DType.i32) : -1, b.i32([m.mult]), b.i32([m.shift])];
        if (mode === 2) ins.push(b.constant(perm, [W * N], DType.i32));
        b.op(OpKind.attention_q, ins, [y], [W, N, H, dh, 100, 3, 255, brows, ...(mode ? [1] : [])], [0.03], 'attn');
        return b.build();
      };
      for (const isa of ISAS) {
        const [plain] = run(build(0), [xs], [new Uint8Array(W * N * C)], isa) as Uint8Array[];
        const want = [new Uint8Array(W * N * C), new Uint8Array(W * N * C)];
        for (let t = 0; t < W * H; t++) for (let i = 0; i < N; i++) {
          const w = Math.floor(t / H), h = t % H, src = plain.subarray((t * N + i) * dh, (t * N + i + 1) * dh);
          want[0].set(src, (w * N + i) * C + h * dh);
          want[1].set(src, perm[w * N + i] * C + h * dh);
        }
        for (const mode of [1, 2]) {
          const [got] = run(build(mode), [xs], [new Uint8Array(W * N * C)], isa) as Uint8Array[];
          expect(bytes(got).equals(bytes(want[mode - 1])), `${isa} mode ${mode}`).toBe(true);
        }
      }
    });
  }
  it('layernorm_q y_rows over 2 threads, every ISA', () => {
    const rows = 45, D = 48;
    const xs = Int16Array.from(randInts(rows * D, -3000, 3000, 11));
    const perm = shuffled(rows, 12);
    const build = (withRows: boolean) => {
      const b = new Builder();
      const x = b.input([rows, D], DType.i16);
      const y = b.output([rows, D], DType.u8);
      b.op(OpKind.layernorm_q, [x, -1, -1, ...(withRows ? [b.constant(perm, [rows], DType.i32)] : [])], [y], [rows, D, 128], [4 / 127], 'ln');
      return b.build();
    };
    for (const isa of ISAS) {
      const [plain] = run(build(false), [xs], [new Uint8Array(rows * D)], isa) as Uint8Array[];
      const want = new Uint8Array(rows * D);
      for (let r = 0; r < rows; r++) want.set(plain.subarray(r * D, (r + 1) * D), perm[r] * D);
      const [got] = run(build(true), [xs], [new Uint8Array(rows * D)], isa) as Uint8Array[];
      expect(bytes(got).equals(bytes(want)), isa).toBe(true);
    }
  });
  it('refuses a y_rows that is not a permutation, naming the entry', () => {
    const mk = (kind: 'ln' | 'attn', rowsv: number[], merged = 1) => () => {
      const b = new Builder();
      if (kind === 'ln') {
        b.op(OpKind.layernorm_q, [b.input([3, 4], DType.i16), -1, -1, b.constant(Int32Array.from(rowsv), [3], DType.i32)], [b.output([3, 4], DType.u8)], [3, 4, 0], [0.1], 'ln');
      } else {
        b.op(OpKind.attention_q, [b.input([1, 3, 6], DType.u8), -1, b.i32([1 << 30]), b.i32([40]), b.constant(Int32Array.from(rowsv), [3], DType.i32)],
          [b.output([3, 2], DType.u8)], [1, 3, 1, 2, 0, 0, 255, 0, merged], [0.1], 'att');
      }
      return native.createPlan!(b.build(), { threads: 1 });
    };
    expect(mk('ln', [0, 2, 2])).toThrow(/layernorm_q \(node 'ln'\): y_rows\[2\] = 2 repeats a row/);
    expect(mk('ln', [0, 1, 3])).toThrow(/layernorm_q \(node 'ln'\): y_rows\[2\] = 3 is outside \[0, rows\)/);
    expect(mk('attn', [1, 0, -1])).toThrow(/attention_q \(node 'att'\): y_rows\[2\] = -1 is outside \[0, W·N\)/);
    expect(mk('attn', [1, 0, 2], 0)).toThrow(/attention_q \(node 'att'\): y_rows needs heads_merged = 1/);
    expect(mk('attn', [1, 0, 2], 2)).toThrow(/attention_q \(node 'att'\): ints\[8\] heads_merged = 2 must be 0 or 1/);
    expect(mk('attn', [1, 0, 2])().release).toBeTypeOf('function');
  });
});
