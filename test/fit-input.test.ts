// Fitting gray IDX images to a model's [N, C, H, W] input (src/io/fit-input.ts), per-channel
// --mean/--std (src/normalize.ts), and a generated 3-channel 32×32 Swin calibrated on Fashion-MNIST
// resized to 32×32: the QDQ file runs integer-only in swinq and runs in onnxruntime.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeLayout, fitImages, imageLayout, layoutDims, resizeBilinear } from '../src/io/fit-input.js';
import { loadLabelledImages, normalizedImages, type LabelledImages } from '../src/io/idx.js';
import { describeChannelNormalization, formatNumberList, parseNumberList, resolveChannelNormalization, resolveNormalization } from '../src/normalize.js';
import { initParams, swinOnnx, type SwinConfig } from '../src/train/swin.js';
import { calibrate } from '../src/calibrate/calibrate.js';
import { InferenceSession, Tensor } from '../src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '..', 'shared');
const DATA = path.join(shared, 'data', 'fashion-mnist');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-fit-'));
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Independent float64 reference of F.interpolate(bilinear, align_corners=False). */
function refResize(src: ArrayLike<number>, h: number, w: number, H: number, W: number): Float64Array {
  const out = new Float64Array(H * W);
  const tap = (o: number, n: number, N: number) => {
    const s = Math.max((o + 0.5) * (n / N) - 0.5, 0);
    const i0 = Math.min(Math.floor(s), n - 1);
    return [i0, Math.min(i0 + 1, n - 1), s - i0] as const;
  };
  for (let y = 0; y < H; y++) {
    const [y0, y1, ly] = tap(y, h, H);
    for (let x = 0; x < W; x++) {
      const [x0, x1, lx] = tap(x, w, W);
      const p = (r: number, c: number) => src[r * w + c];
      out[y * W + x] = (1 - ly) * ((1 - lx) * p(y0, x0) + lx * p(y0, x1)) + ly * ((1 - lx) * p(y1, x0) + lx * p(y1, x1));
    }
  }
  return out;
}

function fakeSet(n: number, h: number, w: number): LabelledImages {
  const images = Uint8Array.from({ length: n * h * w }, (_, i) => (Math.imul(i + 3, 2654435761) >>> 24) & 0xff);
  images[0] = 0; images[1] = 255;
  return { images, labels: new Uint8Array(n), count: n, height: h, width: w, imagesFile: 'fake-images', labelsFile: 'fake-labels' };
}

describe('resizeBilinear (align_corners=false)', () => {
  it('matches PyTorch F.interpolate on a 2×2 → 4×4 upsample and a 4×4 → 2×2 downsample', () => {
    // torch.nn.functional.interpolate(torch.tensor([[[[1.,2.],[3.,4.]]]]), size=(4,4), mode='bilinear', align_corners=False)
    expect([...resizeBilinear([1, 2, 3, 4], 2, 2, 4, 4)]).toEqual([
      1.0, 1.25, 1.75, 2.0,
      1.5, 1.75, 2.25, 2.5,
      2.5, 2.75, 3.25, 3.5,
      3.0, 3.25, 3.75, 4.0,
    ]);
    // downsampling by 2 without antialias samples between pixel pairs: the mean of each 2×2 block
    const s = Float32Array.from({ length: 16 }, (_, i) => i);
    expect([...resizeBilinear(s, 4, 4, 2, 2)]).toEqual([2.5, 4.5, 10.5, 12.5]);
  });
  it('is the identity at equal size, keeps constants, and agrees with a float64 reference on odd sizes', () => {
    const s = Float32Array.from({ length: 35 }, (_, i) => Math.sin(i * 1.7) * 3);
    expect(resizeBilinear(s, 5, 7, 5, 7)).toEqual(s);
    expect([...resizeBilinear(new Float32Array(12).fill(0.37), 3, 4, 9, 2)].every((v) => v === Math.fround(0.37))).toBe(true);
    expect([...resizeBilinear([5], 1, 1, 3, 2)]).toEqual([5, 5, 5, 5, 5, 5]);
    for (const [h, w, H, W] of [[5, 7, 13, 3], [28, 28, 224, 224], [28, 28, 17, 40], [3, 1, 8, 5]]) {
      const src = Float32Array.from({ length: h * w }, (_, i) => Math.fround(((i * 37) % 256) / 255));
      const got = resizeBilinear(src, h, w, H, W);
      const want = refResize(src, h, w, H, W);
      let err = 0;
      for (let k = 0; k < got.length; k++) err = Math.max(err, Math.abs(got[k] - want[k]));
      // float32 scale/weights (as PyTorch computes them) vs float64: a few ulps of positions in [0, 1]
      expect(err, `${h}×${w} → ${H}×${W}`).toBeLessThan(3e-6);
    }
  });
  it('checks every size it is handed', () => {
    expect(() => resizeBilinear([1, 2, 3], 2, 2, 4, 4)).toThrow(/source has 3 values, 2×2 needs 4/);
    expect(() => resizeBilinear([1, 2, 3, 4], 2, 2, 0, 4)).toThrow(/H must be an integer ≥ 1, got 0/);
    expect(() => resizeBilinear([1, 2, 3, 4], 2, 2, 2, 2, new Float32Array(3))).toThrow(/output has 3 values/);
  });
});

describe('imageLayout / fitImages', () => {
  it('reads [N, C, H, W], [N, H, W] and symbolic dims; refuses other ranks naming the input', () => {
    const rgb = imageLayout({ name: 'input', dims: ['batch', 3, 224, 224] }, 28, 28, 'd');
    expect(rgb).toMatchObject({ rank: 4, channels: 3, height: 224, width: 224, resized: true });
    expect(layoutDims(rgb, 2)).toEqual([2, 3, 224, 224]);
    expect(describeLayout(rgb)).toMatch(/input 'input': images resized 28×28 → 224×224 \(bilinear, align_corners=false\), gray replicated to 3 channels/);
    const same = imageLayout({ name: 'x', dims: ['N', 1, 28, 28] }, 28, 28, 'd');
    expect(same).toMatchObject({ channels: 1, resized: false });
    expect(describeLayout(same)).toBe('');
    expect(layoutDims(imageLayout({ name: 'x', dims: ['N', 'C', 'H', 'W'] }, 28, 28, 'd'), 5)).toEqual([5, 1, 28, 28]);
    expect(layoutDims(imageLayout({ name: 'x', dims: null }, 28, 28, 'd'), 5)).toEqual([5, 1, 28, 28]);
    expect(layoutDims(imageLayout({ name: 'x', dims: ['N', 32, 30] }, 28, 28, 'd'), 2)).toEqual([2, 32, 30]);
    expect(() => imageLayout({ name: 'img', dims: ['N', 784] }, 28, 28, 'data/x')).toThrow(/input 'img' expects \[N, 784\]; images from data\/x/);
    expect(() => imageLayout({ name: 'img', dims: ['N', 3, 100000, 8] }, 28, 28, 'd')).toThrow(/input 'img'.*larger than/);
  });
  it('equals normalizedImages bit-exactly for a 1-channel input of the data size', () => {
    const ds = fakeSet(5, 6, 4);
    const l = imageLayout({ name: 'x', dims: ['N', 1, 6, 4] }, 6, 4, 'd');
    expect(fitImages(ds, 1, 3, l, { mean: [0.286], std: [0.353] })).toEqual(normalizedImages(ds, 1, 3, 0.286, 0.353));
  });
  it('resizes, replicates to C channels and normalises each channel with its own mean/std', () => {
    const ds = fakeSet(3, 5, 7);
    const l = imageLayout({ name: 'x', dims: ['N', 3, 11, 9] }, 5, 7, 'd');
    const x = fitImages(ds, 1, 2, l, IMAGENET);
    expect(x.length).toBe(2 * 3 * 11 * 9);
    for (let i = 0; i < 2; i++) {
      const gray = Float32Array.from(ds.images.subarray((1 + i) * 35, (2 + i) * 35), (v) => Math.fround(v / 255));
      const big = resizeBilinear(gray, 5, 7, 11, 9);
      for (let c = 0; c < 3; c++) {
        const m = Math.fround(IMAGENET.mean[c]), s = Math.fround(IMAGENET.std[c]);
        const plane = x.subarray((i * 3 + c) * 99, (i * 3 + c + 1) * 99);
        expect(plane).toEqual(big.map((v) => Math.fround(Math.fround(v - m) / s)));
      }
    }
    // one mean/std value applies to every channel
    const one = fitImages(ds, 0, 1, l, { mean: [0.5], std: [0.25] });
    expect(one.subarray(0, 99)).toEqual(one.subarray(198, 297));
    expect(() => fitImages(ds, 2, 2, l, IMAGENET)).toThrow(/fake-images: images \[2, 4\) out of range \(has 3\)/);
    expect(() => fitImages(ds, 0, 1, l, { mean: [0.1, 0.2], std: [1] })).toThrow(/--mean has 2 values; input 'x' has 3 channels: give 1 or 3/);
    expect(() => fitImages(fakeSet(1, 4, 4), 0, 1, l, IMAGENET)).toThrow(/images are 4×4, the input layout was made for 5×7/);
  });
});

describe('per-channel normalisation', () => {
  it('parses one number or a comma/bracket/JSON list', () => {
    expect(parseNumberList('0.485,0.456,0.406', '--mean')).toEqual([0.485, 0.456, 0.406]);
    expect(parseNumberList(' [0.1, 0.2] ', '--mean')).toEqual([0.1, 0.2]);
    expect(parseNumberList([0.1, '0.2'], '--mean')).toEqual([0.1, 0.2]);
    expect(parseNumberList(0.5, '--std')).toEqual([0.5]);
    expect(() => parseNumberList('0.1,,0.3', '--mean')).toThrow(/--mean must be a number or a comma-separated list of finite numbers, got "0\.1,,0\.3"/);
    expect(() => parseNumberList('abc', '--std')).toThrow(/--std must be/);
    expect(formatNumberList([0.485, 0.456, 0.406])).toBe('0.485,0.456,0.406');
    expect(formatNumberList([0.5, 0.5, 0.5])).toBe('0.5');
  });
  it('expands one value to C, takes C values, and names the flag/metadata/sidecar when the count is wrong', () => {
    const r = resolveChannelNormalization({ mean: '0.485,0.456,0.406', std: '0.229,0.224,0.225', channels: 3 });
    expect(r).toMatchObject({ ...IMAGENET, meanSource: 'flag --mean' });
    expect(describeChannelNormalization(r)).toBe('normalization: mean=0.485,0.456,0.406 std=0.229,0.224,0.225 (mean from flag --mean, std from flag --std)');
    expect(resolveChannelNormalization({ mean: '0.5', channels: 3 })).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [1, 1, 1], stdSource: 'default' });
    expect(() => resolveChannelNormalization({ mean: '0.1,0.2', channels: 3 })).toThrow(/^--mean has 2 values; the model input has 3 channels: give 1 or 3/);
    expect(() => resolveChannelNormalization({ std: '0.1,0.2,0.3', channels: 1 })).toThrow(/^--std has 3 values; the model input has 1 channel: give 1 \(/);
    expect(() => resolveChannelNormalization({ metadata: { 'swinq.std': '0.2,0.2' }, channels: 3 })).toThrow(/model metadata_props 'swinq\.std' has 2 values/);
    expect(() => resolveChannelNormalization({ std: '0.2,0,0.3', channels: 3 })).toThrow(/std must be > 0, got 0 for channel 1 \(from flag --std\)/);
    const model = path.join(tmp, 'side.onnx');
    fs.writeFileSync(model, '');
    fs.writeFileSync(path.join(tmp, 'side.json'), JSON.stringify({ mean: [0.4, 0.5], std: 0.25 }));
    expect(() => resolveChannelNormalization({ modelPath: model, channels: 3 })).toThrow(/side\.json: "mean" has 2 values/);
    expect(resolveChannelNormalization({ modelPath: model, channels: 2 })).toMatchObject({ mean: [0.4, 0.5], std: [0.25, 0.25] });
    // the single-channel resolver used by train/distill still refuses lists
    expect(() => resolveNormalization({ mean: '0.1,0.2' })).toThrow(/--mean must be a finite number/);
  });
});

type Res = { code: number | null; stdout: string; stderr: string };
const swinq = (args: string[]): Res => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, SWINQ_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const noWarn = (s: string) => s.split('\n').filter((l) => l && !l.startsWith('npm warn'));

describe('a generated 3-channel 32×32 Swin calibrated on resized Fashion-MNIST', () => {
  const model = path.join(tmp, 'rgb32.onnx');
  const q = path.join(tmp, 'rgb32-q.onnx');
  const cfg: SwinConfig = { imgSize: [32, 32], inChans: 3, patch: 4, embed: 16, depths: [2, 2], heads: [2, 4], window: 4, classes: 10, act: 'gelu', mlpRatio: 2 };
  beforeAll(() => {
    if (!fs.existsSync(DATA)) throw new Error(`Fashion-MNIST not found at ${DATA} (expected ../shared/data/fashion-mnist relative to the repo root)`);
    fs.writeFileSync(model, swinOnnx(cfg, initParams(cfg, 1))); // no mean/std metadata, like a torchvision export
  });

  it('swinq calibrate --mean/--std lists writes a QDQ file that runs integer-only in swinq and runs in onnxruntime', async () => {
    const r = swinq(['calibrate', model, '--data', DATA, '--samples', '32', '--method', 'minmax', '--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225', '--out', q, '--threads', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.input_dims).toEqual([3, 32, 32]);
    expect(j.int_ranges).toBeGreaterThan(10);
    expect(r.stderr).toMatch(/normalization: mean=0\.485,0\.456,0\.406 std=0\.229,0\.224,0\.225/);
    expect(r.stderr).toMatch(/resized 28×28 → 32×32 .*replicated to 3 channels/);

    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string | Uint8Array, ...rest: unknown[]) => { writes.push(String(s)); return (orig as (...a: unknown[]) => boolean)(s, ...rest); }) as typeof process.stderr.write;
    let s: InferenceSession | undefined;
    try {
      s = await InferenceSession.create(q, { threads: 1 });
      expect(s.metadata['swinq.mean']).toBe('0.485,0.456,0.406');
      expect(s.metadata['swinq.std']).toBe('0.229,0.224,0.225');
      const ops = s.planStats({ input: [4, 3, 32, 32] }).opCounts;
      const fp32 = Object.keys(ops).filter((k) => !k.endsWith('_q') && !['quantize', 'dequantize', 'index_map'].includes(k));
      expect(fp32, JSON.stringify(ops)).toEqual([]);
      expect(ops.linear_q).toBeGreaterThan(0);
      expect(ops.quantize).toBe(1);
      expect(s.planInfo({ input: [4, 3, 32, 32] })).toEqual({ plan: 'integer-only' });
      expect(writes.join('')).not.toMatch(/fp32 simulation/);

      // same images through both engines: the integer plan and onnxruntime's int8 QDQ agree closely
      const test = loadLabelledImages(DATA, 'test');
      const l = imageLayout({ name: 'input', dims: ['batch', 3, 32, 32] }, 28, 28, 'test');
      const x = fitImages(test, 0, 4, l, IMAGENET);
      const ys = (await s.run({ input: new Tensor('float32', x, [4, 3, 32, 32]) })).logits.data as Float32Array;
      const o = await ort.InferenceSession.create(q);
      const yo = (await o.run({ input: new ort.Tensor('float32', x, [4, 3, 32, 32]) }))[o.outputNames[0]].data as Float32Array;
      await o.release();
      const f = await ort.InferenceSession.create(model);
      const yf = (await f.run({ input: new ort.Tensor('float32', x, [4, 3, 32, 32]) }))[f.outputNames[0]].data as Float32Array;
      await f.release();
      expect(ys.length).toBe(40);
      let dq = 0, df = 0, span = 0;
      for (let k = 0; k < 40; k++) { dq = Math.max(dq, Math.abs(ys[k] - yo[k])); df = Math.max(df, Math.abs(ys[k] - yf[k])); span = Math.max(span, Math.abs(yf[k])); }
      expect(ys.every(Number.isFinite)).toBe(true);
      expect(span).toBeGreaterThan(0);
      // random-init logits are small: compare against their own magnitude
      expect(dq, `swinq int vs onnxruntime int8 (logit span ${span})`).toBeLessThan(0.25 * span + 1e-3);
      expect(df, `swinq int vs fp32 (logit span ${span})`).toBeLessThan(0.25 * span + 1e-3);
    } finally {
      process.stderr.write = orig;
      s?.release();
    }

    // eval and bench take the same lists; eval reads them back from the QDQ file's metadata
    const e = swinq(['eval', q, '--data', DATA, '--limit', '8', '--batch', '4', '--threads', '1', '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout.trim().split('\n').pop()!)).toMatchObject({ images: 8, mean: IMAGENET.mean, std: IMAGENET.std });
    expect(e.stderr).toMatch(/mean from metadata swinq\.mean/);
    expect(e.stderr).not.toMatch(/fp32 simulation/);
    const b = swinq(['bench', q, '--data', DATA, '--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225', '--iters', '2', '--warmup', '1', '--threads', '1', '--json']);
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout.trim().split('\n').pop()!).max_abs_diff).toBeLessThan(1);
  });

  it('one-line errors name the flag when a list does not have 1 or C values', () => {
    const cases: [string[], RegExp][] = [
      [['calibrate', model, '--data', DATA, '--samples', '8', '--mean', '0.1,0.2', '--out', path.join(tmp, 'e.onnx')], /^swinq: --mean has 2 values; the model input has 3 channels: give 1 or 3/],
      [['calibrate', model, '--data', DATA, '--samples', '8', '--std', '0.1,x', '--out', path.join(tmp, 'e.onnx')], /^swinq: --std must be a number or a comma-separated list/],
      [['eval', model, '--data', DATA, '--limit', '4', '--std', '1,2,3,4'], /^swinq: --std has 4 values; the model input has 3 channels/],
      [['bench', model, '--mean', '0.5'], /^swinq: --mean\/--std apply to --data images/],
    ];
    const cfg = path.join(tmp, 'cfg.json');
    fs.writeFileSync(cfg, JSON.stringify({ data: DATA, samples: 8, mean: [0.1, 0.2, 0.3, 0.4], out: path.join(tmp, 'e.onnx') }));
    cases.push([['calibrate', model, '--config', cfg], /^swinq: --mean has 4 values; the model input has 3 channels/]);
    for (const [args, re] of cases) {
      const r = swinq(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      const lines = noWarn(r.stderr);
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(re);
    }
    expect(fs.existsSync(path.join(tmp, 'e.onnx'))).toBe(false);
  });
});
