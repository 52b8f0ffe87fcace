// Quantization-aware finishing for `swinq distill --qat-steps N`: the student's graph gets fake
// quantization (native train op `fakequant`, clipped straight-through estimator) at the points
// where swinq's integer-only plan (src/quant/integer-lowering.ts) quantizes, with the same code
// ranges, and its linear weights are rounded to int8 per output channel for each step.
//   GEMM inputs (LayerNorm outputs, q/k/v, MLP activations): uint8 codes [0, 127] (7-bit, as the plan)
//   the attention output (proj input), the image and the pooled features: [0, 255]
//   softmax probabilities: codes at exactly 1/256, [0, 255]
// What it does not model: the integer LayerNorm / softmax / GELU arithmetic itself (their outputs
// are within 1–2 codes of the float ops they replace, docs/integer-kernels.md), the int16 residual.
import type { OpDesc } from '../train/op.js';
import type { OnnxTrainGraph, TapeNode } from '../train/onnx-graph.js';

interface Point { tensor: string; levels: number; softmax: boolean }

/** The tensors to fake-quantize on the graph's tape: first input of every linear, both
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
