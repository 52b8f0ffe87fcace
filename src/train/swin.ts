// Swin writer: one config + one parameter set → an ONNX model (`swinq init`), which then trains
// through OnnxTrainGraph like any imported model. Window partition, cyclic shift, head split/merge
// and patch merging are gathers (index maps); the relative-position bias is a gather from its
// trainable table. The config travels in metadata_props (swinq.train.config).
import onnxProto from 'onnx-proto';
import { OnnxModelBuilder } from './onnx.js';
import { mulberry32 } from '../util/random.js';

const { onnx } = onnxProto;
export const CONFIG_KEY = 'swinq.train.config';

export interface SwinConfig {
  imgSize: [number, number];
  inChans: number;
  patch: number;
  embed: number;
  depths: number[];
  heads: number[];
  window: number;
  classes: number;
  act: 'gelu' | 'relu';
  mlpRatio: number;
}

export const DEFAULT_CONFIG: SwinConfig = {
  imgSize: [28, 28], inChans: 1, patch: 2, embed: 32, depths: [2, 2], heads: [2, 4], window: 7, classes: 10, act: 'gelu', mlpRatio: 2,
};

/** Checks a config; throws naming the field. */
export function checkConfig(c: SwinConfig): SwinConfig {
  const pos = (v: unknown, f: string) => {
    if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`swin config: ${f} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  if (!Array.isArray(c.imgSize) || c.imgSize.length !== 2) throw new Error('swin config: imgSize must be [height, width]');
  c.imgSize.forEach((v, i) => pos(v, `imgSize[${i}]`));
  for (const f of ['inChans', 'patch', 'embed', 'window', 'classes', 'mlpRatio'] as const) pos(c[f], f);
  if (!Array.isArray(c.depths) || c.depths.length < 1) throw new Error('swin config: depths must be a non-empty list');
  if (!Array.isArray(c.heads) || c.heads.length !== c.depths.length) throw new Error(`swin config: heads must have one entry per stage (${c.depths.length})`);
  c.depths.forEach((v, i) => pos(v, `depths[${i}]`));
  c.heads.forEach((v, i) => pos(v, `heads[${i}]`));
  if (c.act !== 'gelu' && c.act !== 'relu') throw new Error(`swin config: act must be gelu or relu, got '${c.act}'`);
  let [H, W] = c.imgSize.map((v) => v / c.patch);
  if (!Number.isInteger(H) || !Number.isInteger(W)) throw new Error(`swin config: imgSize ${c.imgSize.join('×')} is not divisible by patch ${c.patch}`);
  for (let s = 0; s < c.depths.length; s++) {
    if (s > 0) {
      if (H % 2 || W % 2) throw new Error(`swin config: stage ${s} patch merging needs an even resolution, got ${H}×${W}`);
      H /= 2; W /= 2;
    }
    const ws = Math.min(c.window, H, W);
    if (H % ws || W % ws) throw new Error(`swin config: stage ${s} resolution ${H}×${W} is not divisible by window ${ws}`);
    const dim = c.embed * 2 ** s;
    if (dim % c.heads[s]) throw new Error(`swin config: stage ${s} dim ${dim} is not divisible by heads[${s}] = ${c.heads[s]}`);
  }
  return c;
}

export const seededRandom = mulberry32;

/** Fresh parameters: truncated normal (std 0.02) for linear weights and bias tables, uniform ±1/√K for the patch projection. */
export function initParams(c: SwinConfig, seed = 0): Map<string, Float32Array> {
  const r = seededRandom(seed);
  const out = new Map<string, Float32Array>();
  const tn = (n: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let v: number;
      do v = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()); while (Math.abs(v) > 2);
      a[i] = v * std;
    }
    return a;
  };
  for (const p of paramSpecs(c)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.init === 'zeros') out.set(p.name, new Float32Array(n));
    else if (p.init === 'ones') out.set(p.name, new Float32Array(n).fill(1));
    else if (p.init === 'uniform') {
      const b = 1 / Math.sqrt(p.shape[0]);
      out.set(p.name, Float32Array.from({ length: n }, () => (2 * r() - 1) * b));
    } else out.set(p.name, tn(n, 0.02));
  }
  return out;
}

interface Spec { name: string; shape: number[]; init: 'zeros' | 'ones' | 'uniform' | 'tn' }

/** Every trainable parameter of the config, in graph order. */
export function paramSpecs(c: SwinConfig): Spec[] {
  const s: Spec[] = [];
  const lin = (name: string, K: number, N: number, bias = true, init: Spec['init'] = 'tn') => {
    s.push({ name: `${name}.weight`, shape: [K, N], init });
    if (bias) s.push({ name: `${name}.bias`, shape: [N], init: 'zeros' });
  };
  const ln = (name: string, D: number) => {
    s.push({ name: `${name}.weight`, shape: [D], init: 'ones' });
    s.push({ name: `${name}.bias`, shape: [D], init: 'zeros' });
  };
  lin('patch_embed.proj', c.inChans * c.patch * c.patch, c.embed, true, 'uniform');
  ln('patch_embed.norm', c.embed);
  let [H, W] = c.imgSize.map((v) => v / c.patch);
  for (let st = 0; st < c.depths.length; st++) {
    const dim = c.embed * 2 ** st;
    if (st > 0) {
      H /= 2; W /= 2;
      ln(`layers.${st}.downsample.norm`, 2 * dim);
      lin(`layers.${st}.downsample.reduction`, 2 * dim, dim, false);
    }
    const ws = Math.min(c.window, H, W);
    for (let b = 0; b < c.depths[st]; b++) {
      const p = `layers.${st}.blocks.${b}`;
      ln(`${p}.norm1`, dim);
      lin(`${p}.attn.qkv`, dim, 3 * dim);
      s.push({ name: `${p}.attn.relative_position_bias_table`, shape: [(2 * ws - 1) ** 2, c.heads[st]], init: 'tn' });
      lin(`${p}.attn.proj`, dim, dim);
      ln(`${p}.norm2`, dim);
      lin(`${p}.mlp.fc1`, dim, c.mlpRatio * dim);
      lin(`${p}.mlp.fc2`, c.mlpRatio * dim, dim);
    }
  }
  const last = c.embed * 2 ** (c.depths.length - 1);
  ln('norm', last);
  lin('head', last, c.classes);
  return s;
}

/** The ONNX model of a config with the given parameter values (by name, checked against the specs);
 *  input 'input' [batch, inChans, H, W], output 'logits' [batch, classes]. */
export function swinOnnx(cfg: SwinConfig, values: Map<string, Float32Array>, metadata: Record<string, string> = {}, source = 'parameters'): Uint8Array {
  const c = checkConfig(cfg);
  const [IH, IW] = c.imgSize;
  const g = new OnnxModelBuilder('input', [c.inChans, IH, IW]);
  for (const sp of paramSpecs(c)) {
    const v = values.get(sp.name);
    const n = sp.shape.reduce((a, b) => a * b, 1);
    if (!v) throw new Error(`${source}: missing parameter '${sp.name}' (shape [${sp.shape}])`);
    if (v.length !== n) throw new Error(`${source}: parameter '${sp.name}' has ${v.length} values, expected shape [${sp.shape}] (${n})`);
    g.param(sp.name, sp.shape, v);
  }
  const x = swinBody(g, c);
  return g.finish(x, { ...metadata, [CONFIG_KEY]: JSON.stringify(c) });
}

/** Patch embedding, the stages (patch merging, shifted-window blocks), norm, pool and head. */
function swinBody(g: OnnxModelBuilder, c: SwinConfig): string {
  const [IH, IW] = c.imgSize;
  const P = c.patch;
  let H = IH / P, W = IW / P;
  // patch embedding = im2col gather + linear (a stride-P, P×P convolution)
  const K0 = c.inChans * P * P;
  const im2col = new Int32Array(H * W * K0);
  for (let r = 0; r < H; r++)
    for (let q = 0; q < W; q++)
      for (let ch = 0; ch < c.inChans; ch++)
        for (let ki = 0; ki < P; ki++)
          for (let kj = 0; kj < P; kj++) im2col[(r * W + q) * K0 + (ch * P + ki) * P + kj] = ch * IH * IW + (r * P + ki) * IW + (q * P + kj);
  let x = g.add('patch_embed.im2col', { op: 'gather', xItem: c.inChans * IH * IW, block: 1, idx: im2col }, ['input']);
  const linear = (name: string, inp: string, K: number, N: number, bias = true) => g.add(name, { op: 'linear', K, N }, bias ? [inp, `${name}.weight`, `${name}.bias`] : [inp, `${name}.weight`]);
  const ln = (name: string, inp: string, D: number) => g.add(`${name}.out`, { op: 'layernorm', D, eps: 1e-5 }, [inp, `${name}.weight`, `${name}.bias`]);
  x = linear('patch_embed.proj', x, K0, c.embed);
  x = ln('patch_embed.norm', x, c.embed);
  for (let st = 0; st < c.depths.length; st++) {
    const dim = c.embed * 2 ** st;
    if (st > 0) {
      const pd = dim / 2;  // incoming dim
      const H2 = H / 2, W2 = W / 2;
      const idx = new Int32Array(H2 * W2 * 4);
      const offs = [[0, 0], [1, 0], [0, 1], [1, 1]];  // x0..x3 order of the Swin patch merging
      for (let i = 0; i < H2; i++)
        for (let j = 0; j < W2; j++)
          offs.forEach(([di, dj], q) => { idx[(i * W2 + j) * 4 + q] = ((2 * i + di) * W + (2 * j + dj)) * pd; });
      const pre = `layers.${st}.downsample`;
      x = g.add(`${pre}.merge`, { op: 'gather', xItem: H * W * pd, block: pd, idx }, [x]);
      H = H2; W = W2;
      x = ln(`${pre}.norm`, x, 4 * pd);
      x = linear(`${pre}.reduction`, x, 4 * pd, dim, false);
    }
    const ws = Math.min(c.window, H, W);
    const N = ws * ws, nH = c.heads[st], d = dim / nH, nWh = H / ws, nWw = W / ws, nW = nWh * nWw;
    const rel = new Int32Array(nH * N * N);
    for (let h = 0; h < nH; h++)
      for (let i = 0; i < N; i++)
        for (let j = 0; j < N; j++) {
          const ri = Math.floor(i / ws), ci = i % ws, rj = Math.floor(j / ws), cj = j % ws;
          rel[(h * N + i) * N + j] = ((ri - rj + ws - 1) * (2 * ws - 1) + (ci - cj + ws - 1)) * nH + h;
        }
    for (let b = 0; b < c.depths[st]; b++) {
      const p = `layers.${st}.blocks.${b}`;
      const shift = b % 2 === 1 && ws < Math.max(H, W) ? Math.floor(ws / 2) : 0;
      // window position (w, n) reads token ((wr·ws + nr + shift) mod H, (wc·ws + nc + shift) mod W)
      const part = new Int32Array(nW * N);
      const inv = new Int32Array(H * W);
      for (let w = 0; w < nW; w++)
        for (let n = 0; n < N; n++) {
          const r = ((Math.floor(w / nWw) * ws + Math.floor(n / ws) + shift) % H);
          const q = (((w % nWw) * ws + (n % ws) + shift) % W);
          part[w * N + n] = (r * W + q) * dim;
          inv[r * W + q] = (w * N + n) * dim;
        }
      const shortcut = x;
      let h = ln(`${p}.norm1`, x, dim);
      h = g.add(`${p}.window_partition`, { op: 'gather', xItem: H * W * dim, block: dim, idx: part }, [h]);
      const qkv = linear(`${p}.attn.qkv`, h, dim, 3 * dim);
      const split = (s: number) => {
        const idx = new Int32Array(nH * N);
        for (let hh = 0; hh < nH; hh++) for (let n = 0; n < N; n++) idx[hh * N + n] = n * 3 * dim + s * dim + hh * d;
        return g.add(`${p}.attn.${'qkv'[s]}`, { op: 'gather', xItem: N * 3 * dim, block: d, idx }, [qkv]);
      };
      const q = split(0), k = split(1), v = split(2);
      let sc = g.add(`${p}.attn.scores`, { op: 'matmul', M: N, K: d, N, transB: true, alpha: 1 / Math.sqrt(d) }, [q, k]);
      const bias = g.add(`${p}.attn.relative_position_bias`, { op: 'gather', xItem: (2 * ws - 1) ** 2 * nH, block: 1, idx: rel }, [`${p}.attn.relative_position_bias_table`]);
      sc = g.add(`${p}.attn.scores_bias`, { op: 'add_bcast', dims: [nH, N, N], bdims: [nH, N, N] }, [sc, bias]);
      if (shift) {
        const label = (v0: number, size: number) => (v0 < size - ws ? 0 : v0 < size - shift ? 1 : 2);
        const mask = new Float32Array(nW * N * N);
        for (let w = 0; w < nW; w++)
          for (let i = 0; i < N; i++)
            for (let j = 0; j < N; j++) {
              const lab = (n: number) => label(Math.floor(w / nWw) * ws + Math.floor(n / ws), H) * 3 + label((w % nWw) * ws + (n % ws), W);
              mask[(w * N + i) * N + j] = lab(i) === lab(j) ? 0 : -100;
            }
        const mname = `${p}.attn.shift_mask`;
        g.param(mname, [nW, 1, N, N], mask);
        sc = g.add(`${p}.attn.scores_masked`, { op: 'add_bcast', dims: [nW, nH, N * N], bdims: [nW, 1, N * N] }, [sc, mname]);
      }
      const attn = g.add(`${p}.attn.softmax`, { op: 'softmax', D: N }, [sc]);
      let o = g.add(`${p}.attn.av`, { op: 'matmul', M: N, K: N, N: d }, [attn, v]);
      const mergeIdx = new Int32Array(N * nH);
      for (let n = 0; n < N; n++) for (let hh = 0; hh < nH; hh++) mergeIdx[n * nH + hh] = (hh * N + n) * d;
      o = g.add(`${p}.attn.merge_heads`, { op: 'gather', xItem: nH * N * d, block: d, idx: mergeIdx }, [o]);
      o = linear(`${p}.attn.proj`, o, dim, dim);
      o = g.add(`${p}.window_reverse`, { op: 'gather', xItem: nW * N * dim, block: dim, idx: inv }, [o]);
      x = g.add(`${p}.add1`, { op: 'add' }, [shortcut, o]);
      let m = ln(`${p}.norm2`, x, dim);
      m = linear(`${p}.mlp.fc1`, m, dim, c.mlpRatio * dim);
      m = g.add(`${p}.mlp.act`, { op: 'act', fn: c.act }, [m]);
      m = linear(`${p}.mlp.fc2`, m, c.mlpRatio * dim, dim);
      x = g.add(`${p}.add2`, { op: 'add' }, [x, m]);
    }
  }
  const last = c.embed * 2 ** (c.depths.length - 1);
  x = ln('norm', x, last);
  x = g.add('pool', { op: 'mean_pool', L: H * W, C: last }, [x]);
  return g.add('head', { op: 'linear', K: last, N: c.classes }, [x, 'head.weight', 'head.bias']);
}

/** Config and named float initializers of a model written by swinOnnx (`swinq init` / `swinq train`). */
export function readOnnxModel(bytes: Uint8Array, source: string): { config: SwinConfig; params: Map<string, Float32Array>; metadata: Record<string, string> } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let m: any;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key] = p.value;
  const raw = metadata[CONFIG_KEY];
  if (!raw) throw new Error(`${source}: no '${CONFIG_KEY}' metadata (train models made by \`swinq init\`)`);
  let config: SwinConfig;
  try {
    config = checkConfig(JSON.parse(raw));
  } catch (e) {
    throw new Error(`${source}: bad ${CONFIG_KEY} metadata: ${(e as Error).message}`);
  }
  const params = new Map<string, Float32Array>();
  for (const t of m.graph?.initializer ?? []) {
    if (t.dataType !== 1) continue;  // FLOAT
    if (t.rawData && t.rawData.length) {
      const copy = new Uint8Array(t.rawData);
      params.set(t.name, new Float32Array(copy.buffer, 0, copy.length / 4));
    } else params.set(t.name, Float32Array.from(t.floatData ?? []));
  }
  return { config, params, metadata };
}
