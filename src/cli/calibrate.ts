// swinq calibrate MODEL --data DIR --samples N --method M --out Q.onnx: calibrates on N training
// images and writes a standard QDQ ONNX model. `--config file.json` takes the same keys as the
// flags (data, samples, method, percentile, gelu, out, batch, report, mean, std, threads);
// flags given on the command line win over the file.
import fs from 'node:fs';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CliError, emit, log, withCommon } from './common.js';
import { parseNumberList } from '../normalize.js';

const KEYS = ['data', 'samples', 'method', 'percentile', 'gelu', 'out', 'batch', 'report', 'mean', 'std', 'threads', 'sparsify'] as const;
type Key = (typeof KEYS)[number];
// batch: 32, or fewer for large inputs (chosen by calibrate())
const DEFAULTS: Partial<Record<Key, unknown>> = { samples: 512, method: 'entropy', percentile: 99.99, gelu: 'keep' };

function readConfig(file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`--config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(e as Error).message})`}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new CliError(`--config ${file}: expected a JSON object`);
  for (const k of Object.keys(json)) {
    if (!(KEYS as readonly string[]).includes(k)) throw new CliError(`--config ${file}: unknown key '${k}' (keys: ${KEYS.join(', ')})`);
  }
  return json as Record<string, unknown>;
}

function num(v: unknown, key: string, { int = false, min = -Infinity } = {}): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min) {
    throw new CliError(`--${key} must be ${int ? 'an integer' : 'a number'}${min > -Infinity ? ` ≥ ${min}` : ''}, got '${v}'`);
  }
  return n;
}

async function run(model: string, flags: Record<string, unknown>, cmd: Command): Promise<void> {
  const cfg = flags.config ? readConfig(String(flags.config)) : {};
  const o: Record<string, unknown> = { ...DEFAULTS, ...cfg };
  for (const k of KEYS) {
    const src = cmd.getOptionValueSource(k);
    if (flags[k] !== undefined && src !== 'default') o[k] = flags[k];
    else if (o[k] === undefined && flags[k] !== undefined) o[k] = flags[k];
  }
  if (typeof o.data !== 'string' || !o.data) throw new CliError('--data DIR is required (or "data" in --config)');
  if (typeof o.out !== 'string' || !o.out) throw new CliError('--out Q.onnx is required (or "out" in --config)');
  const method = String(o.method);
  const { METHODS } = await import('../quant/observers.js');
  const { GELU_CHOICES, calibrate } = await import('../calibrate/calibrate.js');
  if (!(METHODS as readonly string[]).includes(method)) throw new CliError(`--method must be one of ${METHODS.join('|')}, got '${method}'`);
  const gelu = String(o.gelu);
  if (!(GELU_CHOICES as readonly string[]).includes(gelu)) throw new CliError(`--gelu must be one of ${GELU_CHOICES.join('|')}, got '${gelu}'`);
  const samples = num(o.samples, 'samples', { int: true, min: 1 });
  const percentile = num(o.percentile, 'percentile');
  if (!(percentile > 50 && percentile <= 100)) throw new CliError(`--percentile must be in (50, 100], got ${percentile}`);
  const batch = o.batch === undefined ? undefined : num(o.batch, 'batch', { int: true, min: 1 });
  const threads = num(o.threads, 'threads', { int: true, min: 1 });
  const sparsify = o.sparsify === undefined ? undefined : num(o.sparsify, 'sparsify');
  if (sparsify !== undefined && !(sparsify > 0 && sparsify <= 1)) throw new CliError(`--sparsify must be a fraction in (0, 1] of MLP hidden outputs to keep, got ${sparsify}`);
  // one number or a per-channel list ("0.485,0.456,0.406"; a JSON array in --config)
  const list = (v: unknown, key: string): number[] | undefined => {
    if (v === undefined) return undefined;
    try { return parseNumberList(v, `--${key}`); } catch (e) { throw new CliError((e as Error).message); }
  };
  const mean = list(o.mean, 'mean');
  const std = list(o.std, 'std');
  const bar = flags.progress !== false && process.stderr.isTTY
    ? new cliProgress.SingleBar({ stream: process.stderr, format: 'calibrate [{bar}] {value}/{total} batches' }, cliProgress.Presets.shades_classic)
    : null;
  let started = false;
  let res;
  try {
    res = await calibrate(model, {
      data: o.data, out: o.out, samples, method: method as never, percentile, gelu: gelu as never, batch, threads, mean, std, sparsify,
      report: !!o.report, log,
      progress: (done, total) => {
        if (!bar) return;
        if (!started) { bar.start(total, 0); started = true; }
        bar.update(done);
      },
    });
  } finally {
    if (started) bar?.stop();
  }
  if (res.report) {
    log('tensor | kind | scale | zero point | SQNR dB');
    for (const r of res.report) {
      log(`${r.name} | ${r.kind} | ${typeof r.scale === 'number' ? r.scale.toExponential(4) : r.scale} | ${r.zeroPoint} | ${r.sqnrDb.toFixed(2)}`);
    }
  }
  if (res.planRangesSkipped) log(`note: no integer-only ranges stored: ${res.planRangesSkipped}`);
  if (!res.integerOnly) log(`note: swinq will run ${res.out} as an fp32 simulation (plan qdq-simulated), not integer-only: ${res.blockedBy?.reason}`);
  const result: Record<string, unknown> = {
    out: res.out, seconds: res.seconds, integer_only: res.integerOnly, ...(res.blockedBy ? { blocked_by: res.blockedBy } : {}),
    method, samples, activations: res.activations, weights: res.weights,
    input_dims: res.inputDims, batch: res.batch, int_ranges: res.planRanges,
  };
  if (sparsify !== undefined) result.sparsify = sparsify;
  if (res.report) result.report = res.report.map((r) => ({ name: r.name, kind: r.kind, sqnr_db: r.sqnrDb }));
  if (res.annotated) result.annotated = true;
  emit(flags.json as boolean | undefined, result, res.annotated
    ? `wrote ${res.out}: the QDQ model with integer-only ranges for ${res.planRanges - 1} plan ops (${method}, ${samples} samples; its Q/DQ nodes and weights unchanged) in ${res.seconds.toFixed(1)} s`
    : `wrote ${res.out} (${method}, ${samples} samples, ${res.activations} activations + ${res.weights} weights quantized) in ${res.seconds.toFixed(1)} s`);
}

export function register(program: Command): void {
  withCommon(
    program
      .command('calibrate')
      .showSuggestionAfterError(false)
      .description('calibrate MODEL on training images and write a QDQ ONNX model (uint8 activations, int8 per-channel weights); an already-quantized MODEL (e.g. from onnxruntime quantize_static) gets the ranges swinq needs to run it integer-only')
      .argument('<model>', 'fp32 ONNX model')
      .option('--data <dir>', 'MNIST-style data directory (the train split is used)')
      .option('--samples <n>', 'calibration images (default 512)')
      .option('--method <m>', 'minmax | percentile | entropy | mse (default entropy)')
      .option('--percentile <p>', 'percentile for --method percentile (default 99.99)')
      .option('--gelu <g>', 'keep | igelu | relu (default keep)')
      .option('--out <file>', 'QDQ ONNX file to write')
      .option('--batch <b>', 'images per calibration run (default 32; fewer for large inputs, e.g. 4 at 3×224×224)')
      .option('--mean <m>', 'input normalisation mean, one value or one per channel, e.g. 0.485,0.456,0.406 (default: model metadata, sidecar <model>.json, else 0)')
      .option('--std <s>', 'input normalisation std, one value or one per channel, e.g. 0.229,0.224,0.225 (default: model metadata, sidecar <model>.json, else 1)')
      .option('--report', 'print each quantized tensor\'s SQNR against fp32 (stderr; also in --json)')
      .option('--config <file>', 'JSON file whose keys mirror the flags')
      .option('--sparsify <d>', 'keep this fraction (0, 1] of each MLP hidden layer\'s outputs (largest |y| on the calibration images); the integer plan sets the rest exactly to zero (CATS-style, no retraining)')
      .option('--no-progress', 'no progress bar even on a terminal'),
  ).action(async (model: string, flags: Record<string, unknown>, cmd: Command) => run(model, flags, cmd));
}
