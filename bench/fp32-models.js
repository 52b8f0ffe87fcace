#!/usr/bin/env node
// fp32 model benchmark: swinq vs onnxruntime-node in the same process, interleaved runs, median
// (and min) of several runs each, as a markdown table. Uses the built package (dist/: `npx tsc`).
//
//   node bench/fp32-models.js [--model PATH] [--swin-t PATH] [--iters K] [--batches 1,64]
//                             [--threads 1,2] [--json]
//
// Default model: ../shared/models/swin-micro-fmnist.onnx. --swin-t adds a Swin-T ONNX (e.g. from
// ../shared/tools/export_torchvision_swin.py --arch swin_t) at batch 1. No .onnx is ever committed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
if (!fs.existsSync(path.join(dist, 'engine.js'))) {
  console.error(`bench/fp32-models.js: ${dist} is not built; run \`npx tsc\` (or \`npm run build:ts\`) first`);
  process.exit(1);
}
const { openEngine, randomFeeds, median, loadOnnxruntime } = await import(path.join(dist, 'engine.js'));
const { benchPair, maxAbsDiff } = await import(path.join(dist, 'cli', 'bench.js'));
const { readModelInfo } = await import(path.join(dist, 'io', 'model-info.js'));

function parseArgs(argv) {
  const o = {
    model: path.resolve(root, '..', 'shared', 'models', 'swin-micro-fmnist.onnx'),
    swinT: undefined, iters: 10, batches: [1, 64], threads: [1, 2], json: false, warmup: 2,
  };
  const ints = (v, flag) => {
    const xs = String(v).split(',').map(Number);
    if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${flag} must be positive integers, got '${v}'`);
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') o.model = path.resolve(val());
    else if (a === '--swin-t') o.swinT = path.resolve(val());
    else if (a === '--iters') o.iters = ints(val(), a)[0];
    else if (a === '--warmup') o.warmup = ints(val(), a)[0];
    else if (a === '--batches') o.batches = ints(val(), a);
    else if (a === '--threads') o.threads = ints(val(), a);
    else if (a === '--json') o.json = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/fp32-models.js [--model PATH] [--swin-t PATH] [--iters K] [--warmup W] [--batches 1,64] [--threads 1,2] [--json]');
      process.exit(0);
    } else throw new Error(`unknown argument '${a}'`);
  }
  for (const [flag, p] of [['--model', o.model], ['--swin-t', o.swinT]]) {
    if (p && !fs.existsSync(p)) throw new Error(`${flag} ${p}: no such file`);
  }
  return o;
}

async function measure(model, batch, threads, iters, warmup) {
  const info = readModelInfo(model);
  const feeds = randomFeeds(info.inputs, batch);
  const swinq = await openEngine('swinq', model, { threads });
  const ort = await openEngine('onnxruntime', model, { threads });
  try {
    const { ta, tb, outA, outB } = await benchPair(swinq, ort, feeds, iters, warmup);
    const out0 = swinq.outputNames[0];
    return {
      model: path.basename(model), batch, threads, iters,
      swinq_ms: median(ta), onnxruntime_ms: median(tb), ratio: median(ta) / median(tb),
      swinq_min_ms: Math.min(...ta), onnxruntime_min_ms: Math.min(...tb),
      max_abs_diff: maxAbsDiff(outA?.[out0], outB?.[out0]),
    };
  } finally {
    swinq.release();
    ort.release();
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  await loadOnnxruntime('by bench/fp32-models.js for the comparison');
  const cases = [];
  for (const batch of o.batches) for (const threads of o.threads) cases.push([o.model, batch, threads]);
  if (o.swinT) for (const threads of o.threads) cases.push([o.swinT, 1, threads]);
  const rows = [];
  for (const [model, batch, threads] of cases) {
    // Big models get fewer runs: each Swin-T run is ~100× the micro model's.
    const iters = model === o.swinT ? Math.max(3, Math.ceil(o.iters / 2)) : o.iters;
    process.stderr.write(`${path.basename(model)} batch ${batch} threads ${threads}: ${iters} interleaved runs each ...\n`);
    rows.push(await measure(model, batch, threads, iters, o.warmup));
  }
  const f = (x) => (x >= 100 ? x.toFixed(1) : x >= 10 ? x.toFixed(2) : x.toFixed(3));
  const lines = [
    `fp32, median (min) ms of interleaved runs, ${new Date().toISOString()}`,
    '',
    '| model | batch | threads | swinq ms | onnxruntime ms | ratio swinq/ORT | max abs diff |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.model} | ${r.batch} | ${r.threads} | ${f(r.swinq_ms)} (${f(r.swinq_min_ms)}) | ${f(r.onnxruntime_ms)} (${f(r.onnxruntime_min_ms)}) | ${r.ratio.toFixed(2)} | ${r.max_abs_diff.toExponential(1)} |`),
  ];
  console.log(lines.join('\n'));
  if (o.json) console.log(JSON.stringify({ rows }));
}

main().catch((e) => {
  console.error(`bench/fp32-models.js: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  if (process.env.SWINQ_DEBUG && e instanceof Error) console.error(e.stack);
  process.exit(1);
});
