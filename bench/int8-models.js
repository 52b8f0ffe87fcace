#!/usr/bin/env node
// QDQ model speed: swinq on the QDQ file vs onnxruntime fp32 (the source model) vs onnxruntime int8
// (the same QDQ file), micro-Swin, batch 1 and 32, 1 and 2 threads; interleaved runs, median and min.
// The QDQ file is made first with `calibrate` (minmax, 64 images; the method does not change speed).
//   node bench/int8-models.js [--iters 20] [--batches 1,32] [--threads 1,2]
// NOTE: until the integer-only lowering lands (docs/quantization.md), swinq runs a QDQ file by
// simulating the Q/DQ pairs in fp32, so its column measures that path.
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

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
console.log(`micro-Swin, ${iters} interleaved runs each, ms per batch: median (min)\n`);
console.log('| batch | threads | swinq QDQ | onnxruntime fp32 | onnxruntime int8 (QDQ) | swinq / ort fp32 | swinq / ort int8 |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const threads of threadsList) {
  const sw = await api.InferenceSession.create(q, { threads });
  const of = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const oq = await ort.InferenceSession.create(q, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  for (const B of batches) {
    const x = new Float32Array(B * 784).map((_, i) => Math.sin(i * 0.37));
    const runs = {
      swinq: () => sw.run({ input: new api.Tensor('float32', x, [B, 1, 28, 28]) }),
      fp32: () => of.run({ input: new ort.Tensor('float32', x, [B, 1, 28, 28]) }),
      int8: () => oq.run({ input: new ort.Tensor('float32', x, [B, 1, 28, 28]) }),
    };
    const t = { swinq: [], fp32: [], int8: [] };
    for (const k of Object.keys(runs)) for (let w = 0; w < 3; w++) await runs[k]();
    for (let i = 0; i < iters; i++) {
      for (const k of Object.keys(runs)) {
        const t0 = performance.now();
        await runs[k]();
        t[k].push(performance.now() - t0);
      }
    }
    const f = (k) => `${median(t[k]).toFixed(3)} (${Math.min(...t[k]).toFixed(3)})`;
    console.log(`| ${B} | ${threads} | ${f('swinq')} | ${f('fp32')} | ${f('int8')} | ${(median(t.swinq) / median(t.fp32)).toFixed(2)} | ${(median(t.swinq) / median(t.int8)).toFixed(2)} |`);
  }
  sw.release();
  await of.release?.();
  await oq.release?.();
}
fs.rmSync(q, { force: true });
