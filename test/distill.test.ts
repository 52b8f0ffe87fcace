// GELU→ReLU distillation: the API on a tiny generated teacher (phases, swaps, student ONNX), the
// CLI killed with SIGKILL mid-run and resumed from its checkpoint vs an uninterrupted run
// (bit-identical weights, 1 thread), and the torchvision micro-Swin imported into the trainer
// (logits equal to swinq's InferenceSession on the original file).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeIdx, loadLabelledImages, normalizedImages } from '../src/io/idx.js';
import { initParams, readOnnxModel, swinOnnx, type SwinConfig } from '../src/train/swin.js';
import { actStages, distill, loadTeacher, readCheckpoint, sparsityLoss, type DistillStep } from '../src/distill/distill.js';
import { InferenceSession } from '../src/session.js';
import { OnnxTrainGraph } from '../src/train/onnx-graph.js';
import { native } from '../src/native.js';
import { Tensor } from '../src/tensor.js';
import { loadModel } from '../src/onnx/load.js';
import { graphQuantPoints, enableGraphFakeQuant, disableGraphFakeQuant } from '../src/distill/qat.js';

const root = path.resolve(__dirname, '..');
const shared = path.resolve(root, '..', 'shared');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-distill-'));
const data = path.join(tmp, 'data');
const teacher = path.join(tmp, 'teacher.onnx');
const cfg: SwinConfig = { imgSize: [28, 28], inChans: 1, patch: 2, embed: 8, depths: [1, 1], heads: [1, 2], window: 7, classes: 10, act: 'gelu', mlpRatio: 2 };

// a learnable synthetic set: class k lights up a band of rows, plus noise
function writeData(dir: string, n: number, prefix: string, seed: number) {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const img = new Uint8Array(n * 784), lab = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    lab[i] = k;
    for (let p = 0; p < 784; p++) img[i * 784 + p] = (Math.floor(p / 28 / 2.8) === k ? 180 : 0) + Math.floor(r() * 60);
  }
  fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx({ shape: [n, 28, 28], data: img, type: 'uint8' }));
  fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx({ shape: [n], data: lab, type: 'uint8' }));
}

beforeAll(() => {
  fs.mkdirSync(data, { recursive: true });
  writeData(data, 192, 'train', 1);
  writeData(data, 64, 't10k', 2);
  fs.writeFileSync(teacher, swinOnnx(cfg, initParams(cfg, 3), { 'swinq.mean': '0.3', 'swinq.std': '0.3' }));
});

describe('distill API (swinq-init teacher)', () => {
  it('swaps stage by stage first-to-last, trains with CE+KL and writes an all-ReLU student', async () => {
    const steps: DistillStep[] = [];
    const out = path.join(tmp, 'api.onnx');
    const r = await distill({ teacher, data, out, epochs: 2, batch: 32, threads: 1, checkpointEvery: 0, evalLimit: 64 }, { onStep: (s) => { steps.push(s); } });
    expect(r.steps).toBe(12);
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    // phase 0 (steps 1–6) has only stage 0 swapped, phase 1 both
    expect(steps[0].phase).toBe(0);
    expect(steps[0].swapped).toEqual(['layers.0.blocks.0.mlp.act']);
    expect(steps[11].phase).toBe(1);
    expect(steps[11].swapped.sort()).toEqual(['layers.0.blocks.0.mlp.act', 'layers.1.blocks.0.mlp.act']);
    for (const s of steps) { expect(Number.isFinite(s.loss)).toBe(true); expect(s.kl).toBeGreaterThanOrEqual(0); expect(s.loss).toBeGreaterThan(s.ce - 1e-6); }
    expect(r.teacher_accuracy).toBeGreaterThanOrEqual(0);
    expect(r.student_accuracy).toBeGreaterThanOrEqual(0);
    const st = readOnnxModel(fs.readFileSync(out), out);
    expect(st.config.act).toBe('relu');
    const g = new OnnxTrainGraph(fs.readFileSync(out), out);
    expect([...g.acts.values()].map((a) => a.fn)).toEqual(['relu', 'relu']);
    expect(r.relu_density).toBeGreaterThan(0);
    expect(r.relu_density).toBeLessThan(1);
    expect(r.relu_density_blocks!.length).toBe(2);
    expect(r.peak_activation_bytes).toBeGreaterThan(r.saved_activation_bytes!);
    // the written student runs in swinq's InferenceSession with the trainer's logits
    const x = normalizedImages(loadLabelledImages(data, 'test'), 0, 4, 0.3, 0.3);
    const want = g.predict(x, 4);
    const got = (await (await InferenceSession.create(out)).run({ input: new Tensor('float32', x, [4, 1, 28, 28]) })).logits.data as Float32Array;
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(want[i])));
    const bytes = fs.readFileSync(out).toString('latin1');
    expect(bytes.includes('Erf')).toBe(false);
    // the student moved away from the teacher
    const t = readOnnxModel(fs.readFileSync(teacher), teacher);
    expect(Buffer.from(st.params.get('layers.0.blocks.0.mlp.fc1.weight')!.buffer).equals(Buffer.from(t.params.get('layers.0.blocks.0.mlp.fc1.weight')!.buffer))).toBe(false);
  });

  it('last-to-first swaps stage 1 first; all-at-once swaps everything in one phase', async () => {
    const first: string[][] = [];
    await distill({ teacher, data, out: path.join(tmp, 'l2f.onnx'), epochs: 1, batch: 64, threads: 1, schedule: 'last-to-first', evalLimit: 16 }, { onPhase: (_p, s) => first.push(s) });
    expect(first[0]).toEqual(['layers.1.blocks.0.mlp.act']);
    const all: string[][] = [];
    const r = await distill({ teacher, data, out: path.join(tmp, 'all.onnx'), epochs: 1, batch: 64, threads: 1, schedule: 'all-at-once', evalLimit: 16 }, { onPhase: (_p, s) => all.push(s) });
    expect(all.length).toBe(1);
    expect(all[0].length).toBe(2);
    expect(r.phases.length).toBe(1);
  });

  it('quantization-aware finishing and the feature loss: extra steps reported, no fake quantization left in the student', async () => {
    const steps: { step: number; totalSteps: number; feature: number }[] = [];
    const out = path.join(tmp, 'qat.onnx');
    const r = await distill({ teacher, data, out, epochs: 1, batch: 64, threads: 1, schedule: 'all-at-once', evalLimit: 16, qatSteps: 3, featureWeight: 0.5 },
      { onStep: (st) => { steps.push(st); } });
    expect(steps.length).toBe(r.steps + 3);
    expect(steps[steps.length - 1]).toMatchObject({ step: r.steps + 3, totalSteps: r.steps + 3 });
    expect(steps.every((st) => st.feature > 0)).toBe(true);
    const names = loadModel(out).nodes.map((n) => n.opType);
    expect(names).toContain('Relu');
    expect(names.some((t: string) => /quant/i.test(t))).toBe(false);
    const s = await InferenceSession.create(out);
    try { expect((await s.run({ input: new Tensor('float32', new Float32Array(784), [1, 1, 28, 28]) })).logits.dims).toEqual([1, 10]); } finally { s.release(); }
  });

  it('quantization-aware finishing moves the linear weights, and a run stopped inside it resumes bit-identically', async () => {
    const base = { teacher, data, epochs: 1, batch: 64, threads: 1, schedule: 'all-at-once' as const, evalLimit: 8, checkpointEvery: 1, qatSteps: 4 };
    const full = path.join(tmp, 'qat4.onnx'), part = path.join(tmp, 'qat4p.onnx'), pre = path.join(tmp, 'qat4pre.onnx');
    const r4 = await distill({ ...base, out: full, checkpoint: `${full}.ckpt` });
    // the parameters when the schedule ends (before the finishing steps) and after them
    const before = await distill({ ...base, out: pre, checkpoint: `${pre}.ckpt`, stopAfter: r4.steps });
    expect(before.stopped).toBe(true);
    const p0 = readCheckpoint(`${pre}.ckpt`).params, p4 = readCheckpoint(`${full}.ckpt`).params;
    expect(readCheckpoint(`${full}.ckpt`).step).toBe(r4.steps + 4);
    // a GEMM weight must have moved: AdamW steps the float masters with gradients at the rounded weights
    const moved = [...p4].filter(([k, v]) => !Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(Buffer.from(p0.get(k)!.buffer, p0.get(k)!.byteOffset, p0.get(k)!.byteLength)));
    expect(moved.map(([k]) => k).filter((k) => /linear|weight|.w$/i.test(k)), moved.map(([k, v]) => `${k}:${v.length}`).join(' ')).not.toEqual([]);
    const ck = `${part}.ckpt`;
    const stopped = await distill({ ...base, out: part, checkpoint: ck, stopAfter: r4.steps + 2 });
    expect(stopped.stopped).toBe(true);
    expect(readCheckpoint(ck).step).toBe(r4.steps + 2);
    await distill({ ...base, out: part, checkpoint: ck, resume: ck });
    const a = readOnnxModel(fs.readFileSync(full), full).params, b = readOnnxModel(fs.readFileSync(part), part).params;
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
  });

  it('refuses bad options and teachers with clear errors', async () => {
    await expect(distill({ teacher, data, out: path.join(tmp, 'x.onnx'), epochs: 1, fewbit: 7 })).rejects.toThrow(/--fewbit/);
    await expect(distill({ teacher, data, out: path.join(tmp, 'x.onnx'), epochs: 1, schedule: 'middle-out' as never })).rejects.toThrow(/--schedule/);
    await expect(distill({ teacher: path.join(tmp, 'nope.onnx'), data, out: path.join(tmp, 'x.onnx'), epochs: 1 })).rejects.toThrow(/nope\.onnx: no such/);
    const bad = path.join(tmp, 'bad.ckpt');
    fs.writeFileSync(bad, 'garbage');
    await expect(distill({ teacher, data, out: path.join(tmp, 'x.onnx'), epochs: 1, resume: bad })).rejects.toThrow(/bad\.ckpt: not a swinq distill checkpoint/);
    // a checkpoint from other hyper-parameters is refused, naming them
    const ck = path.join(tmp, 'a.ckpt');
    await distill({ teacher, data, out: path.join(tmp, 'a.onnx'), epochs: 1, batch: 64, threads: 1, evalLimit: 8, checkpoint: ck, stopAfter: 1 });
    expect(readCheckpoint(ck).step).toBe(1);
    await expect(distill({ teacher, data, out: path.join(tmp, 'a.onnx'), epochs: 1, batch: 64, threads: 1, evalLimit: 8, resume: ck, alpha: 0.5 })).rejects.toThrow(/a\.ckpt: checkpoint was written with alpha 1.*this run has alpha 0\.5/);
    await expect(distill({ teacher, data, out: path.join(tmp, 'a.onnx'), epochs: 2, batch: 64, threads: 1, evalLimit: 8, resume: ck })).rejects.toThrow(/a\.ckpt: checkpoint is for 3 steps/);
    // a teacher without GELU has nothing to replace
    const relu = path.join(tmp, 'relu.onnx');
    fs.writeFileSync(relu, swinOnnx({ ...cfg, act: 'relu' }, initParams(cfg, 3)));
    await expect(distill({ teacher: relu, data, out: path.join(tmp, 'x.onnx'), epochs: 1 })).rejects.toThrow(/relu\.onnx: no GELU activation to replace \(activations: relu, relu\)/);
    // a changed teacher file is refused on resume, naming it
    const t2 = path.join(tmp, 'teacher2.onnx');
    fs.copyFileSync(teacher, t2);
    const ck2 = path.join(tmp, 'b.ckpt');
    await distill({ teacher: t2, data, out: path.join(tmp, 'b.onnx'), epochs: 1, batch: 64, threads: 1, evalLimit: 8, checkpoint: ck2, stopAfter: 1 });
    fs.writeFileSync(t2, swinOnnx(cfg, initParams(cfg, 4), { 'swinq.mean': '0.3', 'swinq.std': '0.3' }));
    await expect(distill({ teacher: t2, data, out: path.join(tmp, 'b.onnx'), epochs: 1, batch: 64, threads: 1, evalLimit: 8, resume: ck2 })).rejects.toThrow(/b\.ckpt: checkpoint was written with .*changed: teacher teacher2\.onnx \d+ bytes sha256:/);
    await expect(distill({ teacher, data, out: path.join(tmp, 'a.onnx'), epochs: 1, batch: 64, threads: 1, evalLimit: 8, resume: ck, weightDecay: 0.1 })).rejects.toThrow(/changed: weight decay 0\.1/);
  });

  it('1-bit ReLU backward (used for swapped blocks) equals the exact ReLU backward', () => {
    const n = 1001;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : Math.sin(i * 1.7) * 3));
    const dy = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
    const exact = native.trainBackward({ op: 'act', fn: 'relu', bits: 0 }, [x], [n], null, dy, null, [true])[0] as Float32Array;
    const f1 = native.trainForward({ op: 'act', fn: 'relu', bits: 1 }, [x]);
    const one = native.trainBackward({ op: 'act', fn: 'relu', bits: 1 }, [null], [n], null, dy, f1.codes, [true])[0] as Float32Array;
    let diff = 0;  // === so that −0 (dy·0 on the code path) equals +0
    for (let i = 0; i < n; i++) if (one[i] !== exact[i]) diff++;
    expect(diff).toBe(0);
    expect(exact.some((v) => v !== 0)).toBe(true);
  });
});

describe('checkpoint + resume (CLI, SIGKILL)', () => {
  const cli = path.join(root, 'dist', 'cli', 'main.js');
  // dist/ is built from src/ once by test/global-setup.ts.
  const args = (out: string) => [cli, 'distill', teacher, '--data', data, '--out', out, '--epochs', '2', '--batch', '4', '--threads', '1', '--eval-limit', '16', '--checkpoint-every', '3', '--json', '--no-progress'];

  it('a run killed mid-way and resumed ends bit-identical to an uninterrupted run', async () => {
    const full = path.join(tmp, 'full.onnx');
    const r = spawnSync(process.execPath, args(full), { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.out).toBe(full);
    expect(summary.steps).toBe(96);

    const part = path.join(tmp, 'part.onnx');
    const ckpt = `${part}.ckpt`;
    const child = spawn(process.execPath, args(part), { stdio: 'ignore' });
    const exited = new Promise<string | null>((res) => child.on('exit', (_c, sig) => res(sig)));
    for (let i = 0; i < 2000; i++) {  // wait until a checkpoint beyond the first phase boundary is there
      await new Promise((res) => setTimeout(res, 5));
      try { if (readCheckpoint(ckpt).step >= 30) break; } catch { /* not yet written */ }
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(fs.existsSync(part)).toBe(false);  // it did not finish
    const at = readCheckpoint(ckpt).step;
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(96);
    const r2 = spawnSync(process.execPath, [...args(part), '--resume', ckpt], { encoding: 'utf8' });
    expect(r2.status, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(new RegExp(`resumed .* at step ${at}/96`));
    const a = readOnnxModel(fs.readFileSync(full), full).params, b = readOnnxModel(fs.readFileSync(part), part).params;
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
  });
});

describe('torchvision micro-Swin import', () => {
  const model = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
  it('imports by structure and the trainer forward equals swinq InferenceSession on the original file', async () => {
    if (!fs.existsSync(model)) throw new Error(`${model} missing: tests need ../shared (the team's shared models and data)`);
    const t = loadTeacher(model);
    expect(t.kind).toBe('torchvision');
    expect(t.config).toMatchObject({ patch: 2, embed: 48, depths: [2, 2], heads: [3, 6], window: 7, inChans: 1, classes: 10, act: 'gelu', mlpRatio: 4 });
    const g = new OnnxTrainGraph(swinOnnx(t.config, t.params), 'imported');
    expect(actStages(g).map((s) => s.length)).toEqual([2, 2]);
    const test = loadLabelledImages(path.join(shared, 'data', 'fashion-mnist'), 'test');
    const B = 8;
    const x = normalizedImages(test, 0, B, 0.286, 0.353);
    const got = g.predict(x, B);
    const session = await InferenceSession.create(model);
    const want = (await session.run({ input: new Tensor('float32', x, [B, 1, 28, 28]) })).logits.data as Float32Array;
    let maxRel = 0;
    for (let i = 0; i < want.length; i++) maxRel = Math.max(maxRel, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
    expect(maxRel).toBeLessThanOrEqual(1e-4);
    const ref = JSON.parse(fs.readFileSync(`${model}.json`, 'utf8')).reference_logits_first8 as number[][];
    for (let b = 0; b < B; b++) for (let c = 0; c < 10; c++) expect(Math.abs(got[b * 10 + c] - ref[b][c])).toBeLessThan(1e-3);
  });
});

describe('distillation on imported graphs (test/fixtures/layouts)', () => {
  for (const name of ['deit-vit', 'hf-swin', 'tv-swin-pad']) {
    it(`${name}: a short run with --sparsity writes a ReLU student of the same graph; density reported per block`, async () => {
      const teacherFile = path.join(__dirname, 'fixtures', 'layouts', `${name}.onnx`);
      const out = path.join(tmp, `${name}-student.onnx`);
      const steps: DistillStep[] = [];
      const r = await distill({ teacher: teacherFile, data, out, epochs: 1, batch: 16, limit: 32, threads: 1, evalLimit: 16, schedule: 'all-at-once', sparsity: 0.2, mean: 0.3, std: 0.3 },
        { onStep: (s) => { steps.push(s); } });
      expect(r.steps).toBe(2);
      expect(steps.every((s) => s.sparsity! > 0 && s.density! >= 0 && s.density! <= 1)).toBe(true);
      const g = new OnnxTrainGraph(fs.readFileSync(out), out);
      expect(r.relu_density_blocks!.length).toBe(g.actList.length);
      expect(g.actList.every((a) => a.fn === 'relu')).toBe(true);
      const t = loadModel(teacherFile), s = loadModel(out);
      expect(s.inputs.map((i) => i.name)).toEqual(t.inputs.map((i) => i.name));
      expect(s.outputs.map((i) => i.name)).toEqual(t.outputs.map((i) => i.name));
      expect(s.nodes.filter((n) => n.opType === 'MatMul').length).toBe(t.nodes.filter((n) => n.opType === 'MatMul').length);
      expect(loadModel(out).metadata!['swinq.mean']).toBe('0.3');
    });
  }

  it('quantization-aware finishing on imported graphs (DeiT ViT, Pad-fronted torchvision Swin): fake quantization at every linear/matmul input, values on the code grid, int8 weights, gradients straight through, nothing left in the student', async () => {
    for (const name of ['deit-vit', 'tv-swin-pad']) {
      const file = path.join(__dirname, 'fixtures', 'layouts', `${name}.onnx`);
      const g = new OnnxTrainGraph(fs.readFileSync(file), file);
      const B = 4, per = g.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: B * per }, (_, i) => Math.sin(i * 0.37));
      const pts = graphQuantPoints(g, B);
      const t = g.tape(B);
      const readers = t.nodes.filter((n) => n.kind === 'native' && (n.desc!.op === 'linear' || n.desc!.op === 'matmul'));
      expect(pts.length).toBeGreaterThan(readers.length / 2);
      expect(pts.some((p) => p.softmax)).toBe(true);
      const ranges = new Map<string, Float32Array>();
      const plain = g.predict(x, B);
      expect(enableGraphFakeQuant(g, x, B, B, ranges)).toBe(pts.length);
      // every linear/matmul reads a quantized value (or a gather of one, or a constant)
      const q = g.tape(B), producer = new Map(q.nodes.map((n) => [n.output, n]));
      const isConst = (k: string) => q.fixed.has(k) || q.derived.has(k);
      const viaFq = (k: string): boolean => isConst(k) || producer.get(k)?.desc?.op === 'fakequant' || (producer.get(k)?.desc?.op === 'gather' && viaFq(producer.get(k)!.inputs[0]));
      for (const n of q.nodes.filter((m) => m.kind === 'native' && (m.desc!.op === 'linear' || m.desc!.op === 'matmul'))) {
        for (const k of n.desc!.op === 'linear' ? [n.inputs[0]] : n.inputs) expect(viaFq(k), `${n.name} reads ${k}`).toBe(true);
      }
      const st = g.forward(x, B, true, pts.map((p) => `${p.tensor}.fq`));
      for (const p of pts.slice(0, 3)) {
        const d = q.nodes.find((n) => n.output === `${p.tensor}.fq`)!.desc!;
        for (const v of st.values.get(`${p.tensor}.fq`)!.subarray(0, 50)) {
          const c = v / d.scale! + d.zp!;
          expect(Math.abs(c - Math.round(c))).toBeLessThan(1e-3);
          expect(c).toBeGreaterThanOrEqual(-1e-3); expect(c).toBeLessThanOrEqual(d.qmax! + 1e-3);
        }
      }
      // linear weights on an int8 grid per output column (max|w|/127)
      const lin = q.nodes.find((n) => n.kind === 'native' && n.desc!.op === 'linear' && q.derived.has(n.inputs[1]))!;
      const w = st.values.get(lin.inputs[1])!, N = lin.desc!.N!, K = w.length / N;
      for (const c of [0, N - 1]) {
        let mx = 0;
        for (let k = 0; k < K; k++) mx = Math.max(mx, Math.abs(w[k * N + c]));
        for (let k = 0; k < K; k++) expect(Math.abs(w[k * N + c] / (mx / 127) - Math.round(w[k * N + c] / (mx / 127)))).toBeLessThan(1e-3);
      }
      expect(g.params.get(q.derived.get(lin.inputs[1])!.param)!.data.some((v, i) => v !== w[i])).toBe(true);  // the float parameter is untouched
      const logits = st.values.get(st.tape.output)!;
      let diff = 0;
      for (let i = 0; i < logits.length; i++) diff = Math.max(diff, Math.abs(logits[i] - plain[i]));
      expect(diff).toBeGreaterThan(0);
      const grads = g.backward(st, Float32Array.from(logits, (_, i) => Math.cos(i)));
      expect([...grads.values()].some((gr) => gr.some((v) => v !== 0))).toBe(true);
      disableGraphFakeQuant(g);
      expect(Array.from(g.predict(x, B))).toEqual(Array.from(plain));
    }
    // the CLI path end to end: schedule + 2 finishing steps on the Pad-fronted Swin
    const teacherFile = path.join(__dirname, 'fixtures', 'layouts', 'tv-swin-pad.onnx');
    const out = path.join(tmp, 'tv-swin-pad-qat.onnx');
    const steps: DistillStep[] = [];
    const r = await distill({ teacher: teacherFile, data, out, epochs: 1, batch: 16, limit: 32, threads: 1, evalLimit: 16, schedule: 'all-at-once', qatSteps: 2, mean: 0.3, std: 0.3 },
      { onStep: (s) => { steps.push(s); } });
    expect(steps.length).toBe(r.steps + 2);
    expect(steps[steps.length - 1]).toMatchObject({ step: r.steps + 2, totalSteps: r.steps + 2, lr: 5e-5 });
    expect(loadModel(out).nodes.some((n) => /quant/i.test(n.opType))).toBe(false);
    expect(Number.isFinite(r.student_accuracy)).toBe(true);
  });

  it('sparsity penalties (L1, Hoyer): gradient seeds match central differences; density counts h > 0', () => {
    const h = Float32Array.from({ length: 40 }, (_, i) => Math.max(0, Math.sin(i * 1.3) * 2));
    const names = ['a'];
    for (const kind of ['l1', 'hoyer'] as const) {
      const r = sparsityLoss(new Map([['a', h]]), names, 0.7, kind);
      expect(r.density).toBeCloseTo(h.filter((v) => v > 0).length / h.length, 9);
      const g = r.seeds.get('a')!;
      for (let k = 0; k < h.length; k++) {
        if (h[k] === 0) continue;  // the kink of |h|
        const o = h[k];
        h[k] = o + 1e-3; const lp = sparsityLoss(new Map([['a', h]]), names, 0.7, kind).loss;
        h[k] = o - 1e-3; const lm = sparsityLoss(new Map([['a', h]]), names, 0.7, kind).loss;
        h[k] = o;
        expect(Math.abs((lp - lm) / 2e-3 - g[k])).toBeLessThan(1e-4);
      }
    }
  });
});
