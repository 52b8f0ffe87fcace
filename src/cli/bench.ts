// swinq bench MODEL: latency of swinq and onnxruntime on the same random input, in the same
// process, interleaved (the machine is shared and noisy: report median and min of K runs each).
import type { Command } from 'commander';
import { CliError, emit, intOption, log, withCommon } from './common.js';
import { isaOption, toFloat32 } from './run.js';
import { loadOnnxruntime, median, openEngine, randomFeeds, type Engine, type PlainTensor } from '../io/engine.js';
import { readModelInfo } from '../io/model-info.js';

interface BenchOptions {
  batch: number;
  iters: number;
  warmup: number;
  threads: number;
  json?: boolean;
  isa?: 'auto' | 'scalar' | 'avx2';
}

export interface BenchResult {
  swinq_ms: number;
  onnxruntime_ms: number;
  ratio: number;
  swinq_min_ms: number;
  onnxruntime_min_ms: number;
  max_abs_diff: number;
}

async function timed(e: Engine, feeds: Record<string, PlainTensor>): Promise<[number, Record<string, PlainTensor>]> {
  const t0 = performance.now();
  const out = await e.run(feeds);
  return [performance.now() - t0, out];
}

/** Interleaved timing of two engines on the same feeds; the order alternates every iteration. */
export async function benchPair(a: Engine, b: Engine, feeds: Record<string, PlainTensor>, iters: number, warmup: number) {
  const ta: number[] = [];
  const tb: number[] = [];
  let outA: Record<string, PlainTensor> | undefined;
  let outB: Record<string, PlainTensor> | undefined;
  for (let i = 0; i < warmup; i++) {
    outA = (await timed(a, feeds))[1];
    outB = (await timed(b, feeds))[1];
  }
  for (let i = 0; i < iters; i++) {
    if (i % 2 === 0) {
      ta.push((await timed(a, feeds))[0]);
      tb.push((await timed(b, feeds))[0]);
    } else {
      tb.push((await timed(b, feeds))[0]);
      ta.push((await timed(a, feeds))[0]);
    }
  }
  return { ta, tb, outA, outB };
}

export function maxAbsDiff(x: PlainTensor | undefined, y: PlainTensor | undefined): number {
  if (!x || !y) return NaN;
  const a = toFloat32(x);
  const b = toFloat32(y);
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
  return m;
}

async function bench(model: string, opts: BenchOptions): Promise<void> {
  const info = readModelInfo(model);
  const feeds = randomFeeds(info.inputs, opts.batch);
  await loadOnnxruntime('by `swinq bench` for the comparison'); // fail before the slow part
  const swinq = await openEngine('swinq', model, { threads: opts.threads, isa: opts.isa });
  let ort: Engine | undefined;
  try {
    ort = await openEngine('onnxruntime', model, { threads: opts.threads });
    const { ta, tb, outA, outB } = await benchPair(swinq, ort, feeds, opts.iters, Math.max(1, opts.warmup));
    const out0 = swinq.outputNames[0];
    const result: BenchResult = {
      swinq_ms: median(ta),
      onnxruntime_ms: median(tb),
      ratio: median(ta) / median(tb),
      swinq_min_ms: Math.min(...ta),
      onnxruntime_min_ms: Math.min(...tb),
      max_abs_diff: maxAbsDiff(outA?.[out0], outB?.[out0]),
    };
    log(`${model}: batch ${opts.batch}, ${opts.threads} thread${opts.threads === 1 ? '' : 's'}, ${opts.iters} interleaved runs each after ${opts.warmup} warm-up`);
    emit(
      opts.json,
      { ...result, batch: opts.batch, threads: opts.threads, iters: opts.iters },
      [
        '| engine | median ms | min ms |',
        '| --- | ---: | ---: |',
        `| swinq | ${result.swinq_ms.toFixed(3)} | ${result.swinq_min_ms.toFixed(3)} |`,
        `| onnxruntime | ${result.onnxruntime_ms.toFixed(3)} | ${result.onnxruntime_min_ms.toFixed(3)} |`,
        `ratio swinq/onnxruntime ${result.ratio.toFixed(3)}; max |swinq − onnxruntime| on '${out0}' = ${result.max_abs_diff.toExponential(2)}`,
      ].join('\n'),
    );
  } finally {
    swinq.release();
    ort?.release();
  }
}

export function register(program: Command): void {
  withCommon(
    program
      .command('bench')
      .showSuggestionAfterError(false) // errors stay on one line
      .description('latency of MODEL in swinq and onnxruntime, same process, interleaved')
      .argument('<model>', 'ONNX model')
      .option('--batch <b>', 'batch size (the first input dim)', intOption('batch'), 1)
      .option('--iters <k>', 'timed runs per engine (median reported)', intOption('iters'), 20)
      .option('--warmup <w>', 'untimed runs per engine first', intOption('warmup', 0), 3)
      .option('--isa <isa>', 'swinq kernel set: auto, scalar or avx2', isaOption),
  ).action(async (model: string, opts: BenchOptions) => {
    if (opts.iters < 1) throw new CliError('--iters must be ≥ 1');
    await bench(model, opts);
  });
}
