// GELU→ReLU iterative knowledge distillation (Tayaranian et al., 2024): the student starts as
// the teacher and its MLP activations are swapped to ReLU one stage at a time (or all at once),
// training after each swap on CE(labels) + α·T²·KL(teacher/T ‖ student/T). The run is a single
// stream of optimizer steps split evenly across the schedule phases, so every schedule gets the
// same number of steps and a checkpoint (params, AdamW moments, step, RNG, epoch order) resumes
// to bit-identical weights.
import fs from 'node:fs';
import { native } from '../native.js';
import { loadLabelledImages, normalizedImages, type LabelledImages } from '../io/idx.js';
import { resolveNormalization } from '../normalize.js';
import { CONFIG_KEY, readOnnxModel, type SwinConfig } from '../train/swin.js';
import { clipAndStep, countCorrect } from '../train/trainer.js';
import { enableGraphFakeQuant, disableGraphFakeQuant } from './qat.js';
import { importTorchvisionSwin } from './import-torchvision.js';
import crypto from 'node:crypto';
import path from 'node:path';
import { OnnxTrainGraph, type TapeState } from '../train/onnx-graph.js';
import { InferenceSession } from '../session.js';
import { Tensor } from '../tensor.js';

export type DistillSchedule = 'first-to-last' | 'last-to-first' | 'all-at-once';

export interface DistillOptions {
  teacher: string;                // .onnx from `swinq init`/`swinq train`, or the torchvision micro-Swin
  data: string;                   // MNIST-style IDX directory
  out: string;                    // student .onnx
  epochs: number;                 // total epochs over all phases
  schedule?: DistillSchedule;
  alpha?: number;                 // KL weight (×T² is inside the native KL)
  temperature?: number;
  shareLayerNorm?: boolean;       // memory-sharing LayerNorm (OnnxTrainGraph.shareLayerNorm)
  attentionProbs8bit?: boolean;   // attention probabilities saved as 8-bit codes (OnnxTrainGraph.attentionProbs8bit)
  recompute?: boolean;            // recompute attention probabilities and LayerNorm outputs in backward (default true; same gradients)
  sparsity?: number;              // target fraction of non-zero MLP hidden activations (penalty on post-ReLU values; undefined = off)
  sparsityPenalty?: 'l1' | 'hoyer';
  mean?: number;                  // input normalization (default: teacher metadata / sidecar)
  std?: number;
  featureWeight?: number;         // β of the per-block feature loss β·mean_b MSE(student_b, teacher_b) (0 = off)
  qatSteps?: number;              // quantization-aware finishing steps after the schedule (0 = off)
  fewbit?: number;                // backward bits for GELU blocks not yet swapped (0 = exact)
  limit?: number;                 // first N training images
  evalLimit?: number;             // first N test images
  batch?: number;
  lr?: number;
  minLr?: number;
  weightDecay?: number;
  warmup?: number;
  clip?: number;
  seed?: number;
  threads?: number;
  checkpoint?: string;            // checkpoint file (default OUT.ckpt)
  checkpointEvery?: number;       // steps between checkpoints (0 = only at phase boundaries)
  resume?: string;                // checkpoint to continue from
  /** stop (without writing OUT) after this many global steps — for tests/benchmarks of resume */
  stopAfter?: number;
}

export interface DistillStep {
  step: number; totalSteps: number; phase: number; phases: number; swapped: string[];
  loss: number; ce: number; kl: number; feature: number; lr: number; correct: number; batch: number;
  sparsity?: number; density?: number;
}

export interface DistillResult {
  teacher_accuracy: number; student_accuracy: number; out: string; steps: number; phases: string[][];
  schedule: DistillSchedule; seconds: number; stopped?: boolean;
  /** fraction of non-zero MLP hidden activations of the student on the evaluation images, overall and per block */
  relu_density?: number; relu_density_blocks?: number[];
  /** high-water mark of one step's activations + saved tensors (+ gradients), and what forward kept for backward */
  peak_activation_bytes?: number; saved_activation_bytes?: number;
}

export interface DistillCallbacks {
  onStep?: (s: DistillStep) => void | Promise<void>;
  onPhase?: (phase: number, swapped: string[]) => void;
  onLog?: (msg: string) => void;
}

// mulberry32 with its state exposed, so the checkpoint can carry it
export class Rng {
  constructor(public state: number) { this.state >>>= 0; }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export interface Teacher { config: SwinConfig; params: Map<string, Float32Array>; metadata: Record<string, string>; kind: 'swinq' | 'torchvision' }

/** Reads a teacher: swinq-init models by their config metadata, else a torchvision Swin by structure. */
export function loadTeacher(file: string): Teacher {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such teacher model`);
  const bytes = fs.readFileSync(file);
  try {
    return { ...readOnnxModel(bytes, file), kind: 'swinq' };
  } catch (e) {
    if (!/no 'swinq\.train\.config' metadata/.test((e as Error).message)) throw e;
  }
  const tv = importTorchvisionSwin(bytes, file);
  return { ...tv, kind: 'torchvision' };
}

export function phasesFor(schedule: DistillSchedule, stages: string[][]): string[][] {
  const s = stages.filter((x) => x.length);
  if (schedule === 'first-to-last') return s;
  if (schedule === 'last-to-first') return [...s].reverse();
  if (schedule === 'all-at-once') return [s.flat()];
  throw new Error(`--schedule must be first-to-last, last-to-first or all-at-once, got '${schedule}'`);
}

/** Feature loss β · mean_b mean((s_b − t_b)²) over the block outputs b, and its gradient seeds
 *  dL/ds_b = 2β (s_b − t_b) / (B·n_b) for OnnxTrainGraph.backward. */
export function featureLoss(student: Map<string, Float32Array>, teacher: Map<string, Float32Array>, names: string[], beta: number):
  { loss: number; seeds: Map<string, Float32Array> } {
  const seeds = new Map<string, Float32Array>();
  let loss = 0;
  for (const name of names) {
    const s = student.get(name), t = teacher.get(name);
    if (!s || !t || s.length !== t.length) throw new Error(`feature loss: block output '${name}' missing or of different size`);
    const k = beta / names.length / s.length;
    const g = new Float32Array(s.length);
    let sum = 0;
    for (let i = 0; i < s.length; i++) { const d = s[i] - t[i]; sum += d * d; g[i] = 2 * k * d; }
    loss += k * sum;
    seeds.set(name, g);
  }
  return { loss, seeds };
}

// ---- checkpoint: magic, u32 header length, JSON header, then float32/int32 blobs in header order
const MAGIC = 'SWQDCKP1';

interface CkptState {
  run?: string;  // hyper-parameters that must match on --resume
  step: number; rng: number; perm: Int32Array; totalSteps: number; schedule: DistillSchedule; n: number;
  params: Map<string, Float32Array>; m: Map<string, Float32Array>; v: Map<string, Float32Array>;
  /** quantization-aware finishing: each fake-quantization point's calibrated [lo, hi] */
  qat?: Map<string, Float32Array>;
}

export function writeCheckpoint(file: string, s: CkptState): void {
  const blobs: { key: string; data: Float32Array | Int32Array }[] = [{ key: 'perm', data: s.perm }];
  for (const [k, d] of s.params) blobs.push({ key: `p:${k}`, data: d });
  for (const [k, d] of s.m) blobs.push({ key: `m:${k}`, data: d });
  for (const [k, d] of s.v) blobs.push({ key: `v:${k}`, data: d });
  for (const [k, d] of s.qat ?? []) blobs.push({ key: `q:${k}`, data: d });
  const header = Buffer.from(JSON.stringify({
    run: s.run, step: s.step, rng: s.rng, totalSteps: s.totalSteps, schedule: s.schedule, n: s.n,
    blobs: blobs.map((b) => [b.key, b.data.length, b.data instanceof Int32Array ? 'i32' : 'f32']),
  }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const parts = [Buffer.from(MAGIC), len, header, ...blobs.map((b) => Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength))];
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const p of parts) fs.writeSync(fd, p);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);  // atomic: a kill leaves either the old or the new checkpoint
}

export function readCheckpoint(file: string): CkptState {
  let buf: Buffer;
  try { buf = fs.readFileSync(file); } catch { throw new Error(`${file}: no such checkpoint`); }
  if (buf.length < 12 || buf.subarray(0, 8).toString() !== MAGIC) throw new Error(`${file}: not a swinq distill checkpoint`);
  const hl = buf.readUInt32LE(8);
  if (12 + hl > buf.length) throw new Error(`${file}: truncated checkpoint header`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let h: any;
  try { h = JSON.parse(buf.subarray(12, 12 + hl).toString()); } catch { throw new Error(`${file}: corrupt checkpoint header`); }
  if (!Array.isArray(h.blobs)) throw new Error(`${file}: checkpoint header has no blob list`);
  let off = 12 + hl;
  const s: CkptState = { run: h.run, step: h.step, rng: h.rng, totalSteps: h.totalSteps, schedule: h.schedule, n: h.n, perm: new Int32Array(0), params: new Map(), m: new Map(), v: new Map() };
  for (const [key, count, type] of h.blobs as [string, number, string][]) {
    if (off + count * 4 > buf.length) throw new Error(`${file}: truncated checkpoint at '${key}'`);
    const copy = new Uint8Array(buf.subarray(off, off + count * 4)).buffer;
    off += count * 4;
    const data = type === 'i32' ? new Int32Array(copy) : new Float32Array(copy);
    if (key === 'perm') s.perm = data as Int32Array;
    else if (key[0] === 'q') (s.qat ??= new Map()).set(key.slice(2), data as Float32Array);
    else (key[0] === 'p' ? s.params : key[0] === 'm' ? s.m : s.v).set(key.slice(2), data as Float32Array);
  }
  return s;
}

/** The minibatch of `step`: a new order of the n images (from the checkpointed RNG, in place in
 *  perm) at each epoch's first step, then rows perm[s·batch …] of X copied into xb/yb. */
function minibatch(step: number, d: { X: Float32Array; labels: ArrayLike<number>; n: number; px: number; batch: number; perm: Int32Array; rng: { next(): number }; xb: Float32Array; yb: Int32Array }): { x: Float32Array; y: Int32Array } {
  const { X, labels, n, px, batch, perm, rng, xb, yb } = d;
  const s = step % Math.ceil(n / batch);
  if (s === 0) {
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = n - 1; i > 0; i--) { const j = Math.floor(rng.next() * (i + 1)); const t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
  }
  const B = Math.min(batch, n - s * batch);
  for (let b = 0; b < B; b++) {
    const k = perm[s * batch + b];
    xb.set(X.subarray(k * px, (k + 1) * px), b * px);
    yb[b] = labels[k];
  }
  return { x: xb.subarray(0, B * px), y: yb.subarray(0, B) };
}

/** Distils on the teacher's own graph (any model the engine runs), quantization-aware finishing
 *  (--qat-steps) included. */
export async function distill(o: DistillOptions, cb: DistillCallbacks = {}): Promise<DistillResult> {
  return distillGraph(o, cb);
}

/** A file named by size and the SHA-256 of its first MiB (what a resumed run must see again). */
export function fileFingerprint(file: string): string {
  const st = fs.statSync(file);
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(st.size, 1 << 20));
    fs.readSync(fd, buf, 0, buf.length, 0);
    return `${path.basename(file)} ${st.size} bytes sha256:${crypto.createHash('sha256').update(buf).digest('hex').slice(0, 16)}`;
  } finally {
    fs.closeSync(fd);
  }
}

/** Stages of activations: consecutive activations with the same hidden width (a Swin stage; a ViT is one). */
export function actStages(g: OnnxTrainGraph): string[][] {
  const out: string[][] = [];
  let w = -1;
  for (const a of g.actList) {
    if (a.hidden !== w || out.length === 0) { out.push([]); w = a.hidden; }
    out[out.length - 1].push(a.name);
  }
  return out;
}

/** Sparsity penalty on post-ReLU hidden activations h of every block (λ·mean over blocks):
 *  l1: mean(h);  hoyer: (Σh)²/(n·Σh²) (a scale-free density measure). Returns the value, the gradient
 *  seeds and the measured density (fraction of h > 0). */
export function sparsityLoss(values: Map<string, Float32Array>, names: string[], lambda: number, kind: 'l1' | 'hoyer', rows?: number):
  { loss: number; seeds: Map<string, Float32Array>; density: number } {
  const seeds = new Map<string, Float32Array>();
  let loss = 0, nz = 0, tot = 0;
  for (const name of names) {
    const h = values.get(name);
    if (!h) throw new Error(`sparsity: activation '${name}' not kept`);
    const n = rows ?? h.length;
    let s1 = 0, s2 = 0;
    for (let i = 0; i < n; i++) { const v = h[i]; if (v > 0) nz++; s1 += Math.abs(v); s2 += v * v; }
    tot += n;
    const g = new Float32Array(h.length);
    const k = lambda / names.length;
    if (kind === 'l1') {
      loss += (k * s1) / n;
      for (let i = 0; i < n; i++) g[i] = (k * Math.sign(h[i])) / n;
    } else if (s2 > 0) {
      loss += (k * s1 * s1) / (n * s2);
      const a = (2 * k * s1) / (n * s2), b = (2 * k * s1 * s1) / (n * s2 * s2);
      for (let i = 0; i < n; i++) g[i] = a * Math.sign(h[i]) - b * h[i];
    }
    seeds.set(name, g);
  }
  return { loss, seeds, density: tot ? nz / tot : NaN };
}

export function checkImages(g: OnnxTrainGraph, file: string, imagesFile: string, h: number, w: number): void {
  const want = g.inputShape;
  const ok = (want.length === 3 && want[0] === 1 && want[1] === h && want[2] === w) || (want.length === 2 && want[0] === h && want[1] === w);
  if (!ok) throw new Error(`${imagesFile}: images are 1×${h}×${w} but ${file} input '${g.input}' expects [${want.join('×')}] per image`);
}

/** Accuracy of the graph on the first nTest images (batches of `batch`, the last one zero-padded so
 *  no other tape is compiled) and the density of non-zero activations per named activation. */
export function evaluateGraph(g: OnnxTrainGraph, images: LabelledImages, nTest: number, mean: number, std: number, batch: number, acts: string[]):
  { accuracy: number; density: number[]; overall: number } {
  const px = images.height * images.width;
  const C = g.classes;
  let ok = 0;
  const nz = new Float64Array(acts.length), tot = new Float64Array(acts.length);
  const x = new Float32Array(batch * px);
  for (let s = 0; s < nTest; s += batch) {
    const B = Math.min(batch, nTest - s);
    x.fill(0);
    x.set(normalizedImages(images, s, B, mean, std));
    const st = g.forward(x, batch, false, acts);
    ok += countCorrect(st.values.get(st.tape.output)!, images.labels.subarray(s, s + B), C);
    acts.forEach((a, i) => {
      const h = st.values.get(a)!;
      const n = (h.length / batch) * B;  // rows are batch-major: the real images come first
      let c = 0;
      for (let j = 0; j < n; j++) if (h[j] !== 0) c++;
      nz[i] += c; tot[i] += n;
    });
  }
  const all = tot.reduce((a, b) => a + b, 0);
  return { accuracy: nTest ? ok / nTest : NaN, density: acts.map((_, i) => (tot[i] ? nz[i] / tot[i] : NaN)), overall: all ? nz.reduce((a, b) => a + b, 0) / all : NaN };
}

/** Accuracy of a model file run by the fp32 engine (the teacher). */
async function engineAccuracy(bytes: Uint8Array, input: string, output: string, shape: number[], images: LabelledImages, nTest: number, mean: number, std: number, threads?: number): Promise<number> {
  const s = await InferenceSession.create(bytes, threads ? { threads } : {});
  try {
    let ok = 0;
    for (let i = 0; i < nTest; i += 256) {
      const B = Math.min(256, nTest - i);
      const y = (await s.run({ [input]: new Tensor('float32', normalizedImages(images, i, B, mean, std), [B, ...shape]) }))[output].data as Float32Array;
      ok += countCorrect(y, images.labels.subarray(i, i + B), y.length / B);
    }
    return nTest ? ok / nTest : NaN;
  } finally {
    s.release();
  }
}

/** The student's metadata: the teacher's, with a swinq-init config saying relu. */
export function studentMetadata(g: OnnxTrainGraph, extra: Record<string, string>): Record<string, string> {
  const meta: Record<string, string> = { ...extra };
  const cfg = g.metadata[CONFIG_KEY];
  if (cfg && [...g.acts.values()].every((a) => a.fn === 'relu')) {
    try { meta[CONFIG_KEY] = JSON.stringify({ ...JSON.parse(cfg), act: 'relu' }); } catch { /* not ours to fix */ }
  }
  return meta;
}

/** The run's settings with their defaults, each checked (errors name the flag). */
function distillSettings(o: DistillOptions) {
  const st = {
    schedule: o.schedule ?? 'first-to-last', alpha: o.alpha ?? 1, T: o.temperature ?? 2, bits: o.fewbit ?? 2, batch: o.batch ?? 64,
    beta: o.featureWeight ?? 0, lr0: o.lr ?? 5e-4, minLr: o.minLr ?? 1e-5, wd: o.weightDecay ?? 0.05, clip: o.clip ?? 1,
    target: o.sparsity, penalty: o.sparsityPenalty ?? 'l1', qat: o.qatSteps ?? 0,
  };
  if (!Number.isInteger(st.qat) || st.qat < 0) throw new Error(`--qat-steps must be a non-negative integer, got ${st.qat}`);
  if (!(st.beta >= 0)) throw new Error(`--feature-weight must be ≥ 0, got ${st.beta}`);
  if (!(st.alpha >= 0)) throw new Error(`--alpha must be ≥ 0, got ${st.alpha}`);
  if (!(st.T > 0)) throw new Error(`--temperature must be > 0, got ${st.T}`);
  if (!Number.isInteger(st.bits) || st.bits < 0 || st.bits > 4) throw new Error(`--fewbit must be 0..4, got ${st.bits}`);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new Error(`--epochs must be a positive integer, got ${o.epochs}`);
  if (st.target !== undefined && !(st.target > 0 && st.target <= 1)) throw new Error(`--sparsity must be a fraction in (0, 1], got ${st.target}`);
  if (st.penalty !== 'l1' && st.penalty !== 'hoyer') throw new Error(`--sparsity-penalty must be l1 or hoyer, got '${st.penalty}'`);
  if (!['first-to-last', 'last-to-first', 'all-at-once'].includes(st.schedule)) throw new Error(`--schedule must be first-to-last, last-to-first or all-at-once, got '${st.schedule}'`);
  return st;
}

/** Loads a checkpoint into the student and the AdamW state; refuses one written by another run. */
function restoreCheckpoint(file: string, sg: OnnxTrainGraph, m: Map<string, Float32Array>, v: Map<string, Float32Array>,
  run: string, expect: { totalSteps: number; n: number; schedule: string; qat: number }) {
  const c = readCheckpoint(file);
  if (c.totalSteps !== expect.totalSteps || c.n !== expect.n || c.schedule !== expect.schedule) {
    throw new Error(`${file}: checkpoint is for ${c.totalSteps} steps over ${c.n} images with schedule ${c.schedule}, this run has ${expect.totalSteps}, ${expect.n}, ${expect.schedule}`);
  }
  if (c.run !== run) {
    const a = (c.run ?? '').split(', '), b = run.split(', ');
    const diff = b.filter((x) => !a.includes(x));
    throw new Error(`${file}: checkpoint was written with ${c.run}, this run has ${run} (changed: ${diff.join('; ') || 'order'})`);
  }
  for (const [k, p] of sg.params) {
    const d = c.params.get(k);
    if (!d || d.length !== p.data.length) throw new Error(`${file}: parameter '${k}' missing or of the wrong size`);
    p.data.set(d);
    if (p.trainable) {
      const cm = c.m.get(k), cv = c.v.get(k);
      if (!cm || !cv || cm.length !== p.data.length || cv.length !== p.data.length) throw new Error(`${file}: AdamW state of '${k}' missing or of the wrong size`);
      m.get(k)!.set(cm); v.get(k)!.set(cv);
    }
  }
  // steps past totalSteps are quantization-aware finishing steps (checkpointed like the schedule)
  if (c.perm.length !== expect.n || !Number.isInteger(c.step) || c.step < 0 || c.step > expect.totalSteps + expect.qat) throw new Error(`${file}: bad step ${c.step} or epoch order of ${c.perm.length} images`);
  const lam = c.params.get('__swinq_sparsity_lambda');
  return { step: c.step, rng: c.rng, perm: c.perm, qat: c.qat, lambda: lam ? lam[0] : 1 };
}

/** The student: the teacher's own graph with the memory options; it must have a GELU to replace. */
function studentGraph(bytes: Uint8Array, o: DistillOptions): OnnxTrainGraph {
  const sg = new OnnxTrainGraph(bytes, o.teacher);
  sg.shareLayerNorm = !!o.shareLayerNorm;
  sg.attentionProbs8bit = !!o.attentionProbs8bit;
  sg.recompute = o.recompute ?? true;
  const gelu = [...sg.acts.values()].filter((a) => a.fn === 'gelu' || a.fn === 'gelu_tanh');
  if (gelu.length === 0) throw new Error(`${o.teacher}: no GELU activation to replace (activations: ${[...sg.acts.values()].map((a) => a.fn).join(', ') || 'none'})`);
  return sg;
}

/** Finishing: rows drawn at random from the checkpointed RNG (the epoch order is done). */
function randomRows(d: { X: Float32Array; labels: ArrayLike<number>; n: number; px: number; batch: number; rng: Rng; xb: Float32Array; yb: Int32Array }) {
  const B = Math.min(d.batch, d.n);
  for (let b = 0; b < B; b++) {
    const k = Math.floor(d.rng.next() * d.n);
    d.xb.set(d.X.subarray(k * d.px, (k + 1) * d.px), b * d.px);
    d.yb[b] = d.labels[k];
  }
  return { x: d.xb.subarray(0, B * d.px), y: d.yb.subarray(0, B) };
}

/** Swapped activations become ReLU (1-bit codes when few-bit), the others keep the teacher's function at `bits`. */
function swapActivations(sg: OnnxTrainGraph, swapped: Set<string>, bits: number): void {
  for (const [name, a] of sg.acts) {
    if (swapped.has(name)) { a.fn = 'relu'; a.bits = bits > 0 ? 1 : 0; } else { a.fn = a.teacherFn; a.bits = bits; }
  }
}

/** The student file, written atomically (a temporary file renamed over the target). */
function writeStudent(sg: OnnxTrainGraph, out: string, meta: Record<string, string>): void {
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, sg.exportOnnx(studentMetadata(sg, meta)));
  fs.renameSync(tmp, out);
}

/** One step's losses and gradients: CE + α·KL against the teacher's logits, the feature loss (β > 0) and
 *  the sparsity penalty on the swapped activations (when a target density is set). */
async function studentStep(a: {
  sg: OnnxTrainGraph; tg?: OnnxTrainGraph; teacher: InferenceSession; feats: string[]; x: Float32Array; y: Int32Array;
  alpha: number; T: number; beta: number; target?: number; penalty: 'l1' | 'hoyer'; swappedActs: string[]; lambda: number; step: number;
}) {
  const { sg, x, y } = a;
  const B = y.length;
  const tLogits = (await a.teacher.run({ [sg.input]: new Tensor('float32', x, [B, ...sg.inputShape]) }))[sg.outputName].data as Float32Array;
  const ts = a.tg ? a.tg.forward(x, B, false, a.feats) : undefined;
  const st: TapeState = sg.forward(x, B, true, [...a.feats, ...(a.target !== undefined ? a.swappedActs : [])]);
  const logits = st.values.get(st.tape.output)!;
  const ce = native.trainLoss('ce', logits, y, sg.classes, 0);
  const kl = native.trainLoss('kl', logits, tLogits, sg.classes, a.T);
  const grad: Float32Array = ce.grad;
  for (let i = 0; i < grad.length; i++) grad[i] += a.alpha * kl.grad[i];
  const fl = ts ? featureLoss(st.values, ts.values, a.feats, a.beta) : undefined;
  const sp = a.target !== undefined && a.swappedActs.length ? sparsityLoss(st.values, a.swappedActs, a.lambda, a.penalty) : undefined;
  const seeds = new Map<string, Float32Array>(fl?.seeds ?? []);
  for (const [k, g] of sp?.seeds ?? []) {
    const have = seeds.get(k);
    if (have) for (let i = 0; i < g.length; i++) have[i] += g[i]; else seeds.set(k, g);
  }
  const loss = ce.loss + a.alpha * kl.loss + (fl?.loss ?? 0) + (sp?.loss ?? 0);
  if (!Number.isFinite(loss)) throw new Error(`distill: loss became ${loss} at step ${a.step} (try a lower --lr)`);
  return { st, logits, grads: sg.backward(st, grad, seeds), loss, ce, kl, fl, sp };
}

async function distillGraph(o: DistillOptions, cb: DistillCallbacks = {}): Promise<DistillResult> {
  const t0 = performance.now();
  const { schedule, alpha, T, bits, batch, beta, lr0, minLr, wd, clip, target, penalty, qat } = distillSettings(o);
  const log = cb.onLog ?? (() => {});
  if (o.threads) native.trainSetThreads(o.threads);
  if (!fs.existsSync(o.teacher)) throw new Error(`${o.teacher}: no such teacher model`);
  const bytes = fs.readFileSync(o.teacher);
  const sg = studentGraph(bytes, o);
  const tg = beta > 0 ? new OnnxTrainGraph(bytes, o.teacher) : undefined;
  const feats = beta > 0 ? sg.actList.map((a) => sg.blockOut.get(a.name)!).filter((x) => x) : [];
  const actNames = sg.actList.map((a) => a.name);
  const norm = resolveNormalization({ mean: o.mean, std: o.std, metadata: sg.metadata, modelPath: o.teacher });
  const train = loadLabelledImages(o.data, 'train');
  const test = loadLabelledImages(o.data, 'test');
  checkImages(sg, o.teacher, train.imagesFile, train.height, train.width);
  const n = Math.min(train.count, o.limit ?? train.count);
  const nTest = Math.min(test.count, o.evalLimit ?? 10000);
  const X = normalizedImages(train, 0, n, norm.mean, norm.std);
  const px = train.height * train.width;
  const stepsPerEpoch = Math.ceil(n / batch);
  const totalSteps = stepsPerEpoch * o.epochs;
  const phases = phasesFor(schedule, actStages(sg));
  const phaseStart = (p: number) => Math.floor((p * totalSteps) / phases.length);
  const phaseOf = (step: number) => { let p = 0; while (p + 1 < phases.length && step >= phaseStart(p + 1)) p++; return p; };

  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const [k, p] of sg.params) if (p.trainable) { m.set(k, new Float32Array(p.data.length)); v.set(k, new Float32Array(p.data.length)); }
  const rng = new Rng((o.seed ?? 0) * 2654435761 + 1);
  let perm: Int32Array = new Int32Array(n);
  let step = 0;
  let lambda = 1;  // sparsity penalty weight, adapted toward the target density (checkpointed with the run)
  let qatRanges: Map<string, Float32Array> | undefined;  // fake-quantization ranges, fixed when finishing starts
  const ckptFile = o.checkpoint ?? `${o.out}.ckpt`;
  const run = `alpha ${alpha}, T ${T}, feature weight ${beta}, fewbit ${bits}, batch ${batch}, lr ${lr0}, seed ${o.seed ?? 0}, min-lr ${minLr}, ` +
    `weight decay ${wd}, warmup ${o.warmup ?? 'auto'}, clip ${clip}, shared layernorm ${!!o.shareLayerNorm}, 8-bit attention ${!!o.attentionProbs8bit}, sparsity ${target ?? 'off'}${target !== undefined ? ` (${penalty})` : ''}, qat steps ${qat}, ` +
    `mean ${norm.mean}, std ${norm.std}, teacher ${fileFingerprint(o.teacher)}, data ${fileFingerprint(train.imagesFile)} + ${fileFingerprint(train.labelsFile)}`;
  if (o.resume) {
    const c = restoreCheckpoint(o.resume, sg, m, v, run, { totalSteps, n, schedule, qat });
    step = c.step; rng.state = c.rng; perm = c.perm; qatRanges = c.qat; lambda = c.lambda;
    log(`distill: resumed ${o.resume} at step ${step}/${totalSteps}`);
  }
  const save = () => {
    const params = new Map([...sg.params].map(([k, p]) => [k, p.data]));
    params.set('__swinq_sparsity_lambda', Float32Array.of(lambda));
    writeCheckpoint(ckptFile, { run, step, rng: rng.state, perm, totalSteps, schedule, n, params, m, v, qat: qatRanges });
  };

  const teacher = await InferenceSession.create(bytes, o.threads ? { threads: o.threads } : {});
  const teacherAcc = await engineAccuracy(bytes, sg.input, sg.outputName, sg.inputShape, test, nTest, norm.mean, norm.std, o.threads);
  log(`distill: teacher accuracy ${teacherAcc.toFixed(4)} (${nTest} test images); ${sg.actList.length} activations in ${phases.length} phase(s), ${totalSteps} steps, schedule ${schedule}`);
  const xb = new Float32Array(batch * px);
  const yb = new Int32Array(batch);
  let phase = -1;
  const swapped = new Set<string>();
  const every = o.checkpointEvery ?? 50;
  let peak = 0, saved = 0;
  const applyGraphSwaps = (sw: Set<string>, b: number) => swapActivations(sg, sw, b);
  let finishing = false;
  try {
    while (step < totalSteps + qat) {
      if (o.stopAfter !== undefined && step >= o.stopAfter) {
        save();
        return { teacher_accuracy: teacherAcc, student_accuracy: NaN, out: o.out, steps: step, phases, schedule, seconds: (performance.now() - t0) / 1000, stopped: true };
      }
      if (step >= totalSteps && !finishing) {
        // quantization-aware finishing: every activation ReLU (exact backward), fake quantization at
        // the integer plan's points (clipped straight-through estimator), int8 per-column weights,
        // lr/10; the ranges calibrated when finishing starts are kept in the checkpoint (a resume must
        // not re-calibrate on weights that moved)
        finishing = true;
        swapped.clear();
        for (const a of actNames) swapped.add(a);
        applyGraphSwaps(swapped, 0);
        qatRanges ??= new Map();
        const count = Math.min(n, 4 * batch);
        log(`distill: quantization-aware finishing, ${qat} steps, ${enableGraphFakeQuant(sg, X.subarray(0, count * px), count, batch, qatRanges)} fake-quantized tensors + int8 per-channel weights`);
      }
      const p = finishing ? phase : phaseOf(step);
      if (p !== phase) {
        swapped.clear();
        for (let q = 0; q <= p; q++) for (const a of phases[q]) swapped.add(a);
        applyGraphSwaps(swapped, bits);
        if (phase !== -1 && step === phaseStart(p)) save();  // checkpoint at each schedule step
        phase = p;
        cb.onPhase?.(p, [...swapped]);
      }
      const src = { X, labels: train.labels, n, px, batch, perm, rng, xb, yb };
      const { x, y } = finishing ? randomRows(src) : minibatch(step, src);
      const B = y.length;
      const lr = finishing ? lr0 * 0.1 : native.trainLr(step, totalSteps, o.warmup ?? Math.min(20, Math.floor(totalSteps / 10)), lr0, minLr);
      step++;
      const swappedActs = finishing ? [] : actNames.filter((a) => swapped.has(a));
      // sparsity: annealed in over the first half of the run, λ nudged toward the target density
      const ramp = Math.min(1, step / Math.max(1, totalSteps / 2));
      const { st, logits, grads, loss, ce, kl, fl, sp } = await studentStep({ sg, tg, teacher, feats, x, y, alpha, T, beta, target, penalty, swappedActs, lambda: lambda * ramp, step });
      peak = Math.max(peak, st.peakBytes); saved = Math.max(saved, st.savedBytes);
      clipAndStep(sg.params, grads, m, v, step, { lr, weightDecay: wd, clip });
      if (sp && target !== undefined) lambda = Math.min(100, Math.max(1e-3, lambda * (sp.density > target ? 1.02 : 0.98)));
      await cb.onStep?.({ step, totalSteps: totalSteps + qat, phase: finishing ? phases.length : p, phases: phases.length + (qat > 0 ? 1 : 0), swapped: [...swapped], loss, ce: ce.loss, kl: kl.loss, feature: fl?.loss ?? 0, lr,
        correct: countCorrect(logits, y, sg.classes), batch: B, sparsity: sp?.loss, density: sp?.density });
      if (every > 0 && step % every === 0 && step < totalSteps + qat) save();
      if (step % 4 === 0) await new Promise((res) => setImmediate(res));  // keep signals alive
    }
  } finally {
    teacher.release();
    disableGraphFakeQuant(sg);
  }
  applyGraphSwaps(new Set(actNames), 0);
  const ev = evaluateGraph(sg, test, nTest, norm.mean, norm.std, batch, actNames);
  save();
  writeStudent(sg, o.out, { 'swinq.mean': String(norm.mean), 'swinq.std': String(norm.std), 'swinq.distill.teacher': o.teacher });
  const density = ev.overall;
  log(`distill: student accuracy ${ev.accuracy.toFixed(4)}, ReLU density ${density.toFixed(3)} → ${o.out}`);
  return { teacher_accuracy: teacherAcc, student_accuracy: ev.accuracy, out: o.out, steps: totalSteps, phases, schedule, seconds: (performance.now() - t0) / 1000,
    relu_density: density, relu_density_blocks: ev.density, peak_activation_bytes: peak, saved_activation_bytes: saved };
}
