#!/usr/bin/env node
// Every model family at batch 1: swinq fp32 vs onnxruntime fp32 on the float file, and swinq
// integer-only vs onnxruntime int8 (the same QDQ file) vs onnxruntime fp32, through the public run().
// Models: the layout fixtures (test/fixtures/layouts: timm, DeiT, Hugging Face ViT/Swin, torchvision
// ViT/Swin, 28×28) and, when given, torchvision ViT-B/16 and Swin-T 224 from
// ../shared/tools/export_torchvision_swin.py (never committed). QDQ files are made with calibrate
// (minmax; 32 Fashion-MNIST images, resized to 224² RGB for the 224 models).
// Engines are timed in rotated per-engine blocks (one untimed run first) so no engine is timed while
// onnxruntime's spinning pool still holds the cores. --busy starts a busy-looping process for the
// whole run (a server's shared core). Prints the CPU, then one markdown row per model.
//   node bench/layouts.js [--threads 2] [--rounds 5] [--per 4] [--vit-b vit_b_16.onnx] [--swin-t swin_t.onnx]
//                         [--only timm-vit,hf-swin] [--busy]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const data = path.resolve(root, '..', 'shared', 'data', 'fashion-mnist');
if (!fs.existsSync(data)) { console.error(`bench/layouts.js: needs ${data} (../shared next to the repo)`); process.exit(1); }
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const threads = Number(arg('threads', 2)), rounds = Number(arg('rounds', 5)), per = Number(arg('per', 4));
const only = arg('only', '').split(',').filter(Boolean);
const busy = process.argv.includes('--busy');

const { calibrate } = await import(path.join(root, 'dist/calibrate/calibrate.js'));
const api = await import(path.join(root, 'dist/index.js'));
const { loadLabelledImages } = await import(path.join(root, 'dist/io/idx.js'));
const { fitImages, imageLayout, layoutDims } = await import(path.join(root, 'dist/io/fit-input.js'));
const ortm = await import('onnxruntime-node');
const ort = ortm.default ?? ortm;

const models = [];
for (const f of fs.readdirSync(path.join(root, 'test/fixtures/layouts')).filter((f) => f.endsWith('.onnx')).sort()) {
  models.push({ name: f.replace('.onnx', ''), file: path.join(root, 'test/fixtures/layouts', f), rgb: false });
}
for (const [flag, name] of [['vit-b', 'ViT-B/16 224'], ['swin-t', 'Swin-T 224']]) {
  const f = arg(flag, undefined);
  if (f) { if (!fs.existsSync(f)) { console.error(`--${flag} ${f}: no such file`); process.exit(1); } models.push({ name, file: f, rgb: true }); }
}
const todo = models.filter((m) => !only.length || only.includes(m.name));

const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
const field = (k) => info.match(new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
const family = Number(field('cpu family'));
const cpu = `${(os.cpus()[0]?.model ?? 'unknown CPU').trim()} (family ${family}${family === 25 ? ', Zen 3/4' : family === 26 ? ', Zen 5' : ''})`;
const flags = field('flags') ?? '';
const isa = ['avx512f', 'avx512_vnni', 'avx_vnni', 'avx2'].filter((f) => flags.split(' ').includes(f)).join(' ') || 'no AVX2';
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const ds = loadLabelledImages(data, 'test');

let hog;
if (busy) hog = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
try {
  console.log(`${cpu} (${isa}), ${threads} thread${threads === 1 ? '' : 's'}, batch 1, ${rounds} rounds × ${per} runs per engine${busy ? ', a busy process on the machine' : ''}`);
  console.log('| model | swinq fp32 / ort fp32 | swinq int / ort int8 | swinq int / ort fp32 | swinq int ms | ort int8 ms | ort fp32 ms | int ops |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const m of todo) {
    const s0 = await api.InferenceSession.create(m.file, { threads });
    const inp = s0.inputMetadata[0];
    const layout = imageLayout({ name: inp.name, dtype: 'float32', dims: inp.shape }, ds.height, ds.width, 'bench');
    s0.release();
    const norm = m.rgb ? { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } : { mean: [0], std: [1] };
    const q = path.join(os.tmpdir(), `swinq-layouts-${process.pid}-${m.name.replace(/[^\w]/g, '_')}.onnx`);
    await calibrate(m.file, { data, samples: m.rgb ? 16 : 32, batch: m.rgb ? 4 : 32, method: 'minmax', out: q, threads, mean: norm.mean, std: norm.std });
    const x = fitImages(ds, 0, 1, layout, norm);
    const dims = layoutDims(layout, 1);
    const engines = {
      sf: await api.InferenceSession.create(m.file, { threads }),
      si: await api.InferenceSession.create(q, { threads, requireInteger: true }),
      of: await ort.InferenceSession.create(m.file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' }),
      oi: await ort.InferenceSession.create(q, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' }),
    };
    const run = (k) => (k[0] === 's'
      ? engines[k].run({ [inp.name]: new api.Tensor('float32', x, dims) })
      : engines[k].run({ [inp.name]: new ort.Tensor('float32', x, dims) }));
    const t = { sf: [], si: [], of: [], oi: [] };
    const keys = Object.keys(t);
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < keys.length; j++) {
        const k = keys[(r + j) % keys.length];
        await run(k);
        for (let i = 0; i < per; i++) { const t0 = performance.now(); await run(k); t[k].push(performance.now() - t0); }
      }
    }
    const md = Object.fromEntries(keys.map((k) => [k, median(t[k])]));
    const mn = Object.fromEntries(keys.map((k) => [k, Math.min(...t[k])]));
    const ratio = (a, b) => `${(md[a] / md[b]).toFixed(2)} (${(mn[a] / mn[b]).toFixed(2)})`;
    const ops = engines.si.planStats({ [inp.name]: dims }).planOps;
    console.log(`| ${m.name} | ${ratio('sf', 'of')} | ${ratio('si', 'oi')} | ${ratio('si', 'of')} | ${md.si.toFixed(2)} | ${md.oi.toFixed(2)} | ${md.of.toFixed(2)} | ${ops} |`);
    engines.sf.release(); engines.si.release(); await engines.of.release?.(); await engines.oi.release?.();
    fs.rmSync(q, { force: true });
  }
  console.log('ratios: median (min-over-min); lower is faster for swinq');
} finally {
  hog?.kill();
}
