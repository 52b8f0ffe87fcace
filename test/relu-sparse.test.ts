// Sparse-A linear_q (issue 6, ReLU): a linear_q whose input has zero point 0 keeps a K-major weight
// copy and, when the input's measured density is below the break-even, skips its zero codes. Exact:
// equal to an exact JS model and to the same plan compiled with sparseA: false (dense only), for
// both ISAs, sparse / dense / all-zero / mixed rows, odd sizes; and the ReLU Swin block of
// bench/relu-speed.js gives identical outputs with and without the sparse path.
import { afterAll, describe, expect, it } from 'vitest';
import { native, type IsaName } from '../src/native.js';
import { OpKind, DType } from '../src/plan/ops.js';
// @ts-expect-error plain JS module shared with the benchmark
import { Builder, rng, makeBlock, makeInput, floatBlock, buildIntBlock, toWindows, fromWindows } from '../bench/int-block.js';
import { ALL_ISAS } from './helpers/isas.js';

const HAVE_AVX2 = native.cpuFeatures().avx2;
const ISAS: IsaName[] = ALL_ISAS;
const before = native.activeIsa();
afterAll(() => native.setIsa(before));

/** compile (sparseA: false when !sparse) and run one plan */
function runPlan(desc: unknown, inputs: ArrayBufferView[], outputs: ArrayBufferView[], isa: IsaName, sparse: boolean) {
  native.setIsa(isa);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const p = native.createPlan!(desc as any, { threads: 2, sparseA: sparse });
  p.run(inputs as never, outputs as never);
  p.release();
  return outputs;
}

/** u8 activations: row kinds cycle through all-zero, very sparse, sparse, dense */
function activations(M: number, K: number, seed: number): Uint8Array {
  const r = rng(seed);
  const a = new Uint8Array(M * K);
  const dens = [0, 0.03, 0.1, 0.9, 0.08, 0.12];
  for (let m = 0; m < M; ++m) {
    const d = dens[Math.floor(m / 4 + seed) % dens.length]; // whole 4-row tiles share a density
    for (let k = 0; k < K; ++k) a[m * K + k] = r() < d ? 1 + Math.floor(r() * 255) : 0;
  }
  return a;
}

describe('linear_q sparse A (x_zp = 0)', () => {
  const shapes = [
    [37, 101, 23],
    [64, 384, 96],
    [5, 7, 3],
    [1, 300, 17],
    [13, 768, 40],
  ];
  for (const [M, K, N] of shapes)
    for (const out of ['i32', 'u8'] as const)
      it(`${M}x${K}x${N} → ${out}: sparse = dense = exact model`, () => {
        const r = rng(M * 1000 + K + N);
        const w = Int8Array.from({ length: K * N }, () => Math.floor(r() * 256) - 128);
        const bias = Int32Array.from({ length: N }, () => Math.floor(r() * 20001) - 10000);
        const x = activations(M, K, K);
        const nnz = x.reduce((s, v) => s + (v ? 1 : 0), 0);
        expect(nnz / x.length).toBeLessThan(0.5); // sparse mostly (a dense 0.9 tile can tip a small M to dense)
        const b = new Builder();
        const xi = b.input([M, K], DType.u8);
        const ydt = out === 'i32' ? DType.i32 : DType.u8;
        const y = b.output([M, N], ydt);
        const ins = [xi, b.constant(w, [K, N], DType.i8), b.constant(bias, [N], DType.i32)];
        const mult = 1 << 30, shift = 42; // ratio 2^-12
        if (out === 'u8') ins.push(b.i32([mult]), b.i32([shift]));
        b.op(OpKind.linear_q, ins, [y], [M, K, N, 0, 0, 0, out === 'u8' ? 1 : 0, 255], [], 'fc2');
        const desc = b.build();
        const want = new Int32Array(M * N);
        for (let m = 0; m < M; ++m)
          for (let n = 0; n < N; ++n) {
            let v = bias[n];
            for (let k = 0; k < K; ++k) v += x[m * K + k] * w[k * N + n];
            if (out === 'u8') {
              v = Math.max(v, 0);
              v = Number((BigInt(v) * BigInt(mult) + (1n << BigInt(shift - 1))) >> BigInt(shift));
              v = Math.min(255, Math.max(0, v));
            }
            want[m * N + n] = v;
          }
        for (const isa of ISAS)
          for (const sparse of [true, false]) {
            const ys = out === 'i32' ? new Int32Array(M * N) : new Uint8Array(M * N);
            runPlan(desc, [x], [ys], isa, sparse);
            for (let i = 0; i < want.length; ++i)
              if (ys[i] !== want[i]) throw new Error(`${isa} sparse=${sparse}: element ${i}: got ${ys[i]}, want ${want[i]}`);
          }
      });
});

describe('ReLU Swin block (bench/relu-speed.js shape, small)', () => {
  it('sparse and dense fc2 give identical outputs; the block tracks its float64 reference', () => {
    const p = makeBlock({ windows: 4, dim: 32, heads: 2, seed: 3 });
    // lower the fc1 biases so ~10 % of the ReLU codes are non-zero: the sparse path runs
    const q = { ...p, bf1: Float64Array.from(p.bf1, (v: number) => v - 1.3) };
    const x = makeInput(q, 5);
    const ref = floatBlock(q, toWindows(q, x), 'relu');
    const nz = ref.hgl.reduce((s: number, v: number) => s + (v > 0 ? 1 : 0), 0) / ref.hgl.length;
    expect(nz).toBeGreaterThan(0.01);
    expect(nz).toBeLessThan(0.12);
    const desc = buildIntBlock(q, ref, 'relu');
    const refY = fromWindows(q, ref.y);
    const outs: Float32Array[] = [];
    for (const isa of ISAS)
      for (const sparse of [true, false]) outs.push(runPlan(desc, [x], [new Float32Array(q.T * q.C)], isa, sparse)[0] as Float32Array);
    for (const o of outs.slice(1)) expect(Buffer.from(o.buffer).equals(Buffer.from(outs[0].buffer))).toBe(true);
    let err = 0, mx = 0;
    for (let i = 0; i < refY.length; ++i) {
      err = Math.max(err, Math.abs(outs[0][i] - refY[i]));
      mx = Math.max(mx, Math.abs(refY[i]));
    }
    expect(err).toBeLessThan(0.05 * mx);
  });
});
