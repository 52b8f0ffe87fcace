// Fusion on the specialized (dynamic) graph: rewrites patterns into swinq-domain nodes that map 1:1 to
// plan ops. Every pattern requires that the values it swallows have no other use (and are not graph
// outputs), so the rewrite never changes what anything else sees.
import { attrFloat, attrInt, attrInts, makeConst, numel, type Attr, type ConstTensor, type Node } from '../ir/graph.js';
import { broadcastStrides, stridedMap } from './movement.js';
import { MOVE_OPS, geluApproximate, movesOf, type Specialized, type VInfo } from './specialize.js';

const t = (value: ConstTensor): Attr => ({ type: 'tensor', value });
const i = (value: number): Attr => ({ type: 'int', value });
const f = (value: number): Attr => ({ type: 'float', value });

class Ctx {
  nodes: (Node | null)[];
  producer = new Map<string, number>();
  uses = new Map<string, number>();
  constructor(public s: Specialized) {
    this.nodes = [...s.nodes];
    this.reindex();
  }
  consumers = new Map<string, Node[]>();
  reindex(): void {
    this.producer.clear();
    this.uses.clear();
    this.consumers.clear();
    this.nodes.forEach((n, k) => {
      if (!n) return;
      for (const o of n.outputs) if (o) this.producer.set(o, k);
      for (const x of n.inputs) {
        if (!x) continue;
        this.uses.set(x, (this.uses.get(x) ?? 0) + 1);
        const l = this.consumers.get(x);
        if (!l) this.consumers.set(x, [n]);
        else if (!l.includes(n)) l.push(n);
      }
    });
    for (const o of this.s.outputs) this.uses.set(o, (this.uses.get(o) ?? 0) + 1000);
  }
  info(v: string): VInfo { return this.s.values.get(v)!; }
  cst(v: string): ConstTensor | undefined { return v ? this.s.values.get(v)?.const : undefined; }
  prod(v: string): Node | undefined {
    const k = this.producer.get(v);
    return k === undefined ? undefined : this.nodes[k] ?? undefined;
  }
  prodIdx(v: string): number { return this.producer.get(v) ?? -1; }
  single(v: string): boolean { return this.uses.get(v) === 1; }
  /** The only consumer of v (undefined unless v has exactly one use). */
  next(v: string): Node | undefined {
    if (!this.single(v)) return undefined;
    return this.consumers.get(v)?.[0];
  }
  idx(n: Node): number { return this.nodes.indexOf(n); }
  /** Replaces nodes `gone` with `fused` (one or more, in order), placed at the slot of the last of them. */
  private dead = new WeakSet<Node>();
  /** Still in the graph (not swallowed by an earlier fusion). */
  alive(n: Node | null): n is Node { return !!n && !this.dead.has(n); }
  replace(gone: Node[], fused: Node | Node[]): void {
    for (const g of gone) this.dead.add(g);
    const slots = gone.map((g) => this.idx(g));
    const last = Math.max(...slots);
    for (const s of slots) this.nodes[s] = null;
    this.nodes.splice(last, 1, ...(Array.isArray(fused) ? fused : [fused]));
    this.reindex();
  }
  scalar(v: string): number | undefined {
    const c = this.cst(v);
    return c && c.data.length === 1 ? c.data[0] : undefined;
  }
  /** For a binary node, the other operand than `v` (or undefined). */
  other(n: Node, v: string): string | undefined {
    if (n.inputs.length !== 2) return undefined;
    if (n.inputs[0] === v) return n.inputs[1];
    if (n.inputs[1] === v) return n.inputs[0];
    return undefined;
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const near = (a: number | undefined, b: number, tol = 1e-4) => a !== undefined && Math.abs(a - b) <= tol * Math.abs(b);
const name = (ns: Node[]) => ns.map((n) => n.name).join('+');

/** Constant that only varies along the last `D` elements (a per-channel vector), as a [D] f32 tensor. */
function channelVector(c: ConstTensor, D: number): ConstTensor | undefined {
  if (c.dtype !== 'float32') return undefined;
  if (numel(c.dims) === 1) return makeConst('float32', [D], new Float32Array(D).fill(c.data[0]));
  if (numel(c.dims) !== D || c.dims[c.dims.length - 1] !== D) return undefined;
  return makeConst('float32', [D], c.data);
}

/** A ReduceMean's axes, sorted and non-negative: the attribute (opset < 18) or the constant input (≥ 18). */
function meanAxes(c: Ctx, n: Node, rank: number): number[] {
  const fromInput = n.inputs[1] ? c.cst(n.inputs[1]) : undefined;
  const axes = attrInts(n, 'axes') ?? (fromInput ? Array.from(fromInput.data, Number) : []);
  return axes.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q);
}

function fuseLayerNorm(c: Ctx): void {
  for (const n of [...c.nodes]) {
    if (!c.alive(n)) continue;
    if (n.opType === 'LayerNormalization') {
      const x = c.info(n.inputs[0]);
      if (n.outputs.slice(1).some((o) => o && c.uses.get(o))) continue;
      const axis = attrInt(n, 'axis', -1);
      const a = axis < 0 ? axis + x.dims.length : axis;
      const D = numel(x.dims.slice(a));
      const g = c.cst(n.inputs[1]);
      const b = n.inputs[2] ? c.cst(n.inputs[2]) : undefined;
      const gv = g && channelVector(g, D);
      const bv = b ? channelVector(b, D) : undefined;
      if (!gv || (b && !bv)) continue;
      const attrs: Record<string, Attr> = { D: i(D), eps: f(attrFloat(n, 'epsilon', 1e-5)), gamma: t(gv) };
      if (bv) attrs.beta = t(bv);
      c.replace([n], { name: n.name, opType: 'LayerNorm', domain: 'swinq', inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs });
      continue;
    }
    if (n.opType !== 'ReduceMean') continue;
    const x = n.inputs[0];
    const xd = c.info(x).dims;
    const axes = meanAxes(c, n, xd.length);
    if (attrInt(n, 'keepdims', 1) !== 1 || !axes.length || axes.some((a, k) => a !== xd.length - axes.length + k)) continue;
    const D = numel(xd.slice(xd.length - axes.length));
    const sub = c.next(n.outputs[0]);
    if (!sub || sub.opType !== 'Sub' || sub.inputs[0] !== x || sub.inputs[1] !== n.outputs[0]) continue;
    const d = sub.outputs[0];
    const users = c.consumers.get(d) ?? [];
    if (users.length !== 2 || (c.uses.get(d) ?? 0) >= 1000) continue;
    const pow = users.find((m) => m.opType === 'Pow' && m.inputs[0] === d && near(c.scalar(m.inputs[1]), 2, 0));
    const pm = users.find((m) => m.opType === 'Mul' && m.inputs[0] === d && m.inputs[1] === d);
    const sq = pow ?? pm;
    const div = users.find((m) => m.opType === 'Div' && m.inputs[0] === d);
    if (!sq || !div) continue;
    const r2 = c.next(sq.outputs[0]);
    if (!r2 || r2.opType !== 'ReduceMean' || attrInt(r2, 'keepdims', 1) !== 1) continue;
    const axes2 = meanAxes(c, r2, xd.length);
    if (axes2.join() !== axes.join()) continue;
    const add = c.next(r2.outputs[0]);
    const eps = add && add.opType === 'Add' ? c.scalar(c.other(add, r2.outputs[0]) ?? '') : undefined;
    if (!add || eps === undefined) continue;
    const sqrt = c.next(add.outputs[0]);
    if (!sqrt || sqrt.opType !== 'Sqrt' || div.inputs[1] !== sqrt.outputs[0] || !c.single(sqrt.outputs[0])) continue;
    const gone = [n, sub, sq, r2, add, sqrt, div];
    let out = div.outputs[0];
    const attrs: Record<string, Attr> = { D: i(D), eps: f(eps) };
    const mul = c.next(out);
    const gc = mul && mul.opType === 'Mul' ? c.cst(c.other(mul, out) ?? '') : undefined;
    const gv = gc && channelVector(gc, D);
    if (mul && gv) {
      attrs.gamma = t(gv);
      gone.push(mul);
      out = mul.outputs[0];
      const badd = c.next(out);
      const bc = badd && badd.opType === 'Add' ? c.cst(c.other(badd, out) ?? '') : undefined;
      const bv = bc && channelVector(bc, D);
      if (badd && bv) {
        attrs.beta = t(bv);
        gone.push(badd);
        out = badd.outputs[0];
      }
    }
    c.replace(gone, { name: name([n]).replace(/ReduceMean$/, 'LayerNorm'), opType: 'LayerNorm', domain: 'swinq', inputs: [x], outputs: [out], attrs });
  }
}

function fuseGelu(c: Ctx): void {
  for (const n of [...c.nodes]) {
    if (c.alive(n) && n.opType === 'Gelu' && n.domain === '') {
      // ONNX's own Gelu (opset 20): the node the subgraphs below are fused into
      c.replace([n], { name: n.name, opType: 'Gelu', domain: 'swinq', inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs: { approx: i(geluApproximate(n) === 'tanh' ? 1 : 0) } });
      continue;
    }
    if (!c.alive(n) || (n.opType !== 'Erf' && n.opType !== 'Tanh')) continue;
    const pre = c.prod(n.inputs[0]);
    if (!pre || !c.single(n.inputs[0])) continue;
    let x: string | undefined;
    const inner: Node[] = [pre];
    if (n.opType === 'Erf') {
      const k = c.scalar(pre.inputs[1]);
      if (pre.opType === 'Div' && near(k, Math.SQRT2)) x = pre.inputs[0];
      else if (pre.opType === 'Mul' && near(c.scalar(c.other(pre, pre.inputs[0]) ?? ''), Math.SQRT1_2)) x = pre.inputs[0];
      else if (pre.opType === 'Mul' && near(c.scalar(pre.inputs[0]), Math.SQRT1_2)) x = pre.inputs[1];
    } else {
      // sqrt(2/pi)·(x + 0.044715·x³)
      const s = pre.opType === 'Mul' ? [0, 1].find((j) => near(c.scalar(pre.inputs[j]), Math.sqrt(2 / Math.PI))) : undefined;
      const sum = s !== undefined ? c.prod(pre.inputs[1 - s]) : undefined;
      if (sum && sum.opType === 'Add' && c.single(sum.outputs[0])) {
        for (const j of [0, 1]) {
          const cube = c.prod(sum.inputs[1 - j]);
          const cand = sum.inputs[j];
          if (!cube || cube.opType !== 'Mul' || !c.single(cube.outputs[0])) continue;
          const kk = [0, 1].find((q) => near(c.scalar(cube.inputs[q]), 0.044715));
          const p3 = kk !== undefined ? c.prod(cube.inputs[1 - kk]) : undefined;
          if (!p3 || !c.single(p3.outputs[0])) continue;
          if (p3.opType === 'Pow' && p3.inputs[0] === cand && near(c.scalar(p3.inputs[1]), 3, 0)) {
            x = cand;
            inner.push(sum, cube, p3);
          } else if (p3.opType === 'Mul') {
            // x³ as x·(x·x) — PyTorch's export of GELU(approximate='tanh')
            const jx = p3.inputs.indexOf(cand);
            const sq = jx >= 0 ? c.prod(p3.inputs[1 - jx]) : undefined;
            if (sq && sq.opType === 'Mul' && sq.inputs[0] === cand && sq.inputs[1] === cand && c.single(sq.outputs[0])) {
              x = cand;
              inner.push(sum, cube, p3, sq);
            }
          }
        }
      }
    }
    if (!x) continue;
    const add = c.next(n.outputs[0]);
    if (!add || add.opType !== 'Add' || !near(c.scalar(c.other(add, n.outputs[0]) ?? ''), 1, 0)) continue;
    const a = add.outputs[0];
    const m1 = c.next(a);
    if (!m1 || m1.opType !== 'Mul') continue;
    const o = c.other(m1, a)!;
    let gone: Node[] | undefined;
    let out = '';
    if (o === x) {
      const m2 = c.next(m1.outputs[0]);
      if (m2 && m2.opType === 'Mul' && near(c.scalar(c.other(m2, m1.outputs[0]) ?? ''), 0.5, 0)) {
        gone = [m1, m2];
        out = m2.outputs[0];
      }
    } else if (near(c.scalar(o), 0.5, 0)) {
      const m2 = c.next(m1.outputs[0]);
      if (m2 && m2.opType === 'Mul' && c.other(m2, m1.outputs[0]) === x) {
        gone = [m1, m2];
        out = m2.outputs[0];
      }
    } else {
      const h = c.prod(o);
      if (h && h.opType === 'Mul' && c.single(o) && c.other(h, x) !== undefined && near(c.scalar(c.other(h, x)!), 0.5, 0)) {
        gone = [h, m1];
        out = m1.outputs[0];
      }
    }
    if (!gone) continue;
    const all = [...inner, n, add, ...gone];
    c.replace(all, { name: name([n]).replace(/(Erf|Tanh)$/, 'Gelu'), opType: 'Gelu', domain: 'swinq', inputs: [x], outputs: [out], attrs: { approx: i(n.opType === 'Tanh' ? 1 : 0) } });
  }
}

function transposeKN(w: ConstTensor): ConstTensor {
  const [N, K] = w.dims;
  const o = makeConst('float32', [K, N]);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) o.data[k * N + n] = w.data[n * K + k];
  return o;
}

function fuseLinear(c: Ctx): void {
  for (const n of [...c.nodes]) {
    if (!c.alive(n)) continue;
    let w: ConstTensor | undefined;
    let bias: ConstTensor | undefined;
    const x = n.inputs[0];
    if (c.info(x).const || c.info(x).dtype !== 'float32') continue;
    if (n.opType === 'MatMul') {
      const b = c.cst(n.inputs[1]);
      if (!b || b.dims.length !== 2 || b.dtype !== 'float32' || c.info(x).dims.length < 1) continue;
      w = b;
    } else if (n.opType === 'Gemm') {
      const b = c.cst(n.inputs[1]);
      if (!b || b.dtype !== 'float32' || attrInt(n, 'transA', 0) !== 0) continue;
      const alpha = attrFloat(n, 'alpha', 1);
      w = attrInt(n, 'transB', 0) ? transposeKN(b) : b;
      if (alpha !== 1) w = makeConst('float32', w.dims, w.data.map((v) => v * alpha));
      if (n.inputs[2]) {
        const cc = c.cst(n.inputs[2]);
        const N = w.dims[1];
        const cv = cc && channelVector(cc, N);
        if (!cv) continue;
        const beta = attrFloat(n, 'beta', 1);
        bias = beta === 1 ? cv : makeConst('float32', [N], cv.data.map((v) => v * beta));
      }
    } else continue;
    const N = w.dims[1];
    const gone = [n];
    let out = n.outputs[0];
    let act = 0;
    let residual = '';
    let nx = c.next(out);
    if (!bias && nx && nx.opType === 'Add') {
      const bc = c.cst(c.other(nx, out) ?? '');
      const bv = bc && numel(c.info(nx.outputs[0]).dims) === numel(c.info(out).dims) ? channelVector(bc, N) : undefined;
      if (bv) {
        bias = bv;
        gone.push(nx);
        out = nx.outputs[0];
        nx = c.next(out);
      }
    }
    if (nx && (nx.opType === 'Relu' || (nx.domain === 'swinq' && nx.opType === 'Gelu'))) {
      act = nx.opType === 'Relu' ? 1 : (nx.attrs.approx.value as number) === 1 ? 3 : 2;
      gone.push(nx);
      out = nx.outputs[0];
      nx = c.next(out);
    }
    if (nx && nx.opType === 'Add') {
      const r = c.other(nx, out)!;
      const ri = c.info(r);
      if (!ri.const && ri.dtype === 'float32' && ri.dims.join() === c.info(nx.outputs[0]).dims.join() &&
          ri.dims.join() === c.info(out).dims.join() && c.prodIdx(r) < c.idx(n)) {
        residual = r;
        gone.push(nx);
        out = nx.outputs[0];
      }
    }
    const attrs: Record<string, Attr> = { w: t(w), act: i(act) };
    if (bias) attrs.bias = t(bias);
    c.replace(gone, { name: name(gone), opType: 'Linear', domain: 'swinq', inputs: residual ? [x, residual] : [x], outputs: [out], attrs });
  }
}

function fuseMatMul(c: Ctx): void {
  for (const n of [...c.nodes]) {
    if (!c.alive(n) || n.opType !== 'MatMul') continue;
    let [a, b] = n.inputs;
    if (c.info(a).dims.length < 2 || c.info(b).dims.length < 2 || c.info(a).dtype !== 'float32') continue;
    let alpha = 1;
    let transB = 0;
    const gone: Node[] = [n];
    const scaleOf = (m: Node | undefined, v: string): { s: number; x: string } | undefined => {
      if (!m || !c.single(v)) return undefined;
      if (m.opType === 'Mul') {
        for (const j of [0, 1]) {
          const s = c.scalar(m.inputs[j]);
          if (s !== undefined && !c.cst(m.inputs[1 - j])) return { s, x: m.inputs[1 - j] };
        }
      }
      if (m.opType === 'Div') {
        const s = c.scalar(m.inputs[1]);
        if (s !== undefined && !c.cst(m.inputs[0])) return { s: 1 / s, x: m.inputs[0] };
      }
      return undefined;
    };
    for (const side of [0, 1]) {
      const v = side === 0 ? a : b;
      const m = c.prod(v);
      const sc = scaleOf(m, v);
      if (sc && c.info(sc.x).dims.join() === c.info(v).dims.join()) {
        alpha *= sc.s;
        gone.push(m!);
        if (side === 0) a = sc.x; else b = sc.x;
      }
    }
    const tr = c.prod(b);
    if (tr && tr.opType === 'Transpose' && c.single(b)) {
      const r = c.info(b).dims.length;
      const p = attrInts(tr, 'perm') ?? [...Array(r).keys()].reverse();
      if (p.every((v, k) => (k < r - 2 ? v === k : v === (k === r - 2 ? r - 1 : r - 2)))) {
        transB = 1;
        gone.push(tr);
        b = tr.inputs[0];
      }
    }
    let out = n.outputs[0];
    const post = c.next(out);
    const sc = scaleOf(post, out);
    if (post && sc && sc.x === out) {
      alpha *= sc.s;
      gone.push(post);
      out = post.outputs[0];
    }
    c.replace(gone, { name: name(gone), opType: 'MatMul', domain: 'swinq', inputs: [a, b], outputs: [out], attrs: { alpha: f(alpha), transB: i(transB) } });
  }
}

const RESHAPES = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

function fuseSoftmax(c: Ctx): void {
  for (const n of [...c.nodes]) {
    if (!c.alive(n) || n.opType !== 'Softmax') continue;
    const xi = c.info(n.inputs[0]);
    const r = xi.dims.length;
    const axis = attrInt(n, 'axis', -1);
    if ((axis < 0 ? axis + r : axis) !== r - 1 || xi.dtype !== 'float32') continue;
    const D = xi.dims[r - 1];
    const total = numel(xi.dims);
    let v = n.inputs[0];
    const chain: Node[] = [];
    const adds: { k: ConstTensor; od: number[] }[] = [];
    let lastAdd = -1;
    let src = '';
    for (;;) {
      const p = c.prod(v);
      if (!p || !c.single(v)) break;
      if (RESHAPES.has(p.opType) && p.outputs[0] === v) {
        chain.push(p);
        v = p.inputs[0];
        continue;
      }
      if (p.opType === 'Add') {
        const j = [0, 1].find((q) => c.cst(p.inputs[q]) && !c.cst(p.inputs[1 - q]));
        if (j === undefined) break;
        const dyn = p.inputs[1 - j];
        const k = c.cst(p.inputs[j])!;
        const od = c.info(p.outputs[0]).dims;
        if (numel(c.info(dyn).dims) !== total || k.dtype !== 'float32') break;
        adds.push({ k, od });
        chain.push(p);
        lastAdd = chain.length;
        src = dyn;
        v = dyn;
        continue;
      }
      break;
    }
    if (!adds.length) continue;
    // each constant repeats every numel(od[a:]) elements, a = its first non-broadcast axis: build the
    // table for one common period only (it does not grow with batch)
    const parts = adds.map(({ k, od }) => {
      const st = broadcastStrides(k.dims, od);
      let a = 0;
      while (a < od.length && st[a] === 0) a++;
      return { k, period: numel(od.slice(a)), map: stridedMap(od.slice(a), st.slice(a), 0) };
    });
    let P = D;
    for (const q of parts) P = (P * q.period) / gcd(P, q.period);
    if (total % P !== 0) continue;
    const table = new Float32Array(P);
    for (const q of parts) for (let e = 0; e < P; e++) table[e] += q.k.data[q.map[e % q.period]];
    const rows = P / D;
    let period = rows;
    for (let p = 1; p <= rows; p++) {
      if (rows % p) continue;
      let ok = true;
      for (let e = p * D; e < P && ok; e++) if (table[e] !== table[e - p * D]) ok = false;
      if (ok) { period = p; break; }
    }
    const bias = makeConst('float32', [period, D], table.subarray(0, period * D));
    const gone = [...chain.slice(0, lastAdd), n];
    c.replace(gone, { name: name([n]), opType: 'Softmax', domain: 'swinq', inputs: [src], outputs: [n.outputs[0]], attrs: { bias: t(bias) } });
  }
}

/**
 * Linear → movement (window reverse, roll back, reshapes) → Add(residual). Linear works row by row,
 * so when the movements only permute whole output rows, the same row permutation can be applied to
 * the linear's input instead (where it composes with the movements already there) and the residual
 * Add goes into the linear's epilogue.
 */
function fuseResidualThroughMoves(c: Ctx): void {
  for (const L of [...c.nodes]) {
    if (!c.alive(L) || L.domain !== 'swinq' || L.opType !== 'Linear' || L.inputs.length > 1) continue;
    const y = L.outputs[0];
    if ((c.uses.get(y) ?? 0) === 0 || (c.uses.get(y) ?? 0) >= 1000) continue;
    const N = (L.attrs.w.value as ConstTensor).dims[1];
    const K = (L.attrs.w.value as ConstTensor).dims[0];
    // the cone of movement nodes fed only from y, ending in one Add
    const cone = new Set<string>([y]);
    const moves: Node[] = [];
    let add: Node | undefined;
    let ok = true;
    const queue = [y];
    while (queue.length && ok) {
      const v = queue.shift()!;
      if ((c.uses.get(v) ?? 0) >= 1000) { ok = false; break; }
      for (const m of c.consumers.get(v) ?? []) {
        if (m.domain === '' && MOVE_OPS.has(m.opType) && (m.opType !== 'Dropout' || !m.outputs[1] || !c.uses.get(m.outputs[1]))) {
          if (moves.includes(m)) continue;
          const { data } = movesOf(c.s, m);
          if (m.inputs.some((i, k) => i && (data.includes(k) ? !cone.has(i) : !c.cst(i)))) { ok = false; break; }
          moves.push(m);
          for (const o of m.outputs) if (o) { cone.add(o); queue.push(o); }
        } else if (m.opType === 'Add' && m.domain === '' && !add) {
          add = m;
        } else { ok = false; break; }
      }
    }
    if (!ok || !add || moves.length === 0) continue;
    const v = add.inputs.find((i) => cone.has(i));
    const r = add.inputs.find((i) => !cone.has(i));
    if (!v || !r || add.inputs[0] === add.inputs[1]) continue;
    const ri = c.info(r);
    const od = c.info(add.outputs[0]).dims;
    if (ri.const || ri.dtype !== 'float32' || ri.dims.join() !== od.join() || numel(c.info(v).dims) !== numel(od)) continue;
    // every cone value other than v must be consumed inside the cone only
    if ([...cone].some((u) => (c.consumers.get(u) ?? []).some((m) => (u !== v || m !== add) && !moves.includes(m)))) continue;
    // compose the maps in node order
    const maps = new Map<string, Int32Array | null>([[y, null]]);
    for (const m of c.nodes) {
      if (!m || !moves.includes(m)) continue;
      const { data, moves: mv } = movesOf(c.s, m);
      mv.forEach((mm, k) => {
        if (!m.outputs[k]) return;
        const src = data.map((d) => maps.get(m.inputs[d]));
        const sizes = data.map((d) => numel(c.info(m.inputs[d]).dims));
        if (mm.map === null && data.length === 1) { maps.set(m.outputs[k], src[0] ?? null); return; }
        // lay the inputs' maps end to end, then one gather
        let virt: Int32Array;
        if (data.length === 1 && src[0]) virt = src[0];
        else {
          virt = new Int32Array(sizes.reduce((a, b) => a + b, 0));
          let off = 0;
          data.forEach((_, i) => {
            const sm = src[i];
            if (sm) virt.set(sm, off);
            else for (let q = 0; q < sizes[i]; q++) virt[off + q] = q;
            off += sizes[i];
          });
        }
        const mmap = mm.map;
        const out = new Int32Array(numel(mm.dims));
        if (mmap) for (let q = 0; q < out.length; q++) { const j = mmap[q]; out[q] = j < 0 ? -1 : virt[j]; }
        else out.set(virt.subarray(0, out.length));
        maps.set(m.outputs[k], out);
      });
    }
    const map = maps.get(v);
    const M = numel(c.info(v).dims) / N;
    const perm = new Int32Array(M);
    const seen = new Uint8Array(M);
    let isPerm = Number.isInteger(M);
    for (let row = 0; row < M && isPerm; row++) {
      const s0 = map ? map[row * N] : row * N;
      if (s0 < 0 || s0 % N !== 0 || seen[s0 / N]) { isPerm = false; break; }
      seen[s0 / N] = 1;
      perm[row] = s0 / N;
      if (map) for (let j = 1; j < N; j++) if (map[row * N + j] !== s0 + j) { isPerm = false; break; }
    }
    if (!isPerm) continue;
    const x = L.inputs[0];
    const fused: Node[] = [];
    let xin = x;
    if (!perm.every((p, k) => p === k)) {
      xin = `${x}#rows:${L.name}`;
      c.s.values.set(xin, { dtype: 'float32', dims: [M, K] });
      fused.push({ name: L.name, opType: 'RowMap', domain: 'swinq', inputs: [x], outputs: [xin], attrs: { perm: t({ dtype: 'int32', dims: [M], data: Float64Array.from(perm) }), K: i(K) } });
    }
    fused.push({ ...L, name: `${L.name}+${add.name}`, inputs: [xin, r], outputs: [add.outputs[0]] });
    c.replace([L, ...moves, add], fused);
  }
}

/** Runs every fusion; returns the node list for lowering. */
export function fuse(s: Specialized): Node[] {
  const c = new Ctx(s);
  fuseLayerNorm(c);
  fuseGelu(c);
  fuseLinear(c);
  fuseResidualThroughMoves(c);
  fuseMatMul(c);
  fuseSoftmax(c);
  // dead code: nodes none of whose outputs reach a graph output
  const live = new Set(c.s.outputs);
  const kept: Node[] = [];
  for (let k = c.nodes.length - 1; k >= 0; k--) {
    const n = c.nodes[k];
    if (!n || !n.outputs.some((o) => o && live.has(o))) continue;
    kept.push(n);
    for (const x of n.inputs) if (x) live.add(x);
  }
  return kept.reverse();
}
