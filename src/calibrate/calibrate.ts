// Calibration driver: runs the fp32 model (swinq's own fp32 engine, with every tensor to quantize
// added as a graph output — no onnxruntime needed, so an installed package calibrates) over N training images, feeds the observers, and writes the QDQ model.
// Pass 1 finds min/max, pass 2 fills the histograms (not needed for minmax), an optional pass 3
// measures each quantized tensor's SQNR against fp32 (--report).
import fs from 'node:fs';
import onnxProto from 'onnx-proto';
import { loadLabelledImages } from '../io/idx.js';
import { describeLayout, fitImages, imageLayout, layoutDims } from '../io/fit-input.js';
import { loadModel, readModelBytes } from '../onnx/load.js';
import { calibratePlanRanges, encodePlanRanges, INT_RANGES_KEY } from '../quant/plan-ranges.js';
import { stripQdq } from '../quant/float-plan.js';
import { hasQdq } from '../quant/qdq-sim.js';
import { ModelCompiler, type BlockedBy } from '../runtime/model-compiler.js';
import { InferenceSession } from '../session.js';
import { Tensor } from '../tensor.js';
import { describeChannelNormalization, formatNumberList, resolveChannelNormalization } from '../normalize.js';
import { METHODS, Sqnr, TensorObserver, quantizeWeightsPerChannel, uint8Params, type Method, type QParams } from '../quant/observers.js';
import { decodeModel, encodeModel, findTargets, writeQdq, setMetadata, type ModelProto, type Targets, type WeightQ } from '../quant/qdq-writer.js';

const { onnx } = onnxProto;

export type GeluChoice = 'keep' | 'igelu' | 'relu';
export const GELU_CHOICES: readonly GeluChoice[] = ['keep', 'igelu', 'relu'];

export interface CalibrateOptions {
  data: string;
  samples: number;
  method: Method;
  percentile?: number;
  gelu?: GeluChoice;
  out: string;
  batch?: number;
  threads?: number;
  report?: boolean;
  /** one value or one per input channel (a list or "0.485,0.456,0.406") */
  mean?: number | number[] | string;
  std?: number | number[] | string;
  /** CATS-style thresholded sparsity: keep this fraction (0, 1] of each MLP hidden layer's outputs
   *  (largest |y| on the calibration images); the rest become exactly zero in the integer plan */
  sparsify?: number;
  /** Gets one-line notes before the runs: the normalisation used and how images are fitted to the input. */
  log?: (line: string) => void;
  /** Called after each batch of each pass: (done, total) over all passes. */
  progress?: (done: number, total: number) => void;
}

export interface TensorReport { name: string; kind: 'activation' | 'weight'; scale: number | string; zeroPoint: number; sqnrDb: number }
export interface CalibrateResult {
  out: string; seconds: number; activations: number; weights: number; report?: TensorReport[];
  /** true when MODEL was already a QDQ file: only the swinq.int.ranges metadata was added */
  annotated?: boolean;
  /** plan-op ranges stored for the integer-only Swin lowering (0 when the plan could not be built) */
  planRanges: number;
  /** why no plan-op ranges were stored */
  planRangesSkipped?: string;
  /** true when the written file runs integer-only in swinq (found by lowering it), else what blocks it */
  integerOnly: boolean;
  blockedBy?: BlockedBy;
  /** the image size and channels fed to the model, and the batch used */
  inputDims: number[];
  batch: number;
}

function toNum(v: unknown): number {
  return typeof v === 'number' ? v : v && typeof (v as { toNumber?: unknown }).toNumber === 'function' ? (v as { toNumber(): number }).toNumber() : Number(v ?? 0);
}

function floatInit(t: ModelProto): Float32Array {
  const n = (t.dims ?? []).map(toNum).reduce((a: number, b: number) => a * b, 1);
  if (t.rawData && t.rawData.length) {
    if (t.rawData.length !== n * 4) throw new Error(`initializer '${t.name}': ${t.rawData.length} bytes for ${n} float32 values`);
    const c = new Uint8Array(t.rawData);
    return new Float32Array(c.buffer, 0, n);
  }
  if ((t.floatData ?? []).length !== n) throw new Error(`initializer '${t.name}': ${(t.floatData ?? []).length} values, expected ${n}`);
  return Float32Array.from(t.floatData);
}

function scalarConst(m: ModelProto, name: string): number | undefined {
  const t = (m.graph.initializer ?? []).find((x: ModelProto) => x.name === name);
  if (t && t.dataType === 1) { const v = floatInit(t); return v.length === 1 ? v[0] : undefined; }
  for (const n of m.graph.node) {
    if (n.opType === 'Constant' && n.output[0] === name) {
      const a = (n.attribute ?? []).find((x: ModelProto) => x.name === 'value');
      if (a?.t && a.t.dataType === 1) { const v = floatInit(a.t); return v.length === 1 ? v[0] : undefined; }
    }
  }
  return undefined;
}

/**
 * --gelu relu: replaces the erf GELU torch exports (x/√2 → Erf → +1 → ·x → ·0.5, in either
 * multiplication order) and ONNX's own Gelu op (opset 20, either approximation) by Relu(x). Returns
 * how many were replaced. (--gelu igelu keeps the graph
 * and records the choice: the integer lowering runs the I-BERT polynomial.)
 */
export function replaceGeluWithRelu(m: ModelProto): number {
  const g = m.graph;
  const consumers = new Map<string, ModelProto[]>();
  for (const n of g.node) for (const i of n.input ?? []) { if (!consumers.has(i)) consumers.set(i, []); consumers.get(i)!.push(n); }
  const producer = new Map<string, ModelProto>();
  for (const n of g.node) for (const o of n.output ?? []) producer.set(o, n);
  const only = (name: string, op: string) => { const c = consumers.get(name) ?? []; return c.length === 1 && c[0].opType === op ? c[0] : null; };
  const dead = new Set<ModelProto>();
  let count = 0;
  for (const n of g.node) {
    if (n.opType !== 'Gelu' || (n.domain && n.domain !== 'ai.onnx')) continue;
    n.opType = 'Relu';
    n.attribute = [];
    n.name = `${n.name}_relu`;
    count++;
  }
  for (const erf of g.node) {
    if (erf.opType !== 'Erf') continue;
    const div = producer.get(erf.input[0]);
    if (!div || (div.opType !== 'Div' && div.opType !== 'Mul')) continue;
    const x = div.input[0];
    const add = only(erf.output[0], 'Add');
    if (!add) continue;
    const mul1 = only(add.output[0], 'Mul');
    if (!mul1) continue;
    let last = mul1;
    let half = false;
    if (mul1.input.includes(x)) {
      const mul2 = only(mul1.output[0], 'Mul');
      if (mul2) {
        const c = scalarConst(m, mul2.input[0] === mul1.output[0] ? mul2.input[1] : mul2.input[0]);
        if (c !== undefined && Math.abs(c - 0.5) < 1e-6) { last = mul2; half = true; }
      }
    }
    if (!half) continue; // other shapes of the pattern are left alone
    for (const n of [div, erf, add, mul1]) dead.add(n);
    last.opType = 'Relu';
    last.input = [x];
    last.attribute = [];
    last.name = `${last.name}_relu`;
    count++;
  }
  g.node = g.node.filter((n: ModelProto) => !dead.has(n));
  return count;
}

/** Adds `names` as extra float graph outputs (the session then returns the fp32 intermediates). */
function withOutputs(m: ModelProto, names: string[]): Uint8Array {
  const c: ModelProto = onnx.ModelProto.decode(encodeModel(m));
  const have = new Set(c.graph.output.map((o: ModelProto) => o.name));
  for (const n of names) {
    if (have.has(n)) continue;
    c.graph.output.push(onnx.ValueInfoProto.create({ name: n, type: { tensorType: { elemType: 1 } } }));
  }
  return encodeModel(c);
}

function checkOptions(opts: CalibrateOptions): void {
  if (!METHODS.includes(opts.method)) throw new Error(`--method must be one of ${METHODS.join('|')}, got '${opts.method}'`);
  if (!GELU_CHOICES.includes(opts.gelu ?? 'keep')) throw new Error(`--gelu must be one of ${GELU_CHOICES.join('|')}, got '${opts.gelu}'`);
  if (!Number.isInteger(opts.samples) || opts.samples < 1) throw new Error(`--samples must be an integer ≥ 1, got ${opts.samples}`);
  if (opts.sparsify !== undefined && !(opts.sparsify > 0 && opts.sparsify <= 1)) throw new Error(`--sparsify must be a fraction in (0, 1] of MLP hidden outputs to keep, got ${opts.sparsify}`);
}

/** The calibration images as the model's input wants them: layout, normalisation and batch size. */
interface Feed { ds: ReturnType<typeof loadLabelledImages>; inputName: string; layout: ReturnType<typeof imageLayout>; itemDims: number[]; norm: ReturnType<typeof resolveChannelNormalization>; batch: number }

function calibrationFeed(m: ModelProto, meta: Record<string, string>, modelPath: string, opts: CalibrateOptions): Feed {
  const initNames = new Set((m.graph.initializer ?? []).map((t: ModelProto) => t.name));
  const graphInputs = m.graph.input.filter((v: ModelProto) => !initNames.has(v.name));
  if (graphInputs.length !== 1) throw new Error(`${modelPath}: calibration needs a model with one image input`);
  const input0 = graphInputs[0];
  const inputName: string = input0.name;
  const ds = loadLabelledImages(opts.data, 'train');
  if (opts.samples > ds.count) throw new Error(`--samples ${opts.samples} is more than the ${ds.count} images of ${ds.imagesFile}`);
  // the images are resized / replicated to the input's [N, C, H, W] (src/io/fit-input.ts)
  const shape = input0.type?.tensorType?.shape;
  const inDims = shape ? shape.dim.map((d: ModelProto) => (d.dimParam ? String(d.dimParam) : toNum(d.dimValue) > 0 ? toNum(d.dimValue) : '')) : null;
  const layout = imageLayout({ name: inputName, dims: inDims }, ds.height, ds.width, ds.imagesFile);
  const itemDims = layoutDims(layout, 1).slice(1);
  const norm = resolveChannelNormalization({ mean: opts.mean, std: opts.std, metadata: meta, modelPath, channels: layout.channels });
  // a model exported with a fixed batch dim is fed batches of exactly that size
  const d0 = shape?.dim?.[0];
  const fixedBatch = d0 && !d0.dimParam && toNum(d0.dimValue) > 0 ? toNum(d0.dimValue) : 0;
  if (fixedBatch && opts.samples % fixedBatch !== 0) {
    throw new Error(`${modelPath}: input '${inputName}' has a fixed batch of ${fixedBatch}; --samples ${opts.samples} must be a multiple of it`);
  }
  // every observed activation of a batch is held at once: large inputs (224² RGB: ~90 MB of
  // activations per image) get smaller default batches (a power of two, ≤ 32)
  const itemElems = itemDims.reduce((a, b) => a * b, 1);
  const autoBatch = Math.min(32, 2 ** Math.max(0, Math.floor(Math.log2((1 << 20) / itemElems))));
  const batch = fixedBatch || Math.min(opts.batch ?? autoBatch, opts.samples);
  opts.log?.(describeChannelNormalization(norm));
  const fitNote = describeLayout(layout);
  if (fitNote) opts.log?.(fitNote);
  return { ds, inputName, layout, itemDims, norm, batch };
}

/** Runs the calibration images through the fp32 model and turns each target activation's statistics
 *  into uint8 parameters (and, with --report, their SQNR). */
async function activationParams(m: ModelProto, targets: Targets, f: Feed, opts: CalibrateOptions): Promise<{ params: Map<string, QParams>; report?: TensorReport[] }> {
  const observed = targets.activations.map((a) => a.name);
  const fetch = observed.filter((n) => n !== f.inputName);
  const sess = await InferenceSession.create(withOutputs(m, fetch), { threads: opts.threads ?? 1 });
  const obs = new Map(observed.map((n) => [n, new TensorObserver()]));
  const needHist = opts.method !== 'minmax';
  const passes = 1 + (needHist ? 1 : 0) + (opts.report ? 1 : 0);
  const batches = Math.ceil(opts.samples / f.batch);
  let done = 0;
  const run = async (visit: (name: string, data: Float32Array) => void) => {
    for (let s = 0; s < opts.samples; s += f.batch) {
      const b = Math.min(f.batch, opts.samples - s);
      const x = fitImages(f.ds, s, b, f.layout, f.norm);
      const outs = await sess.run({ [f.inputName]: new Tensor('float32', x, layoutDims(f.layout, b)) }, fetch);
      for (const n of observed) visit(n, n === f.inputName ? x : (outs[n].data as Float32Array));
      opts.progress?.(++done, passes * batches);
    }
  };
  try {
    await run((n, d) => obs.get(n)!.observeRange(d, n));
    if (needHist) await run((n, d) => obs.get(n)!.observeHistogram(d));
    const params = new Map<string, QParams>();
    for (const a of targets.activations) {
      // the graph input (normalised pixels: 256 known levels, bounded) always keeps its full range:
      // clipping the bright tail of an image helps nothing (entropy cut it to 8.5 dB SQNR on micro-Swin)
      const method = a.isGraphInput ? 'minmax' : opts.method;
      params.set(a.name, a.softmax ? { scale: 1 / 256, zeroPoint: 0 } : uint8Params(obs.get(a.name)!.range(method, opts.percentile ?? 99.99)));
    }
    if (!opts.report) return { params };
    const sq = new Map(observed.map((n) => [n, new Sqnr()]));
    await run((n, d) => sq.get(n)!.add(d, params.get(n)!, 0, 255));
    return { params, report: observed.map((n) => ({ name: n, kind: 'activation' as const, scale: params.get(n)!.scale, zeroPoint: params.get(n)!.zeroPoint, sqnrDb: sq.get(n)!.db })) };
  } finally {
    await sess.release();
  }
}

/** swinq.int.ranges of the written QDQ model, or why its plan cannot carry them. */
function tryPlanRanges(m: ModelProto, f: Feed, opts: CalibrateOptions, modelPath: string): { planRanges: number; planRangesSkipped?: string } {
  try {
    const x = fitImages(f.ds, 0, Math.floor(opts.samples / f.batch) * f.batch, f.layout, f.norm);
    const ranges = planRangesOf(m, x, f.itemDims, f.batch, opts, modelPath);
    setMetadata(m, { [INT_RANGES_KEY]: ranges });
    return { planRanges: Object.keys(JSON.parse(ranges).ops).length + 1 };
  } catch (e) {
    // not plan-compilable by swinq (the file still runs by simulation or the chain lowering)
    return { planRanges: 0, planRangesSkipped: (e as Error).message.split('\n')[0] };
  }
}

export async function calibrate(modelPath: string, opts: CalibrateOptions): Promise<CalibrateResult> {
  const t0 = performance.now();
  checkOptions(opts);
  const gelu = opts.gelu ?? 'keep';
  const m = decodeModel(readModelBytes(modelPath), modelPath);
  // an already-quantized file (another tool's QDQ, or ours without ranges) is annotated, not re-quantized
  const qn = m.graph.node.find((n: ModelProto) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
  if (qn && gelu !== 'keep') throw new Error(`${modelPath}: already quantized (node '${qn.name}' is ${qn.opType}); --gelu needs the fp32 model`);
  const meta: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) meta[p.key] = p.value;
  if (gelu === 'relu' && replaceGeluWithRelu(m) === 0) throw new Error(`${modelPath}: --gelu relu found no GELU to replace (neither the erf subgraph nor a Gelu op)`);
  const targets = qn ? { activations: [], weights: [] } : findTargets(m, modelPath);
  const f = calibrationFeed(m, meta, modelPath, opts);
  const normMeta = { 'swinq.mean': formatNumberList(f.norm.mean), 'swinq.std': formatNumberList(f.norm.std) };
  if (qn) {
    // swinq's integer-only lowering needs ranges for the plan tensors the file has no Q/DQ for
    // (residual stream, LayerNorm inputs, logits); the file's own Q/DQ nodes and weights are kept
    const x = fitImages(f.ds, 0, Math.floor(opts.samples / f.batch) * f.batch, f.layout, f.norm);
    const ranges = planRangesOf(m, x, f.itemDims, f.batch, opts, modelPath);
    setMetadata(m, { [INT_RANGES_KEY]: ranges, ...normMeta, 'swinq.int.ranges.method': opts.method, 'swinq.int.ranges.samples': String(opts.samples) });
    writeModel(m, opts.out);
    return { out: opts.out, seconds: (performance.now() - t0) / 1000, activations: 0, weights: 0, planRanges: Object.keys(JSON.parse(ranges).ops).length + 1, inputDims: f.itemDims, batch: f.batch, annotated: true, ...integerCheck(opts.out, f.itemDims) };
  }
  const { params, report } = await activationParams(m, targets, f, opts);
  const inits = new Map<string, ModelProto>();
  for (const t of m.graph.initializer ?? []) inits.set(t.name, t);
  const wq = new Map<string, WeightQ>();
  for (const w of targets.weights) {
    const q = quantizeWeightsPerChannel(floatInit(inits.get(w.name)), w.dims, w.axis);
    wq.set(w.name, q);
    report?.push({ name: w.name, kind: 'weight', scale: `per-channel[${q.scales.length}]`, zeroPoint: 0, sqnrDb: q.sqnrDb });
  }
  const metadata: Record<string, string> = {
    ...normMeta,
    'swinq.quant.method': opts.method,
    'swinq.quant.samples': String(opts.samples),
    'swinq.quant.gelu': gelu,
    'swinq.quant.activations': 'uint8 per-tensor asymmetric (MatMul/Gemm/Conv inputs); softmax outputs scale 1/256 zero point 0',
    'swinq.quant.weights': 'int8 symmetric per-channel [-127,127]',
  };
  if (opts.method === 'percentile') metadata['swinq.quant.percentile'] = String(opts.percentile ?? 99.99);
  writeQdq(m, targets, params, wq, metadata);
  // ranges of every tensor of swinq's fp32 plan (Q/DQ removed) for the integer-only lowering
  // (src/quant/integer-lowering.ts); models whose plan it cannot build simply do not get them
  const pr = tryPlanRanges(m, f, opts, modelPath);
  writeModel(m, opts.out);
  return {
    ...integerCheck(opts.out, f.itemDims),
    out: opts.out, seconds: (performance.now() - t0) / 1000, activations: targets.activations.length, weights: targets.weights.length, report,
    ...pr, inputDims: f.itemDims, batch: f.batch,
  };
}

/** swinq.int.ranges (JSON) of a QDQ model: its fp32 plan with the activation Q→DQ pairs removed, on
 *  the calibration images (src/quant/plan-ranges.ts). */
function planRangesOf(m: ModelProto, x: Float32Array, itemDims: number[], batch: number, opts: CalibrateOptions, modelPath: string): string {
  const raw = loadModel(encodeModel(m));
  if (!hasQdq(raw)) throw new Error(`${modelPath}: the Q/DQ nodes are not in a shape swinq reads (QuantizeLinear → DequantizeLinear pairs, DequantizeLinear weights)`);
  const ranges = calibratePlanRanges(stripQdq(raw), x, itemDims, batch, opts.threads ?? 1, opts.method, opts.percentile ?? 99.99, opts.sparsify);
  return encodePlanRanges(ranges);
}

/** Whether the written file runs integer-only (found by lowering it for one image), and if not, why. */
function integerCheck(file: string, itemDims: number[]): { integerOnly: boolean; blockedBy?: BlockedBy } {
  const g = loadModel(file);
  const r = new ModelCompiler(g).lowerInteger({ [g.inputs[0].name]: [1, ...itemDims] });
  return r.ok ? { integerOnly: true } : { integerOnly: false, blockedBy: r.blockedBy };
}

function writeModel(m: ModelProto, out: string): void {
  try {
    fs.writeFileSync(out, encodeModel(m));
  } catch (e) {
    throw new Error(`${out}: cannot write the QDQ model (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
