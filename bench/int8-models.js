#!/usr/bin/env node
// QDQ model speed: swinq integer-only on the QDQ file (src/quant/lower-swin.ts) vs swinq fp32 (source
// model) vs onnxruntime fp32 (source model) vs onnxruntime int8 (the same QDQ file), micro-Swin,
// batch 1 and 32, 1 and 2 threads; interleaved runs, median and min. The QDQ file is made first with
// `calibrate` (minmax, 64 images; the method does not change speed). Needs `npm run build:ts`.
//   node bench/int8-models.js [--iters 20] [--batches 1,32] [--threads 1,2] [--accuracy 10000]
// --accuracy N: top-1 of swinq integer-only, swinq fp32 and onnxruntime fp32 on N test images.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

const { calibrate } = await import(path.join(root, 'dist/quant/calibrate.js'));
const api = await import(path.join(root, 'dist/index.js'));
const ortm = await import('onnxruntime-node');
const ort = ortm.default ?? ortm;
const q = path.join(os.tmpdir(), `swinq-int8-bench-${process.pid}.onnx`);
await calibrate(model, { data, samples: 64, method: 'minmax', out: q, threads: 2 });

const mean = 0.286, std = 0.353;
const accN = Number(arg('accuracy', 0));
if (accN > 0) {
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
console.log(`micro-Swin, ${iters} interleaved runs each, ms per batch: median (min)\n`);
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
    const t = { swinq: [], swinqf: [], fp32: [], int8: [] };
    for (const k of Object.keys(runs)) for (let w = 0; w < 3; w++) await runs[k]();
    for (let i = 0; i < iters; i++) {
      for (const k of Object.keys(runs)) {
        const t0 = performance.now();
        await runs[k]();
        t[k].push(performance.now() - t0);
      }
    }
    const f = (k) => `${median(t[k]).toFixed(3)} (${Math.min(...t[k]).toFixed(3)})`;
    console.log(`| ${B} | ${threads} | ${f('swinq')} | ${f('swinqf')} | ${f('fp32')} | ${f('int8')} | ${(median(t.swinq) / median(t.fp32)).toFixed(2)} | ${(median(t.swinq) / median(t.int8)).toFixed(2)} |`);
  }
  sw.release();
  sf.release();
  await of.release?.();
  await oq.release?.();
}
fs.rmSync(q, { force: true });
