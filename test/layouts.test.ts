// The exporter layouts swinq claims, as their exporters write them (test/fixtures/layouts, made by
// scripts/make-layout-fixtures.py with torch.onnx.export): timm and DeiT ViT (fused qkv split by
// Split or Gather, tanh GELU), Hugging Face ViT and Swin (separate query/key/value, roll shifts,
// LayerNormalization), torchvision ViT (nn.MultiheadAttention) and a torchvision Swin behind a
// ZeroPad2d. For each: fp32 equals onnxruntime; the calibrated QDQ file runs integer-only (no float
// op between the input quantize and the output dequantize; attention fused) within a stated bound
// of the file's fp32 simulation; the plan is named in every JSON result; --require-integer turns a
// blocked plan into an error naming node, op and reason; a QDQ file without swinq's ranges lowers
// from its own scales.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';
import { BEST_ISA } from './helpers/isas.js';
import { calibrate } from '../src/calibrate/calibrate.js';
import { decodeModel, encodeModel, setMetadata } from '../src/quant/qdq-writer.js';
import { INT_RANGES_KEY as SWIN_RANGES_KEY } from '../src/quant/plan-ranges.js';
import { loadLabelledImages, normalizedImages } from '../src/io/idx.js';
import { writeNpy } from '../src/io/npy.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIX = path.join(root, 'test', 'fixtures', 'layouts');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const DATA = path.resolve(root, '..', 'shared', 'data', 'fashion-mnist');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-layouts-'));
// blocks with attention in each fixture (one fused attention_q each)
const LAYOUTS: Record<string, number> = { 'timm-vit': 2, 'deit-vit': 2, 'hf-vit': 2, 'hf-swin': 2, 'tv-vit': 2, 'tv-swin-pad': 6 };
// op kinds an integer-only plan may hold: integer ops, and data movement on integer codes
const INTEGER_KINDS = new Set(['quantize', 'dequantize', 'linear_q', 'matmul_q', 'softmax_q', 'layernorm_q', 'add_q', 'avgpool_q', 'attention_q', 'index_map', 'copy']);
const B = 4;

let x: Float32Array;
beforeAll(() => {
  if (!fs.existsSync(DATA)) throw new Error(`shared data not found at ${DATA} (expected ../shared/data/fashion-mnist beside the repo)`);
  x = normalizedImages(loadLabelledImages(DATA, 'test'), 0, B, 0, 1);
});

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
const peak = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
async function logits(file: string, opts: Parameters<typeof InferenceSession.create>[1] = {}): Promise<{ y: Float32Array; plan: string; ops: Record<string, number> }> {
  const s = await InferenceSession.create(file, { threads: 2, ...opts });
  try {
    const y = (await s.run({ input: new Tensor('float32', x, [B, 1, 28, 28]) })).logits.data as Float32Array;
    return { y, plan: s.plan, ops: s.planStats({ input: [B, 1, 28, 28] }).opCounts };
  } finally { s.release(); }
}

describe.each(Object.entries(LAYOUTS))('%s', (name, blocks) => {
  const model = path.join(FIX, `${name}.onnx`);
  const q = path.join(tmp, `${name}-q.onnx`);

  it('fp32 equals onnxruntime', async () => {
    const { y, plan } = await logits(model);
    expect(plan).toBe('fp32');
    const o = await ort.InferenceSession.create(model);
    const z = (await o.run({ input: new ort.Tensor('float32', x, [B, 1, 28, 28]) })).logits.data as Float32Array;
    expect(maxAbs(y, z)).toBeLessThanOrEqual(1e-5 * (1 + peak(z)));
  });

  it('calibrated QDQ file: integer-only, attention fused, within 10 % of the largest logit of its fp32 simulation', async () => {
    const r = await calibrate(model, { data: DATA, samples: 64, method: 'minmax', out: q, mean: 0, std: 1 });
    expect(r.integerOnly, r.blockedBy?.reason).toBe(true);
    const int = await logits(q);
    expect(int.plan).toBe('integer-only');
    expect(Object.keys(int.ops).filter((k) => !INTEGER_KINDS.has(k))).toEqual([]);
    expect(int.ops.quantize).toBe(1);
    expect(int.ops.dequantize).toBe(1);
    expect(int.ops.attention_q).toBe(blocks);
    const sim = await logits(q, { qdq: 'simulate' });
    expect(sim.plan).toBe('qdq-simulated');
    // stated bound: requantization between layers (7-bit GEMM inputs, integer softmax/LayerNorm/GELU)
    // against the float simulation of the same scales; measured 1–4 % on these random-weight models
    const d = maxAbs(int.y, sim.y);
    expect(d).toBeLessThanOrEqual(0.1 * peak(sim.y));
    expect(d).toBeGreaterThan(0); // really a different computation
  });
});

describe('a QDQ file without swinq ranges (as another tool writes it)', () => {
  it('lowers integer-only from its own Q/DQ scales (int16 residual ranges bounded from the weights)', async () => {
    const q = path.join(tmp, 'bare-src.onnx');
    await calibrate(path.join(FIX, 'timm-vit.onnx'), { data: DATA, samples: 64, method: 'minmax', out: q, mean: 0, std: 1 });
    const m = decodeModel(fs.readFileSync(q), q);
    m.metadataProps = m.metadataProps.filter((p: { key: string }) => p.key !== SWIN_RANGES_KEY);
    const bare = path.join(tmp, 'bare.onnx');
    fs.writeFileSync(bare, encodeModel(m));
    const int = await logits(bare, { requireInteger: true });
    expect(int.plan).toBe('integer-only');
    expect(int.ops.attention_q).toBe(2);
    const sim = await logits(bare, { qdq: 'simulate' });
    expect(maxAbs(int.y, sim.y)).toBeLessThanOrEqual(0.1 * peak(sim.y));
  });
});

describe('calibrate --sparsify (thresholded MLP activations, no retraining)', () => {
  it('records one threshold per MLP hidden layer; the integer plan zeroes more GELU table entries; still integer-only', async () => {
    const { DType } = await import('../src/plan/ops.js');
    const { ModelCompiler } = await import('../src/runtime/model-compiler.js');
    const { loadModel } = await import('../src/onnx/load.js');
    const model = path.join(FIX, 'timm-vit.onnx');
    const dense = path.join(tmp, 'sp-dense.onnx'), sparse = path.join(tmp, 'sp-0.3.onnx');
    await calibrate(model, { data: DATA, samples: 64, method: 'minmax', out: dense, mean: 0, std: 1 });
    const r = await calibrate(model, { data: DATA, samples: 64, method: 'minmax', out: sparse, mean: 0, std: 1, sparsify: 0.3 });
    expect(r.integerOnly).toBe(true);
    const meta = JSON.parse(loadModel(sparse).metadata[SWIN_RANGES_KEY]);
    expect(Object.keys(meta.thresholds)).toHaveLength(2); // fc1 of both blocks
    expect(Object.values(meta.thresholds).every((t) => (t as number) > 0)).toBe(true);
    // the GELU tables (256 uint8 constants): how many codes map to the most common output code
    // (the zero code: thresholds widen the band of inputs that map to it)
    const zeroEntries = (file: string) => {
      const g = loadModel(file);
      const c = new ModelCompiler(g).lowerInteger({ input: [1, 1, 28, 28] });
      if (!c.ok) throw new Error(c.blockedBy.reason);
      const d = c.compiled.desc;
      let n = 0;
      for (const op of d.ops) {
        const t = op.inputs[5] >= 0 ? d.tensors[op.inputs[5]] : undefined;
        if (!t || t.dtype !== DType.u8 || t.dims[0] !== 256) continue;
        const tab = d.constants.subarray(t.offset, t.offset + 256);
        const counts = new Map<number, number>();
        for (const v of tab) counts.set(v, (counts.get(v) ?? 0) + 1);
        n += Math.max(...counts.values());
      }
      return n;
    };
    expect(zeroEntries(sparse)).toBeGreaterThan(zeroEntries(dense) + 20);
    await expect(calibrate(model, { data: DATA, samples: 8, method: 'minmax', out: path.join(tmp, 'x.onnx'), sparsify: 1.5 })).rejects.toThrow(/--sparsify must be a fraction in \(0, 1\]/);
  });
});

describe('the plan is said, never silently', () => {
  function swinq(args: string[]): { code: number | null; stdout: string; stderr: string; json?: Record<string, unknown> } {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: last.startsWith('{') ? JSON.parse(last) : undefined };
  }
  let broken: string;
  let good: string;
  beforeAll(async () => {
    good = path.join(tmp, 'cli-q.onnx');
    const c = swinq(['calibrate', path.join(FIX, 'hf-vit.onnx'), '--data', DATA, '--samples', '32', '--method', 'minmax', '--out', good, '--json', '--no-progress']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.json).toMatchObject({ out: good, integer_only: true });
    expect(c.json).not.toHaveProperty('blocked_by');
    // ranges for none of the ops: the plan is blocked at the first op that needs one
    const m = decodeModel(fs.readFileSync(good), good);
    setMetadata(m, { [SWIN_RANGES_KEY]: JSON.stringify({ format: 2, input: [0, 1], ops: {} }) });
    broken = path.join(tmp, 'cli-broken.onnx');
    fs.writeFileSync(broken, encodeModel(m));
  });

  it('eval/bench --json name the plan; a blocked QDQ file says qdq-simulated with blocked_by', () => {
    const e = swinq(['eval', good, '--data', DATA, '--limit', '16', '--json', '--threads', '1']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.json?.plan).toBe('integer-only');
    expect(e.json?.isa).toBe(BEST_ISA);  // the kernel set the plan ran on
    const f = swinq(['eval', path.join(FIX, 'hf-vit.onnx'), '--data', DATA, '--limit', '16', '--json', '--threads', '1']);
    expect(f.json?.plan).toBe('fp32');
    const s = swinq(['bench', broken, '--iters', '2', '--warmup', '1', '--json', '--threads', '1']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.json?.plan).toBe('qdq-simulated');
    expect(s.json?.blocked_by).toMatchObject({ node: expect.stringMatching(/./), op: expect.stringMatching(/./), reason: expect.stringMatching(/no calibrated range/) });
    expect(s.stderr).toMatch(/fp32 simulation/);
  });

  it('swinq serve: the model metadata names the plan; --require-integer refuses a blocked file at start', async () => {
    const bad = swinq(['serve', broken, '--port', '0', '--require-integer', '--threads', '1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n').pop()).toMatch(/model 'cli-broken': no integer-only plan \(node '[^']+', op \w+\)/);
    const p = spawn(process.execPath, [cli, 'serve', good, '--port', '0', '--threads', '1', '--json', '--no-warmup', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        p.stdout!.on('data', (d) => { out += d; const m = out.match(/"url":"([^"]+)"/); if (m) resolve(m[1]); });
        p.once('exit', (c) => reject(new Error(`serve exited ${c}`)));
      });
      const meta = await (await fetch(`${url}/v2/models/cli-q`)).json() as { plan?: string };
      expect(meta.plan).toBe('integer-only');
    } finally { p.kill('SIGKILL'); }
  });

  it('--require-integer: a one-line error naming node, op and reason', () => {
    const xin = path.join(tmp, 'x.npy');
    writeNpy(xin, { data: x.subarray(0, 784), shape: [1, 1, 28, 28] });
    const ok = swinq(['run', good, '--input', xin, '--output', path.join(tmp, 'y.npy'), '--require-integer', '--json', '--threads', '1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json?.plan).toBe('integer-only');
    for (const args of [['eval', broken, '--data', DATA, '--limit', '4'], ['run', broken, '--input', xin, '--output', path.join(tmp, 'y.npy')], ['bench', broken, '--iters', '1'], ['profile', broken, '--iters', '1']]) {
      const r = swinq([...args, '--require-integer', '--threads', '1']);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines[lines.length - 1]).toMatch(/no integer-only plan \(node '[^']+', op \w+\): .*no calibrated range/);
    }
  });
});
