// Integer kernels through the binding: scalar and AVX2 agree bit-exactly, results match float math
// within the bounds of docs/integer-kernels.md, bad arguments give errors naming the field.
// (The exhaustive/edge sweeps live in native/tests/qkernels_test.cc.)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { native } from '../src/native.js';
import { ALL_ISAS, SIMD_ISAS } from './helpers/isas.js';

const cli = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), 'dist', 'cli', 'main.js');

const hasAvx2 = native.cpuFeatures().avx2 && native.cpuFeatures().fma;
const isas = ALL_ISAS;

function lcg(seed: number) {
  let s = seed >>> 0;
  return (lo: number, hi: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + Math.floor((s / 4294967296) * (hi - lo + 1));
  };
}
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Runs f on every kernel set and checks the outputs are byte-identical; returns the scalar one. */
function sameOnAllIsas<T extends ArrayBufferView>(f: (isa: string) => T): T {
  const outs = isas.map((isa) => f(isa));
  for (const o of outs.slice(1)) expect(bytes(o).equals(bytes(outs[0]))).toBe(true);
  return outs[0];
}

describe('integer kernels (binding)', () => {
  it('requantizes with round-half-up and saturation, identically on both kernel sets', () => {
    const { mult, shift } = native.qQuantizeMultiplier(0.5);
    const rq = { mult: Int32Array.of(mult), shift: Int32Array.of(shift), zeroPoint: 0 };
    const x = Int32Array.of(3, -3, -5, 5, 1000, -1000, 0, 1, -1, 2147483647, -2147483648, 7, 9, 11, 13, 15, -15);
    const y = sameOnAllIsas((isa) => native.qRequantize(x, 1, x.length, rq, 's8', isa) as Int8Array);
    expect(Array.from(y.slice(0, 6))).toEqual([2, -1, -2, 3, 127, -128]);
    const r = lcg(7);
    const cols = 37, rows = 3;
    const xs = Int32Array.from({ length: rows * cols }, () => r(-(2 ** 24), 2 ** 24));
    const m = new Int32Array(cols), s = new Int32Array(cols);
    for (let c = 0; c < cols; c++) {
      const q = native.qQuantizeMultiplier(2 ** -r(4, 20) * (1 + r(0, 99) / 100));
      m[c] = q.mult; s[c] = q.shift;
    }
    for (const out of ['s8', 'u8', 's16', 's32']) {
      const yy = sameOnAllIsas((isa) => native.qRequantize(xs, rows, cols, { mult: m, shift: s, zeroPoint: out === 'u8' ? 128 : 0 }, out, isa));
      const yv = Array.from(yy as unknown as ArrayLike<number>);
      const lim = { s8: [-128, 127], u8: [0, 255], s16: [-32768, 32767], s32: [-(2 ** 31), 2 ** 31 - 1] }[out]!;
      for (let i = 0; i < xs.length; i++) {
        const want = Math.min(lim[1], Math.max(lim[0], Math.floor(xs[i] * m[i % cols] * 2 ** -s[i % cols] + 0.5) + (out === 'u8' ? 128 : 0)));
        expect(yv[i]).toBe(want);
      }
    }
    expect(() => native.qRequantize(xs, rows, cols, { mult: m.slice(0, 2), shift: s.slice(0, 2) }, 's8')).toThrow(/channels must be 1 or 37/);
  });

  it('GEMM u8×s8 is exact (s32), fused requant agrees across kernel sets, saturation-prone weights take the exact path', () => {
    const r = lcg(11);
    for (const [M, K, N] of [[1, 5, 3], [7, 33, 20], [64, 96, 48], [4, 4, 16]]) {
      const a = Uint8Array.from({ length: M * K }, () => r(0, 255));
      const w = Int8Array.from({ length: K * N }, () => r(-128, 127));
      const bias = Int32Array.from({ length: N }, () => r(-5000, 5000));
      const spec = { a, w, M, K, N, bias, aZeroPoint: 3, wZeroPoint: 0 };
      const outs = isas.map((isa) => native.qGemm(spec, isa));
      for (const o of outs) expect(bytes(o.y).equals(bytes(outs[0].y))).toBe(true);
      if (K >= 2) expect(outs[0].maddubsSafe).toBe(false);  // full-range weights cannot be proven safe
      const y = outs[0].y as Int32Array;
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let acc = bias[n];
          for (let k = 0; k < K; k++) acc += (a[m * K + k] - 3) * w[k * N + n];
          expect(y[m * N + n]).toBe(acc);
        }
      const q = native.qQuantizeMultiplier(1 / 2048);
      const fused = { ...spec, out: 'u8', relu: true, rq: { mult: Int32Array.of(q.mult), shift: Int32Array.of(q.shift), zeroPoint: 128 }, threads: 2 };
      const yu = sameOnAllIsas((isa) => native.qGemm(fused, isa).y as Uint8Array);
      for (let i = 0; i < M * N; i++) expect(yu[i]).toBe(Math.min(255, Math.max(0, y[i]) === 0 ? 128 : Math.floor(Math.max(0, y[i]) / 2048 + 0.5) + 128));
    }
    const small = Int8Array.from({ length: 32 * 16 }, (_, i) => (i % 129) - 64);
    expect(native.qGemm({ a: new Uint8Array(32), w: small, M: 1, K: 32, N: 16 }).maddubsSafe).toBe(true);
    expect(() => native.qGemm({ a: new Uint8Array(4), w: new Int8Array(16).fill(127), M: 1, K: 4, N: 4, forcePath: 1 })).toThrow(/could saturate/);
    expect(() => native.qGemm({ a: new Uint8Array(3), w: new Int8Array(16), M: 1, K: 4, N: 4 })).toThrow(/qGemm: a has 3 elements, needs 4/);
  });

  it('integer softmax: bit-exact across kernel sets, within 2/256 of float softmax, masked entries exactly 0', () => {
    const r = lcg(3);
    const rows = 6, D = 49, S = 1 / 64;
    const x = Int32Array.from({ length: rows * D }, () => r(-400, 400));
    const table = Int32Array.from({ length: 2 * D }, (_, i) => (i % 7 === 3 ? -(2 ** 30) : r(-100, 100)));
    const y = sameOnAllIsas((isa) => native.qSoftmax(x, rows, D, S, table, 2, isa) as Uint8Array);
    let maxErr = 0;
    for (let i = 0; i < rows; i++) {
      const z = Array.from({ length: D }, (_, j) => (table[(i % 2) * D + j] <= -(2 ** 30) ? -Infinity : (x[i * D + j] + table[(i % 2) * D + j]) * S));
      const mx = Math.max(...z), e = z.map((v) => Math.exp(v - mx)), sum = e.reduce((p, v) => p + v, 0);
      for (let j = 0; j < D; j++) {
        if (z[j] === -Infinity) expect(y[i * D + j]).toBe(0);
        maxErr = Math.max(maxErr, Math.abs(y[i * D + j] - Math.min(255, (e[j] / sum) * 256)));
      }
    }
    expect(maxErr).toBeLessThanOrEqual(2);
    expect(() => native.qSoftmax(x, rows, D, 2.0, null, 0)).toThrow(/too coarse/);
  });

  it('integer LayerNorm: bit-exact across kernel sets, within 1 code of float LayerNorm', () => {
    const r = lcg(5);
    for (const D of [96, 37]) {
      const rows = 5;
      const x = Int16Array.from({ length: rows * D }, () => r(-20000, 20000));
      const gamma = Float32Array.from({ length: D }, () => r(-150, 150) / 100);
      const beta = Float32Array.from({ length: D }, () => r(-50, 50) / 100);
      const os = 4 / 127;
      const y = sameOnAllIsas((isa) => native.qLayerNorm(x, rows, D, gamma, beta, os, 0, 's8', isa) as Int8Array);
      for (let i = 0; i < rows; i++) {
        const row = Array.from(x.slice(i * D, (i + 1) * D));
        const mu = row.reduce((p, v) => p + v, 0) / D;
        const sd = Math.sqrt(row.reduce((p, v) => p + (v - mu) ** 2, 0) / D);
        for (let c = 0; c < D; c++) {
          const want = Math.max(-128, Math.min(127, Math.floor((((row[c] - mu) / sd) * gamma[c] + beta[c]) / os + 0.5)));
          expect(Math.abs(y[i * D + c] - want)).toBeLessThanOrEqual(1);
        }
      }
    }
    expect(() => native.qLayerNorm(new Int16Array(10), 1, 10, new Float32Array(3), null, 0.1, 0, 's8')).toThrow(/gamma must be a Float32Array of D/);
  });

  it('integer sqrt is exact at the edges', () => {
    expect(native.qIsqrt(2n ** 64n - 1n)).toBe(4294967295n);
    expect(native.qIsqrt(0n)).toBe(0n);
    for (const k of [1n, 2n ** 20n + 7n, 2n ** 31n, 2n ** 32n - 1n]) {
      expect(native.qIsqrt(k * k)).toBe(k);
      expect(native.qIsqrt(k * k - 1n)).toBe(k - 1n);
    }
  });

  it('GELU (I-BERT polynomial within 0.02 of erf GELU; table exact to half a code), residual add, argmax', () => {
    const x = Int8Array.from({ length: 256 + 9 }, (_, i) => ((i % 256) - 128));
    const S = 0.04;
    const outs = isas.map((isa) => native.qGelu(x, S, isa));
    for (const o of outs) expect(bytes(o.y).equals(bytes(outs[0].y))).toBe(true);
    for (let i = 0; i < x.length; i++) {
      const v = x[i] * S, g = 0.5 * v * (1 + erf(v / Math.SQRT2));
      expect(Math.abs(outs[0].y[i] * outs[0].outScale - g)).toBeLessThanOrEqual(0.02 * Math.max(1, Math.abs(v)));
    }
    const table = native.qGeluTable(S, 0, 's8', 0.03, 0, 's8') as Uint8Array;
    const t = sameOnAllIsas((isa) => native.qLookup(x, table, isa) as Int8Array);
    for (let i = 0; i < x.length; i++) {
      const v = x[i] * S, g = 0.5 * v * (1 + erf(v / Math.SQRT2));
      expect(Math.abs(t[i] * 0.03 - Math.min(127 * 0.03, g))).toBeLessThanOrEqual(0.015 + 1e-9);
    }
    const r = lcg(9);
    const a = Int16Array.from({ length: 61 }, () => r(-30000, 30000));
    const b = Int16Array.from({ length: 61 }, () => r(-30000, 30000));
    const p = { sa: 0.001, za: 0, sb: 0.0013, zb: 0, sy: 0.002, zy: 0 };
    const y = sameOnAllIsas((isa) => native.qAdd(a, b, p, 's16', isa) as Int16Array);
    for (let i = 0; i < a.length; i++) expect(Math.abs(y[i] - Math.round((a[i] * 0.001 + b[i] * 0.0013) / 0.002))).toBeLessThanOrEqual(3);
    const logits = Int32Array.of(5, 9, 9, 1, -3, 0, 0, -7);
    expect(Array.from(sameOnAllIsas((isa) => native.qArgmax(logits, 2, 4, isa) as Int32Array))).toEqual([1, 1]);
  });
});

describe('swinq bench-kernels', () => {
  it('prints the contract keys as one JSON line: measured peaks of the active kernel set, fractions that agree', () => {
    const r = spawnSync(process.execPath, [cli, 'bench-kernels', '--json', '--runs', '2', '--threads', '1'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    for (const k of ['peak_gops', 'gemm_u8s8_gops', 'gemm_u8s8_peak_fraction', 'peak_gflops', 'gemm_f32_gflops', 'onnxruntime_qlinearmatmul_gops']) {
      expect(typeof j[k], k).toBe('number');
      expect(j[k], k).toBeGreaterThan(0);
    }
    expect(j.isa).toBe(native.activeIsa());
    expect(j.cpu_features).toEqual(native.cpuFeatures());
    const rel = (a: number, b: number) => Math.abs(a - b) / b;
    expect(rel(j.gemm_u8s8_peak_fraction, j.gemm_u8s8_gops / j.peak_gops)).toBeLessThan(1e-3);
    expect(rel(j.gemm_f32_peak_fraction, j.gemm_f32_gflops / j.peak_gflops)).toBeLessThan(1e-3);
    // the peaks are the active set's loops; every loop is either measured or listed as skipped with a reason
    expect(j.peak_loops).toEqual({ int8: `int8_${j.isa}`, f32: { scalar: 'f32_scalar', avx2: 'f32_avx2', avxvnni: 'f32_avx2', avx512vnni: 'f32_avx512' }[j.isa as string] });
    expect(j.peaks[j.peak_loops.int8]).toBe(j.peak_gops);
    expect(j.peaks[j.peak_loops.f32]).toBe(j.peak_gflops);
    const f = native.cpuFeatures();
    expect('int8_avx512vnni' in j.peaks).toBe(f.avx512f && f.avx512vnni);
    expect('int8_avx512vnni' in j.peaks_skipped).toBe(!(f.avx512f && f.avx512vnni));
    expect('int8_avxvnni' in j.peaks_skipped).toBe(!f.avxvnni);
    for (const v of Object.values(j.peaks_skipped)) expect(v).toMatch(/CPU lacks/);
    const bad = spawnSync(process.execPath, [cli, 'bench-kernels', '--runs', '0'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--runs must be an integer/)]);
  });

  it('--isa scalar measures the scalar set against its own peak; a set this build or CPU lacks is a one-line error', () => {
    const r = spawnSync(process.execPath, [cli, 'bench-kernels', '--json', '--runs', '1', '--threads', '1', '--isa', 'scalar', '--no-ort'],
      { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.isa).toBe('scalar');
    expect(j.peak_gops).toBe(j.peaks.int8_scalar);
    expect(Math.abs(j.gemm_u8s8_peak_fraction - j.gemm_u8s8_gops / j.peak_gops) / j.gemm_u8s8_peak_fraction).toBeLessThan(1e-3);
    if (SIMD_ISAS.includes('avxvnni')) {  // its own int8 loop; its fp32 kernels (and loop) are AVX2's
      const v = spawnSync(process.execPath, [cli, 'bench-kernels', '--json', '--runs', '1', '--threads', '1', '--isa', 'avxvnni', '--no-ort'],
        { encoding: 'utf8', timeout: 120_000 });
      expect(v.status, v.stderr).toBe(0);
      const jv = JSON.parse(v.stdout.trim().split('\n').pop()!);
      expect(jv.isa).toBe('avxvnni');
      expect(jv.peak_loops).toEqual({ int8: 'int8_avxvnni', f32: 'f32_avx2' });
    }
    for (const isa of [...(['avxvnni', 'avx512vnni'] as const).filter((s) => !SIMD_ISAS.includes(s)), 'avx512', 'sse9']) {
      const bad = spawnSync(process.execPath, [cli, 'bench-kernels', '--isa', isa, '--no-ort'], { encoding: 'utf8' });
      expect(bad.status, isa).not.toBe(0);
      expect(bad.stderr.trim().split('\n'), isa).toEqual([expect.stringMatching(new RegExp(`--isa: .*'${isa}'`))]);
    }
    if (!hasAvx2) expect(native.isaUnavailableReason('avx2')).toMatch(/lacks/);
    else expect(native.isaUnavailableReason('avx2')).toBe('');
    if (SIMD_ISAS.includes('avx512vnni')) expect(native.isaUnavailableReason('avx512vnni')).toBe('');
    else expect(native.isaUnavailableReason('avx512vnni')).toMatch(/^isa 'avx512vnni' needs .*; this CPU lacks /);
    if (SIMD_ISAS.includes('avxvnni')) expect(native.isaUnavailableReason('avxvnni')).toBe('');
    else expect(native.isaUnavailableReason('avxvnni')).toMatch(/^isa 'avxvnni' needs .*; this CPU lacks /);
    expect(native.isaUnavailableReason('avx512')).toMatch(/this build has no avx512 kernel set/);
  });

  it('the peak loops and kernel benchmarks report through typed entry points', () => {
    const p = native.peakInt8('scalar');
    expect(p).toMatchObject({ name: 'int8_scalar', available: true });
    expect(p.gops).toBeGreaterThan(0);
    if (hasAvx2) expect(native.peakF32('avx2')).toMatchObject({ name: 'f32_avx2', sequence: 'vfmadd231ps ymm', available: true });
    const g = native.qBenchGemm(8, 16, 16, { reps: 2, out: 'u8' });
    expect(g.minMs).toBeGreaterThan(0);
    expect(g.medianMs).toBeGreaterThanOrEqual(g.minMs);
    expect(g.maddubsSafe).toBe(true);
    expect(() => native.qBenchGemm(0, 16, 16)).toThrow(/qBenchGemm: M must be an integer/);
    expect(() => native.qBenchGemm(8, 16, 16, { isa: 'avx512' as never })).toThrow(/no avx512 kernel set/);
    if (SIMD_ISAS.includes('avxvnni')) expect(native.qBenchGemm(8, 16, 16, { reps: 1, isa: 'avxvnni' }).minMs).toBeGreaterThan(0);
    expect(() => native.qBenchAdd(16, 1, undefined, 's32' as 's8')).toThrow(/type must be s8 or s16/);
  });

  it('the sparse-A benchmark measures the density it generated and reports the per-call choice', () => {
    // the break-even is the active kernel set's (lower where its dense GEMM is faster: avx512vnni)
    const be = (aMax: number) => native.qBenchSparseGemm(64, 384, 96, 0.5, { reps: 1, aMax }).breakEven;
    expect(be(127)).toBeGreaterThan(be(255));
    for (const aMax of [127, 255]) {
      const d = be(aMax) / 2;
      expect(d).toBeGreaterThan(0.005);
      const lo = native.qBenchSparseGemm(64, 384, 96, d, { reps: 1, aMax });
      expect(Math.abs(lo.density - d)).toBeLessThan(Math.max(0.01, d / 2));
      expect(lo.autoSparse).toBe(true);
      expect(lo.sparse.minMs).toBeGreaterThan(0);
      const hi = native.qBenchSparseGemm(64, 384, 96, 0.6, { reps: 1, aMax, channels: true });
      expect(Math.abs(hi.density - 0.6)).toBeLessThan(0.06);
      expect(hi.autoSparse).toBe(false);
    }
    expect(() => native.qBenchSparseGemm(8, 16, 16, 1.5)).toThrow(/density must be in \[0, 1\]/);
  });
});

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse here; use a series / continued fraction to ~1e-12
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t, term = t;
    for (let n = 1; n < 80; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (t + f);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
}
