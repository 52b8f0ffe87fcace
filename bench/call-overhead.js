#!/usr/bin/env node
// What one call costs outside the ops: wall time of one batch-1 micro-Swin run minus the sum of its
// plan ops' times (the plan's own profile of that same run), for the public runSync() and run(), and
// for the bare NativePlan.run / runAsync beneath them (binding + executor only). Rotated blocks of 50
// back-to-back calls, one process, 1 thread; medians and minima over --iters runs; onnxruntime's run() wall time beside it.
// Needs `npm run build:ts`.
//   node bench/call-overhead.js [--iters 2000] [--int]      (--int: also the integer-only QDQ plan)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '..', 'shared');
const model = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const data = path.join(shared, 'data', 'fashion-mnist');
if (!fs.existsSync(model)) {
  console.error(`bench/call-overhead.js: needs ${model} (../shared next to the repo)`);
  process.exit(1);
}
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const iters = Number(arg('iters', 2000));
if (!Number.isInteger(iters) || iters < 10) { console.error('bench/call-overhead.js: --iters must be an integer ≥ 10'); process.exit(1); }

const api = await import(path.join(root, 'dist/index.js'));
const ortm = await import('onnxruntime-node');
const ort = ortm.default ?? ortm;

const models = [['fp32', model]];
if (process.argv.includes('--int')) {
  const { calibrate } = await import(path.join(root, 'dist/calibrate/calibrate.js'));
  const q = path.join(os.tmpdir(), `swinq-call-bench-${process.pid}.onnx`);
  await calibrate(model, { data, samples: 64, method: 'minmax', out: q, threads: 1 });
  models.push(['integer-only', q]);
}

const x = new Float32Array(784).map((_, i) => Math.sin(i) * 0.5);
const dims = [1, 1, 28, 28];
const median = (a) => { const s = [...a].sort((p, q) => p - q); return s[s.length >> 1]; };
const min = (a) => Math.min(...a);
const now = () => performance.now();

for (const [label, file] of models) {
  const s = await api.InferenceSession.create(file, { threads: 1, profile: true });
  const o = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  const feeds = () => ({ input: new api.Tensor(x, dims) });
  s.runSync(feeds());
  const plan = [...s.plans.values()][0].plan; // the compiled plan beneath the session
  const opSum = () => { let t = 0; for (const p of plan.profile()) t += p.ms; return t; };
  const outBuf = new Float32Array(10);
  const modes = {
    'runSync()': async () => { s.runSync(feeds()); },
    'run()': async () => { await s.run(feeds()); },
    'NativePlan.run': async () => { plan.run([x], [outBuf]); },
    'NativePlan.runAsync': async () => { await plan.runAsync([x], [outBuf]); },
  };
  const oFeeds = { input: new ort.Tensor('float32', x, dims) };
  const res = Object.fromEntries(Object.keys(modes).map((k) => [k, { wall: [], over: [] }]));
  const ortWall = [];
  for (let i = 0; i < 200; i++) { for (const f of Object.values(modes)) await f(); await o.run(oFeeds); } // warm-up
  // Blocks of back-to-back calls per mode (as a loop or a busy server makes them), blocks rotated so
  // the machine's drift hits every mode alike. Interleaving single calls instead would put a sleeping
  // libuv thread's wake-up (ms on a shared VM) into every async call.
  const block = 50;
  for (let done = 0; done < iters; done += block) {
    for (const [k, f] of Object.entries(modes)) {
      for (let i = 0; i < block; i++) {
        const t0 = now();
        await f();
        const w = now() - t0;
        res[k].wall.push(w);
        res[k].over.push(w - opSum());
      }
    }
    for (let i = 0; i < block; i++) {
      const t0 = now();
      await o.run(oFeeds);
      ortWall.push(now() - t0);
    }
  }
  console.log(`\nmicro-Swin ${label}, batch 1, 1 thread, ${iters} runs each in rotated blocks of ${block} (${os.cpus()[0]?.model ?? 'cpu'})`);
  console.log('| call | wall ms median (min) | wall − op-sum ms median (min) |');
  console.log('| --- | ---: | ---: |');
  for (const [k, r] of Object.entries(res)) {
    console.log(`| ${k} | ${median(r.wall).toFixed(3)} (${min(r.wall).toFixed(3)}) | ${median(r.over).toFixed(4)} (${min(r.over).toFixed(4)}) |`);
  }
  console.log(`| onnxruntime run() | ${median(ortWall).toFixed(3)} (${min(ortWall).toFixed(3)}) | — |`);
  await s.release();
  await o.release();
}
