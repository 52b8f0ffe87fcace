// swinq demo: the embedded demo. Calibrates the bundled GELU teacher and ReLU student (minmax, on
// the bundled train slice), runs them integer-only and prints fp32 GELU vs int8 GELU vs int8 ReLU
// accuracy on the bundled Fashion-MNIST test slice, with latency against onnxruntime in the same
// process. Needs nothing downloaded and no ../shared: the assets live in demo/ (see
// scripts/make-demo-model.sh for how they were made).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError, emit, intOption, log, withCommon } from './common.js';
import { loadLabelledImages, normalizedImages } from '../io/idx.js';
import { argmaxRows, loadOnnxruntime, median, openEngine, type Engine } from '../engine.js';
import { resolveNormalization } from '../normalize.js';
import { loadModel } from '../onnx/load.js';

export interface DemoRow {
  model: string;
  accuracy: number;
  swinq_ms: number;
  /** null when onnxruntime-node (a devDependency) is not installed, as in an installed package */
  onnxruntime_ms: number | null;
  /** the plan swinq ran: 'integer-only' | 'fp32' | 'qdq-simulated' */
  plan: string;
  integer_only: boolean;
  op_counts: Record<string, number>;
}
export interface DemoResult { rows: DemoRow[]; seconds: number; images: number; calibration_images: number; threads: number }
export interface DemoOptions { dir?: string; threads?: number; samples?: number; limit?: number; runs?: number; onLog?: (s: string) => void }

/** demo/ next to dist/ (or src/) in the package. */
export function defaultDemoDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'demo');
}

async function accuracy(e: Engine, X: Float32Array, labels: ArrayLike<number>, n: number, hw: [number, number], classes: number): Promise<number> {
  const px = hw[0] * hw[1];
  let ok = 0;
  for (let s = 0; s < n; s += 100) {
    const b = Math.min(100, n - s);
    const out = await e.run({ [e.inputNames[0]]: { type: 'float32', data: X.subarray(s * px, (s + b) * px), dims: [b, 1, hw[0], hw[1]] } });
    const y = out[e.outputNames[0]].data as Float32Array;
    if (y.length !== b * classes) throw new CliError(`demo: model gives ${y.length / b} logits per image, expected ${classes}`);
    const pred = argmaxRows(y, b, classes);
    for (let i = 0; i < b; i++) if (pred[i] === labels[s + i]) ok++;
  }
  return ok / n;
}

/** Median ms of one batch-1 run (after a warm-up), over `runs` runs. */
async function latency(e: Engine, X: Float32Array, hw: [number, number], runs: number): Promise<number> {
  const px = hw[0] * hw[1];
  const feed = (i: number) => ({ [e.inputNames[0]]: { type: 'float32', data: X.slice(i * px, (i + 1) * px), dims: [1, 1, hw[0], hw[1]] } });
  e.prepare({ [e.inputNames[0]]: [1, 1, hw[0], hw[1]] });
  for (let i = 0; i < 3; i++) await e.run(feed(i));
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await e.run(feed(i));
    ts.push(performance.now() - t);
  }
  return median(ts);
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const t0 = performance.now();
  const say = opts.onLog ?? (() => {});
  const dir = opts.dir ?? defaultDemoDir();
  const threads = opts.threads ?? 1;
  const runs = opts.runs ?? 50;
  const teacher = path.join(dir, 'teacher-gelu.onnx');
  const student = path.join(dir, 'student-relu.onnx');
  const data = path.join(dir, 'fmnist-slice');
  for (const f of [teacher, student, data]) if (!fs.existsSync(f)) throw new CliError(`demo: ${f} is missing (the demo assets ship in demo/; scripts/make-demo-model.sh makes them)`);
  const { calibrate } = await import('../calibrate/calibrate.js');
  const norm = resolveNormalization({ metadata: loadModel(teacher).metadata, modelPath: teacher });
  const test = loadLabelledImages(data, 'test');
  const train = loadLabelledImages(data, 'train');
  const n = Math.min(test.count, opts.limit ?? test.count);
  const samples = Math.min(train.count, opts.samples ?? 256);
  const hw: [number, number] = [test.height, test.width];
  const X = normalizedImages(test, 0, n, norm.mean, norm.std);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-demo-'));
  try {
    const q = async (model: string, gelu: 'igelu' | 'keep', out: string) => {
      say(`demo: calibrating ${path.basename(model)} (minmax, ${samples} images${gelu === 'igelu' ? ', integer GELU' : ''})`);
      await calibrate(model, { data, samples, method: 'minmax', gelu, out, threads, mean: norm.mean, std: norm.std });
      return out;
    };
    const models: Array<[string, string]> = [
      ['fp32 GELU', teacher],
      ['int8 GELU', await q(teacher, 'igelu', path.join(tmp, 'teacher-int8.onnx'))],
      ['int8 ReLU', await q(student, 'keep', path.join(tmp, 'student-int8.onnx'))],
    ];
    const classes = 10;
    const rows: DemoRow[] = [];
    let haveOrt = true;
    try { await loadOnnxruntime('for the latency comparison'); } catch {
      haveOrt = false;
      say('demo: onnxruntime-node is not installed: swinq latency only (npm install onnxruntime-node for the comparison)');
    }
    for (const [name, file] of models) {
      const sw = await openEngine('swinq', file, { threads });
      const ort = haveOrt ? await openEngine('onnxruntime', file, { threads }) : undefined;
      try {
        const stats = sw.raw!.planStats({ [sw.inputNames[0]]: [1, 1, hw[0], hw[1]] });
        const oc = stats.opCounts;
        const acc = await accuracy(sw, X, test.labels, n, hw, classes);
        const swinqMs = await latency(sw, X, hw, runs);
        const ortMs = ort ? await latency(ort, X, hw, runs) : null;
        const plan = sw.planFor({ [sw.inputNames[0]]: [1, 1, hw[0], hw[1]] }).plan;
        rows.push({ model: name, accuracy: acc, swinq_ms: swinqMs, onnxruntime_ms: ortMs, plan, integer_only: plan === 'integer-only', op_counts: oc });
        say(`demo: ${name}: accuracy ${acc.toFixed(4)}, swinq ${swinqMs.toFixed(3)} ms (${plan}), onnxruntime ${ortMs === null ? '-' : `${ortMs.toFixed(3)} ms`}`);
      } finally {
        sw.release();
        ort?.release();
      }
    }
    return { rows, seconds: (performance.now() - t0) / 1000, images: n, calibration_images: samples, threads };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatTable(r: DemoResult): string {
  const head = ['model', `accuracy (${r.images} imgs)`, 'swinq ms (batch 1)', 'onnxruntime ms', 'integer-only'];
  const body = r.rows.map((x) => [x.model, x.accuracy.toFixed(4), x.swinq_ms.toFixed(3), x.onnxruntime_ms === null ? '-' : x.onnxruntime_ms.toFixed(3), x.integer_only ? 'yes' : 'no']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => `| ${c.map((s, i) => s.padEnd(w[i])).join(' | ')} |`;
  return [line(head), `|${w.map((k) => '-'.repeat(k + 2)).join('|')}|`, ...body.map(line),
    `calibrated on ${r.calibration_images} images (minmax), ${r.threads} thread(s), ${r.seconds.toFixed(1)} s`].join('\n');
}

export function register(program: Command): void {
  withCommon(program
    .command('demo')
    .description('embedded demo: fp32 GELU vs int8 GELU vs int8 ReLU Swin on bundled Fashion-MNIST, swinq vs onnxruntime')
    .option('--samples <n>', 'calibration images from the bundled train slice', intOption('samples'), 256)
    .option('--limit <n>', 'test images from the bundled slice (default all)', intOption('limit'))
    .option('--runs <n>', 'timed batch-1 runs per engine (median reported)', intOption('runs'), 50)
    .option('--dir <dir>', 'demo assets directory (default: demo/ of the package)'))
    .action(async (o) => {
      const r = await runDemo({ dir: o.dir, threads: o.threads, samples: o.samples, limit: o.limit, runs: o.runs, onLog: log });
      emit(o.json, { ...r }, formatTable(r));
    });
}
