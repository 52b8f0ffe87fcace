// Calibration observers, per-channel weights, the QDQ writer and `swinq calibrate` on a small
// generated model + generated IDX data (no shared files needed): onnxruntime-node runs the QDQ file,
// swinq loads it, flags/config/errors of the CLI.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { encodeIdx } from '../src/io/idx.js';
import { InferenceSession, Tensor } from '../src/index.js';
import { calibrate, replaceGeluWithRelu } from '../src/calibrate/calibrate.js';
import {
  NUM_BINS, TensorObserver, entropyRange, fakeQuant, mseRange, percentileRange, quantizeWeightsPerChannel, roundHalfEven, uint8Params,
} from '../src/quant/observers.js';
import { decodeModel } from '../src/quant/qdq-writer.js';
import { buildModel, rand } from './helpers/onnx-builder.js';

const { onnx } = onnxProto;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-quant-'));

/** Deterministic normal samples (Box–Muller on an LCG). */
function normals(n: number, seed = 7): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}
function observe(x: Float32Array): TensorObserver {
  const o = new TensorObserver();
  o.observeRange(x, 't');
  o.observeHistogram(x);
  return o;
}

describe('observers', () => {
  it('minmax always contains zero; uint8 params make zero exact', () => {
    const o = new TensorObserver();
    o.observeRange(Float32Array.of(0.5, 2, 3), 't');
    expect(o.range('minmax')).toEqual({ lo: 0, hi: 3 });
    const q = uint8Params({ lo: -1, hi: 3 });
    expect(q.scale).toBeCloseTo(4 / 255, 7);
    expect(q.zeroPoint).toBe(64);
    expect(fakeQuant(0, q, 0, 255)).toBe(0);
  });
  it('refuses non-finite values naming the tensor', () => {
    expect(() => new TensorObserver().observeRange(Float32Array.of(1, NaN), 'attn/out')).toThrow(/'attn\/out'.*non-finite/);
  });
  it('percentile clips exactly the requested tail mass', () => {
    const h = new Float64Array(NUM_BINS).fill(1); // uniform over [0, 2048)
    const r = percentileRange(h, 0, NUM_BINS, 99);
    expect(r.lo).toBeCloseTo(20, 0);
    expect(r.hi).toBeCloseTo(NUM_BINS - 20, 0);
    expect(() => percentileRange(h, 0, 1, 30)).toThrow(/percentile/);
  });
  it('entropy and mse clip a long tail, keep a bounded one', () => {
    const x = normals(200_000);
    x[0] = 40; // one far outlier
    const o = observe(x);
    const mm = o.range('minmax');
    for (const m of ['entropy', 'mse', 'percentile'] as const) {
      const r = o.range(m);
      // mse trades clipping against rounding noise: one outlier in 200k is worth keeping partly
      expect(r.hi, m).toBeLessThan(m === 'mse' ? mm.hi : mm.hi / 3);
      expect(r.hi, m).toBeGreaterThan(2);
      expect(r.lo, m).toBeLessThan(-2);
    }
    // a uniform distribution has nothing to clip: every method keeps (almost) the whole range
    const u = Float32Array.from({ length: 100_000 }, (_, i) => (i % 1000) / 999);
    const ou = observe(u);
    for (const m of ['entropy', 'mse', 'percentile'] as const) expect(ou.range(m).hi, m).toBeGreaterThan(0.9);
    void entropyRange; void mseRange;
  });
  it('entropy ignores exact zeros (a ReLU output): the range of the non-zero values, not a tighter one', () => {
    const pos = normals(60_000).map((v) => Math.abs(v) + 0.01);
    const withZeros = new Float32Array(150_000);
    withZeros.set(pos); // 90,000 exact zeros after the positives
    const a = observe(withZeros).range('entropy'), b = observe(pos).range('entropy');
    expect(a.lo).toBe(0);
    expect(Math.abs(a.hi - b.hi)).toBeLessThan(0.05 * b.hi);
    expect(a.hi).toBeGreaterThan(2);
  });
  it('range for a one-sided tensor starts at 0', () => {
    const x = normals(50_000).map(Math.abs);
    const o = observe(Float32Array.from(x));
    for (const m of ['minmax', 'entropy', 'mse', 'percentile'] as const) expect(o.range(m).lo, m).toBe(0);
  });
  it('fake quantisation rounds half to even and saturates', () => {
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(roundHalfEven(-2.5)).toBe(-2);
    const q = { scale: 1, zeroPoint: 128 };
    expect(fakeQuant(500, q, 0, 255)).toBe(127);
    expect(fakeQuant(-500, q, 0, 255)).toBe(-128);
    expect(fakeQuant(0.5, q, 0, 255)).toBe(0);
  });
  it('per-channel int8 weights: the largest |w| of each channel maps to ±127', () => {
    const w = Float32Array.of(1, -4, 0.5, 2, 0, 0); // [3 rows(K), 2 cols(N)], channels = columns (axis 1)
    const q = quantizeWeightsPerChannel(w, [3, 2], 1);
    expect(Array.from(q.scales)).toEqual([Math.fround(1 / 127), Math.fround(4 / 127)]);
    expect(Array.from(q.data)).toEqual([127, -127, 64, 64, 0, 0]);
    const q0 = quantizeWeightsPerChannel(w, [3, 2], 0); // channels = rows
    expect(q0.scales.length).toBe(3);
    expect(q0.data[1]).toBe(-127);
    expect(q.sqnrDb).toBeGreaterThan(30);
    expect(() => quantizeWeightsPerChannel(w, [3, 2], 2)).toThrow(/axis 2/);
    expect(() => quantizeWeightsPerChannel(w, [4, 2], 1)).toThrow(/need 8/);
  });
});

// A small image model: [N,1,4,4] → Flatten → MatMul+bias → GELU(erf) → MatMul → Softmax → Dropout →
// MatMul → Gemm(transB) → logits [N,3]; plus IDX data 4×4 in tmp.
const H = 4;
function smallModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'input', dims: ['batch', 1, H, H] }],
    outputs: [{ name: 'logits', dims: ['batch', 3] }],
    initializers: [
      { name: 'w1', dims: [16, 8], data: rand(128, 1) }, { name: 'b1', dims: [8], data: rand(8, 2) },
      { name: 'w2', dims: [8, 8], data: rand(64, 3, -2, 2) }, { name: 'w3', dims: [8, 6], data: rand(48, 4) },
      { name: 'wg', dims: [3, 6], data: rand(18, 5) }, { name: 'bg', dims: [3], data: rand(3, 6) },
      { name: 'sqrt2', dims: [], data: [Math.SQRT2] }, { name: 'one', dims: [], data: [1] }, { name: 'half', dims: [], data: [0.5] },
    ],
    nodes: [
      { op: 'Flatten', inputs: ['input'], outputs: ['flat'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['flat', 'w1'], outputs: ['m1'], name: 'fc1' },
      { op: 'Add', inputs: ['m1', 'b1'], outputs: ['h'] },
      { op: 'Div', inputs: ['h', 'sqrt2'], outputs: ['g0'] },
      { op: 'Erf', inputs: ['g0'], outputs: ['g1'] },
      { op: 'Add', inputs: ['g1', 'one'], outputs: ['g2'] },
      { op: 'Mul', inputs: ['h', 'g2'], outputs: ['g3'] },
      { op: 'Mul', inputs: ['g3', 'half'], outputs: ['gelu'] },
      { op: 'MatMul', inputs: ['gelu', 'w2'], outputs: ['m2'], name: 'fc2' },
      { op: 'Softmax', inputs: ['m2'], outputs: ['p'], attrs: { axis: -1 } },
      { op: 'Dropout', inputs: ['p'], outputs: ['pd'] },
      { op: 'MatMul', inputs: ['pd', 'w3'], outputs: ['m3'], name: 'fc3' },
      { op: 'Gemm', inputs: ['m3', 'wg', 'bg'], outputs: ['logits'], attrs: { transB: 1 }, name: 'head' },
    ],
    metadata: { 'swinq.mean': '0.25', 'swinq.std': '0.5' },
  });
}
const modelPath = path.join(tmp, 'small.onnx');
fs.writeFileSync(modelPath, smallModel());
const dataDir = path.join(tmp, 'data');
fs.mkdirSync(dataDir);
{
  const n = 96;
  const img = Uint8Array.from({ length: n * H * H }, (_, i) => (Math.imul(i, 2654435761) >>> 24) & 0xff);
  const lab = Uint8Array.from({ length: n }, (_, i) => i % 3);
  for (const p of ['train', 't10k']) {
    fs.writeFileSync(path.join(dataDir, `${p}-images-idx3-ubyte`), encodeIdx({ shape: [n, H, H], data: img }));
    fs.writeFileSync(path.join(dataDir, `${p}-labels-idx1-ubyte`), encodeIdx({ shape: [n], data: lab }));
  }
}
const x = Float32Array.from({ length: 8 * H * H }, (_, i) => (((Math.imul(i + 5, 2246822519) >>> 24) & 0xff) / 255 - 0.25) / 0.5);

async function ortRun(file: string | Uint8Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file as string);
  const y = (await s.run({ input: new ort.Tensor('float32', x, [8, 1, H, H]) })).logits.data as Float32Array;
  await s.release();
  return y;
}
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

describe('QDQ writer', () => {
  it.each(['minmax', 'percentile', 'entropy', 'mse'] as const)('%s: standard QDQ that onnxruntime and swinq run close to fp32', async (method) => {
    const out = path.join(tmp, `q-${method}.onnx`);
    const r = await calibrate(modelPath, { data: dataDir, samples: 64, method, out, batch: 16, report: true });
    expect(r.out).toBe(out);
    expect(r.activations).toBe(4); // flat, gelu, pd (softmax output), m3 (Gemm input)
    expect(r.weights).toBe(4);
    const m = decodeModel(fs.readFileSync(out), out);
    const ops = m.graph.node.map((n: { opType: string }) => n.opType);
    expect(ops.filter((o: string) => o === 'QuantizeLinear').length).toBe(4);
    expect(ops.filter((o: string) => o === 'DequantizeLinear').length).toBe(8);
    const meta = Object.fromEntries(m.metadataProps.map((p: { key: string; value: string }) => [p.key, p.value]));
    expect(meta['swinq.quant.method']).toBe(method);
    expect(meta['swinq.mean']).toBe('0.25');
    // weights: int8 initializers with per-channel scales and the output-channel axis
    const inits = new Map(m.graph.initializer.map((t: { name: string }) => [t.name, t]));
    expect((inits.get('w1_quantized') as { dataType: number }).dataType).toBe(3);
    expect(inits.has('w1')).toBe(false);
    const dqW = m.graph.node.find((n: { name: string }) => n.name === 'wg_DequantizeLinear');
    expect(dqW.attribute[0].name).toBe('axis');
    expect(Number(dqW.attribute[0].i)).toBe(0); // Gemm transB=1: W is [N,K], channels on axis 0
    expect(Number(m.graph.node.find((n: { name: string }) => n.name === 'w1_DequantizeLinear').attribute[0].i)).toBe(1);
    // the softmax output gets exactly 1/256, zero point 0
    const ps = inits.get('pd_scale') as { rawData: Uint8Array };
    expect(new Float32Array(Uint8Array.from(ps.rawData).buffer)[0]).toBe(1 / 256);
    const fp = await ortRun(modelPath);
    const q = await ortRun(out);
    const range = Math.max(...fp) - Math.min(...fp);
    expect(maxAbs(fp, q)).toBeLessThan(0.1 * range);
    expect(maxAbs(fp, q)).toBeGreaterThan(0); // it really is quantized
    // swinq loads the same file (simulated QDQ) and agrees with onnxruntime
    const s = await InferenceSession.create(out);
    const y = (await s.run({ input: new Tensor('float32', x, [8, 1, H, H]) })).logits.data as Float32Array;
    s.release();
    expect(maxAbs(y, q)).toBeLessThan(0.02 * range);
    // --report: every activation and weight has an SQNR
    expect(r.report!.length).toBe(8);
    for (const t of r.report!) expect(t.sqnrDb, t.name).toBeGreaterThan(10);
  });

  it('--gelu relu replaces the erf GELU; keep leaves it', () => {
    const m = decodeModel(smallModel(), 'small');
    expect(replaceGeluWithRelu(m)).toBe(1);
    const ops = m.graph.node.map((n: { opType: string }) => n.opType);
    expect(ops).toContain('Relu');
    expect(ops).not.toContain('Erf');
    const relu = m.graph.node.find((n: { opType: string }) => n.opType === 'Relu');
    expect(relu.input).toEqual(['h']);
    expect(relu.output).toEqual(['gelu']);
  });

  it('errors name the file, node or flag', async () => {
    await expect(calibrate(path.join(tmp, 'none.onnx'), { data: dataDir, samples: 8, method: 'minmax', out: path.join(tmp, 'x.onnx') })).rejects.toThrow(/none\.onnx: cannot read/);
    await expect(calibrate(modelPath, { data: dataDir, samples: 1000, method: 'minmax', out: path.join(tmp, 'x.onnx') })).rejects.toThrow(/--samples 1000 is more than the 96 images/);
    await expect(calibrate(modelPath, { data: path.join(tmp, 'nodata'), samples: 8, method: 'minmax', out: path.join(tmp, 'x.onnx') })).rejects.toThrow(/nodata/);
    // an already-quantized model is only annotated (swinq.int.ranges); rewriting its GELU is refused naming the node
    const q = path.join(tmp, 'q-minmax.onnx');
    if (!fs.existsSync(q)) await calibrate(modelPath, { data: dataDir, samples: 16, method: 'minmax', out: q });
    await expect(calibrate(q, { data: dataDir, samples: 8, method: 'minmax', gelu: 'relu', out: path.join(tmp, 'x.onnx') })).rejects.toThrow(/already quantized \(node '.*' is (Quantize|Dequantize)Linear\); --gelu needs the fp32 model/);
    const ann = await calibrate(q, { data: dataDir, samples: 8, method: 'minmax', out: path.join(tmp, 'x.onnx') });
    expect(ann.annotated).toBe(true);
    expect(ann.activations).toBe(0);
    void onnx;
  });
});

interface Res { code: number | null; stdout: string; stderr: string }
const swinq = (args: string[]): Res => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, SWINQ_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('swinq calibrate (CLI)', () => {
  it('--json prints {out, seconds}; --config keys mirror the flags, flags win', () => {
    const out = path.join(tmp, 'cli.onnx');
    let r = swinq(['calibrate', modelPath, '--data', dataDir, '--samples', '32', '--method', 'minmax', '--out', out, '--json', '--report']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.out).toBe(out);
    expect(j.seconds).toBeGreaterThan(0);
    expect(j.report.length).toBe(8);
    expect(r.stderr).toMatch(/SQNR dB/);
    expect(fs.existsSync(out)).toBe(true);
    const cfg = path.join(tmp, 'cfg.json');
    const out2 = path.join(tmp, 'cfg.onnx');
    fs.writeFileSync(cfg, JSON.stringify({ data: dataDir, samples: 16, method: 'percentile', percentile: 99.9, out: out2 }));
    r = swinq(['calibrate', modelPath, '--config', cfg, '--method', 'mse', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j2 = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j2.out).toBe(out2);
    expect(j2.method).toBe('mse');
    expect(j2.samples).toBe(16);
  });
  it('one-line errors for missing/bad flags and config keys', () => {
    const cases: [string[], RegExp][] = [
      [['calibrate', modelPath, '--out', path.join(tmp, 'e.onnx')], /--data DIR is required/],
      [['calibrate', modelPath, '--data', dataDir, '--out', path.join(tmp, 'e.onnx'), '--method', 'kl'], /--method must be one of minmax\|percentile\|entropy\|mse, got 'kl'/],
      [['calibrate', modelPath, '--data', dataDir, '--out', path.join(tmp, 'e.onnx'), '--samples', '0'], /--samples must be an integer ≥ 1/],
      [['calibrate', modelPath, '--data', dataDir, '--out', path.join(tmp, 'e.onnx'), '--gelu', 'tanh'], /--gelu must be one of keep\|igelu\|relu/],
    ];
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ data: dataDir, smaples: 3 }));
    cases.push([['calibrate', modelPath, '--config', bad], /unknown key 'smaples'/]);
    for (const [args, re] of cases) {
      const r = swinq(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('npm warn'));
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(re);
    }
  });
});

// A ReLU MLP: Flatten → MatMul+bias → Relu → MatMul+bias → Relu → Gemm(transB)+bias → logits.
function mlpModel(batch: number | string = 'batch'): Uint8Array {
  return buildModel({
    inputs: [{ name: 'input', dims: [batch, 1, H, H] }],
    outputs: [{ name: 'logits', dims: [batch, 3] }],
    initializers: [
      { name: 'w1', dims: [16, 12], data: rand(192, 11) }, { name: 'b1', dims: [12], data: rand(12, 12, -0.2, 0.2) },
      { name: 'w2', dims: [12, 8], data: rand(96, 13) }, { name: 'b2', dims: [8], data: rand(8, 14, -0.2, 0.2) },
      { name: 'wg', dims: [3, 8], data: rand(24, 15) }, { name: 'bg', dims: [3], data: rand(3, 16) },
    ],
    nodes: [
      { op: 'Flatten', inputs: ['input'], outputs: ['flat'], attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['flat', 'w1'], outputs: ['m1'], name: 'fc1' },
      { op: 'Add', inputs: ['m1', 'b1'], outputs: ['a1'] },
      { op: 'Relu', inputs: ['a1'], outputs: ['r1'] },
      { op: 'MatMul', inputs: ['r1', 'w2'], outputs: ['m2'], name: 'fc2' },
      { op: 'Add', inputs: ['m2', 'b2'], outputs: ['a2'] },
      { op: 'Relu', inputs: ['a2'], outputs: ['r2'] },
      { op: 'Gemm', inputs: ['r2', 'wg', 'bg'], outputs: ['logits'], attrs: { transB: 1 }, name: 'head' },
    ],
  });
}

describe('QDQ → integer-only plan (chain models)', () => {
  it('quantize → linear_q (ReLU fused, u8) ×2 → linear_q (i32) → dequantize, nothing float between; matches the QDQ semantics', async () => {
    const { lowerQdqToIntPlan } = await import('../src/quant/lower-int.js');
    const { native } = await import('../src/native.js');
    const { OP_NAMES } = await import('../src/plan/ops.js');
    const mp = path.join(tmp, 'mlp.onnx');
    fs.writeFileSync(mp, mlpModel());
    const qp = path.join(tmp, 'mlp-q.onnx');
    await calibrate(mp, { data: dataDir, samples: 96, method: 'minmax', out: qp, mean: 0.25, std: 0.5 });
    const B = 8;
    const r = lowerQdqToIntPlan(qp, [B, 1, H, H]);
    if (!r.ok) throw new Error(r.reason);
    const d = r.desc;
    expect(d.ops.map((o) => OP_NAMES[o.kind])).toEqual(['quantize', 'linear_q', 'linear_q', 'linear_q', 'dequantize']);
    expect(d.ops[1].ints[6]).toBe(1); // ReLU in the epilogue
    expect(d.ops[2].ints[6]).toBe(1);
    expect(d.tensors[d.ops[1].outputs[0]].dtype).toBe(3); // u8
    // no f32 tensor is produced or read between the first quantize and the last dequantize
    for (const o of d.ops.slice(1, -1)) {
      for (const t of [...o.inputs, ...o.outputs]) if (t >= 0) expect(d.tensors[t].dtype, `${OP_NAMES[o.kind]} tensor ${t}`).not.toBe(0);
    }
    const run = (isa: 'scalar' | 'avx2' | 'auto', threads: number) => {
      native.setIsa(isa);
      const plan = native.createPlan!(d, { threads });
      const y = new Float32Array(B * 3);
      plan.run([x.subarray(0, B * H * H)], [y]);
      plan.release();
      return y;
    };
    const ys = run('scalar', 1);
    const ya = native.cpuFeatures().avx2 ? run('avx2', 2) : ys;
    native.setIsa('auto');
    expect(Buffer.from(ya.buffer).equals(Buffer.from(ys.buffer))).toBe(true); // bit-exact across ISA and threads
    // reference: the QDQ semantics exactly (swinq's float simulation of the same file). onnxruntime is
    // not the reference here: its u8×s8 path saturates int16 pair sums on AVX2 without VNNI when
    // weights use the full [−127, 127] (2·255·127 > 32767), which this random MLP triggers.
    const sim = await InferenceSession.create(qp, { qdq: 'simulate' }); // else the session picks this very integer plan
    expect(sim.plan).toBe('qdq-simulated');
    const yr = (await sim.run({ input: new Tensor('float32', x.subarray(0, B * H * H), [B, 1, H, H]) })).logits.data as Float32Array;
    sim.release();
    const range = Math.max(...yr) - Math.min(...yr);
    // float rounding between layers vs dyadic requantization: at most a code apart per layer
    expect(maxAbs(ys, yr)).toBeLessThan(0.01 * range);
    expect(maxAbs(ys, yr)).toBeGreaterThan(0); // really computed differently (integer requantization)
  });
  it('refuses what it cannot lower, naming the node', async () => {
    const { lowerQdqToIntPlan } = await import('../src/quant/lower-int.js');
    const q = path.join(tmp, 'q-refuse.onnx');
    await calibrate(modelPath, { data: dataDir, samples: 16, method: 'minmax', out: q });
    const r = lowerQdqToIntPlan(q, [8, 1, H, H]); // has Erf, Softmax
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/node '.*' \((Div|Erf|Add|Mul|Softmax)\)/);
  });
});

describe('InferenceSession on QDQ files', () => {
  it('a lowerable QDQ file runs as an integer-only plan; Swin-like ones fall back to the simulation', async () => {
    const { lowerQdqToIntPlan } = await import('../src/quant/lower-int.js');
    const { native } = await import('../src/native.js');
    const qp = path.join(tmp, 'mlp-q2.onnx');
    fs.writeFileSync(path.join(tmp, 'mlp2.onnx'), mlpModel());
    await calibrate(path.join(tmp, 'mlp2.onnx'), { data: dataDir, samples: 32, method: 'entropy', out: qp, mean: 0.25, std: 0.5 });
    const s = await InferenceSession.create(qp, { threads: 2 });
    expect(s.plan).toBe('integer-only');
    const B = 8;
    const st = s.planStats({ input: [B, 1, H, H] });
    expect(st.opCounts).toEqual({ quantize: 1, linear_q: 3, dequantize: 1 });
    const y = (await s.run({ input: new Tensor('float32', x.subarray(0, B * H * H), [B, 1, H, H]) })).logits.data as Float32Array;
    s.release();
    const r = lowerQdqToIntPlan(qp, [B, 1, H, H]);
    if (!r.ok) throw new Error(r.reason);
    const plan = native.createPlan!(r.desc, { threads: 1 });
    const y1 = new Float32Array(B * 3);
    plan.run([x.subarray(0, B * H * H)], [y1]);
    plan.release();
    expect(Buffer.from(y.buffer).equals(Buffer.from(y1.buffer))).toBe(true);
    // the GELU/softmax model is not lowerable: the session still runs it (simulation) and says why
    const q = path.join(tmp, 'q-fallback.onnx');
    await calibrate(modelPath, { data: dataDir, samples: 16, method: 'minmax', out: q });
    const s2 = await InferenceSession.create(q);
    expect(s2.planStats({ input: [2, 1, H, H] }).opCounts.linear_q).toBeUndefined();
    const info = s2.planInfo({ input: [2, 1, H, H] });
    expect(info.plan).toBe('qdq-simulated');
    expect(info.blockedBy?.reason).toMatch(/q-fallback\.onnx: /);
    s2.release();
  });
});

describe('fixed batch', () => {
  it('a model with a fixed batch dim is calibrated in batches of that size; --samples must divide', async () => {
    const mp = path.join(tmp, 'mlp-fixed.onnx');
    fs.writeFileSync(mp, mlpModel(4));
    const r = await calibrate(mp, { data: dataDir, samples: 12, method: 'mse', out: path.join(tmp, 'mlp-fixed-q.onnx'), batch: 32 });
    expect(r.activations).toBe(3);
    await expect(calibrate(mp, { data: dataDir, samples: 10, method: 'mse', out: path.join(tmp, 'x.onnx') })).rejects.toThrow(/fixed batch of 4; --samples 10 must be a multiple/);
  });
});

describe('onnxruntime quantize_static shape', () => {
  it('int32 biases behind DequantizeLinear (scale s_x·s_w[n], axis 0) lower to the same integer plan', async () => {
    const { lowerQdqToIntPlan } = await import('../src/quant/lower-int.js');
    const { OP_NAMES } = await import('../src/plan/ops.js');
    const mp = path.join(tmp, 'mlp-ort.onnx');
    fs.writeFileSync(mp, mlpModel());
    const qp = path.join(tmp, 'mlp-ort-q.onnx');
    await calibrate(mp, { data: dataDir, samples: 32, method: 'minmax', out: qp, mean: 0.25, std: 0.5 });
    const m = decodeModel(fs.readFileSync(qp), qp);
    const init = (name: string) => m.graph.initializer.find((t: { name: string }) => t.name === name);
    const f32 = (name: string) => new Float32Array(Uint8Array.from(init(name).rawData).buffer);
    for (const [b, xin, w] of [['b1', 'flat', 'w1'], ['b2', 'r1', 'w2']]) {
      const sx = f32(`${xin}_scale`)[0];
      const sw = f32(`${w}_scale`);
      const bf = f32(b);
      const sc = Float32Array.from(sw, (v) => sx * v);
      const bq = Int32Array.from(bf, (v, i) => Math.round(v / sc[i]));
      m.graph.initializer = m.graph.initializer.filter((t: { name: string }) => t.name !== b);
      m.graph.initializer.push(
        onnx.TensorProto.create({ name: `${b}_q`, dataType: 6, dims: [bq.length], rawData: new Uint8Array(bq.buffer) }),
        onnx.TensorProto.create({ name: `${b}_s`, dataType: 1, dims: [sc.length], rawData: new Uint8Array(sc.buffer) }),
      );
      m.graph.node.unshift(onnx.NodeProto.create({ name: `${b}_DequantizeLinear`, opType: 'DequantizeLinear', input: [`${b}_q`, `${b}_s`], output: [b], attribute: [onnx.AttributeProto.create({ name: 'axis', type: 2, i: 0 })] }));
    }
    const bytes = onnx.ModelProto.encode(m).finish();
    const r = lowerQdqToIntPlan(bytes, [8, 1, H, H]);
    if (!r.ok) throw new Error(r.reason);
    expect(r.desc.ops.map((o) => OP_NAMES[o.kind])).toEqual(['quantize', 'linear_q', 'linear_q', 'linear_q', 'dequantize']);
    const r0 = lowerQdqToIntPlan(qp, [8, 1, H, H]);
    if (!r0.ok) throw new Error(r0.reason);
    // same int32 biases as our own folding of the float bias (both round b/(s_x·s_w[n]))
    const biasOf = (d: typeof r.desc, k: number) => {
      const t = d.tensors[d.ops[k].inputs[2]];
      return new Int32Array(d.constants.buffer.slice(d.constants.byteOffset + t.offset, d.constants.byteOffset + t.offset + 4 * t.dims[0]));
    };
    for (const k of [1, 2]) {
      const a = biasOf(r.desc, k), b = biasOf(r0.desc, k);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1);
    }
  });
});
