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
