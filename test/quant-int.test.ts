// Integer-only micro-Swin from our QDQ file (src/quant/integer-lowering.ts): the plan has no f32 tensor
// between the input quantize and the output dequantize, accuracy on 1,000 test images is within
// 0.3 pp of fp32, and outputs are bit-identical across runs, 1/2 threads and batch sizes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { native, type PlanDescJS } from '../src/native.js';
import { loadModel } from '../src/onnx/load.js';
import { loadLabelledImages, normalizedImages } from '../src/io/idx.js';
import { calibrate } from '../src/calibrate/calibrate.js';
import { calibratePlanRanges, INT_RANGES_KEY as SWIN_RANGES_KEY, type PlanRanges } from '../src/quant/plan-ranges.js';
import { lowerFp32, stripQdq } from '../src/quant/float-plan.js';
import { lowerIntegerPlan as lowerSwinInt } from '../src/quant/integer-lowering.js';
import { emitPlan } from '../src/compile/plan.js';
import { OP_NAMES, DType, Storage } from '../src/plan/ops.js';
import type { Graph } from '../src/ir/graph.js';
import { InferenceSession, Tensor } from '../src/index.js';
import { decodeModel, encodeModel, setMetadata } from '../src/quant/qdq-writer.js';
import { SIMD_ISAS } from './helpers/isas.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '..', 'shared');
const MODEL = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const DATA = path.join(shared, 'data', 'fashion-mnist');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-quant-int-'));
const Q = path.join(tmp, 'q.onnx');
const N = 2000; // one image = 0.05 pp: the 0.3 pp target is not lost in sampling noise
const B = 100;

const argmax = (y: ArrayLike<number>, r: number) => { let b = 0; for (let k = 1; k < 10; k++) if (y[r * 10 + k] > y[r * 10 + b]) b = k; return b; };

function runPlan(desc: PlanDescJS, x: Float32Array, batch: number, threads: number): Float32Array {
  const p = native.createPlan!(desc, { threads });
  const out = new Float32Array(N * 10);
  try {
    for (let b = 0; b < x.length / 784 / batch; b++) {
      const y = new Float32Array(batch * 10);
      p.run([x.subarray(b * batch * 784, (b + 1) * batch * 784)], [y]);
      out.set(y, b * batch * 10);
    }
  } finally { p.release(); }
  return out.subarray(0, (x.length / 784) * 10);
}

describe('integer-only micro-Swin', () => {
  let g: Graph;
  let ranges: PlanRanges;
  let x: Float32Array;
  let labels: Uint8Array;
  beforeAll(async () => {
    if (!fs.existsSync(MODEL) || !fs.existsSync(DATA)) {
      throw new Error(`shared models/data not found at ${shared} (expected ../shared relative to the repo root, with models/swin-micro-fmnist.onnx and data/fashion-mnist/)`);
    }
    await calibrate(MODEL, { data: DATA, samples: 64, method: 'minmax', out: Q, threads: 1 });
    g = stripQdq(loadModel(Q));
    const train = loadLabelledImages(DATA, 'train');
    ranges = calibratePlanRanges(g, normalizedImages(train, 0, 512, 0.286, 0.353), [1, 28, 28], 32);
    const ds = loadLabelledImages(DATA, 'test');
    x = normalizedImages(ds, 0, N, 0.286, 0.353);
    labels = ds.labels.subarray(0, N);
  }, 120_000);

  it('plan: quantize first, dequantize last, no f32 tensor in between', () => {
    const r = lowerSwinInt(g, [B, 1, 28, 28], ranges);
    if (!r.ok) throw new Error(r.reason);
    const ops = r.desc.ops.map((o) => OP_NAMES[o.kind]);
    expect(ops[0]).toBe('quantize');
    expect(ops[ops.length - 1]).toBe('dequantize');
    for (const k of ['linear_q', 'attention_q', 'layernorm_q', 'avgpool_q', 'index_map']) expect(ops).toContain(k);
    // every residual add is in its linear's epilogue (input 6)
    expect(ops).not.toContain('add_q');
    expect(r.desc.ops.filter((o) => OP_NAMES[o.kind] === 'linear_q' && (o.inputs[6] ?? -1) >= 0).length).toBe(8);
    for (const k of ['linear', 'matmul', 'softmax', 'layernorm', 'reduce', 'binary', 'unary']) expect(ops).not.toContain(k);
    const T = r.desc.tensors;
    for (const o of r.desc.ops.slice(1, -1)) {
      for (const t of [...o.inputs, ...o.outputs]) {
        if (t < 0 || T[t].storage === Storage.constant) continue;
        expect(T[t].dtype, `op ${OP_NAMES[o.kind]} '${o.name}' tensor ${t}`).not.toBe(DType.f32);
      }
    }
    expect(r.desc.ops[0].outputs.every((t) => T[t].dtype === DType.u8)).toBe(true);
  });

  it('accuracy on 2,000 test images within 0.3 pp of fp32', () => {
    const r = lowerSwinInt(g, [B, 1, 28, 28], ranges);
    if (!r.ok) throw new Error(r.reason);
    const yi = runPlan(r.desc, x, B, 2);
    const { stats: _s, ...fdesc } = emitPlan(lowerFp32(loadModel(MODEL), [B, 1, 28, 28]));
    const yf = runPlan(fdesc, x, B, 2);
    const acc = (y: ArrayLike<number>) => { let ok = 0; for (let i = 0; i < N; i++) if (argmax(y, i) === labels[i]) ok++; return ok / N; };
    const ai = acc(yi), af = acc(yf);
    console.log(`integer-only ${ai.toFixed(4)} fp32 ${af.toFixed(4)} (${N} test images)`);
    expect(af).toBeGreaterThan(0.8);
    expect(Math.abs(ai - af)).toBeLessThanOrEqual(0.003 + 1e-9);
    let diff = 0;
    for (let i = 0; i < yf.length; i++) diff = Math.max(diff, Math.abs(yf[i] - yi[i]));
    expect(diff).toBeGreaterThan(1e-3); // really a different computation
  });

  it('the unfused lowering (matmul_q + softmax_q, 8-bit activations) stays available and agrees on the labels', () => {
    const r = lowerSwinInt(g, [B, 1, 28, 28], ranges, { fuseAttention: false, actLevels: 255 });
    if (!r.ok) throw new Error(r.reason);
    const ops = r.desc.ops.map((o) => OP_NAMES[o.kind]);
    expect(ops).toContain('matmul_q');
    expect(ops).toContain('softmax_q');
    expect(ops).not.toContain('attention_q');
    const fused = lowerSwinInt(g, [B, 1, 28, 28], ranges);
    if (!fused.ok) throw new Error(fused.reason);
    const xs = x.subarray(0, 200 * 784);
    const a = runPlan(r.desc, xs, B, 2), b = runPlan(fused.desc, xs, B, 2);
    let same = 0;
    for (let i = 0; i < 200; i++) if (argmax(a, i) === argmax(b, i)) same++;
    expect(same).toBeGreaterThanOrEqual(196);
  });

  it('the plan fusions (residual add in the linear epilogue, row gathers folded into attention and LayerNorm stores) give the unfused integers (1/2 threads, every ISA)', () => {
    const xs = x.subarray(0, 16 * 784);
    for (const b of [1, 16]) {
      const lower = (o: object) => { const r = lowerSwinInt(g, [b, 1, 28, 28], ranges, o); if (!r.ok) throw new Error(r.reason); return r.desc; };
      const fused = lower({}), noRes = lower({ fuseResidual: false }), noFold = lower({ foldRowGathers: false });
      const none = lower({ fuseResidual: false, foldRowGathers: false });
      const kinds = (d: PlanDescJS) => d.ops.map((o) => OP_NAMES[o.kind]);
      const count = (d: PlanDescJS, k: string) => kinds(d).filter((n) => n === k).length;
      // micro-Swin: 8 residual adds; 4 head merges after attention, 2 window partitions after norm1
      expect(count(noRes, 'add_q')).toBe(8);
      expect(count(fused, 'add_q')).toBe(0);
      expect(count(noFold, 'index_map') - count(fused, 'index_map')).toBe(6);
      expect(fused.ops.filter((o) => OP_NAMES[o.kind] === 'attention_q' && o.ints[8] === 1).length).toBe(4);
      expect(fused.ops.filter((o) => OP_NAMES[o.kind] === 'layernorm_q' && (o.inputs[3] ?? -1) >= 0).length).toBe(2);
      expect(kinds(none).length - kinds(fused).length).toBe(14);
      const before = native.activeIsa();
      try {
        for (const isa of [...SIMD_ISAS, 'scalar'] as const) {
          native.setIsa(isa);
          for (const threads of [1, 2]) {
            const want = Array.from(runPlan(none, xs, b, threads));
            for (const [name, d] of [['fused', fused], ['fuseResidual: false', noRes], ['foldRowGathers: false', noFold]] as const)
              expect(Array.from(runPlan(d, xs, b, threads)), `${name}, ${isa}, batch ${b}, ${threads} threads`).toEqual(want);
          }
        }
      } finally { native.setIsa(before); }
    }
  });

  it('row regions: micro-Swin batch 1 at 2 threads hands off 14 times a run instead of 39, with the integers of 1 thread', () => {
    const r = lowerSwinInt(g, [1, 1, 28, 28], ranges);
    if (!r.ok) throw new Error(r.reason);
    const xs = x.subarray(0, 784);
    const one = native.createPlan!(r.desc, { threads: 1 });
    const want = new Float32Array(10);
    one.run([xs], [want]);
    one.release();
    for (const rowRegions of [true, false]) {
      const p = native.createPlan!(r.desc, { threads: 2, rowRegions });
      try {
        const c = p.threadChoice();
        expect(c.ops).toBe(39);
        expect(c.jobs).toBe(rowRegions ? 14 : 39);
        const y = new Float32Array(10);
        // through the thread choice's probes (pool, caller, mixed) and into its hold
        for (let i = 0; i < 60; i++) { y.fill(NaN); p.run([xs], [y]); expect(Array.from(y)).toEqual(Array.from(want)); }
        expect(p.threadChoice().choices).toBeGreaterThanOrEqual(1);
      } finally { p.release(); }
    }
  });

  it('bit-identical across runs, 1/2 threads, batch 1 vs batch 16, scalar vs AVX2', () => {
    const xb = x.subarray(0, 16 * 784);
    const r16 = lowerSwinInt(g, [16, 1, 28, 28], ranges);
    const r1 = lowerSwinInt(g, [1, 1, 28, 28], ranges);
    if (!r16.ok || !r1.ok) throw new Error('lowering failed');
    const before = native.activeIsa();
    const outs: Float32Array[] = [];
    try {
      for (const isa of [...SIMD_ISAS, 'scalar'] as const) {
        native.setIsa(isa);
        for (const threads of [1, 2]) {
          outs.push(runPlan(r16.desc, xb, 16, threads), runPlan(r16.desc, xb, 16, threads));
          outs.push(runPlan(r1.desc, xb, 1, threads));
        }
      }
    } finally { native.setIsa(before); }
    expect(outs[0].length).toBe(160);
    for (const o of outs.slice(1)) expect(Buffer.from(o.buffer, o.byteOffset, o.byteLength).equals(Buffer.from(outs[0].buffer, outs[0].byteOffset, outs[0].byteLength))).toBe(true);
  });

  it('a method other than minmax narrows the uint8 ranges the integer plan uses (int16 keeps min/max)', () => {
    const train = loadLabelledImages(DATA, 'train');
    const r = calibratePlanRanges(g, normalizedImages(train, 0, 64, 0.286, 0.353), [1, 28, 28], 32, 1, 'percentile', 99.9);
    const ops = Object.values(r.ops);
    expect(r.input.length).toBe(2); // the graph input keeps its full range
    expect(ops.every((e) => e.length === 4)).toBe(true);
    for (const [mn, mx, lo, hi] of ops) { expect(lo).toBeGreaterThanOrEqual(Math.min(mn, 0) - 1e-6); expect(hi).toBeLessThanOrEqual(Math.max(mx, 0) + 1e-6); }
    expect(ops.some(([mn, mx, lo, hi]) => lo > mn + 1e-6 || hi < mx - 1e-6)).toBe(true);
    const clipped = lowerSwinInt(g, [1, 1, 28, 28], r), plain = lowerSwinInt(g, [1, 1, 28, 28], { input: r.input, ops: Object.fromEntries(Object.entries(r.ops).map(([k, e]) => [k, e.slice(0, 2)])) });
    if (!clipped.ok || !plain.ok) throw new Error('lowering failed');
    const lnScales = (d: typeof clipped.desc) => d.ops.filter((o) => OP_NAMES[o.kind] === 'layernorm_q' && d.tensors[o.outputs[0]].dtype === DType.u8).map((o) => o.floats[0]);
    const a = lnScales(clipped.desc), b = lnScales(plain.desc);
    expect(a.length).toBe(b.length);
    expect(a.some((v, i) => v < b[i] * 0.999)).toBe(true);
  });

  it('a QDQ file without swinq ranges (as from another tool) runs integer-only from its own scales; calibrate annotates it with the finer plan ranges', async () => {
    const m = decodeModel(fs.readFileSync(Q), Q);
    m.metadataProps = m.metadataProps.filter((p: { key: string }) => p.key !== SWIN_RANGES_KEY);
    const bare = path.join(tmp, 'bare.onnx'), annotated = path.join(tmp, 'annotated.onnx');
    fs.writeFileSync(bare, encodeModel(m));
    const before = Buffer.from(fs.readFileSync(bare));
    const sb = await InferenceSession.create(bare, { threads: 1 });
    try {
      // its uint8 Q/DQ scales set the GEMM-input ranges; the int16 residual stream (no Q/DQ in the
      // file) gets interval bounds
      expect(sb.planInfo({ input: [2, 1, 28, 28] })).toEqual({ plan: 'integer-only' });
      expect(sb.planStats({ input: [2, 1, 28, 28] }).opCounts.attention_q).toBe(4);
    } finally { sb.release(); }
    const res = await calibrate(bare, { data: DATA, samples: 64, method: 'minmax', out: annotated, threads: 1 });
    expect(res.annotated).toBe(true);
    expect(res.planRanges).toBe(Object.keys(ranges.ops).length + 1);
    expect(Buffer.from(fs.readFileSync(bare)).equals(before)).toBe(true); // the input file is untouched
    const sa = await InferenceSession.create(annotated, { threads: 1 });
    const sq = await InferenceSession.create(Q, { threads: 1 });
    try {
      expect(sa.planStats({ input: [4, 1, 28, 28] }).opCounts.attention_q).toBe(4);
      const feed = { input: new Tensor('float32', x.subarray(0, 4 * 784), [4, 1, 28, 28]) };
      const ya = (await sa.run(feed)).logits.data as Float32Array, yq = (await sq.run(feed)).logits.data as Float32Array;
      // same calibration images and method as the file's own ranges: the same integer plan
      expect(Array.from(ya)).toEqual(Array.from(yq));
    } finally { sa.release(); sq.release(); }
  });

  it('ops it cannot lower are named', () => {
    const r = lowerSwinInt(g, [1, 1, 28, 28], { input: ranges.input, ops: {} });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toMatch(/plan op '\w+' \(.+\): no calibrated range/);
      expect(g.nodes.some((n) => n.name === r.node && n.opType === r.op)).toBe(true); // an ONNX node of the graph
    }
  });

  it('InferenceSession on the calibrated file runs the integer-only plan (ranges from its metadata)', async () => {
    const s = await InferenceSession.create(Q, { threads: 1 });
    try {
      expect(Object.keys(JSON.parse(s.metadata[SWIN_RANGES_KEY]).ops).length).toBe(Object.keys(ranges.ops).length);
      expect(s.plan).toBe('integer-only');
      const st = s.planStats({ input: [4, 1, 28, 28] });
      expect(st.opCounts.attention_q).toBe(4); // q·kᵀ, softmax and P·V of each block fused
      expect(st.opCounts.linear ?? 0).toBe(0);
      expect(st.opCounts.binary ?? 0).toBe(0);
      const y = (await s.run({ input: new Tensor('float32', x.subarray(0, 4 * 784), [4, 1, 28, 28]) })).logits.data as Float32Array;
      const r = lowerSwinInt(g, [4, 1, 28, 28], JSON.parse(s.metadata[SWIN_RANGES_KEY]));
      if (!r.ok) throw new Error(r.reason);
      expect(Array.from(y)).toEqual(Array.from(runPlan(r.desc, x.subarray(0, 4 * 784), 4, 1)));
    } finally { s.release(); }
  });

  it('bad ranges in the metadata: fp32 simulation, said through the logger and planInfo', async () => {
    const m = decodeModel(fs.readFileSync(Q), Q);
    setMetadata(m, { [SWIN_RANGES_KEY]: '[[0, 1]]' });
    const bad = path.join(tmp, 'bad.onnx');
    fs.writeFileSync(bad, encodeModel(m));
    const writes: string[] = [];
    const s = await InferenceSession.create(bad, { threads: 1, logger: (l) => writes.push(l) });
    try {
      const st = s.planStats({ input: [1, 1, 28, 28] });
      expect(st.opCounts.linear).toBeGreaterThan(0);
      expect(s.planInfo({ input: [1, 1, 28, 28] }).blockedBy?.reason).toMatch(/has ranges for 0 plan ops/);
    } finally { s.release(); }
    expect(writes.join('')).toMatch(/fp32 simulation.*has ranges for 0 plan ops/);
    await expect(InferenceSession.create(bad, { requireInteger: true })).rejects.toThrow(/no integer-only plan.*has ranges for 0 plan ops/);
  });
});
