// Opsets 18–21, as newer exporters write them: Reduce* with `axes` as an input, Split with
// `num_outputs`, the `Gelu` op (opset 20, erf and tanh). torch 1.13 exports up to opset 17, so the
// layout fixtures are rewritten (test/helpers/upgrade-opset.ts) and small graphs are built by hand.
// Each must equal onnxruntime and compile to the same fused plan as its opset-17 form.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';
import { buildModel } from './helpers/onnx-builder.js';
import { upgradeOpset } from './helpers/upgrade-opset.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIX = path.join(root, 'test', 'fixtures', 'layouts');
const SHARED = path.resolve(root, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-opset-'));
const B = 2;
const x = Float32Array.from({ length: B * 784 }, (_, i) => Math.sin(i * 0.37) * 1.5);
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

async function ours(file: string | Uint8Array, feeds: Record<string, Tensor>) {
  const s = await InferenceSession.create(file, { threads: 1 });
  try {
    const dims: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(feeds)) dims[k] = [...t.dims];
    const y = (await s.run(feeds))[s.outputNames[0]].data as Float32Array;
    return { y, ops: s.planStats(dims).opCounts };
  } finally { await s.release(); }
}
async function oracle(file: string, feeds: Record<string, Tensor>) {
  const o = await ort.InferenceSession.create(file);
  const f: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', t.data as Float32Array, [...t.dims]);
  const y = (await o.run(f))[o.outputNames[0]].data as Float32Array;
  await o.release();
  return y;
}

// [label, file, has Reduce*/Split nodes to rewrite at ≥ 18, has erf GELUs to rewrite at ≥ 20]
const MODELS: [string, string, boolean, boolean][] = [
  ['timm-vit (ReduceMean LayerNorm, Split, tanh GELU)', path.join(FIX, 'timm-vit.onnx'), true, false],
  ['hf-vit (erf GELU, LayerNormalization)', path.join(FIX, 'hf-vit.onnx'), false, true],
  ['hf-swin (ReduceMean pooling, erf GELU)', path.join(FIX, 'hf-swin.onnx'), true, true],
  ['micro-Swin (shared; ReduceMean LayerNorm, erf GELU)', SHARED, true, true],
];

describe.each(MODELS)('%s', (_label, file, hasReduce, hasErfGelu) => {
  it.each([18, 19, 20, 21])('at opset %i: equals onnxruntime, same fused plan as the original', async (opset) => {
    if (!fs.existsSync(file)) throw new Error(`opset.test: missing ${file} (the shared micro-Swin lives in ../shared/models)`);
    const up = upgradeOpset(fs.readFileSync(file), opset);
    const f = path.join(tmp, `${path.basename(file, '.onnx')}-${opset}.onnx`);
    fs.writeFileSync(f, up.bytes);
    // the rewrite really happened (else this would test the original again)
    if (hasReduce) expect(up.reduce + up.split).toBeGreaterThan(0);
    if (opset >= 20 && hasErfGelu) expect(up.gelu).toBeGreaterThan(0);
    const feeds = { input: new Tensor('float32', x, [B, 1, 28, 28]) };
    const [a, base, z] = [await ours(f, feeds), await ours(file, feeds), await oracle(f, feeds)];
    const peak = Math.max(...Array.from(z, Math.abs));
    expect(maxAbs(a.y, z)).toBeLessThanOrEqual(1e-4 * (1 + peak));
    expect(a.ops).toEqual(base.ops);
  });
});

describe('Gelu op (opset 20)', () => {
  // x[B,8] → MatMul W1 + b1 → Gelu(approximate) → MatMul W2 → y[B,4]: the Gelu folds into the first
  // linear's epilogue exactly as the erf/tanh subgraphs do
  const K = 8, H = 16, N = 4;
  const r = (n: number, s: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + s) * 0.9);
  it.each(['none', 'tanh'])('approximate=%s equals onnxruntime and fuses into the linear', async (approx) => {
    const bytes = buildModel({
      opset: 20,
      inputs: [{ name: 'x', dims: ['batch', K] }],
      outputs: [{ name: 'y', dims: ['batch', N] }],
      initializers: [{ name: 'W1', dims: [K, H], data: r(K * H, 1) }, { name: 'b1', dims: [H], data: r(H, 2) }, { name: 'W2', dims: [H, N], data: r(H * N, 3) }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'W1'], outputs: ['h0'] },
        { op: 'Add', inputs: ['h0', 'b1'], outputs: ['h1'] },
        { op: 'Gelu', inputs: ['h1'], outputs: ['h2'], ...(approx === 'tanh' ? { attrs: { approximate: 'tanh' } } : {}) },
        { op: 'MatMul', inputs: ['h2', 'W2'], outputs: ['y'] },
      ],
    });
    const f = path.join(tmp, `gelu-${approx}.onnx`);
    fs.writeFileSync(f, bytes);
    const xs = new Tensor('float32', Float32Array.from(r(3 * K, 4), (v) => v * 3), [3, K]);
    const a = await ours(f, { x: xs });
    const z = await oracle(f, { x: xs });
    expect(maxAbs(a.y, z)).toBeLessThanOrEqual(1e-5 * (1 + Math.max(...Array.from(z, Math.abs))));
    expect(a.ops).toEqual({ linear: 2 });
  });

  it('calibrate --gelu relu replaces the Gelu op too', async () => {
    const { replaceGeluWithRelu } = await import('../src/calibrate/calibrate.js');
    const { decodeModel } = await import('../src/quant/qdq-writer.js');
    const m = decodeModel(upgradeOpset(fs.readFileSync(path.join(FIX, 'hf-vit.onnx')), 20).bytes, 'hf-vit-20');
    const gelus = m.graph.node.filter((n: { opType: string }) => n.opType === 'Gelu').length;
    expect(gelus).toBe(2);
    expect(replaceGeluWithRelu(m)).toBe(2);
    expect(m.graph.node.filter((n: { opType: string }) => n.opType === 'Gelu')).toHaveLength(0);
    expect(m.graph.node.filter((n: { opType: string }) => n.opType === 'Relu')).toHaveLength(2);
  });

  it('an unknown approximate value is an error naming the node', async () => {
    const bytes = buildModel({
      opset: 20, inputs: [{ name: 'x', dims: [2, 3] }], outputs: [{ name: 'y', dims: [2, 3] }],
      nodes: [{ op: 'Gelu', name: 'g0', inputs: ['x'], outputs: ['y'], attrs: { approximate: 'cubic' } }],
    });
    const s = await InferenceSession.create(bytes);
    expect(() => s.runSync({ x: new Tensor('float32', new Float32Array(6), [2, 3]) })).toThrow(/g0.*approximate.*cubic/);
  });
});

describe('QuantizeLinear / DequantizeLinear at opset 21', () => {
  it('blocked quantization (block_size) is refused at create, naming the node', async () => {
    const bytes = buildModel({
      opset: 21, inputs: [{ name: 'x', dims: [2, 4] }], outputs: [{ name: 'y', dims: [2, 4] }],
      initializers: [{ name: 's', dims: [2, 2], data: [0.1, 0.2, 0.3, 0.4] }, { name: 'z', dtype: 'int8', dims: [2, 2], data: [0, 0, 0, 0] }],
      nodes: [
        { op: 'QuantizeLinear', name: 'q0', inputs: ['x', 's', 'z'], outputs: ['xq'], attrs: { axis: 1, block_size: 2 } },
        { op: 'DequantizeLinear', name: 'dq0', inputs: ['xq', 's', 'z'], outputs: ['y'], attrs: { axis: 1, block_size: 2 } },
      ],
    });
    await expect(InferenceSession.create(bytes)).rejects.toThrow(/node 'q0' \(QuantizeLinear\): blocked quantization \(block_size 2\)/);
  });
});

describe('calibrate and the integer plan at opset 18 and 20', () => {
  it('the QDQ file of the upgraded micro-Swin runs integer-only, bit-identical to the opset-13 original', async () => {
    const data = path.resolve(root, '..', 'shared', 'data', 'fashion-mnist');
    if (!fs.existsSync(SHARED) || !fs.existsSync(data)) throw new Error(`opset.test: missing ${SHARED} or ${data} (../shared)`);
    const { calibrate } = await import('../src/calibrate/calibrate.js');
    const feeds = { input: new Tensor('float32', x, [B, 1, 28, 28]) };
    const run = async (file: string) => {
      const s = await InferenceSession.create(file, { threads: 1, requireInteger: true });
      try { return { y: (await s.run(feeds))[s.outputNames[0]].data as Float32Array, plan: s.plan }; } finally { await s.release(); }
    };
    const q13 = path.join(tmp, 'micro-13-q.onnx');
    await calibrate(SHARED, { data, samples: 8, method: 'minmax', out: q13, batch: 8, threads: 1 });
    const base = await run(q13);
    for (const opset of [18, 20]) {
      const f = path.join(tmp, `micro-${opset}-cal.onnx`);
      fs.writeFileSync(f, upgradeOpset(fs.readFileSync(SHARED), opset).bytes);
      // the sidecar carries the input normalisation calibrate applies (mean/std)
      if (fs.existsSync(`${SHARED}.json`)) fs.copyFileSync(`${SHARED}.json`, `${f}.json`);
      const q = path.join(tmp, `micro-${opset}-q.onnx`);
      await calibrate(f, { data, samples: 8, method: 'minmax', out: q, batch: 8, threads: 1 });
      const got = await run(q);
      expect(got.plan).toBe('integer-only');
      expect(got.y).toEqual(base.y);
    }
  });
});

describe('Split num_outputs (opset 18)', () => {
  it('an uneven split gives ceil-sized chunks and a smaller last one, as onnxruntime does', async () => {
    const bytes = buildModel({
      opset: 18, inputs: [{ name: 'x', dims: ['b', 7] }], outputs: [{ name: 'y', dims: ['b', 7] }],
      initializers: [{ name: 'k', dims: [3], data: [1, 10, 100] }, { name: 'k2', dims: [3], data: [2, 20, 200] }, { name: 'k3', dims: [1], data: [-1] }],
      nodes: [
        { op: 'Split', inputs: ['x'], outputs: ['a', 'b', 'c'], attrs: { axis: 1, num_outputs: 3 } },
        { op: 'Mul', inputs: ['a', 'k'], outputs: ['a2'] },
        { op: 'Mul', inputs: ['b', 'k2'], outputs: ['b2'] },
        { op: 'Mul', inputs: ['c', 'k3'], outputs: ['c2'] },
        { op: 'Concat', inputs: ['c2', 'b2', 'a2'], outputs: ['y'], attrs: { axis: 1 } },
      ],
    });
    const f = path.join(tmp, 'split18.onnx');
    fs.writeFileSync(f, bytes);
    const xs = new Tensor('float32', Float32Array.from({ length: 14 }, (_, i) => i + 1), [2, 7]);
    const a = await ours(f, { x: xs });
    expect(Array.from(a.y)).toEqual(Array.from(await oracle(f, { x: xs })));
    expect(Array.from(a.y.subarray(0, 7))).toEqual([-7, 8, 100, 1200, 1, 20, 300]);
  });
});

describe('training the opset-20 graph (Gelu op)', () => {
  it('OnnxTrainGraph finds its Gelu ops; the ReLU student keeps the layout with one Relu per Gelu', async () => {
    const { OnnxTrainGraph } = await import('../src/train/onnx-graph.js');
    const { loadModel } = await import('../src/onnx/load.js');
    const bytes = upgradeOpset(fs.readFileSync(path.join(FIX, 'hf-vit.onnx')), 20).bytes;
    const g = new OnnxTrainGraph(bytes, 'hf-vit-20');
    expect(g.actList.length).toBe(2);
    for (const a of g.acts.values()) expect(a.fn).toBe('gelu');
    const per = g.inputShape.reduce((a, b) => a * b, 1);
    const xs = Float32Array.from({ length: 2 * per }, (_, i) => Math.sin(i * 0.3));
    // the GELU graph's forward equals the engine on the same file
    const y0 = g.predict(xs, 2);
    const ref = (await ours(bytes, { [g.input]: new Tensor('float32', xs, [2, ...g.inputShape]) })).y;
    expect(maxAbs(y0, ref)).toBeLessThan(1e-4);
    for (const a of g.acts.values()) a.fn = 'relu';
    const ys = g.predict(xs, 2);
    const out = g.exportOnnx();
    const m = loadModel(out);
    expect(m.nodes.filter((n) => n.opType === 'Relu')).toHaveLength(2);
    expect(m.nodes.some((n) => n.opType === 'Gelu')).toBe(false);
    const got = (await ours(out, { [g.input]: new Tensor('float32', xs, [2, ...g.inputShape]) })).y;
    expect(maxAbs(got, ys)).toBeLessThan(1e-4);
  });
});
