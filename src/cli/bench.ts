// swinq bench MODEL: latency of swinq and onnxruntime on the same random input, in the same
// process, interleaved (the machine is shared and noisy: report median and min of K runs each).
import type { Command } from 'commander';
import { CliError, emit, intOption, log, withCommon, withRequireInteger, planFields } from './common.js';
import { isaOption, toFloat32 } from './run.js';
import { loadOnnxruntime, median, openEngine, randomFeeds, type Engine, type PlainTensor } from '../engine.js';
import { readModelInfo } from '../io/model-info.js';
import { type IsaOption } from '../native.js';

interface BenchOptions {
  batch: number;
  iters: number;
  warmup: number;
  threads: number;
  json?: boolean;
  isa?: IsaOption;
  data?: string;
  mean?: string;
  std?: string;
  requireInteger?: boolean;
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

/** --data: the first test images, fitted to the input and normalised as eval does. */
async function imageFeeds(model: string, info: ReturnType<typeof readModelInfo>, opts: BenchOptions): Promise<Record<string, PlainTensor>> {
  const { loadLabelledImages } = await import('../io/idx.js');
  const { fitImages, imageLayout, layoutDims } = await import('../io/fit-input.js');
  const { describeChannelNormalization, resolveChannelNormalization } = await import('../normalize.js');
  if (info.inputs.length !== 1) throw new CliError(`${model} has ${info.inputs.length} inputs; --data needs a model with one image input`);
  const inp = info.inputs[0];
  const ds = loadLabelledImages(opts.data!, 'test');
  if (opts.batch > ds.count) throw new CliError(`--batch ${opts.batch} is more than the ${ds.count} images of ${ds.imagesFile}`);
  const layout = imageLayout(inp, ds.height, ds.width, ds.imagesFile);
  const norm = resolveChannelNormalization({ mean: opts.mean, std: opts.std, metadata: info.metadata, modelPath: model, channels: layout.channels });
  log(describeChannelNormalization(norm));
  return { [inp.name]: { type: 'float32', data: fitImages(ds, 0, opts.batch, layout, norm), dims: layoutDims(layout, opts.batch) } };
}

async function bench(model: string, opts: BenchOptions): Promise<void> {
  const info = readModelInfo(model);
  const feeds = opts.data ? await imageFeeds(model, info, opts) : randomFeeds(info.inputs, opts.batch);
  await loadOnnxruntime('by `swinq bench` for the comparison'); // fail before the slow part
  const swinq = await openEngine('swinq', model, { threads: opts.threads, isa: opts.isa, requireInteger: opts.requireInteger, logger: log });
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
      { ...result, batch: opts.batch, threads: opts.threads, iters: opts.iters, ...planFields(swinq.planFor(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])))) },
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
  withRequireInteger(withCommon(
    program
      .command('bench')
      .showSuggestionAfterError(false) // errors stay on one line
      .description('latency of MODEL in swinq and onnxruntime, same process, interleaved')
      .argument('<model>', 'ONNX model')
      .option('--batch <b>', 'batch size (the first input dim)', intOption('batch'), 1)
      .option('--iters <k>', 'timed runs per engine (median reported)', intOption('iters'), 20)
      .option('--warmup <w>', 'untimed runs per engine first', intOption('warmup', 0), 3)
      .option('--isa <isa>', 'swinq kernel set: auto, scalar, avx2, avxvnni or avx512vnni', isaOption)
      .option('--data <dir>', 'time on the first test images of this MNIST-style directory (fitted to the input as eval does) instead of random inputs')
      .option('--mean <m>', 'with --data: normalisation mean, one value or one per channel (default: model metadata, sidecar, else 0)')
      .option('--std <s>', 'with --data: normalisation std, one value or one per channel (default: model metadata, sidecar, else 1)'),
  )).action(async (model: string, opts: BenchOptions) => {
    if (opts.iters < 1) throw new CliError('--iters must be ≥ 1');
    if (!opts.data && (opts.mean !== undefined || opts.std !== undefined)) throw new CliError('--mean/--std apply to --data images; without --data the inputs are random');
    await bench(model, opts);
  });
}
