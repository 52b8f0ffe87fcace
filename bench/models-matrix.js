#!/usr/bin/env node
// Large models at batch 1 and 32, 1 and 2 threads: swinq integer-only on a QDQ file against
// onnxruntime int8 on the same file and onnxruntime fp32 on the source model (the VNNI targets of
// docs/isa.md). Rotated per-engine blocks (one untimed run, then `per` timed ones) so no engine is
// timed while another's threads still spin. Prints the CPU, then one markdown row per (model,
// batch, threads): ms median (min) and the ratios median (min-over-min). Needs `npm run build:ts`.
//   node bench/models-matrix.js --model "Swin-T 224=swin_t.onnx,swin_t_q.onnx" [--model …]
//        [--batches 1,32] [--threads 1,2] [--runs 6] [--per 2]
// (QDQ files from `swinq calibrate SRC --samples 32 --method minmax --mean … --std … --out Q`;
// the source models from ../shared/tools/export_torchvision_swin.py, never committed.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeBlocks } from './time-blocks.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (k, d) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : d; };
const models = argv.flatMap((a, i) => (argv[i - 1] === '--model' ? [a] : [])).map((s) => {
  const eq = s.indexOf('=');
  const [src, qdq] = s.slice(eq + 1).split(',');
  return { name: s.slice(0, eq), src, qdq };
});
const usage = 'usage: node bench/models-matrix.js --model "NAME=SRC.onnx,QDQ.onnx" [--model …] [--batches 1,32] [--threads 1,2] [--runs 6] [--per 2]';
if (!models.length || models.some((m) => !m.name || !m.src || !m.qdq)) { console.error(usage); process.exit(1); }
for (const m of models) for (const f of [m.src, m.qdq]) if (!fs.existsSync(f)) { console.error(`bench/models-matrix.js: ${f}: no such file`); process.exit(1); }
const list = (k, d) => arg(k, d).split(',').map(Number);
const batches = list('batches', '1,32'), threadsList = list('threads', '1,2');
const runs = Number(arg('runs', 6)), per = Number(arg('per', 2));
for (const v of [...batches, ...threadsList, runs, per]) if (!Number.isInteger(v) || v < 1) { console.error(usage); process.exit(1); }

const api = await import(path.join(root, 'dist/index.js'));
const { readModelInfo } = await import(path.join(root, 'dist/io/model-info.js'));
const ortm = await import('onnxruntime-node');
const ort = ortm.default ?? ortm;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };


console.log(`${os.cpus()[0].model}, kernel set ${api.native.activeIsa()}; ${runs} timed runs per engine in blocks of ${per}; ms median (min)\n`);
console.log('| model | batch | threads | swinq integer-only | onnxruntime int8 | onnxruntime fp32 | int / ort int8 | int / ort fp32 |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const m of models) {
  const inp = readModelInfo(m.src).inputs[0];
  for (const threads of threadsList) {
    const sw = await api.InferenceSession.create(m.qdq, { threads, requireInteger: true });
    const o = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' };
    const oq = await ort.InferenceSession.create(m.qdq, o);
    const of = await ort.InferenceSession.create(m.src, o);
    for (const B of batches) {
      const dims = inp.dims.map((d, i) => (i === 0 ? B : d));
      if (dims.some((d) => typeof d !== 'number' || d < 1)) throw new Error(`${m.src}: input ${inp.name} has no fixed non-batch dims`);
      const x = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37));
      const t = await timeBlocks({
        swinq: () => sw.run({ [inp.name]: new api.Tensor('float32', x, dims) }),
        int8: () => oq.run({ [inp.name]: new ort.Tensor('float32', x, dims) }),
        fp32: () => of.run({ [inp.name]: new ort.Tensor('float32', x, dims) }),
      }, runs, per);
      const f = (k) => `${median(t[k]).toFixed(1)} (${Math.min(...t[k]).toFixed(1)})`;
      const r = (k) => `${(median(t.swinq) / median(t[k])).toFixed(2)} (${(Math.min(...t.swinq) / Math.min(...t[k])).toFixed(2)})`;
      console.log(`| ${m.name} | ${B} | ${threads} | ${f('swinq')} | ${f('int8')} | ${f('fp32')} | ${r('int8')} | ${r('fp32')} |`);
    }
    sw.release();
    for (const s of [oq, of]) await s.release?.();
  }
}
