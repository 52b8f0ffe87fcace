// Few-bit backward: hook API, optimality against the reference repo's shipped tables (same
// objective, same quadrature), backward vs finite differences, scalar == AVX2, CLI JSON.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { fewbit, FEWBIT_FUNCTIONS, type FewbitBits, type FewbitFn } from '../src/fewbit.js';
import { register } from '../src/cli/fewbit.js';
import { native } from '../src/native.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REF_DOC = path.resolve(root, '..', 'shared', 'reference', 'few-bit-backward.md');

interface RefTable { fn: string; bits: number; borders: number[]; levels: number[] }
/** Appendix A of the reference note: fewbit/data/builtin.npz (borders include the ±100 ends). */
function referenceTables(): RefTable[] {
  if (!fs.existsSync(REF_DOC)) {
    throw new Error(`reference note not found at ${REF_DOC} (expected ../shared relative to the repo root)`);
  }
  const text = fs.readFileSync(REF_DOC, 'utf8');
  const app = text.slice(text.indexOf('## Appendix A'));
  const re = /- `([a-z]+)(\d\d)` borders: \[([^\]]+)\]\s*\n\s*levels: \[([^\]]+)\]/g;
  const out: RefTable[] = [];
  for (const m of app.matchAll(re)) {
    out.push({ fn: m[1], bits: Number(m[2]), borders: m[3].split(',').map(Number), levels: m[4].split(',').map(Number) });
  }
  return out;
}

// Deterministic normal samples.
function normals(n: number, seed = 1): Float64Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
const packedBytesOf = (n: number, bits: number) => Math.ceil((n * bits) / 8);
const codeOf = (borders: number[], steps: number[], x: number) => {
  let c = 0;
  borders.forEach((b, i) => { if (x > Math.fround(b) || (steps[i] < 0 && x >= Math.fround(b))) c += steps[i]; });
  return c;
};

describe('fewbit tables', () => {
  it('lists the native functions', () => {
    expect(native.fewbitFunctions().map((f: { name: string }) => f.name)).toEqual([...FEWBIT_FUNCTIONS]);
  });

  it('solves every continuous function at 1-4 bits with error falling in bits', () => {
    for (const fn of FEWBIT_FUNCTIONS.slice(0, 14)) {
      let prev = Infinity;
      for (const bits of [1, 2, 3, 4] as FewbitBits[]) {
        const t = fewbit.table(fn, bits, { weight: 'normal' });
        expect(t.borders.length).toBe(2 ** bits - 1);
        expect(t.levels.length).toBe(2 ** bits);
        for (let i = 1; i < t.borders.length; i++) expect(t.borders[i]).toBeGreaterThanOrEqual(t.borders[i - 1]);
        expect(t.error).toBeGreaterThan(0);
        expect(t.error, `${fn} ${bits}`).toBeLessThan(prev);
        expect(t.domain).toEqual([-10, 10]);
        prev = t.error;
      }
    }
  });

  it('exact functions have 1-bit tables with error 0 and match PyTorch at the kinks', () => {
    for (const fn of ['relu', 'leaky_relu', 'relu6', 'hardtanh', 'hardsigmoid', 'threshold'] as FewbitFn[]) {
      const t = fewbit.table(fn, 1);
      expect(t.exact).toBe(true);
      expect(t.error).toBe(0);
    }
    const x = new Float32Array([-1, 0, 1e-45, 3, 6, 6.5, NaN, Infinity]);
    const g = fewbit.backward('relu6', fewbit.forward('relu6', x, 1).codes, new Float32Array(8).fill(2), 1);
    expect(Array.from(g)).toEqual([0, 0, 2, 2, 0, 0, 0, 0]);
    const h = fewbit.backward('hardsigmoid', fewbit.forward('hardsigmoid', new Float32Array([-3, -2.9, 2.9, 3]), 1).codes, new Float32Array(4).fill(6), 1);
    expect(Array.from(h)).toEqual([0, 1, 1, 0]);
    const lr = fewbit.table('leaky_relu', 1, { params: { negativeSlope: 0.2 } });
    expect(lr.levels).toEqual([0.2, 1]);
  });

  it('reproduces the known 3-bit GELU optimum on [-10, 10] (uniform weight)', () => {
    const t = fewbit.table('gelu', 3, { domain: [-10, 10] });
    const want = [-2.398078, -0.711092, -0.326316, 0, 0.326316, 0.711092, 2.398078];
    t.borders.forEach((b, i) => expect(b).toBeCloseTo(want[i], 5));
    expect(t.error).toBeCloseTo(1.18983e-2, 6);
    // the repo's hard-coded test fixture (same objective) is worse
    const fixture = fewbit.objective('gelu',
      [-2.39798704, -0.711248159, -0.326290283, -1.55338428e-04, 0.326182064, 0.710855860, 2.39811567],
      [-0.00260009, -0.08883533, 0.1251944, 0.37204148, 0.6277958, 0.87466175, 1.08880716, 1.00259936], { domain: [-10, 10] });
    expect(t.error).toBeLessThanOrEqual(fixture);
  });

  it('is at least as good as every shipped fewbit table on its own objective (uniform on [-100, 100])', () => {
    const refs = referenceTables();
    expect(refs.length).toBe(52); // 13 functions x 4 bit widths
    const worse: string[] = [];
    let silu3 = 0;
    for (const r of refs) {
      const fn = r.fn as FewbitFn;
      const inner = r.borders.slice(1, -1);
      expect(inner.length).toBe(2 ** r.bits - 1);
      const refJ = fewbit.objective(fn, inner, r.levels); // default domain [-100, 100], w ≡ 1
      const ours = fewbit.table(fn, r.bits as FewbitBits);
      expect(ours.domain).toEqual([-100, 100]);
      if (!(ours.error <= refJ * (1 + 1e-9))) worse.push(`${fn}${r.bits}: ours ${ours.error} > ref ${refJ}`);
      if (fn === 'silu' && r.bits === 3) silu3 = refJ / ours.error;
    }
    expect(worse).toEqual([]);
    // the note's finding: the shipped 3-bit SiLU is ~57 % worse than optimal
    expect(silu3).toBeGreaterThan(1.4);
  });

  it('accepts a histogram weight and non-default parameters', () => {
    const xs = normals(20000, 3);
    const edges = Array.from({ length: 81 }, (_, i) => -4 + i * 0.1);
    const counts = new Array(80).fill(0);
    for (const v of xs) if (v >= -4 && v < 4) counts[Math.floor((v + 4) / 0.1)]++;
    const th = fewbit.table('gelu', 2, { weight: { edges, counts } });
    const tn = fewbit.table('gelu', 2, { weight: 'normal', domain: [-4, 4] });
    expect(th.weight).toBe('histogram');
    expect(th.domain).toEqual([-4, 4]);
    th.borders.forEach((b, i) => expect(Math.abs(b - tn.borders[i])).toBeLessThan(0.1));
    const e1 = fewbit.table('elu', 2), e3 = fewbit.table('elu', 2, { params: { alpha: 3 } });
    expect(e3.levels[0]).not.toBeCloseTo(e1.levels[0], 3);
  });

  it('folds even derivatives: codes of |x|, same bytes, lower J, backward still ≈ f′', () => {
    const xs = Float32Array.from(normals(100000, 11));
    const ones = new Float32Array(xs.length).fill(1);
    for (const bits of [1, 2, 3] as FewbitBits[]) {
      const plain = fewbit.table('tanh', bits, { weight: 'normal' });
      const folded = fewbit.table('tanh', bits, { weight: 'normal', fold: true });
      expect(folded.fold).toBe(true);
      expect(folded.borders[0]).toBeGreaterThanOrEqual(0);
      expect(folded.error).toBeLessThan(plain.error * (bits === 1 ? 0.9 : 0.5));
      const { codes } = fewbit.forward('tanh', xs, bits, { weight: 'normal', fold: true });
      expect(codes.length).toBe(packedBytesOf(xs.length, bits));
      const gi = fewbit.backward('tanh', codes, ones, bits, { weight: 'normal', fold: true });
      let mse = 0;
      for (let i = 0; i < xs.length; i++) mse += (gi[i] - (1 - Math.tanh(xs[i]) ** 2)) ** 2;
      mse /= xs.length;
      expect(mse / folded.error).toBeGreaterThan(0.9);
      expect(mse / folded.error).toBeLessThan(1.1);
      // x and -x share a code
      const pm = fewbit.backward('tanh', fewbit.forward('tanh', new Float32Array([0.7, -0.7, 2, -2]), bits, { fold: true }).codes, new Float32Array(4).fill(1), bits, { fold: true });
      expect(pm[0]).toBe(pm[1]);
      expect(pm[2]).toBe(pm[3]);
    }
    expect(() => fewbit.table('gelu', 2, { fold: true })).toThrow(/fold needs an even derivative/);
  });

  it('rejects bad arguments with messages naming the field', () => {
    expect(() => fewbit.table('nope' as FewbitFn, 2)).toThrow(/unknown function "nope"/);
    expect(() => fewbit.table('gelu', 5 as FewbitBits)).toThrow(/bits must be 1, 2, 3 or 4/);
    expect(() => fewbit.table('gelu', 2, { domain: [3, -3] })).toThrow(/options.domain/);
    expect(() => fewbit.table('gelu', 2, { weight: 'cauchy' as 'normal' })).toThrow(/options.weight/);
    expect(() => fewbit.table('gelu', 2, { weight: { edges: [0, 1, 2], counts: [1] } })).toThrow(/counts must have/);
    expect(() => fewbit.table('gelu', 2, { params: { alpha: 2 } })).toThrow(/gelu has no parameter 'alpha'/);
    expect(() => fewbit.table('celu', 2, { params: { alpha: -1 } })).toThrow(/celu alpha must be > 0/);
    expect(() => fewbit.table('gelu', 2, { grid: 3 })).toThrow(/options.grid/);
    const { codes } = fewbit.forward('gelu', new Float32Array(10), 3);
    expect(() => fewbit.backward('gelu', codes, new Float32Array(11), 3)).toThrow(/codes has 4 bytes but gradOut has 11 elements/);
    expect(() => fewbit.backward('gelu', codes, new Float32Array(10), 2)).toThrow(/at 2 bits need 3/);
    expect(() => fewbit.objective('gelu', [1, 0], [0, 0, 0])).toThrow(/ascending/);
    expect(() => native.fewbitForward('gelu', [1, 2], 2)).toThrow(/x must be a Float32Array/);
  });
});

describe('fewbit codec', () => {
  it('forward gives f(x) and packed codes of the interval; backward gives gradOut · level', () => {
    const t = fewbit.table('tanh', 3);
    const x = new Float32Array([-5, -1, -0.5, 0, 0.25, 1, 2, 40, NaN, -Infinity, Infinity, Math.fround(t.borders[2])]);
    const { y, codes } = fewbit.forward('tanh', x, 3);
    expect(codes.length).toBe(Math.ceil((x.length * 3) / 8));
    x.forEach((v, i) => (Number.isNaN(v) ? expect(y[i]).toBeNaN() : expect(y[i]).toBeCloseTo(Math.tanh(v), 6)));
    const g = new Float32Array(x.length).map((_, i) => i - 3.5);
    const gi = fewbit.backward('tanh', codes, g, 3);
    x.forEach((v, i) => expect(gi[i]).toBe(Math.fround(g[i] * Math.fround(t.levels[codeOf(t.borders, t.steps, v)]))));
    // NaN and -inf take code 0, +inf the top code, a value on a border the left interval
    expect(gi[8]).toBe(Math.fround(g[8] * Math.fround(t.levels[0])));
    expect(gi[10]).toBe(Math.fround(g[10] * Math.fround(t.levels[7])));
    expect(gi[11]).toBe(Math.fround(g[11] * Math.fround(t.levels[2])));
  });

  it('scalar and AVX2 kernels agree bit for bit (random + edge inputs, odd lengths)', () => {
    if (!native.cpuFeatures().avx2) return expect(native.activeIsa()).toBe('scalar');
    const before = native.activeIsa();
    const z = normals(4099, 9);
    const edge = [0, -0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3e38, -3e38];
    try {
      for (const [fn, fold] of [['gelu', false], ['silu', false], ['tanh', false], ['tanh', true], ['relu6', false], ['hardswish', false]] as [FewbitFn, boolean][]) {
        for (const bits of [1, 2, 3, 4] as FewbitBits[]) {
          const o = { fold };
          const t = fewbit.table(fn, bits, o);
          for (const n of [1, 7, 8, 9, 23, 64, 257, 4099]) {
            const x = new Float32Array(n).map((_, i) => (i % 7 === 0 ? edge[i % edge.length] : i % 11 === 0 ? t.borders[i % t.borders.length] : 3 * z[i]));
            const g = new Float32Array(n).map((_, i) => z[(i * 7) % z.length]);
            native.setIsa('scalar');
            const s = fewbit.forward(fn, x, bits, o), sg = fewbit.backward(fn, s.codes, g, bits, o);
            native.setIsa('avx2');
            const v = fewbit.forward(fn, x, bits, o), vg = fewbit.backward(fn, v.codes, g, bits, o);
            expect(Buffer.from(v.codes).equals(Buffer.from(s.codes)), `${fn} fold=${fold} b${bits} n=${n} codes`).toBe(true);
            expect(Buffer.from(vg.buffer).equals(Buffer.from(sg.buffer)), `${fn} fold=${fold} b${bits} n=${n} grad`).toBe(true);
          }
        }
      }
    } finally {
      native.setIsa(before);
    }
  });

  it('backward approximates f′ with the expected error (finite differences, normal inputs)', () => {
    const xs = normals(200000, 5);
    const x = Float32Array.from(xs);
    const ones = new Float32Array(x.length).fill(1);
    let prev = Infinity;
    for (const bits of [1, 2, 3, 4] as FewbitBits[]) {
      const opts = { weight: 'normal' as const };
      const act = fewbit.activation('silu', bits, opts);
      const gi = act.backward(act.forward(x).codes, ones);
      let mse = 0;
      for (let i = 0; i < x.length; i++) {
        const v = x[i], h = 1e-4;
        const d = (silu(v + h) - silu(v - h)) / (2 * h);
        mse += (gi[i] - d) ** 2;
      }
      mse /= x.length;
      // E[(f′(X) − q(X))²] for X ~ N(0, 1) is J with the normal weight (sampling error ~ few %)
      expect(mse / act.table.error, `silu ${bits} bits`).toBeGreaterThan(0.9);
      expect(mse / act.table.error, `silu ${bits} bits`).toBeLessThan(1.1);
      expect(mse).toBeLessThan(prev);
      prev = mse;
    }
    // exact functions: backward == f′ away from the kinks
    const g = fewbit.backward('leaky_relu', fewbit.forward('leaky_relu', new Float32Array([-2, 3]), 1).codes, new Float32Array([1, 1]), 1);
    expect(Array.from(g)).toEqual([Math.fround(0.01), 1]);
  });

  it('handles views at odd offsets and reuses a gradIn buffer', () => {
    const base = Float32Array.from(normals(103, 13));
    const x = base.subarray(3, 100);
    const a = fewbit.forward('gelu', x, 3), b = fewbit.forward('gelu', Float32Array.from(x), 3);
    expect(Buffer.from(a.codes).equals(Buffer.from(b.codes))).toBe(true);
    expect(Array.from(a.y)).toEqual(Array.from(b.y));
    const act = fewbit.activation('gelu', 3);
    const g = Float32Array.from(normals(97, 17));
    const out = new Float32Array(97);
    const codesView = new Uint8Array(a.codes.length + 5).subarray(5);
    codesView.set(a.codes);
    expect(act.backward(codesView, g, out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(fewbit.backward('gelu', a.codes, g, 3)));
    expect(() => act.backward(a.codes, g, new Float32Array(3))).toThrow(/gradIn must be a Float32Array of 97/);
  });

  it('keeps b/32 of the fp32 bytes', () => {
    for (const bits of [1, 2, 3, 4] as FewbitBits[]) {
      const n = 1001;
      expect(fewbit.forward('gelu', new Float32Array(n), bits).codes.byteLength).toBe(Math.ceil((n * bits) / 8));
    }
  });
});

// A small SiLU MLP trained by full-batch SGD in plain JS; the hidden activation's backward is
// either exact or few-bit (the hook API inside a real training loop).
function trainMlp(bits: FewbitBits | 0, steps: number): number[] {
  const N = 256, D = 4, H = 32, lr = 0.05;
  let s = 42;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296 - 0.5;
  const X = new Float32Array(N * D).map(() => 4 * u());
  const Y = new Float32Array(N).map((_, n) => Math.sin(X[n * D]) + X[n * D + 1] * X[n * D + 2] - 0.5 * Math.abs(X[n * D + 3]));
  const W1 = new Float32Array(D * H).map(() => u()), b1 = new Float32Array(H), W2 = new Float32Array(H).map(() => u() * 0.5);
  let b2 = 0;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const act = bits ? fewbit.activation('silu', bits, { weight: 'normal' }) : undefined;
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const Hp = new Float32Array(N * H);
    for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) {
      let a = b1[h];
      for (let d = 0; d < D; d++) a += X[n * D + d] * W1[d * H + h];
      Hp[n * H + h] = a;
    }
    let A: Float32Array, codes: Uint8Array | undefined;
    if (act) ({ y: A, codes } = act.forward(Hp));
    else A = Hp.map((v) => v * sig(v));
    const dOut = new Float32Array(N);
    let loss = 0;
    for (let n = 0; n < N; n++) {
      let o = b2;
      for (let h = 0; h < H; h++) o += A[n * H + h] * W2[h];
      dOut[n] = (2 * (o - Y[n])) / N;
      loss += (o - Y[n]) ** 2 / N;
    }
    losses.push(loss);
    const dA = new Float32Array(N * H), gW2 = new Float32Array(H);
    let gb2 = 0;
    for (let n = 0; n < N; n++) {
      gb2 += dOut[n];
      for (let h = 0; h < H; h++) { gW2[h] += A[n * H + h] * dOut[n]; dA[n * H + h] = dOut[n] * W2[h]; }
    }
    const dH = act ? act.backward(codes!, dA) : dA.map((g, i) => { const q = sig(Hp[i]); return g * q * (1 + Hp[i] * (1 - q)); });
    const gW1 = new Float32Array(D * H), gb1 = new Float32Array(H);
    for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) {
      const g = dH[n * H + h];
      gb1[h] += g;
      for (let d = 0; d < D; d++) gW1[d * H + h] += X[n * D + d] * g;
    }
    for (let i = 0; i < W1.length; i++) W1[i] -= lr * gW1[i];
    for (let i = 0; i < H; i++) { b1[i] -= lr * gb1[i]; W2[i] -= lr * gW2[i]; }
    b2 -= lr * gb2;
  }
  return losses;
}

describe('fewbit in a training loop', () => {
  it('trains a small MLP with 2- and 3-bit SiLU backward about as well as with the exact one', () => {
    const exact = trainMlp(0, 300);
    expect(exact[299]).toBeLessThan(0.05 * exact[0]);
    for (const bits of [2, 3] as FewbitBits[]) {
      const few = trainMlp(bits, 300);
      for (const t of [99, 299]) expect(Math.abs(few[t] - exact[t]) / exact[t], `${bits} bits, step ${t}`).toBeLessThan(0.1);
    }
  });
});

describe('swinq fewbit CLI', () => {
  async function runInProcess(args: string[]): Promise<string> {
    const program = new Command('swinq').exitOverride();
    register(program);
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
    try {
      await program.parseAsync(['node', 'swinq', ...args]);
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  it('prints borders, levels and error as JSON', async () => {
    const out = await runInProcess(['fewbit', 'gelu', '--bits', '3', '--domain', '-10,10', '--json']);
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.borders).toHaveLength(7);
    expect(r.levels).toHaveLength(8);
    expect(r.error).toBeCloseTo(1.18983e-2, 6);
    const n = JSON.parse((await runInProcess(['fewbit', 'tanh', '--bits', '2', '--weight', 'normal', '--json'])).trim());
    expect(n.weight).toBe('normal');
    expect(n.domain).toEqual([-10, 10]);
    expect(n.borders).toHaveLength(3);
    const f = JSON.parse((await runInProcess(['fewbit', 'sigmoid', '--bits', '2', '--fold', '--json'])).trim());
    expect(f.fold).toBe(true);
    expect(f.error).toBeLessThan(fewbit.table('sigmoid', 2).error);
    await expect(runInProcess(['fewbit', 'gelu', '--bits', '2', '--fold'])).rejects.toThrow(/fold needs an even derivative/);
    await expect(runInProcess(['fewbit', 'gelu', '--bits', '2', '--domain', '1,x'])).rejects.toThrow(/--domain must be LO,HI/);
    await expect(runInProcess(['fewbit', 'gelu', '--bits', '2', '--weight', 'laplace'])).rejects.toThrow(/--weight must be/);
  });

  describe('built binary', () => {
    // dist/ is built from src/ once by test/global-setup.ts.
    const out = path.join(root, 'dist');
    beforeAll(() => {
      if (!fs.existsSync(path.join(out, 'cli', 'main.js'))) throw new Error('dist/cli/main.js is missing (tsc did not emit it)');
    });
    const run = (args: string[]) => spawnSync(process.execPath, [path.join(out, 'cli', 'main.js'), ...args], {
      encoding: 'utf8', env: { ...process.env, SWINQ_ADDON: path.join(root, 'build', 'Release', 'swinq.node'), SWINQ_DEBUG: '' },
    });

    it('writes one JSON line and exits 0; one-line errors exit non-zero', () => {
      const ok = run(['fewbit', 'silu', '--bits', '2', '--json']);
      expect(ok.status, ok.stderr).toBe(0);
      const r = JSON.parse(ok.stdout.trim().split('\n').pop()!);
      expect(Object.keys(r)).toEqual(expect.arrayContaining(['borders', 'levels', 'error']));
      expect(r.borders).toHaveLength(3);
      const bad = run(['fewbit', 'swish', '--bits', '2']);
      expect(bad.status).toBe(1);
      expect(bad.stdout).toBe('');
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(/unknown function 'swish'/);
      const bits = run(['fewbit', 'gelu', '--bits', '0']);
      expect(bits.status).not.toBe(0);
      expect(bits.stderr).toMatch(/--bits/);
    });
  });
});
