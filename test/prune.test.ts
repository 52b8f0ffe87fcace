// swinq prune (src/distill/prune.ts): dead ReLU neurons removed from fc1 (column + bias) and fc2
// (row); on the scanned images the pruned model computes the same logits, and its integer plan runs.
import { describe, it, expect, beforeAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import onnxProto from 'onnx-proto';
import { prune, findMlpSites, keptUnits, pruneModelBytes } from '../src/distill/prune.js';
import { OnnxTrainGraph } from '../src/train/onnx-graph.js';
import { InferenceSession } from '../src/session.js';
import { Tensor } from '../src/tensor.js';
import { loadLabelledImages, normalizedImages } from '../src/io/idx.js';
import { tensorFromProto } from '../src/onnx/load.js';
import { calibrate } from '../src/calibrate/calibrate.js';

const { onnx } = onnxProto;
const root = path.resolve(__dirname, '..');
const student = path.join(root, 'demo', 'student-relu.onnx');
const data = path.join(root, 'demo', 'fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-prune-'));
const killed = [0, 5, 17, 100, 191];
const killedModel = path.join(tmp, 'killed.onnx');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Proto = any;

function initDims(file: string): Map<string, number[]> {
  const g = onnx.ModelProto.decode(fs.readFileSync(file)).graph as Proto;
  return new Map(g.initializer.map((t: Proto) => [t.name, t.dims.map(Number)]));
}

beforeAll(() => {
  // the demo student with five units of its first MLP made dead (fc1 bias −1e4: ReLU input < 0 everywhere)
  const m: Proto = onnx.ModelProto.decode(fs.readFileSync(student));
  const g = new OnnxTrainGraph(fs.readFileSync(student), student);
  const { sites } = findMlpSites(m.graph, g.actList.map((a) => a.name));
  const t = m.graph.initializer.find((x: Proto) => x.name === sites[0].b1);
  const b = Float32Array.from(tensorFromProto(t, { source: student }).data);
  for (const j of killed) b[j] = -1e4;
  t.rawData = new Uint8Array(b.buffer); t.floatData = [];
  fs.writeFileSync(killedModel, onnx.ModelProto.encode(m).finish());
});

describe('prune', () => {
  it('keptUnits keeps units active on more than maxActive of the tokens, at least the most active one', () => {
    const c = Float64Array.of(0, 3, 0, 1);
    expect([...keptUnits(c, 100, 0)]).toEqual([1, 3]);
    expect([...keptUnits(c, 100, 0.02)]).toEqual([1]);
    expect([...keptUnits(c, 100, 0.5)]).toEqual([1]);
    expect([...keptUnits(new Float64Array(4), 100, 0)]).toEqual([0]);
    // align: the most active removed units come back until the count is a multiple (ties: lower index)
    const c6 = Float64Array.of(0, 9, 2, 0, 5, 1);
    expect([...keptUnits(c6, 100, 0.03, 4)]).toEqual([1, 2, 4, 5]);
    expect([...keptUnits(c6, 100, 0, 5)]).toEqual([0, 1, 2, 4, 5]);
    expect([...keptUnits(c6, 100, 0, 8)]).toEqual([0, 1, 2, 3, 4, 5]);  // capped at the width
    expect([...keptUnits(c6, 100, 0.5, 2)]).toEqual([1, 4]);
    expect(() => keptUnits(c6, 100, 0, 0)).toThrow(/--align/);
  });

  it('finds the four micro-Swin MLPs of the demo student, not of the GELU teacher', () => {
    const m: Proto = onnx.ModelProto.decode(fs.readFileSync(student));
    const g = new OnnxTrainGraph(fs.readFileSync(student), student);
    const { sites, skipped } = findMlpSites(m.graph, g.actList.map((a) => a.name));
    expect(skipped).toEqual([]);
    expect(sites.map((s) => s.hidden)).toEqual([192, 192, 384, 384]);
    const dims = initDims(student);
    for (const s of sites) {
      expect(dims.get(s.w1)![1]).toBe(s.hidden);
      expect(dims.get(s.b1)).toEqual([s.hidden]);
      expect(dims.get(s.w2)![0]).toBe(s.hidden);
    }
    // a name that is no Relu output is reported, not pruned
    expect(findMlpSites(m.graph, ['input']).skipped[0].reason).toMatch(/not the output of a Relu/);
  });

  it('removes exactly the dead units; logits on the scanned images are unchanged; the integer plan runs', async () => {
    const out = path.join(tmp, 'pruned.onnx');
    const r = await prune({ model: killedModel, data, out, images: 48, batch: 16, threads: 1, align: 1 });
    expect(r.images).toBe(48);
    expect(r.blocks.map((b) => b.hidden)).toEqual([192, 192, 384, 384]);
    expect(r.blocks[0].dead).toBeGreaterThanOrEqual(killed.length);
    r.blocks.forEach((b) => expect(b.kept).toBe(b.hidden - b.dead));
    expect(r.kept).toBe(r.blocks.reduce((a, b) => a + b.kept, 0));
    expect(r.bytes_after).toBeLessThan(r.bytes_before);
    expect(r.max_logit_diff).toBeLessThan(1e-3);
    // the pruned file: fc1/fc2 shapes shrank to the kept width, the bias of a killed unit is gone
    const m: Proto = onnx.ModelProto.decode(fs.readFileSync(out));
    const { sites } = findMlpSites(m.graph, r.blocks.map((b) => b.act));
    const dims = initDims(out);
    sites.forEach((s, i) => {
      expect(dims.get(s.w1)![1]).toBe(r.blocks[i].kept);
      expect(dims.get(s.w2)![0]).toBe(r.blocks[i].kept);
    });
    const b1 = tensorFromProto(m.graph.initializer.find((x: Proto) => x.name === sites[0].b1), { source: out }).data;
    expect([...b1].some((v) => v === -1e4)).toBe(false);
    expect(JSON.parse(m.metadataProps.find((p: Proto) => p.key === 'swinq.prune').value).kept).toEqual(r.blocks.map((b) => b.kept));
    // fp32 engine: same logits as the unpruned model on scanned images
    const ds = loadLabelledImages(data, 'train');
    const x = new Tensor('float32', normalizedImages(ds, 0, 8, 0.286, 0.353), [8, 1, 28, 28]);
    const a = (await (await InferenceSession.create(killedModel, { threads: 1 })).run({ input: x })).logits.data as Float32Array;
    const b = (await (await InferenceSession.create(out, { threads: 1 })).run({ input: x })).logits.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-3 * (1 + Math.abs(a[i])));
    // integer-only plan of the pruned widths (odd sizes, e.g. 187) builds and agrees in its argmax mostly
    const q = path.join(tmp, 'pruned-q.onnx');
    await calibrate(out, { data, out: q, samples: 32, method: 'minmax', threads: 1 });
    const y = (await (await InferenceSession.create(q, { threads: 1, requireInteger: true })).run({ input: x })).logits.data as Float32Array;
    const argmax = (v: Float32Array, r: number) => { let k = 0; for (let j = 1; j < 10; j++) if (v[r * 10 + j] > v[r * 10 + k]) k = j; return k; };
    let same = 0;
    for (let r = 0; r < 8; r++) if (argmax(y, r) === argmax(b, r)) same++;
    expect(same).toBeGreaterThanOrEqual(7);
  });

  it('--max-active removes rarely active units too (fewer kept than dead-only)', async () => {
    const r0 = await prune({ model: student, data, out: path.join(tmp, 'p0.onnx'), images: 32, batch: 16, threads: 1 });
    const r1 = await prune({ model: student, data, out: path.join(tmp, 'p1.onnx'), images: 32, batch: 16, threads: 1, maxActive: 0.02 });
    expect(r1.kept).toBeLessThan(r0.kept);
    expect(r1.max_logit_diff).toBeGreaterThan(0);
    // default align 4: every kept count a multiple of 4 (or the full width)
    for (const r of [r0, r1]) r.blocks.forEach((b) => expect(b.kept % 4 === 0 || b.kept === b.hidden).toBe(true));
  });

  it('pruneModelBytes refuses a kept index outside the hidden width', () => {
    const bytes = fs.readFileSync(student);
    const g = new OnnxTrainGraph(bytes, student);
    const { sites } = findMlpSites(onnx.ModelProto.decode(bytes).graph, g.actList.map((a) => a.name));
    const keep = sites.map((s) => Int32Array.from({ length: s.hidden }, (_, j) => j));
    keep[1] = Int32Array.of(0, 192);
    expect(() => pruneModelBytes(bytes, student, sites, keep)).toThrow(/features\.1\.1.*kept unit 192 outside \[0, 192\)/);
  });

  it('errors name the model or the flag', async () => {
    const teacher = path.join(root, 'demo', 'teacher-gelu.onnx');
    await expect(prune({ model: teacher, data, out: path.join(tmp, 'x.onnx'), images: 8 })).rejects.toThrow(/teacher-gelu\.onnx: no ReLU MLP activation/);
    await expect(prune({ model: student, data, out: path.join(tmp, 'x.onnx'), maxActive: 1 })).rejects.toThrow(/--max-active/);
    await expect(prune({ model: path.join(tmp, 'nope.onnx'), data, out: path.join(tmp, 'x.onnx') })).rejects.toThrow(/nope\.onnx: no such model/);
  });

  it('swinq prune --json reports kept neurons per block', () => {
    const cli = path.join(root, 'dist', 'cli', 'main.js');
    const r = spawnSync(process.execPath, [cli, 'prune', killedModel, '--data', data, '--out', path.join(tmp, 'cli.onnx'), '--images', '16', '--threads', '1', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.blocks).toHaveLength(4);
    expect(j.align).toBe(4);
    expect(j.blocks[0].kept).toBeLessThanOrEqual(188);  // 5 killed units, rounded up to a multiple of 4
    expect(j.blocks[0].kept % 4).toBe(0);
    expect(fs.existsSync(path.join(tmp, 'cli.onnx'))).toBe(true);
  });
});
