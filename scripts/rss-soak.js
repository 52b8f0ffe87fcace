#!/usr/bin/env node
// Resident memory over 10,000 runs of micro-Swin must stay flat: async and sync runs, named and
// pre-allocated fetches, refused runs (wrong dtype), inputs transferred mid-run, and the session
// released and created anew every 250 runs (40 plan compiles). RSS is sampled (after a full GC)
// every 1,000 runs. The allocator's high-water mark settles over the first compiles and then moves
// up to ±8 MB between samples with many arenas (below), so a single difference says little: the verdict is the
// least-squares trend of the samples from 3,000 runs on, projected over that window, which must stay
// under --max-growth-mb (default 8). A leak of 0.3 MB per session (10 MB per 10,000 runs) fails it;
// 20,000 runs with 200 sessions measured a trend of −0.9 MB.
// glibc gives each thread that allocates its own arena, and which thread runs a plan (the caller
// for short plans, the pool otherwise) moves memory between arenas: with the default arena count a
// 30,000-run soak without any leak wandered 113–125 MB and one CI run's 10,000-run trend read +8.7 MB.
// A leak grows in any arena layout, so the soak runs with one arena (MALLOC_ARENA_MAX=1, set here by
// re-running itself), where the same soak stays within 122–125 MB (trend +0.2 MB over 20,000 runs).
// Needs `npm run build:ts`. CI: node --expose-gc scripts/rss-soak.js
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.env.MALLOC_ARENA_MAX === undefined) {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, MALLOC_ARENA_MAX: '1' } });
  process.exit(child.status ?? 1);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const model = path.resolve(root, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');
if (!fs.existsSync(model)) {
  console.error(`rss-soak: needs ${model} (../shared next to the repo)`);
  process.exit(1);
}
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const runs = Number(arg('runs', 10000));
const maxGrowthMb = Number(arg('max-growth-mb', 8));
const recreateEvery = Number(arg('recreate-every', 250)); // 0: one session throughout
if (!Number.isInteger(runs) || runs < 5000) { console.error('rss-soak: --runs must be an integer ≥ 5000'); process.exit(1); }
if (typeof globalThis.gc !== 'function') { console.error('rss-soak: run with node --expose-gc (RSS is sampled after a full GC)'); process.exit(1); }

const { InferenceSession, Tensor } = await import(path.join(root, 'dist', 'index.js'));
const dims = [1, 1, 28, 28];
const x = Float32Array.from({ length: 784 }, (_, i) => Math.sin(i) * 0.5);
let session = await InferenceSession.create(model, { threads: 1 });
const mb = () => process.memoryUsage().rss / 2 ** 20;
const samples = [];
let refused = 0;
const t0 = performance.now();
for (let i = 1; i <= runs; i++) {
  switch (i % 10) {
    case 0: session.runSync({ input: new Tensor(x, dims) }); break;
    case 1: await session.run({ input: new Tensor(x, dims) }, ['logits']); break;
    case 2: await session.run({ input: new Tensor(x, dims) }, { logits: new Tensor(new Float32Array(10), [1, 10]) }); break;
    case 3: { // the input's buffer transferred away while the run is in flight
      const moved = x.slice();
      const p = session.run({ input: new Tensor(moved, dims) });
      structuredClone(moved.buffer, { transfer: [moved.buffer] });
      await p;
      break;
    }
    case 4: // refused: wrong dtype
      try { await session.run({ input: new Tensor(Float64Array.from(x), dims) }); } catch { refused++; }
      break;
    default: await session.run({ input: new Tensor(x, dims) });
  }
  if (recreateEvery > 0 && i % recreateEvery === 0) {
    await session.release();
    session = await InferenceSession.create(model, { threads: 1 });
  }
  if (i % 1000 === 0) {
    globalThis.gc();
    samples.push({ runs: i, rssMb: +mb().toFixed(1), heapMb: +(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1) });
  }
}
await session.release();
// trend of the samples from 3,000 runs on (least squares), in MB over that window
const tail = samples.slice(2);
const mx = tail.reduce((a, p) => a + p.runs, 0) / tail.length, my = tail.reduce((a, p) => a + p.rssMb, 0) / tail.length;
const slope = tail.reduce((a, p) => a + (p.runs - mx) * (p.rssMb - my), 0) / tail.reduce((a, p) => a + (p.runs - mx) ** 2, 0);
const growth = slope * (tail[tail.length - 1].runs - tail[0].runs);
const result = { runs, refused, mallocArenaMax: process.env.MALLOC_ARENA_MAX, seconds: +((performance.now() - t0) / 1000).toFixed(1), samples, rss_trend_mb: +growth.toFixed(1), max_growth_mb: maxGrowthMb };
console.log(JSON.stringify(result));
if (refused !== runs / 10) { console.error(`rss-soak: expected ${runs / 10} refused runs, got ${refused}`); process.exit(1); }
if (growth > maxGrowthMb) { console.error(`rss-soak: RSS trend +${growth.toFixed(1)} MB from 3,000 to ${runs} runs (limit ${maxGrowthMb} MB)`); process.exit(1); }
