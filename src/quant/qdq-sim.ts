// Runs a QDQ file on the fp32 engine by simulation: every DequantizeLinear of a constant (int8
// weights, int32 biases) is folded into a float32 initializer, and every QuantizeLinear →
// DequantizeLinear pair becomes  Div(x, s) → Round (half to even) → Clip(qmin − zp, qmax − zp) → Mul(s),
// which is exactly ONNX's  (saturate(round(x/s) + zp) − zp)·s.  This is NOT the integer-only path
// (lower-int, see docs/quantization.md); it gives the QDQ file's numbers with swinq's fp32 kernels.
import { makeConst, type ConstTensor, type Graph, type Node } from '../ir/graph.js';

const QRANGE: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127], int16: [-32768, 32767], int32: [-(2 ** 31), 2 ** 31 - 1] };

export function hasQdq(g: Graph): boolean {
  return g.nodes.some((n) => n.domain === '' || n.domain === 'com.microsoft' ? n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear' : false);
}

function axisOf(n: Node, rank: number): number {
  const a = n.attrs.axis;
  let axis = a ? (a.value as number) : 1;
  if (axis < 0) axis += rank;
  return axis;
}

/** Returns a new graph with Q/DQ folded (constants) or simulated in float (activations). */
export function simulateQdq(g: Graph): Graph {
  const where = (n: Node) => `${g.source}: node '${n.name}' (${n.opType})`;
  const inits = new Map(g.initializers);
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const isQdq = (n: Node) => (n.domain === '' || n.domain === 'com.microsoft') && (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
  const scaleZp = (n: Node): { s: ConstTensor; zp: ConstTensor | undefined } => {
    const s = inits.get(n.inputs[1]);
    if (!s) throw new Error(`${where(n)}: scale '${n.inputs[1]}' must be a constant`);
    const zp = n.inputs[2] ? inits.get(n.inputs[2]) : undefined;
    if (n.inputs[2] && !zp) throw new Error(`${where(n)}: zero point '${n.inputs[2]}' must be a constant`);
    if (zp && zp.data.length !== s.data.length) throw new Error(`${where(n)}: zero point has ${zp.data.length} values, scale has ${s.data.length}`);
    return { s, zp };
  };
  const nodes: Node[] = [];
  let k = 0;
  for (const n of g.nodes) {
    if (!isQdq(n)) { nodes.push(n); continue; }
    if (n.opType === 'QuantizeLinear') {
      // kept only if some consumer is not a DequantizeLinear (checked below)
      continue;
    }
    const { s, zp } = scaleZp(n);
    const x = inits.get(n.inputs[0]);
    if (x) {
      // constant: fold (per-tensor or per-axis)
      const axis = axisOf(n, x.dims.length);
      const C = s.data.length;
      if (C !== 1 && (axis < 0 || axis >= x.dims.length || x.dims[axis] !== C)) {
        throw new Error(`${where(n)}: ${C} scales do not match axis ${axis} of [${x.dims.join(',')}]`);
      }
      const inner = C === 1 ? 1 : x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      const out = makeConst('float32', [...x.dims]);
      const xd = x.data, od = out.data;
      // runs of `inner` elements share a channel (no per-element division: ViT-B has 85 M weights)
      for (let i = 0, c = 0; i < xd.length; c = (c + 1) % C) {
        const z = zp ? zp.data[c] : 0, sc = s.data[c], end = Math.min(xd.length, i + (C === 1 ? xd.length : inner));
        for (; i < end; i++) od[i] = (xd[i] - z) * sc;
      }
      inits.set(n.outputs[0], out);
      continue;
    }
    const q = producer.get(n.inputs[0]);
    if (!q || q.opType !== 'QuantizeLinear') {
      throw new Error(`${where(n)}: input '${n.inputs[0]}' is neither a constant nor a QuantizeLinear output (unsupported QDQ shape)`);
    }
    const qs = scaleZp(q);
    if (qs.s.data.length !== 1 || s.data.length !== 1) throw new Error(`${where(n)}: per-axis activation quantization is not supported`);
    const dt = qs.zp?.dtype ?? 'uint8';
    const range = QRANGE[dt];
    if (!range) throw new Error(`${where(q)}: zero point type ${dt} is not a quantized type`);
    const qzp = qs.zp ? qs.zp.data[0] : 0;
    const dzp = zp ? zp.data[0] : 0;
    const src = q.inputs[0];
    const id = `${n.name}__sim${k++}`;
    const c = (name: string, v: number) => { inits.set(`${id}_${name}`, makeConst('float32', [], [v])); return `${id}_${name}`; };
    // y = (clamp(round(x/qs) + qzp) − dzp)·ds; with qs = ds, qzp = dzp (the usual pair) it is one clip.
    const sQ = qs.s.data[0], sD = s.data[0];
    nodes.push({ name: `${id}_div`, opType: 'Div', domain: '', inputs: [src, c('qs', sQ)], outputs: [`${id}_a`], attrs: {} });
    nodes.push({ name: `${id}_round`, opType: 'Round', domain: '', inputs: [`${id}_a`], outputs: [`${id}_b`], attrs: {} });
    nodes.push({ name: `${id}_clip`, opType: 'Clip', domain: '', inputs: [`${id}_b`, c('lo', range[0] - qzp), c('hi', range[1] - qzp)], outputs: [`${id}_c`], attrs: {} });
    if (qzp === dzp) {
      nodes.push({ name: `${id}_mul`, opType: 'Mul', domain: '', inputs: [`${id}_c`, c('ds', sD)], outputs: [n.outputs[0]], attrs: {} });
    } else {
      nodes.push({ name: `${id}_shift`, opType: 'Add', domain: '', inputs: [`${id}_c`, c('dz', qzp - dzp)], outputs: [`${id}_d`], attrs: {} });
      nodes.push({ name: `${id}_mul`, opType: 'Mul', domain: '', inputs: [`${id}_d`, c('ds', sD)], outputs: [n.outputs[0]], attrs: {} });
    }
  }
  // a QuantizeLinear whose integer output is read by anything but a DequantizeLinear (or is a graph output)
  const used = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) used.add(i);
  for (const o of g.outputs) used.add(o.name);
  for (const n of g.nodes) {
    if (n.opType === 'QuantizeLinear' && used.has(n.outputs[0]) && !inits.has(n.outputs[0])) {
      throw new Error(`${where(n)}: its integer output '${n.outputs[0]}' is used by a non-DequantizeLinear node or is a graph output (unsupported QDQ shape)`);
    }
  }
  return { ...g, nodes, initializers: inits };
}
