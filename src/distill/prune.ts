// Structural pruning of dead ReLU neurons (issue 13): a hidden unit of a ReLU MLP that is zero for
// every token of the scanned images adds nothing to fc2, so removing its fc1 column (weight and
// bias) and its fc2 row leaves the model's output on those images unchanged (up to float summation
// order) while both GEMMs of the block shrink. A trained sparse student (`swinq distill --sparsity`)
// has many such units. Works on any ONNX model whose MLPs read MatMul → Add(bias) → Relu → MatMul
// with float32 initializer weights (the graphs `swinq distill` writes); other blocks are left alone
// and reported as skipped.
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { loadLabelledImages, normalizedImages } from '../io/idx.js';
import { resolveNormalization } from '../normalize.js';
import { tensorFromProto } from '../onnx/load.js';
import { native } from '../native.js';
import { OnnxTrainGraph } from '../train/onnx-graph.js';

const { onnx } = onnxProto;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Proto = any;

export interface PruneOptions {
  model: string;
  data: string;
  out: string;
  /** training images scanned for activity (default 2000) */
  images?: number;
  /** a neuron non-zero on at most this fraction of the scanned tokens is removed (default 0: only
   *  neurons zero on every token; > 0 changes the model's outputs and must be measured) */
  maxActive?: number;
  /** kept counts rounded up to a multiple of this (default 4: the int8 GEMMs' K step), adding back
   *  the most active removed units */
  align?: number;
  mean?: number;
  std?: number;
  batch?: number;
  threads?: number;
}

export interface PruneBlock { act: string; hidden: number; kept: number; dead: number }
export interface PruneResult {
  out: string; images: number; tokens_per_image: number[]; max_active: number; align: number;
  blocks: PruneBlock[]; skipped: { act: string; reason: string }[];
  hidden: number; kept: number; bytes_before: number; bytes_after: number;
  /** max |Δ logit| of the pruned vs the original fp32 model on the first scanned images */
  max_logit_diff: number;
}

/** One prunable MLP: initializer names of fc1 (W1 [K,H], b1 [H]) and fc2 (W2 [H,N]), and the
 *  values between fc1 and fc2 (their value_info shapes go stale). */
export interface MlpSite { act: string; w1: string; b1: string; w2: string; hidden: number; values: string[] }

/** MLP sites of a decoded ModelProto graph for the given activation outputs, or why not. */
export function findMlpSites(g: Proto, acts: string[]): { sites: MlpSite[]; skipped: { act: string; reason: string }[] } {
  const inits = new Map<string, Proto>();
  for (const t of g.initializer ?? []) inits.set(t.name, t);
  const byOut = new Map<string, Proto>();
  const readers = new Map<string, Proto[]>();
  for (const n of g.node ?? []) {
    for (const o of n.output ?? []) byOut.set(o, n);
    for (const i of n.input ?? []) { if (!readers.has(i)) readers.set(i, []); readers.get(i)!.push(n); }
  }
  const graphOut = new Set((g.output ?? []).map((o: Proto) => o.name));
  const dims = (name: string) => (inits.get(name)?.dims ?? []).map(Number) as number[];
  const onlyReader = (name: string, n: Proto) => (readers.get(name) ?? []).every((r) => r === n) && !graphOut.has(name);
  const isF32 = (name: string) => inits.get(name)?.dataType === 1;
  const sites: MlpSite[] = [], skipped: { act: string; reason: string }[] = [];
  for (const act of acts) {
    const why = (reason: string) => skipped.push({ act, reason });
    const relu = byOut.get(act);
    if (!relu || relu.opType !== 'Relu') { why('not the output of a Relu node'); continue; }
    const add = byOut.get(relu.input[0]);
    if (!add || add.opType !== 'Add' || !onlyReader(relu.input[0], relu)) { why('Relu input is not an Add (fc1 bias) read only by it'); continue; }
    const bi = add.input.findIndex((i: string) => inits.has(i));
    const mm1 = bi >= 0 ? byOut.get(add.input[1 - bi]) : undefined;
    if (!mm1 || mm1.opType !== 'MatMul' || !onlyReader(add.input[1 - bi], add)) { why('fc1 is not MatMul + Add(initializer bias)'); continue; }
    const w1 = mm1.input[1], b1 = add.input[bi];
    const rd = readers.get(act) ?? [];
    const mm2 = rd[0];
    if (rd.length !== 1 || mm2.opType !== 'MatMul' || mm2.input[0] !== act || !inits.has(mm2.input[1]) || graphOut.has(act)) { why('Relu output is not read by exactly one MatMul with initializer weights (fc2)'); continue; }
    const w2 = mm2.input[1];
    const [K, H] = dims(w1), [H2, N] = dims(w2);
    if (!inits.has(w1) || dims(w1).length !== 2 || dims(b1).length !== 1 || dims(b1)[0] !== H || dims(w2).length !== 2 || H2 !== H || !(K > 0 && N > 0)) {
      why(`shapes do not form an MLP (W1 [${dims(w1)}], b1 [${dims(b1)}], W2 [${dims(w2)}])`); continue;
    }
    if (![w1, b1, w2].every(isF32)) { why('weights are not float32'); continue; }
    if (![w1, b1, w2].every((w, j) => onlyReader(w, [mm1, add, mm2][j]))) { why('an MLP weight is shared with another node'); continue; }
    sites.push({ act, w1, b1, w2, hidden: H, values: [mm1.output[0], add.output[0], act] });
  }
  return { sites, skipped };
}

/** Per site, how many scanned tokens each hidden unit is non-zero on (fp32 forward of the model). */
export function neuronActivity(g: OnnxTrainGraph, x: Float32Array, n: number, batch: number, sites: MlpSite[]):
  { counts: Float64Array[]; tokens: number[] } {
  const px = x.length / n;
  const counts = sites.map((s) => new Float64Array(s.hidden));
  const tokens = sites.map(() => 0);
  const xb = new Float32Array(batch * px);
  const acts = sites.map((s) => s.act);
  for (let s0 = 0; s0 < n; s0 += batch) {
    const B = Math.min(batch, n - s0);
    xb.fill(0);
    xb.set(x.subarray(s0 * px, (s0 + B) * px));
    const st = g.forward(xb, batch, false, acts);
    sites.forEach((site, i) => {
      const h = st.values.get(site.act);
      if (!h) throw new Error(`prune: activation '${site.act}' was not computed`);
      const H = site.hidden;
      const rows = (h.length / H / batch) * B;  // batch-major rows: the real images come first
      const c = counts[i];
      for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) if (h[r * H + j] !== 0) c[j]++;
      if (s0 === 0) tokens[i] = h.length / H / batch;
    });
  }
  return { counts, tokens };
}

/** Kept hidden units, in order: non-zero on more than maxActive·tokens scanned tokens, then the most
 *  active of the others until the count is a multiple of `align` (or all units): at least one, so no
 *  GEMM becomes empty. Alignment because the integer GEMMs have cliffs: on Zen 3 a 196×K×48 fc2 with
 *  K % 4 ≠ 0 takes ≈ 2× the time of K rounded up (31: 11.2 µs, 32: 5.1 µs), and fc1's wide 4×24
 *  kernel needs N % 24 = 0 (bench/relu-models.js, docs/sparsity.md). */
export function keptUnits(count: Float64Array, tokens: number, maxActive: number, align = 1): Int32Array {
  if (!Number.isInteger(align) || align < 1) throw new Error(`--align must be a positive integer, got ${align}`);
  const H = count.length;
  const kept = new Uint8Array(H);
  let n = 0;
  for (let j = 0; j < H; j++) if (count[j] > maxActive * tokens) { kept[j] = 1; n++; }
  const want = Math.min(H, Math.ceil(Math.max(n, 1) / align) * align);
  if (n < want) {
    const rest = [...Array(H).keys()].filter((j) => !kept[j]).sort((a, b) => count[b] - count[a] || a - b);
    for (const j of rest.slice(0, want - n)) kept[j] = 1;
  }
  const keep: number[] = [];
  for (let j = 0; j < H; j++) if (kept[j]) keep.push(j);
  return Int32Array.from(keep);
}

/** The model with, per site, only the kept hidden units: W1 columns, b1 entries, W2 rows. */
export function pruneModelBytes(bytes: Uint8Array, source: string, sites: MlpSite[], keep: Int32Array[], meta: Record<string, string> = {}): Uint8Array {
  const m: Proto = onnx.ModelProto.decode(bytes);
  const g = m.graph;
  const inits = new Map<string, Proto>();
  for (const t of g.initializer ?? []) inits.set(t.name, t);
  const ctx = { source, baseDir: path.dirname(source) };
  const put = (name: string, data: Float32Array, dims: number[]) => {
    const t = inits.get(name)!;
    t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    t.floatData = []; t.dataLocation = 0; t.externalData = []; t.dims = dims;
  };
  const stale = new Set<string>();
  sites.forEach((s, i) => {
    const k = keep[i], H = s.hidden, Hk = k.length;
    for (const j of k) if (!(j >= 0 && j < H)) throw new Error(`prune: '${s.act}': kept unit ${j} outside [0, ${H})`);
    const w1 = tensorFromProto(inits.get(s.w1)!, ctx), b1 = tensorFromProto(inits.get(s.b1)!, ctx), w2 = tensorFromProto(inits.get(s.w2)!, ctx);
    const K = w1.dims[0], N = w2.dims[1];
    const nw1 = new Float32Array(K * Hk), nb1 = new Float32Array(Hk), nw2 = new Float32Array(Hk * N);
    for (let r = 0; r < K; r++) for (let c = 0; c < Hk; c++) nw1[r * Hk + c] = w1.data[r * H + k[c]];
    for (let c = 0; c < Hk; c++) nb1[c] = b1.data[k[c]];
    for (let c = 0; c < Hk; c++) nw2.set(w2.data.subarray(k[c] * N, (k[c] + 1) * N), c * N);
    put(s.w1, nw1, [K, Hk]); put(s.b1, nb1, [Hk]); put(s.w2, nw2, [Hk, N]);
    for (const v of s.values) stale.add(v);
  });
  // value_info shapes of the hidden tensors now name the old width
  g.valueInfo = (g.valueInfo ?? []).filter((v: Proto) => !stale.has(v.name));
  const props = new Map<string, string>();
  for (const p of m.metadataProps ?? []) props.set(p.key, p.value);
  for (const [key, value] of Object.entries(meta)) props.set(key, value);
  m.metadataProps = [...props].map(([key, value]) => ({ key, value }));
  return onnx.ModelProto.encode(m).finish();
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Scans `images` training images, removes the hidden units that stay (almost) zero and writes the model. */
export async function prune(o: PruneOptions): Promise<PruneResult> {
  const nImages = o.images ?? 2000, maxActive = o.maxActive ?? 0, batch = o.batch ?? 32, align = o.align ?? 4;
  if (!Number.isInteger(nImages) || nImages < 1) throw new Error(`--images must be a positive integer, got ${nImages}`);
  if (!(maxActive >= 0 && maxActive < 1)) throw new Error(`--max-active must be a fraction in [0, 1), got ${maxActive}`);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(align) || align < 1) throw new Error(`--align must be a positive integer, got ${align}`);
  if (!fs.existsSync(o.model)) throw new Error(`${o.model}: no such model`);
  if (o.threads) native.trainSetThreads(o.threads);
  const bytes = fs.readFileSync(o.model);
  const g = new OnnxTrainGraph(bytes, o.model);
  const relu = g.actList.filter((a) => a.fn === 'relu').map((a) => a.name);
  if (relu.length === 0) throw new Error(`${o.model}: no ReLU MLP activation to prune (activations: ${g.actList.map((a) => a.fn).join(', ') || 'none'})`);
  const { sites, skipped } = findMlpSites(onnx.ModelProto.decode(bytes).graph, relu);
  if (sites.length === 0) throw new Error(`${o.model}: no prunable MLP (${skipped.map((s) => `${s.act}: ${s.reason}`).join('; ')})`);
  const train = loadLabelledImages(o.data, 'train');
  const n = Math.min(nImages, train.count);
  const norm = resolveNormalization({ mean: o.mean, std: o.std, metadata: g.metadata, modelPath: o.model });
  const x = normalizedImages(train, 0, n, norm.mean, norm.std);
  const { counts, tokens } = neuronActivity(g, x, n, batch, sites);
  const keep = sites.map((_, i) => keptUnits(counts[i], tokens[i] * n, maxActive, align));
  const blocks = sites.map((s, i) => ({ act: s.act, hidden: s.hidden, kept: keep[i].length, dead: counts[i].reduce((a, c) => a + (c === 0 ? 1 : 0), 0) }));
  const record = JSON.stringify({ images: n, max_active: maxActive, align, kept: blocks.map((b) => b.kept), hidden: blocks.map((b) => b.hidden) });
  const outBytes = pruneModelBytes(bytes, o.model, sites, keep, { 'swinq.prune': record });
  // the pruned model is checked against the original on the first scanned images before it is written
  const nCheck = Math.min(n, batch);
  const pg = new OnnxTrainGraph(outBytes, o.out);
  const xc = x.subarray(0, nCheck * x.length / n);
  const diff = maxAbsDiff(g.predict(xc, nCheck), pg.predict(xc, nCheck));
  const tmp = `${o.out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, outBytes);
  fs.renameSync(tmp, o.out);
  return {
    out: o.out, images: n, tokens_per_image: tokens, max_active: maxActive, align, blocks, skipped,
    hidden: blocks.reduce((a, b) => a + b.hidden, 0), kept: blocks.reduce((a, b) => a + b.kept, 0),
    bytes_before: bytes.length, bytes_after: outBytes.length, max_logit_diff: diff,
  };
}
