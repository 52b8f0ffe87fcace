// swinq run MODEL --input X.npy [--input X2.npy …] --output Y.npy: one inference, first output
// written as float32 .npy. Inputs are matched to graph inputs in order and checked before running.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CliError, emit, log, planFields, withCommon, withRequireInteger } from './common.js';
import { openEngine, type EngineKind, type PlainTensor } from '../engine.js';
import { formatDims, readModelInfo } from '../io/model-info.js';
import { readNpy, writeNpy, type NpyArray } from '../io/npy.js';
import { ISA_OPTIONS, type IsaOption } from '../native.js';

interface RunOptions {
  input: string[];
  output: string;
  threads: number;
  json?: boolean;
  isa?: IsaOption;
  engine: EngineKind;
  requireInteger?: boolean;
}

export function engineOption(v: string): EngineKind {
  if (v !== 'swinq' && v !== 'onnxruntime') throw new CliError(`--engine must be swinq or onnxruntime, got '${v}'`);
  return v;
}
export function isaOption(v: string): IsaOption {
  if (!(ISA_OPTIONS as readonly string[]).includes(v)) throw new CliError(`--isa must be auto, scalar, avx2, avxvnni or avx512vnni, got '${v}'`);
  return v as IsaOption;
}

/** Checks an .npy array against a graph input (dtype, rank, fixed dims); errors name the input and file. */
export function checkInput(
  inp: { name: string; dtype: string; dims: readonly (number | string)[] | null },
  arr: NpyArray,
  file: string,
): void {
  const dtype = arr.dtype;
  if (dtype !== inp.dtype) {
    throw new CliError(`input '${inp.name}' expects ${inp.dtype}, got ${dtype} from ${file}`);
  }
  if (!inp.dims) return;
  const bad = () => new CliError(`input '${inp.name}' expects shape ${formatDims(inp.dims)}, got [${arr.shape.join(', ')}] from ${file}`);
  if (arr.shape.length !== inp.dims.length) throw bad();
  inp.dims.forEach((d, k) => { if (typeof d === 'number' && d !== arr.shape[k]) throw bad(); });
}

/** Converts an output tensor to float32 (the run contract writes float32 .npy). */
export function toFloat32(t: PlainTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const src = t.data as ArrayLike<number | bigint>;
  const out = new Float32Array(src.length);
  for (let k = 0; k < src.length; k++) out[k] = Number(src[k]);
  return out;
}

async function run(model: string, opts: RunOptions): Promise<void> {
  if (opts.input.length === 0) throw new CliError('no --input given (one .npy per graph input, in graph input order)');
  const info = readModelInfo(model);
  if (opts.input.length !== info.inputs.length) {
    const names = info.inputs.map((i) => `'${i.name}'`).join(', ');
    throw new CliError(`${model} has ${info.inputs.length} input${info.inputs.length === 1 ? '' : 's'} (${names}), got ${opts.input.length} --input file${opts.input.length === 1 ? '' : 's'}`);
  }
  const feeds: Record<string, PlainTensor> = {};
  info.inputs.forEach((inp, k) => {
    const file = opts.input[k];
    const arr = readNpy(file);
    checkInput(inp, arr, file);
    feeds[inp.name] = { type: arr.dtype, data: arr.data, dims: arr.shape };
  });
  const outDir = path.dirname(path.resolve(opts.output));
  if (!fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) {
    throw new CliError(`--output ${opts.output}: directory ${outDir} does not exist`);
  }
  const engine = await openEngine(opts.engine, model, { threads: opts.threads, isa: opts.isa, requireInteger: opts.requireInteger, logger: log });
  try {
    // Compile first, so "ms" is the run itself ("compile_ms" is reported apart).
    const tc = performance.now();
    engine.prepare(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])));
    const compileMs = performance.now() - tc;
    const t0 = performance.now();
    const outs = await engine.run(feeds);
    const ms = performance.now() - t0;
    const name = engine.outputNames[0];
    const y = outs[name];
    if (!y) throw new CliError(`${model}: the run returned no output '${name}'`);
    writeNpy(opts.output, { data: toFloat32(y), shape: [...y.dims] });
    log(`${engine.kind}: ${model} → ${opts.output}: output '${name}' [${y.dims.join(', ')}] in ${ms.toFixed(2)} ms`);
    const plan = engine.planFor(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])));
    emit(opts.json, { ms, compile_ms: compileMs, output: opts.output, name, dims: [...y.dims], ...planFields(plan) }, `${ms.toFixed(3)} ms (${plan.plan} plan)`);
  } finally {
    engine.release();
  }
}

export function register(program: Command): void {
  withRequireInteger(withCommon(
    program
      .command('run')
      .showSuggestionAfterError(false) // errors stay on one line
      .description('run MODEL once on .npy inputs (in graph input order); write the first output as float32 .npy')
      .argument('<model>', 'ONNX model (fp32 or QDQ)')
      .option('--input <file>', 'input .npy (repeat for each graph input, in order)', (v: string, prev: string[]) => [...prev, v], [] as string[])
      .requiredOption('--output <file>', 'output .npy (float32)')
      .option('--isa <isa>', 'kernel set: auto, scalar, avx2, avxvnni or avx512vnni', isaOption)
      .option('--engine <engine>', 'swinq (default) or onnxruntime, as a reference', engineOption, 'swinq' as EngineKind),
  )).action(run);
}
