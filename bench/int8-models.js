#!/usr/bin/env node
// QDQ model speed: swinq integer-only on the QDQ file (src/quant/integer-lowering.ts) vs swinq fp32 (source
// model) vs onnxruntime fp32 (source model) vs onnxruntime int8 (the same QDQ file), micro-Swin,
// batch 1 and 32, 1 and 2 threads; interleaved runs, median and min. The QDQ file is made first with
// `calibrate` (minmax, 64 images; the method does not change speed). Needs `npm run build:ts`.
//   node bench/int8-models.js [--iters 20] [--batches 1,32] [--threads 1,2] [--accuracy 10000]
//                             [--swin-t swin_t.onnx [--swin-t-iters 10] [--no-micro]]
// --accuracy N: top-1 of swinq integer-only, swinq fp32 and onnxruntime fp32 on N test images.
// --swin-t PATH: also torchvision Swin-T 224 (from ../shared/tools/export_torchvision_swin.py; never
// committed), batch 1: calibrated first like `swinq calibrate PATH --samples 32 --method minmax
// --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225` (Fashion-MNIST resized to 224² RGB, ~30 s), then
// swinq integer-only vs swinq fp32 vs onnxruntime fp32 (PATH) vs onnxruntime int8 (the same QDQ file,
// the faster of graphOptimizationLevel 'all' and 'extended' by median), on one real test image.
// --no-micro: only the Swin-T rows.
// --busy: a spinning process (node -e 'for(;;){}') beside the timed runs, as on a server whose other
// core is shared; started after the micro-Swin calibration (the Swin-T one runs beside it), killed
// (by its pid) at the end.
// Also prints swinq integer-only at each thread count / its own 1-thread time (median and min).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeBlocks } from './time-blocks.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '..', 'shared');
const model = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const data = path.join(shared, 'data', 'fashion-mnist');
if (!fs.existsSync(model) || !fs.existsSync(data)) {
  console.error(`bench/int8-models.js: needs ${model} and ${data} (../shared next to the repo)`);
  process.exit(1);
}
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const iters = Number(arg('iters', 20));
const batches = arg('batches', '1,32').split(',').map(Number);
const threadsList = arg('threads', '1,2').split(',').map(Number);
const swinT = arg('swin-t', undefined);
const swinTIters = Number(arg('swin-t-iters', 10));
const micro = !process.argv.includes('--no-micro');
if (swinT && !fs.existsSync(swinT)) {
  console.error(`bench/int8-models.js: --swin-t ${swinT}: no such file`);
  process.exit(1);
}
for (const [k, v] of [['iters', iters], ['swin-t-iters', swinTIters], ...threadsList.map((t) => ['threads', t]), ...batches.map((b) => ['batches', b])]) {
  if (!Number.isInteger(v) || v < 1) { console.error(`bench/int8-models.js: --${k} must be positive integers`); process.exit(1); }
}

const { calibrate } = await import(path.join(root, 'dist/calibrate/calibrate.js'));
const api = await import(path.join(root, 'dist/index.js'));
const ortm = await import('onnxruntime-node');
const ort = ortm.default ?? ortm;
const q = path.join(os.tmpdir(), `swinq-int8-bench-${process.pid}.onnx`);
if (micro) await calibrate(model, { data, samples: 64, method: 'minmax', out: q, threads: 2 });

const busy = process.argv.includes('--busy') ? spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }) : null;
process.on('exit', () => busy?.kill());
if (busy) console.log(`(a busy process, pid ${busy.pid}, spins beside every timed run)\n`);
const own = {}; // own[`${model} ${batch}`][threads] = swinq integer-only times
const ownRatios = (label) => {
  for (const [k, byT] of Object.entries(own)) {
    if (!k.startsWith(label) || !byT[1]) continue;
    for (const [th, t] of Object.entries(byT)) {
      if (th === '1') continue;
      console.log(`${k}: swinq integer-only ${th} threads / 1 thread: ${(median(t) / median(byT[1])).toFixed(2)} median, ${(Math.min(...t) / Math.min(...byT[1])).toFixed(2)} min`);
    }
  }
};

const mean = 0.286, std = 0.353;
const accN = Number(arg('accuracy', 0));
if (micro && accN > 0) {
  const { loadLabelledImages, normalizedImages } = await import(path.join(root, 'dist/io/idx.js'));
  const ds = loadLabelledImages(data, 'test');
  const n = Math.min(accN, ds.count);
  const top1 = async (run) => {
    let ok = 0;
    for (let s = 0; s < n; s += 500) {
      const b = Math.min(500, n - s);
      const y = await run(normalizedImages(ds, s, b, mean, std), b);
      for (let r = 0; r < b; r++) { let k = 0; for (let j = 1; j < 10; j++) if (y[r * 10 + j] > y[r * 10 + k]) k = j; if (k === ds.labels[s + r]) ok++; }
    }
    return ok / n;
  };
  const si = await api.InferenceSession.create(q, { threads: 2 });
  const sf = await api.InferenceSession.create(model, { threads: 2 });
  const of = await ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
  const ops = si.planStats({ input: [1, 1, 28, 28] }).opCounts;
  const ai = await top1(async (x, b) => (await si.run({ input: new api.Tensor('float32', x, [b, 1, 28, 28]) })).logits.data);
  const af = await top1(async (x, b) => (await sf.run({ input: new api.Tensor('float32', x, [b, 1, 28, 28]) })).logits.data);
  const ao = await top1(async (x, b) => (await of.run({ input: new ort.Tensor('float32', x, [b, 1, 28, 28]) })).logits.data);
  console.log(`top-1 on ${n} test images: swinq integer-only ${ai.toFixed(4)}, swinq fp32 ${af.toFixed(4)}, onnxruntime fp32 ${ao.toFixed(4)} (integer − fp32 ${((ai - ao) * 100).toFixed(2)} pp)`);
  console.log(`integer plan ops: ${Object.entries(ops).map(([k, v]) => `${k}×${v}`).join(', ')}\n`);
  si.release(); sf.release();
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
if (micro) {
  console.log(`micro-Swin, ${iters} runs each in rotated per-engine blocks of 5, ms per batch: median (min)\n`);
  console.log('| batch | threads | swinq integer-only (QDQ) | swinq fp32 | onnxruntime fp32 | onnxruntime int8 (QDQ) | swinq int / ort fp32 | swinq int / ort int8 |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const threads of threadsList) {
    const sw = await api.InferenceSession.create(q, { threads });
    const sf = await api.InferenceSession.create(model, { threads });
    const of = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    const oq = await ort.InferenceSession.create(q, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    for (const B of batches) {
      const x = new Float32Array(B * 784).map((_, i) => Math.sin(i * 0.37));
      const runs = {
        swinq: () => sw.run({ input: new api.Tensor('float32', x, [B, 1, 28, 28]) }),
        swinqf: () => sf.run({ input: new api.Tensor('float32', x, [B, 1, 28, 28]) }),
        fp32: () => of.run({ input: new ort.Tensor('float32', x, [B, 1, 28, 28]) }),
        int8: () => oq.run({ input: new ort.Tensor('float32', x, [B, 1, 28, 28]) }),
      };
      const t = await timeBlocks(runs, iters, 5);
      const f = (k) => `${median(t[k]).toFixed(3)} (${Math.min(...t[k]).toFixed(3)})`;
      ((own[`micro-Swin batch ${B}`] ??= {})[threads] = t.swinq);
      console.log(`| ${B} | ${threads} | ${f('swinq')} | ${f('swinqf')} | ${f('fp32')} | ${f('int8')} | ${(median(t.swinq) / median(t.fp32)).toFixed(2)} | ${(median(t.swinq) / median(t.int8)).toFixed(2)} |`);
    }
    sw.release();
    sf.release();
    await of.release?.();
    await oq.release?.();
  }
  fs.rmSync(q, { force: true });
  ownRatios('micro-Swin');
}

if (swinT) await benchSwinT();

// Swin-T 224, batch 1: every engine on the same real image, in rotated per-engine blocks.
async function benchSwinT() {
  const { loadLabelledImages } = await import(path.join(root, 'dist/io/idx.js'));
  const { fitImages, imageLayout, layoutDims } = await import(path.join(root, 'dist/io/fit-input.js'));
  const qt = path.join(os.tmpdir(), `swinq-int8-bench-swin-t-${process.pid}.onnx`);
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  process.stderr.write(`calibrating ${swinT} (32 Fashion-MNIST images resized to 224², minmax) ...\n`);
  const cal = await calibrate(swinT, { data, samples: 32, method: 'minmax', out: qt, threads: Math.min(...threadsList), mean, std });
  if (!cal.planRanges) throw new Error(`calibrate stored no integer-only ranges: ${cal.planRangesSkipped}`);
  try {
    const ds = loadLabelledImages(data, 'test');
    const { readModelInfo } = await import(path.join(root, 'dist/io/model-info.js'));
    const inp = readModelInfo(swinT).inputs[0];
    const info = inp.name;
    const layout = imageLayout(inp, ds.height, ds.width, ds.imagesFile);
    const dims = layoutDims(layout, 1);
    const x = fitImages(ds, 0, 1, layout, { mean, std });
    console.log(`\nSwin-T 224² (${path.basename(swinT)}), batch 1, ${swinTIters} runs each in rotated per-engine blocks of 2, ms: median (min); calibrated in ${cal.seconds.toFixed(0)} s\n`);
    console.log('| threads | swinq integer-only (QDQ) | swinq fp32 | onnxruntime fp32 | onnxruntime int8 (QDQ) | swinq int / ort fp32 | swinq int / ort int8 |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const threads of threadsList) {
      const t0 = performance.now();
      const sw = await api.InferenceSession.create(qt, { threads });
      const ops = sw.planStats({ [info]: dims }).opCounts;
      const fp = Object.keys(ops).filter((k) => !k.endsWith('_q') && !['quantize', 'dequantize', 'index_map'].includes(k));
      if (fp.length) throw new Error(`the Swin-T QDQ plan is not integer-only (fp32 ops: ${fp.join(', ')})`);
      process.stderr.write(`threads ${threads}: integer plan ${Object.values(ops).reduce((a, b) => a + b, 0)} ops compiled in ${(performance.now() - t0).toFixed(0)} ms\n`);
      const sf = await api.InferenceSession.create(swinT, { threads });
      sf.planStats({ [info]: dims });
      const o = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' };
      const of = await ort.InferenceSession.create(swinT, { ...o, graphOptimizationLevel: 'all' });
      const oqa = await ort.InferenceSession.create(qt, { ...o, graphOptimizationLevel: 'all' });
      const oqe = await ort.InferenceSession.create(qt, { ...o, graphOptimizationLevel: 'extended' });
      const runs = {
        swinq: () => sw.run({ [info]: new api.Tensor('float32', x, dims) }),
        swinqf: () => sf.run({ [info]: new api.Tensor('float32', x, dims) }),
        fp32: () => of.run({ [info]: new ort.Tensor('float32', x, dims) }),
        int8all: () => oqa.run({ [info]: new ort.Tensor('float32', x, dims) }),
        int8ext: () => oqe.run({ [info]: new ort.Tensor('float32', x, dims) }),
      };
      const t = await timeBlocks(runs, swinTIters, 2);
      const int8 = median(t.int8all) <= median(t.int8ext) ? 'int8all' : 'int8ext';
      const f = (k) => `${median(t[k]).toFixed(1)} (${Math.min(...t[k]).toFixed(1)})`;
      ((own['Swin-T batch 1'] ??= {})[threads] = t.swinq);
      console.log(`| ${threads} | ${f('swinq')} | ${f('swinqf')} | ${f('fp32')} | ${f(int8)} [${int8 === 'int8all' ? 'all' : 'extended'}; other ${f(int8 === 'int8all' ? 'int8ext' : 'int8all')}] | ${(median(t.swinq) / median(t.fp32)).toFixed(2)} | ${(median(t.swinq) / median(t[int8])).toFixed(2)} |`);
      sw.release();
      sf.release();
      for (const s of [of, oqa, oqe]) await s.release?.();
    }
    ownRatios('Swin-T');
  } finally {
    fs.rmSync(qt, { force: true });
  }
}
busy?.kill();
