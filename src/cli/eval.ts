// swinq eval MODEL --data DIR: top-1 accuracy on an MNIST-style labelled image set, in batches
// through session.run.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CliError, emit, intOption, log, planFields, withCommon, withRequireInteger } from './common.js';
import { engineOption, isaOption } from './run.js';
import { argmaxRows, openEngine, type EngineKind } from '../engine.js';
import { loadLabelledImages, type Split } from '../io/idx.js';
import { readModelInfo } from '../io/model-info.js';
import { describeLayout, fitImages, imageLayout, layoutDims } from '../io/fit-input.js';
import { describeChannelNormalization, resolveChannelNormalization } from '../normalize.js';
import { type IsaOption } from '../native.js';

interface EvalOptions {
  data: string;
  split: Split;
  limit?: number;
  batch: number;
  mean?: string;
  std?: string;
  threads: number;
  json?: boolean;
  isa?: IsaOption;
  engine: EngineKind;
  progress?: boolean;
  requireInteger?: boolean;
}

function splitOption(v: string): Split {
  if (v !== 'test' && v !== 'train') throw new CliError(`--split must be test or train, got '${v}'`);
  return v;
}

async function evaluate(model: string, opts: EvalOptions): Promise<void> {
  const info = readModelInfo(model);
  if (info.inputs.length !== 1) {
    throw new CliError(`${model} has ${info.inputs.length} inputs (${info.inputs.map((i) => i.name).join(', ')}); eval needs a model with one image input`);
  }
  const inp = info.inputs[0];
  if (inp.dtype !== 'float32') throw new CliError(`input '${inp.name}' is ${inp.dtype}; eval feeds float32 images`);
  const notes: string[] = [];
  if (typeof inp.dims?.[0] === 'number' && inp.dims[0] !== opts.batch) {
    notes.push(`note: input '${inp.name}' has a fixed batch of ${inp.dims[0]}; using --batch ${inp.dims[0]}`);
    opts.batch = inp.dims[0];
  }
  const ds = loadLabelledImages(opts.data, opts.split);
  const n = Math.min(ds.count, opts.limit ?? ds.count);
  // shape check before loading the model: gray h×w images are resized / replicated to [N, C, H, W]
  const layout = imageLayout(inp, ds.height, ds.width, ds.imagesFile);
  const norm = resolveChannelNormalization({ mean: opts.mean, std: opts.std, metadata: info.metadata, modelPath: model, channels: layout.channels });
  // Logged only once the inputs are known good, so a bad flag or file gives a one-line error.
  notes.forEach(log);
  log(describeChannelNormalization(norm));
  const fitNote = describeLayout(layout);
  if (fitNote) log(fitNote);
  log(`data: ${ds.imagesFile}: ${n} of ${ds.count} images ${ds.height}×${ds.width}, batch ${opts.batch}`);

  const engine = await openEngine(opts.engine, model, { threads: opts.threads, isa: opts.isa, requireInteger: opts.requireInteger, logger: log });
  // Compile the plans for the full and the last partial batch up front, so ms_per_image is run time.
  const tc = performance.now();
  try {
    for (const b of new Set([Math.min(opts.batch, n), n % opts.batch].filter((b) => b > 0))) {
      engine.prepare({ [inp.name]: layoutDims(layout, b) });
    }
  } catch (e) {
    engine.release();
    throw e;
  }
  const compileMs = performance.now() - tc;
  const plan = engine.planFor({ [inp.name]: layoutDims(layout, Math.min(opts.batch, n) || 1) });
  if (engine.kind === 'swinq') log(`compiled in ${compileMs.toFixed(0)} ms (${plan.plan} plan)`);
  const bar = opts.progress !== false && process.stderr.isTTY
    ? new cliProgress.SingleBar({ stream: process.stderr, format: 'eval [{bar}] {value}/{total} images | acc {acc}' }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(n, 0, { acc: '-' });
  let correct = 0;
  let runMs = 0;
  try {
    const outName = engine.outputNames[0];
    for (let start = 0; start < n; start += opts.batch) {
      const b = Math.min(opts.batch, n - start);
      const dims = layoutDims(layout, b);
      const x = fitImages(ds, start, b, layout, norm);
      const t0 = performance.now();
      const outs = await engine.run({ [inp.name]: { type: 'float32', data: x, dims } });
      runMs += performance.now() - t0;
      const y = outs[outName];
      if (!y) throw new CliError(`${model}: the run returned no output '${outName}'`);
      let pred: ArrayLike<number | bigint>;
      if (y.dims.length === 2 && y.dims[0] === b) {
        pred = argmaxRows(y.data as unknown as ArrayLike<number>, b, y.dims[1]);
      } else if (y.dims.length === 1 && y.dims[0] === b && (y.type === 'int64' || y.type === 'int32')) {
        pred = y.data as ArrayLike<number | bigint>; // the model already ends in an argmax
      } else {
        throw new CliError(`output '${outName}' has shape [${y.dims.join(', ')}]; eval expects logits [${b}, classes] or class ids [${b}]`);
      }
      for (let k = 0; k < b; k++) if (Number(pred[k]) === ds.labels[start + k]) correct++;
      bar?.update(start + b, { acc: ((100 * correct) / (start + b)).toFixed(2) + '%' });
    }
  } finally {
    bar?.stop();
    engine.release();
  }
  const accuracy = n ? correct / n : 0;
  const msPerImage = n ? runMs / n : 0;
  emit(
    opts.json,
    { accuracy, images: n, correct, ms_per_image: msPerImage, compile_ms: compileMs, engine: engine.kind, ...planFields(plan),
      mean: norm.mean.length === 1 ? norm.mean[0] : norm.mean, std: norm.std.length === 1 ? norm.std[0] : norm.std },
    `accuracy ${(100 * accuracy).toFixed(2)}% (${correct}/${n}) on ${opts.split}, ${msPerImage.toFixed(3)} ms/image (${engine.kind} ${plan.plan}, batch ${opts.batch}, ${opts.threads} thread${opts.threads === 1 ? '' : 's'})`,
  );
}

export function register(program: Command): void {
  withRequireInteger(withCommon(
    program
      .command('eval')
      .showSuggestionAfterError(false) // errors stay on one line
      .description('top-1 accuracy of MODEL on an MNIST-style labelled image set')
      .argument('<model>', 'ONNX model (fp32 or QDQ)')
      .requiredOption('--data <dir>', 'directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]')
      .option('--split <split>', 'test or train', splitOption, 'test' as Split)
      .option('--limit <n>', 'evaluate only the first N images', intOption('limit'))
      .option('--batch <b>', 'images per run', intOption('batch'), 64)
      .option('--mean <m>', 'input normalisation mean, one value or one per channel (0.485,0.456,0.406) (default: model metadata swinq.mean, sidecar <model>.json, else 0)')
      .option('--std <s>', 'input normalisation std, one value or one per channel (0.229,0.224,0.225) (default: model metadata swinq.std, sidecar <model>.json, else 1)')
      .option('--isa <isa>', 'kernel set: auto, scalar, avx2, avxvnni or avx512vnni', isaOption)
      .option('--engine <engine>', 'swinq (default) or onnxruntime, as a reference', engineOption, 'swinq' as EngineKind)
      .option('--no-progress', 'no progress bar even on a terminal'),
  )).action(evaluate);
}
