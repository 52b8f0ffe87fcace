// Quantization-aware finishing for `swinq distill --qat-steps N`: the student's graph gets fake
// quantization (native train op `fakequant`, clipped straight-through estimator) at the points
// where swinq's integer-only plan (src/quant/integer-lowering.ts) quantizes, with the same code
// ranges, and its linear weights are rounded to int8 per output channel for each step.
//   GEMM inputs (LayerNorm outputs, q/k/v, MLP activations): uint8 codes [0, 127] (7-bit, as the plan)
//   the attention output (proj input), the image and the pooled features: [0, 255]
//   softmax probabilities: codes at exactly 1/256, [0, 255]
// What it does not model: the integer LayerNorm / softmax / GELU arithmetic itself (their outputs
// are within 1–2 codes of the float ops they replace, docs/integer-kernels.md), the int16 residual.
import type { OpDesc, TrainGraph } from '../train/graph.js';
import type { OnnxTrainGraph, TapeNode } from '../train/onnx-graph.js';

interface Point { tensor: string; levels: number; softmax: boolean }

/** The tensors to fake-quantize: first input of every linear, both inputs of every matmul (a gather
 *  of a linear output is quantized at that linear output, as the plan quantizes the qkv tensor). */
export function quantPoints(g: TrainGraph): Point[] {
  const producer = new Map(g.nodes.map((n) => [n.output, n]));
  const pts = new Map<string, Point>();
  const addPoint = (t: string, reader: string) => {
    let p = producer.get(t);
    if (p?.desc.op === 'gather' && producer.get(p.inputs[0])?.desc.op === 'linear') { t = p.inputs[0]; p = producer.get(t); }
    if (pts.has(t) || g.params.has(t)) return;
    const softmax = p?.desc.op === 'softmax';
    const wide = !p || p.name === 'patch_embed.im2col' || p.desc.op === 'mean_pool' || p.name.endsWith('.attn.merge_heads') || reader === 'head';
    pts.set(t, { tensor: t, levels: softmax || wide ? 255 : 127, softmax });
  };
  for (const n of g.nodes) {
    if (n.desc.op === 'linear') addPoint(n.inputs[0], n.name);
    if (n.desc.op === 'matmul') { addPoint(n.inputs[0], n.name); addPoint(n.inputs[1], n.name); }
  }
  return [...pts.values()];
}

/** Inserts fake quantization at quantPoints(g) with uint8 ranges from min/max over `images`
 *  (`count` images, run in batches of `batch`); returns the inserted node names. */
export function insertFakeQuant(g: TrainGraph, images: Float32Array, count: number, batch: number,
  ranges: Map<string, Float32Array> = new Map()): string[] {
  const pts = quantPoints(g);
  const lo = new Map(pts.map((p) => [p.tensor, 0])), hi = new Map(pts.map((p) => [p.tensor, 0]));
  const per = images.length / count;
  // `ranges` given (a resumed run): those [lo, hi]; else calibrated here and recorded into it
  const known = pts.length > 0 && pts.every((p) => ranges.has(p.tensor));
  for (const p of known ? pts : []) { const r = ranges.get(p.tensor)!; lo.set(p.tensor, r[0]); hi.set(p.tensor, r[1]); }
  for (let s = 0; s < (known ? 0 : count); s += batch) {
    const b = Math.min(batch, count - s);
    const st = g.forward(images.subarray(s * per, (s + b) * per), b, false);
    for (const p of pts) {
      const v = st.values.get(p.tensor)!;
      let mn = lo.get(p.tensor)!, mx = hi.get(p.tensor)!;
      for (let i = 0; i < v.length; i++) { const x = v[i]; if (x < mn) mn = x; if (x > mx) mx = x; }
      lo.set(p.tensor, mn); hi.set(p.tensor, mx);
    }
  }
  if (!known) for (const p of pts) ranges.set(p.tensor, Float32Array.of(lo.get(p.tensor)!, hi.get(p.tensor)!));
  return pts.map((p) => {
    let desc: OpDesc;
    if (p.softmax) desc = { op: 'fakequant', scale: 1 / 256, zp: 0, qmin: 0, qmax: 255 };
    else {
      const scale = Math.max(hi.get(p.tensor)! - lo.get(p.tensor)!, 1e-8) / p.levels;
      desc = { op: 'fakequant', scale, zp: Math.min(p.levels, Math.max(0, Math.round(-lo.get(p.tensor)! / scale))), qmin: 0, qmax: p.levels };
    }
    return g.insertAfter(p.tensor, `${p.tensor}.fakequant`, desc);
  });
}

/** Rounds every linear weight [K, N] to int8 per output column (max|w|/127, symmetric) in place,
 *  keeping the float values in `masters` (the optimiser updates those: straight-through); the
 *  returned function puts the float values back. */
export function fakeQuantizeWeights(g: TrainGraph, masters: Map<string, Float32Array>): () => void {
  const touched: [Float32Array, Float32Array][] = [];
  for (const n of g.nodes) {
    if (n.desc.op !== 'linear') continue;
    const p = g.params.get(n.inputs[1]);
    if (!p) continue;
    const N = n.desc.N!, K = p.data.length / N;
    let mst = masters.get(p.name);
    if (!mst) { mst = Float32Array.from(p.data); masters.set(p.name, mst); }
    const w = p.data;
    for (let c = 0; c < N; c++) {
      let m = 0;
      for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(mst[k * N + c]));
      const s = m > 0 ? m / 127 : 1;
      for (let k = 0; k < K; k++) w[k * N + c] = Math.round(mst[k * N + c] / s) * s;
    }
    touched.push([w, mst]);
  }
  return () => { for (const [w, mst] of touched) w.set(mst); };
}

/** The same points on an imported graph's tape (OnnxTrainGraph): first input of every linear, both
 *  inputs of every matmul, a gather of a linear output quantized at that output (q/k/v from the qkv
 *  tensor). [0, 255] for the image (im2col gather of the input), the attention output (a gather of a
 *  matmul output, the proj input), pooled features and the head's input; softmax outputs at 1/256. */
export function graphQuantPoints(g: OnnxTrainGraph, batch: number): Point[] {
  const t = g.tape(batch);
  const producer = new Map(t.nodes.map((n) => [n.output, n]));
  const isConst = (k: string) => t.fixed.has(k) || t.derived.has(k);
  const op = (k: string | undefined) => (k === undefined ? undefined : producer.get(k)?.desc?.op);
  const linears = t.nodes.filter((n) => n.kind === 'native' && n.desc!.op === 'linear');
  const head = linears[linears.length - 1];
  const pts = new Map<string, Point>();
  const add = (k: string, reader: TapeNode) => {
    let p = producer.get(k);
    if (p?.desc?.op === 'gather' && op(p.inputs[0]) === 'linear') { k = p.inputs[0]; p = producer.get(k); }
    if (pts.has(k) || isConst(k) || k === 'input' || !p) return;
    const softmax = p.desc?.op === 'softmax';
    const wide = (p.desc?.op === 'gather' && (p.inputs[0] === 'input' || op(p.inputs[0]) === 'matmul')) || p.desc?.op === 'mean_pool' || reader === head;
    pts.set(k, { tensor: k, levels: softmax || wide ? 255 : 127, softmax });
  };
  for (const n of t.nodes) {
    if (n.kind !== 'native') continue;
    if (n.desc!.op === 'linear') add(n.inputs[0], n);
    if (n.desc!.op === 'matmul') { add(n.inputs[0], n); add(n.inputs[1], n); }
  }
  return [...pts.values()];
}

/** Turns on fake quantization at graphQuantPoints with uint8 ranges from min/max over `images`
 *  (calibrated here and recorded into `ranges`, or taken from it on a resumed run) and int8
 *  per-column linear weights; returns the number of fake-quantized tensors. */
export function enableGraphFakeQuant(g: OnnxTrainGraph, images: Float32Array, count: number, batch: number, ranges: Map<string, Float32Array>): number {
  const pts = graphQuantPoints(g, batch);
  const known = pts.length > 0 && pts.every((p) => ranges.has(p.tensor));
  if (!known) {
    const lo = new Map(pts.map((p) => [p.tensor, 0])), hi = new Map(pts.map((p) => [p.tensor, 0]));
    const per = images.length / count;
    for (let s = 0; s < count; s += batch) {
      const b = Math.min(batch, count - s);
      const st = g.forward(images.subarray(s * per, (s + b) * per), b, false, pts.map((p) => p.tensor));
      for (const p of pts) {
        const v = st.values.get(p.tensor)!;
        let mn = lo.get(p.tensor)!, mx = hi.get(p.tensor)!;
        for (let i = 0; i < v.length; i++) { const x = v[i]; if (x < mn) mn = x; if (x > mx) mx = x; }
        lo.set(p.tensor, mn); hi.set(p.tensor, mx);
      }
    }
    for (const p of pts) ranges.set(p.tensor, Float32Array.of(lo.get(p.tensor)!, hi.get(p.tensor)!));
  }
  const descs = new Map<string, OpDesc>();
  for (const p of pts) {
    const [lo, hi] = ranges.get(p.tensor)!;
    if (p.softmax) descs.set(p.tensor, { op: 'fakequant', scale: 1 / 256, zp: 0, qmin: 0, qmax: 255 });
    else {
      const scale = Math.max(hi - lo, 1e-8) / p.levels;
      descs.set(p.tensor, { op: 'fakequant', scale, zp: Math.min(p.levels, Math.max(0, Math.round(-lo / scale))), qmin: 0, qmax: p.levels });
    }
  }
  g.setFakeQuant(descs);
  g.quantizeWeights = true;
  return pts.length;
}

/** Back to the float graph. */
export function disableGraphFakeQuant(g: OnnxTrainGraph): void {
  g.setFakeQuant(null);
  g.quantizeWeights = false;
}
