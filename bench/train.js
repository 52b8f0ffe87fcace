#!/usr/bin/env node
// Training benchmark (micro Swin of `swinq init` defaults, 28×28, batch B): step time with exact
// activation backward vs few-bit 1/2/3/4 bits (min and median of R steps; the machine is shared),
// bytes kept for backward per activation element and per step, and optionally Fashion-MNIST
// accuracy after the same short training with exact / 3-bit / 2-bit GELU backward.
//
//   npm run build:ts && node bench/train.js [--batch 64] [--runs 5] [--threads 1]
//                                           [--accuracy N_TRAIN_IMAGES] [--json]
//
// With --model FILE.onnx: the imported-graph trainer (src/train/onnx-graph.ts) on that model —
// step time (min / median of interleaved runs), peak bytes of one step (activations + saved
// tensors + codes + gradients, the high-water mark) and bytes kept for backward, exact vs few-bit.
//   node bench/train.js --model ../shared/models/swin-micro-fmnist.onnx --batch 128 --runs 5 [--bits 0,2,3,4,2s]
// (a setting with s adds the memory-sharing LayerNorm, p the 8-bit attention probabilities: 2sp;
//  k keeps attention probabilities and LayerNorm outputs instead of recomputing them in backward: 2k;
//  --share-layernorm adds 0s and 2s)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
if (!fs.existsSync(path.join(dist, 'train', 'onnx-graph.js'))) {
  console.error('bench/train.js: dist/train/onnx-graph.js not found; run `npm run build:ts` first');
  process.exit(1);
}
const { native } = await import(path.join(dist, 'native.js'));
const { swinOnnx, initParams, DEFAULT_CONFIG } = await import(path.join(dist, 'train', 'swin.js'));
const { Trainer, countCorrect } = await import(path.join(dist, 'train', 'trainer.js'));
const { OnnxTrainGraph } = await import(path.join(dist, 'train', 'onnx-graph.js'));
// the `swinq init` model (defaults, seed 0) on the trainer
const initGraph = (cfg) => new OnnxTrainGraph(swinOnnx(cfg, initParams(cfg, 0)), 'swinq init');
const { loadLabelledImages, normalizedImages } = await import(path.join(dist, 'io', 'idx.js'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const B = opt('--batch', 64), R = opt('--runs', 5), threads = opt('--threads', 1), accN = opt('--accuracy', 0);
const json = args.includes('--json');
native.trainSetThreads(threads);

const mi = args.indexOf('--model');
if (mi >= 0) {
  const file = args[mi + 1];
  const bi = args.indexOf('--bits');
  const bitsList = bi >= 0 ? args[bi + 1].split(',').map((v) => (/[spk]/.test(v) ? v : Number(v))) : [0, 2, 3, 4, ...(args.includes('--share-layernorm') ? ['0s', '2s'] : [])];
  const g = new OnnxTrainGraph(fs.readFileSync(file), file);
  const per = g.inputShape.reduce((a, b) => a * b, 1);
  const xm = new Float32Array(B * per).map((_, i) => Math.sin(i * 0.37));
  const ym = Int32Array.from({ length: B }, (_, i) => i % g.classes);
  // a setting: bits, or 'Bs' = bits with memory-sharing LayerNorm
  const step = (setting) => {
    const bits = parseInt(setting, 10);
    g.setFewbit(bits);
    g.shareLayerNorm = /s/.test(String(setting));
    g.attentionProbs8bit = /p/.test(String(setting));
    g.recompute = !/k/.test(String(setting));
    const t0 = performance.now();
    const st = g.forward(xm, B);
    const ce = native.trainLoss('ce', st.values.get(st.tape.output), ym, g.classes, 0.1);
    g.backward(st, ce.grad);
    return { ms: performance.now() - t0, peak: st.peakBytes, saved: st.savedBytes };
  };
  for (const b of bitsList) step(b);  // compile the tape, solve the tables
  const res = new Map(bitsList.map((b) => [b, { times: [], peak: 0, saved: 0 }]));
  for (let r = 0; r < R; r++) {
    for (const b of bitsList) {  // interleaved: the shared machine's drift hits every setting alike
      const s = step(b);
      const e = res.get(b);
      e.times.push(s.ms); e.peak = s.peak; e.saved = s.saved;
    }
  }
  const exact = res.get(0);
  const out = bitsList.map((b) => {
    const e = res.get(b);
    e.times.sort((p, q) => p - q);
    return { bits: b, share_layernorm: /s/.test(String(b)), attention_probs_8bit: /p/.test(String(b)), recompute: !/k/.test(String(b)), min_ms: e.times[0], median_ms: e.times[Math.floor(R / 2)], peak_mib: e.peak / 2 ** 20, saved_mib: e.saved / 2 ** 20,
      peak_vs_exact: exact ? e.peak / exact.peak : null, saved_vs_exact: exact ? e.saved / exact.saved : null };
  });
  if (json) console.log(JSON.stringify({ model: file, batch: B, threads, runs: R, steps: out }));
  else {
    console.log(`${file}: batch ${B}, ${threads} thread(s), ${R} interleaved runs`);
    console.log('| backward | step min ms | step median ms | peak MiB | × exact | kept for backward MiB | × exact |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of out) console.log(`| ${parseInt(r.bits, 10) ? `few-bit ${parseInt(r.bits, 10)}` : 'exact'}${r.share_layernorm ? ' + shared LN' : ''}${r.attention_probs_8bit ? ' + 8-bit P' : ''}${r.recompute ? '' : ' (no recompute)'} | ${r.min_ms.toFixed(0)} | ${r.median_ms.toFixed(0)} | ${r.peak_mib.toFixed(1)} | ${r.peak_vs_exact?.toFixed(2)} | ${r.saved_mib.toFixed(1)} | ${r.saved_vs_exact?.toFixed(2)} |`);
  }
  process.exit(0);
}
const cfg = DEFAULT_CONFIG;
const px = cfg.imgSize[0] * cfg.imgSize[1];
const opts = (steps) => ({ lr: 2e-3, minLr: 1e-5, weightDecay: 0.05, warmup: Math.min(30, steps), totalSteps: steps, clip: 1, smoothing: 0.1, classes: cfg.classes });

const x = new Float32Array(B * px).map((_, i) => Math.sin(i * 0.37));
const y = Int32Array.from({ length: B }, (_, i) => i % cfg.classes);
const rows = [];
for (const bits of [0, 1, 2, 3, 4]) {
  const g = initGraph(cfg);
  g.setFewbit(bits);
  const t = new Trainer(g, opts(R + 1));
  let r = t.trainStep(x, y);  // warm-up (tables solved, buffers faulted in)
  const times = [];
  for (let i = 0; i < R; i++) {
    const t0 = performance.now();
    r = t.trainStep(x, y);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const st = g.forward(x, B, false);
  const actElems = st.tape.nodes.filter((n) => n.act).reduce((a, n) => a + st.sizes.get(n.output), 0);
  rows.push({ bits, min_ms: times[0], median_ms: times[Math.floor(R / 2)], saved_mb_per_step: r.savedBytes / 2 ** 20, peak_mb_per_step: r.peakBytes / 2 ** 20,
    act_elements: actElems, act_bytes_per_element: bits ? bits / 8 : 4, act_mb: (bits ? actElems * bits / 8 : actElems * 4) / 2 ** 20 });
}

let acc = [];
if (accN > 0) {
  const data = path.resolve(root, '..', 'shared', 'data', 'fashion-mnist');
  const train = loadLabelledImages(data, 'train');
  const test = loadLabelledImages(data, 'test');
  const X = normalizedImages(train, 0, accN, 0.286, 0.353);
  const nTest = 2000;
  const Xt = normalizedImages(test, 0, nTest, 0.286, 0.353);
  const steps = Math.ceil(accN / B);
  for (const bits of [0, 3, 2]) {
    const g = initGraph(cfg);
    g.setFewbit(bits);
    const t = new Trainer(g, opts(steps));
    for (let s = 0; s < steps; s++) {
      const b = Math.min(B, accN - s * B);
      t.trainStep(X.subarray(s * B * px, (s * B + b) * px), Int32Array.from(train.labels.subarray(s * B, s * B + b)));
    }
    let ok = 0;
    for (let s = 0; s < nTest; s += 250) ok += countCorrect(g.predict(Xt.subarray(s * px, (s + 250) * px), 250), test.labels.subarray(s, s + 250), cfg.classes);
    acc.push({ bits, train_images: accN, test_images: nTest, accuracy: ok / nTest });
  }
}

if (json) {
  console.log(JSON.stringify({ config: cfg, batch: B, threads, steps: rows, accuracy: acc }));
} else {
  console.log(`micro Swin ${JSON.stringify(cfg)}, batch ${B}, threads ${threads}, ${R} runs\n`);
  console.log('| backward | step min ms | step median ms | peak MB/step | kept for backward MB/step | GELU kept MB (bytes/elem) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.bits ? `few-bit ${r.bits}` : 'exact'} | ${r.min_ms.toFixed(0)} | ${r.median_ms.toFixed(0)} | ${r.peak_mb_per_step.toFixed(1)} | ${r.saved_mb_per_step.toFixed(1)} | ${r.act_mb.toFixed(2)} (${r.act_bytes_per_element}) |`);
  if (acc.length) {
    console.log('\n| GELU backward | train images | test accuracy |\n|---|---|---|');
    for (const a of acc) console.log(`| ${a.bits ? `${a.bits}-bit` : 'exact'} | ${a.train_images} | ${a.accuracy.toFixed(4)} (${a.test_images}) |`);
  }
}
