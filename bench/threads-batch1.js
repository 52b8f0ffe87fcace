#!/usr/bin/env node
// Batch-1 latency at 1 and 2 threads with nothing else in the process (int8-models.js runs
// onnxruntime beside swinq, whose spinning pool threads take the second core): public run(), the
// sessions alternated in blocks, min and median ms, and 2 threads / 1 thread: 2 threads as sessions
// run them (each op on the pool or the caller, as the plan measured: adaptThreads) and with every op
// on the pool (adaptThreads false), and with one pool job per op (rowRegions false: no row regions,
// docs/latency.md). --gap-ms G waits G ms (a timer) before each timed run, as between a server's
// requests: the pool's workers have gone to sleep by then. Needs `npm run build`.
//   node bench/threads-batch1.js MODEL.onnx [--rounds 60] [--per 25] [--gap-ms 0] [--integer]
//   (MODEL: e.g. the micro-Swin QDQ file from `swinq calibrate`; --integer refuses a fallback plan)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (k, d) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? Number(argv[i + 1]) : d; };
const model = argv[0];
if (!model || model.startsWith('--') || !fs.existsSync(model)) {
  console.error('bench/threads-batch1.js: usage: node bench/threads-batch1.js MODEL.onnx [--rounds 60] [--per 25] [--gap-ms 0] [--integer]');
  process.exit(1);
}
const rounds = arg('rounds', 60), per = arg('per', 25), gapMs = arg('gap-ms', 0);
const api = await import(path.join(root, 'dist/index.js'));
const opts = (threads, adaptThreads = true, rowRegions = true) => ({ threads, adaptThreads, rowRegions, requireInteger: argv.includes('--integer') });
const sessions = {
  1: await api.InferenceSession.create(model, opts(1)),
  2: await api.InferenceSession.create(model, opts(2)),
  pool: await api.InferenceSession.create(model, opts(2, false)),
  ops: await api.InferenceSession.create(model, opts(2, false, false)),
};
const input = sessions[1].inputNames[0];
const dims = [1, ...sessions[1].inputMetadata?.[0]?.shape?.slice(1) ?? []];
if (dims.length < 2 || dims.some((d) => typeof d !== 'number')) {
  console.error(`bench/threads-batch1.js: ${model}: cannot read a fixed input shape`);
  process.exit(1);
}
const n = dims.reduce((a, b) => a * b, 1);
const x = new api.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5), dims);
const times = { 1: [], 2: [], pool: [], ops: [] };
const orders = [[1, 2, 'pool', 'ops'], [2, 'pool', 'ops', 1], ['pool', 'ops', 1, 2], ['ops', 1, 2, 'pool']];
for (let r = 0; r < rounds; ++r) {
  for (const k of orders[r % 4]) {
    await sessions[k].run({ [input]: x });  // untimed: the other session's threads go back to sleep
    for (let i = 0; i < per; ++i) {
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      const t0 = process.hrtime.bigint();
      await sessions[k].run({ [input]: x });
      times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
}
const stat = (a) => { const s = [...a].sort((p, q) => p - q); return { min: s[0], median: s[s.length >> 1] }; };
const [one, two, pool, ops] = [stat(times[1]), stat(times[2]), stat(times.pool), stat(times.ops)];
const choice = sessions[2].threadChoiceOf();
console.log(`${os.cpus()[0].model}, ${path.basename(model)}, batch 1, ${rounds} rounds × ${per} runs per session${gapMs > 0 ? `, ${gapMs} ms between runs` : ''}`);
console.log(`1 thread: min ${one.min.toFixed(3)} ms, median ${one.median.toFixed(3)} ms`);
console.log(`2 threads (adaptThreads: ${choice.config}, ${choice.callerOps} of ${choice.ops} ops on the caller): min ${two.min.toFixed(3)} ms, median ${two.median.toFixed(3)} ms`);
console.log(`2 threads, every op on the pool: min ${pool.min.toFixed(3)} ms, median ${pool.median.toFixed(3)} ms (${choice.jobs} pool jobs a run)`);
console.log(`2 threads, every op on the pool as its own job (rowRegions false): min ${ops.min.toFixed(3)} ms, median ${ops.median.toFixed(3)} ms (${sessions.ops.threadChoiceOf().jobs} jobs)`);
console.log(`2 threads / 1 thread: ${(two.min / one.min).toFixed(2)} min-over-min, ${(two.median / one.median).toFixed(2)} median (every op on the pool: ${(pool.min / one.min).toFixed(2)}, ${(pool.median / one.median).toFixed(2)}; one job per op: ${(ops.min / one.min).toFixed(2)}, ${(ops.median / one.median).toFixed(2)})`);
for (const s of Object.values(sessions)) await s.release();
