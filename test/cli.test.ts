// Drives the built CLI (node dist/cli/main.js) as a user would: JSON on the last stdout line,
// exit codes, one-line errors; and checks eval/run against onnxruntime on the shared micro-Swin.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdx } from '../src/io/idx.js';
import { encodeNpy, readNpy } from '../src/io/npy.js';

const { onnx } = onnxProto;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const shared = path.resolve(root, '..', 'shared');
const MODEL = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const DATA = path.join(shared, 'data', 'fashion-mnist');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-cli-'));

function requireShared(): void {
  if (!fs.existsSync(MODEL) || !fs.existsSync(DATA)) {
    throw new Error(`shared models/data not found at ${shared} (expected ../shared relative to the repo root, with models/swin-micro-fmnist.onnx and data/fashion-mnist/)`);
  }
}

interface Res { code: number | null; stdout: string; stderr: string; json?: Record<string, unknown> }
function swinq(args: string[], timeout = 120_000, env: Record<string, string> = {}): Res {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout, env: { ...process.env, SWINQ_DEBUG: '', ...env } });
  const res: Res = { code: r.status, stdout: r.stdout, stderr: r.stderr };
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (args.includes('--json') && last.startsWith('{')) res.json = JSON.parse(last);
  return res;
}
/** A failing command: non-zero exit, nothing on stdout, and exactly one line on stderr. */
function expectOneLineError(r: Res, re: RegExp, code = 1): void {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines.length, r.stderr).toBe(1);
  expect(lines[0]).toMatch(re);
  expect(r.stdout).toBe('');
}

// ---- a tiny model built in the test: logits = reshape(x, [-1, 4]) @ W, W picks pixel k for class k
function tinyModel(metadata: Record<string, string>): Uint8Array {
  const f32 = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);
  const i64 = (a: number[]) => new Uint8Array(new BigInt64Array(a.map(BigInt)).buffer);
  const vi = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const W = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]; // [4, 3]
  const m = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'swinq-test',
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: 'tiny',
      input: [vi('x', ['batch', 1, 2, 2])],
      output: [vi('logits', ['batch', 3])],
      initializer: [
        { name: 'W', dims: [4, 3], dataType: 1, rawData: f32(W) },
        { name: 'shape', dims: [2], dataType: 7, rawData: i64([-1, 4]) },
      ],
      node: [
        { name: 'flatten', opType: 'Reshape', input: ['x', 'shape'], output: ['flat'] },
        { name: 'head', opType: 'MatMul', input: ['flat', 'W'], output: ['logits'] },
      ],
    },
  });
  return onnx.ModelProto.encode(m).finish();
}

/** Two inputs, y = a − b: the order of --input files matters. */
function subModel(opType = 'Sub'): Uint8Array {
  const vi = (name: string, elemType: number) => ({
    name, type: { tensorType: { elemType, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 3 }] } } },
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'sub',
      input: [vi('a', 1), vi('b', 1)],
      output: [vi('y', 1)],
      node: [{ name: 'sub_node', opType, input: ['a', 'b'], output: ['y'] }],
    },
  })).finish();
}

const TINY = path.join(tmp, 'tiny.onnx');
const TINY_DATA = path.join(tmp, 'tiny-data');
// 7 images of 2×2; the label is the brightest of the first three pixels, except images 2 and 5
// whose labels are deliberately wrong: accuracy must be exactly 5/7.
const tinyImages = [
  [200, 10, 10, 255], [0, 90, 30, 0], [5, 6, 7, 8], [100, 100, 101, 0],
  [250, 0, 0, 0], [1, 200, 3, 4], [30, 20, 10, 0],
];
const tinyLabels = [0, 1, 0, 2, 0, 0, 0];

beforeAll(() => {
  // dist/ is built from src/ once by test/global-setup.ts, so the real binary is tested.
  if (!fs.existsSync(cli)) throw new Error(`${cli} was not built by tsc`);
  fs.writeFileSync(TINY, tinyModel({ 'swinq.mean': '0.5', 'swinq.std': '0.25' }));
  fs.mkdirSync(TINY_DATA);
  fs.writeFileSync(path.join(TINY_DATA, 't10k-images-idx3-ubyte.gz'), zlib.gzipSync(encodeIdx({ shape: [7, 2, 2], data: Uint8Array.from(tinyImages.flat()) })));
  fs.writeFileSync(path.join(TINY_DATA, 't10k-labels-idx1-ubyte'), encodeIdx({ shape: [7], data: Uint8Array.from(tinyLabels) }));
}, 180_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('cli plumbing', () => {
  it('lists the commands and exits 0 on --help', () => {
    const r = swinq(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['run', 'eval', 'bench', 'profile']) expect(r.stdout).toMatch(new RegExp(`\\n\\s+${c} \\[options\\] <model>`));
  });

  it('gives one-line errors with non-zero exits for bad flags and missing files', () => {
    expectOneLineError(swinq(['run', TINY, '--input', 'a.npy']), /required option '--output <file>' not specified/, 2);
    expectOneLineError(swinq(['run', TINY, '--inptu', 'a.npy', '--output', 'y.npy']), /unknown option '--inptu'/, 2);
    expectOneLineError(swinq(['eval', TINY, '--data', TINY_DATA, '--batch', '0']), /--batch must be an integer ≥ 1, got '0'/);
    expectOneLineError(swinq(['eval', TINY, '--data', TINY_DATA, '--threads', 'two']), /--threads must be an integer ≥ 1, got 'two'/);
    expectOneLineError(swinq(['eval', TINY, '--data', TINY_DATA, '--split', 'val']), /--split must be test or train, got 'val'/);
    expectOneLineError(swinq(['eval', TINY, '--data', path.join(tmp, 'nowhere'), '--json']), /nowhere: no such data directory/);
    expectOneLineError(swinq(['eval', TINY, '--data', TINY_DATA, '--split', 'train']), /train-images-idx3-ubyte\[\.gz\]: no such file/);
    for (const cmd of [['run', '--input', 'x.npy', '--output', 'y.npy'], ['eval', '--data', TINY_DATA], ['bench'], ['profile']]) {
      const [name, ...rest] = cmd;
      expectOneLineError(swinq([name, path.join(tmp, 'missing.onnx'), ...rest, '--json']), /missing\.onnx: no such model file/);
    }
    expectOneLineError(swinq(['bench', TINY, '--json'], 60_000, { SWINQ_ONNXRUNTIME: 'onnxruntime-node-missing' }),
      /onnxruntime-node is not installed \(needed by `swinq bench` for the comparison\); install it with `npm install onnxruntime-node`/);
    const garbage = path.join(tmp, 'garbage.onnx');
    fs.writeFileSync(garbage, Buffer.from('this is not a protobuf at all \xff\xff\xff\xff'));
    expectOneLineError(swinq(['bench', garbage, '--json']), /garbage\.onnx: not a valid ONNX model/);
  });

  it('run checks the inputs against the graph, naming the input and file', () => {
    const x = path.join(tmp, 'x.npy');
    fs.writeFileSync(x, encodeNpy({ data: new Float32Array(8), shape: [2, 1, 2, 2] }));
    const x64 = path.join(tmp, 'x64.npy');
    fs.writeFileSync(x64, encodeNpy({ data: new Float64Array(8), shape: [2, 1, 2, 2] }));
    const xbad = path.join(tmp, 'xbad.npy');
    fs.writeFileSync(xbad, encodeNpy({ data: new Float32Array(6), shape: [2, 1, 3] }));
    const y = path.join(tmp, 'y.npy');
    expectOneLineError(swinq(['run', TINY, '--input', x64, '--output', y]), /input 'x' expects float32, got float64 from .*x64\.npy/);
    expectOneLineError(swinq(['run', TINY, '--input', xbad, '--output', y]), /input 'x' expects shape \[batch, 1, 2, 2\], got \[2, 1, 3\] from .*xbad\.npy/);
    expectOneLineError(swinq(['run', TINY, '--input', x, '--input', x, '--output', y]), /tiny\.onnx has 1 input \('x'\), got 2 --input files/);
    expectOneLineError(swinq(['run', TINY, '--input', path.join(tmp, 'nope.npy'), '--output', y]), /nope\.npy: no such file/);
    expectOneLineError(swinq(['run', TINY, '--input', x, '--output', path.join(tmp, 'no', 'dir', 'y.npy')]), /--output .*y\.npy: directory .*dir does not exist/);
    expect(fs.existsSync(y)).toBe(false);
  });

  it('eval on the tiny model: accuracy exactly 5/7, normalization from metadata_props, stderr names it', () => {
    for (const engine of ['onnxruntime', 'swinq']) {
      for (const batch of ['1', '3', '64']) {
        const r = swinq(['eval', TINY, '--data', TINY_DATA, '--batch', batch, '--engine', engine, '--json', '--threads', '1']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.json).toMatchObject({ accuracy: 5 / 7, images: 7, correct: 5, mean: 0.5, std: 0.25 });
        expect(r.json!.ms_per_image).toBeGreaterThan(0);
        expect(r.stderr).toMatch(/normalization: mean=0\.5 std=0\.25 \(mean from metadata swinq\.mean, std from metadata swinq\.std\)/);
      }
    }
    const scalar = swinq(['eval', TINY, '--data', TINY_DATA, '--isa', 'scalar', '--json']);
    expect(scalar.json).toMatchObject({ accuracy: 5 / 7, images: 7 });
    expectOneLineError(swinq(['eval', TINY, '--data', TINY_DATA, '--isa', 'avx512']), /--isa must be auto, scalar, avx2, avxvnni or avx512vnni, got 'avx512'/);
    const lim = swinq(['eval', TINY, '--data', TINY_DATA, '--limit', '2', '--json']);
    expect(lim.json).toMatchObject({ accuracy: 1, images: 2 });
  });

  it('run feeds several inputs in graph input order and names the one that is wrong', () => {
    const model = path.join(tmp, 'sub.onnx');
    fs.writeFileSync(model, subModel());
    const a = path.join(tmp, 'a.npy');
    const b = path.join(tmp, 'b.npy');
    const bad = path.join(tmp, 'b-int.npy');
    const y = path.join(tmp, 'sub-y.npy');
    fs.writeFileSync(a, encodeNpy({ data: new Float32Array([10, 20, 30, 40, 50, 60]), shape: [2, 3] }));
    fs.writeFileSync(b, encodeNpy({ data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }));
    fs.writeFileSync(bad, encodeNpy({ data: new BigInt64Array(6), shape: [2, 3] }));
    const r = swinq(['run', model, '--input', a, '--input', b, '--output', y, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect([...readNpy(y).data as Float32Array]).toEqual([9, 18, 27, 36, 45, 54]);
    expectOneLineError(swinq(['run', model, '--input', a, '--input', bad, '--output', y]), /input 'b' expects float32, got int64 from .*b-int\.npy/);
    expectOneLineError(swinq(['run', model, '--input', a, '--output', y]), /sub\.onnx has 2 inputs \('a', 'b'\), got 1 --input file$/);
    const odd = path.join(tmp, 'odd.onnx');
    fs.writeFileSync(odd, subModel('NonMaxSuppression'));
    expectOneLineError(swinq(['run', odd, '--input', a, '--input', b, '--output', y]), /odd\.onnx: unsupported op 'NonMaxSuppression' at node 'sub_node'/);
  });

  it('run on the tiny model writes float32 .npy logits equal to the arithmetic', () => {
    const x = path.join(tmp, 'xr.npy');
    const xs = new Float32Array([0.5, -1, 2, 7, 3, 3.5, -2, 0]);
    fs.writeFileSync(x, encodeNpy({ data: xs, shape: [2, 1, 2, 2] }));
    const y = path.join(tmp, 'yr.npy');
    const r = swinq(['run', TINY, '--input', x, '--output', y, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!.ms).toBeGreaterThan(0);
    const out = readNpy(y);
    expect(out.dtype).toBe('float32');
    expect(out.shape).toEqual([2, 3]);
    expect([...out.data as Float32Array]).toEqual([0.5, -1, 2, 3, 3.5, -2]);
  });
});

// ---- the shared micro-Swin against onnxruntime ------------------------------------------------

function loadTestSet(n: number): { x: Float32Array; labels: Uint8Array } {
  // Read independently of src/io (plain zlib + offsets), so a bug there cannot hide here.
  const img = zlib.gunzipSync(fs.readFileSync(path.join(DATA, 't10k-images-idx3-ubyte.gz')));
  const lab = zlib.gunzipSync(fs.readFileSync(path.join(DATA, 't10k-labels-idx1-ubyte.gz')));
  const { mean, std } = JSON.parse(fs.readFileSync(`${MODEL}.json`, 'utf8'));
  const x = new Float32Array(n * 784);
  for (let k = 0; k < x.length; k++) x[k] = (img[16 + k] / 255 - mean) / std;
  return { x, labels: lab.subarray(8, 8 + n) };
}

async function ortAccuracy(n: number): Promise<number> {
  const s = await ort.InferenceSession.create(MODEL, { intraOpNumThreads: 2 });
  const { x, labels } = loadTestSet(n);
  const out = await s.run({ input: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
  const logits = out.logits.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
    if (best === labels[i]) correct++;
  }
  await s.release();
  return correct / n;
}

describe('micro-Swin (shared model)', () => {
  it('eval --limit 500 matches onnxruntime on the same 500 images', async () => {
    requireShared();
    const ref = await ortAccuracy(500);
    const r = swinq(['eval', MODEL, '--data', DATA, '--limit', '500', '--batch', '50', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/normalization: mean=0\.286 std=0\.353 \(from sidecar .*swin-micro-fmnist\.onnx\.json\)/);
    expect(r.json).toMatchObject({ images: 500 });
    expect(r.json!.accuracy).toBe(ref);
  });

  it('eval on the full 10k test split equals the reference test_accuracy within 0.1 pp', () => {
    requireShared();
    const { test_accuracy: ref } = JSON.parse(fs.readFileSync(`${MODEL}.json`, 'utf8'));
    // ~15 s of CPU on 2 cores; generous wall-clock limit because the machine is shared.
    const r = swinq(['eval', MODEL, '--data', DATA, '--batch', '200', '--json'], 240_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ images: 10000 });
    expect(Math.abs((r.json!.accuracy as number) - ref)).toBeLessThanOrEqual(0.001);
  }, 300_000);

  it('run writes the logits onnxruntime computes (batch 3)', async () => {
    requireShared();
    const { x } = loadTestSet(3);
    const xf = path.join(tmp, 'swin-x.npy');
    const yf = path.join(tmp, 'swin-y.npy');
    fs.writeFileSync(xf, encodeNpy({ data: x, shape: [3, 1, 28, 28] }));
    const r = swinq(['run', MODEL, '--input', xf, '--output', yf, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const y = readNpy(yf);
    expect(y.shape).toEqual([3, 10]);
    const s = await ort.InferenceSession.create(MODEL);
    const ref = (await s.run({ input: new ort.Tensor('float32', x, [3, 1, 28, 28]) })).logits.data as Float32Array;
    let maxRef = 0;
    let maxDiff = 0;
    for (let k = 0; k < 30; k++) {
      maxRef = Math.max(maxRef, Math.abs(ref[k]));
      maxDiff = Math.max(maxDiff, Math.abs(ref[k] - (y.data as Float32Array)[k]));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-4 * maxRef);
  });

  it('bench reports both engines, the ratio of their medians, and agreeing outputs', () => {
    requireShared();
    const r = swinq(['bench', MODEL, '--batch', '2', '--iters', '3', '--warmup', '1', '--threads', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json as Record<string, number>;
    expect(j.swinq_ms).toBeGreaterThan(0);
    expect(j.onnxruntime_ms).toBeGreaterThan(0);
    expect(j.ratio).toBeCloseTo(j.swinq_ms / j.onnxruntime_ms, 10);
    expect(j.max_abs_diff).toBeLessThan(1e-3);
  });

  it('profile lists per-op times that add up to about the run time', () => {
    requireShared();
    const r = swinq(['profile', MODEL, '--iters', '2', '--threads', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json as { total_ms: number; ops_ms: number; ops: { op: string; ms: number }[]; by_kind: Record<string, { count: number }> };
    expect(j.ops.length).toBeGreaterThan(10);
    expect((j as unknown as { plan_ops: number }).plan_ops).toBe(j.ops.length);
    expect(Object.keys(j.by_kind)).toContain('linear');
    expect(j.ops_ms).toBeGreaterThan(0);
    expect(j.ops_ms).toBeLessThanOrEqual(j.total_ms * 1.5);
    // both calling modes: wall per run, its op sum and what is left outside the ops
    for (const k of ['run', 'run_sync']) {
      const m = (j as unknown as Record<string, Record<string, number>>)[k];
      expect(m.wall_ms, k).toBeGreaterThan(0);
      expect(m.ops_ms, k).toBeGreaterThan(0);
      expect(m.wall_min_ms, k).toBeLessThanOrEqual(m.wall_ms);
      expect(m.outside_ms, k).toBeCloseTo(m.wall_ms - m.ops_ms, 0); // medians of differences ≈ difference of medians
      expect(m.outside_min_ms, k).toBeGreaterThan(-0.05); // the op timers sit inside the wall clock
    }
  });
});
