// Imports a torch.onnx-exported torchvision SwinTransformer (v1) into the trainer's parameter set
// by structure: named initializers (swin.features.S.B.norm1…, features.0.0 = patch conv, features.2
// = patch merging, head) map by name; the unnamed ones are matched by graph order — per block the
// MatMul weights are qkv, proj, fc1, fc2 ([K, N] already), the patch merging reduction sits between
// stages, and the relative-position bias arrives constant-folded as [1, heads, N, N], which is
// inverted back into its ((2·ws−1)², heads) table (every table entry is checked to be consistent).
import onnxProto from 'onnx-proto';
import type { SwinConfig } from '../train/swin.js';

const { onnx } = onnxProto;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function floats(t: any): Float32Array {
  if (t.rawData && t.rawData.length) { const c = new Uint8Array(t.rawData); return new Float32Array(c.buffer, 0, c.length / 4); }
  return Float32Array.from(t.floatData ?? []);
}

export function importTorchvisionSwin(bytes: Uint8Array, source: string): { config: SwinConfig; params: Map<string, Float32Array>; metadata: Record<string, string> } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let m: any;
  try { m = onnx.ModelProto.decode(bytes); } catch (e) { throw new Error(`${source}: not a valid ONNX model (${(e as Error).message})`); }
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key] = p.value;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const inits = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of m.graph?.initializer ?? []) if (t.dataType === 1) inits.set(t.name, { dims: t.dims.map(Number), data: floats(t) });
  const need = (name: string) => {
    const t = inits.get(name);
    if (!t) throw new Error(`${source}: not a torchvision Swin (no initializer '${name}')`);
    return t;
  };
  const prefix = inits.has('swin.features.0.0.weight') ? 'swin.' : inits.has('features.0.0.weight') ? '' : null;
  if (prefix === null) throw new Error(`${source}: no swinq.train.config metadata and not a torchvision Swin (no features.0.0.weight initializer)`);
  const conv = need(`${prefix}features.0.0.weight`);
  const [embed, inChans, P, P2] = conv.dims;
  if (P !== P2) throw new Error(`${source}: non-square patch ${P}×${P2}`);
  // stages: features.1, 3, 5… hold blocks; 2, 4… the patch merging
  const depths: number[] = [];
  for (let f = 1; ; f += 2) {
    let b = 0;
    while (inits.has(`${prefix}features.${f}.${b}.norm1.weight`)) b++;
    if (!b) break;
    depths.push(b);
  }
  if (!depths.length) throw new Error(`${source}: torchvision Swin without blocks (features.1.0.norm1.weight)`);
  // unnamed weights in graph order: MatMul B operands and constant-folded rel-pos biases
  const mats: { name: string; dims: number[]; data: Float32Array }[] = [];
  const biases: { name: string; dims: number[]; data: Float32Array }[] = [];
  const seen = new Set<string>();
  for (const n of m.graph.node) {
    for (const i of n.input as string[]) {
      const t = inits.get(i);
      if (!t || seen.has(i) || i.startsWith(prefix + 'features') || i.startsWith(prefix + 'norm') || i.startsWith(prefix + 'head')) continue;
      if (n.opType === 'MatMul' && t.dims.length === 2) { mats.push({ name: i, ...t }); seen.add(i); }
      if (n.opType === 'Add' && t.dims.length === 4 && t.dims[0] === 1 && t.dims[2] === t.dims[3]) { biases.push({ name: i, ...t }); seen.add(i); }
    }
  }
  const nBlocks = depths.reduce((a, b) => a + b, 0);
  if (mats.length !== 4 * nBlocks + depths.length - 1) throw new Error(`${source}: expected ${4 * nBlocks + depths.length - 1} MatMul weights (4 per block + 1 per merging), found ${mats.length}`);
  if (biases.length !== nBlocks) throw new Error(`${source}: expected ${nBlocks} relative-position biases [1,heads,N,N], found ${biases.length} (shift masks are not expected as initializers)`);
  const N = biases[0].dims[2], ws = Math.round(Math.sqrt(N));
  if (ws * ws !== N) throw new Error(`${source}: window token count ${N} is not a square`);
  const input = m.graph.input.find((i: { name: string }) => !inits.has(i.name));
  const shp = input?.type?.tensorType?.shape?.dim?.map((d: { dimValue?: unknown }) => Number(d.dimValue ?? 0)) ?? [];
  if (shp.length !== 4 || !shp[2] || !shp[3]) throw new Error(`${source}: input must be [N, C, H, W] with fixed H, W`);
  const heads: number[] = [];
  const params = new Map<string, Float32Array>();
  const tr = (d: Float32Array, R: number, C: number) => { const o = new Float32Array(R * C); for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[c * R + r] = d[r * C + c]; return o; };
  const copy = (to: string, from: string) => params.set(to, Float32Array.from(need(prefix + from).data));
  params.set('patch_embed.proj.weight', tr(conv.data, embed, inChans * P * P));  // [E, C·P·P] → [C·P·P, E]
  copy('patch_embed.proj.bias', 'features.0.0.bias');
  copy('patch_embed.norm.weight', 'features.0.2.weight');
  copy('patch_embed.norm.bias', 'features.0.2.bias');
  let mi = 0, bi = 0, mlpRatio = 0;
  const take = (K: number, Nn: number, what: string) => {
    const t = mats[mi++];
    if (t.dims[0] !== K || t.dims[1] !== Nn) throw new Error(`${source}: ${what} expected a [${K}, ${Nn}] MatMul weight, found '${t.name}' [${t.dims}]`);
    return Float32Array.from(t.data);
  };
  for (let st = 0; st < depths.length; st++) {
    const dim = embed * 2 ** st, f = 2 * st + 1;
    if (st > 0) {
      copy(`layers.${st}.downsample.norm.weight`, `features.${f - 1}.norm.weight`);
      copy(`layers.${st}.downsample.norm.bias`, `features.${f - 1}.norm.bias`);
      params.set(`layers.${st}.downsample.reduction.weight`, take(2 * dim, dim, `stage ${st} patch merging`));
    }
    for (let b = 0; b < depths[st]; b++) {
      const p = `layers.${st}.blocks.${b}`, q = `features.${f}.${b}`;
      for (const k of ['norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias', 'attn.qkv.bias', 'attn.proj.bias']) copy(`${p}.${k}`, `${q}.${k}`);
      copy(`${p}.mlp.fc1.bias`, `${q}.mlp.0.bias`);
      copy(`${p}.mlp.fc2.bias`, `${q}.mlp.3.bias`);
      const hidden = need(`${prefix}${q}.mlp.0.bias`).data.length;
      if (hidden % dim) throw new Error(`${source}: ${q} mlp hidden ${hidden} is not a multiple of dim ${dim}`);
      if (mlpRatio && mlpRatio !== hidden / dim) throw new Error(`${source}: mlp ratio differs between blocks`);
      mlpRatio = hidden / dim;
      params.set(`${p}.attn.qkv.weight`, take(dim, 3 * dim, `${q}.attn.qkv`));
      params.set(`${p}.attn.proj.weight`, take(dim, dim, `${q}.attn.proj`));
      params.set(`${p}.mlp.fc1.weight`, take(dim, hidden, `${q}.mlp.0`));
      params.set(`${p}.mlp.fc2.weight`, take(hidden, dim, `${q}.mlp.3`));
      const bias = biases[bi++];
      const nH = bias.dims[1];
      if (b === 0) heads.push(nH); else if (heads[st] !== nH) throw new Error(`${source}: ${q} has ${nH} heads, stage ${st} has ${heads[st]}`);
      if (bias.dims[2] !== N) throw new Error(`${source}: ${q} window has ${bias.dims[2]} tokens, expected ${N} (windows clipped to the resolution are not supported)`);
      // invert bias[h, i, j] = table[rel(i, j), h]
      const L = 2 * ws - 1, table = new Float32Array(L * L * nH), set = new Uint8Array(L * L * nH);
      for (let h = 0; h < nH; h++)
        for (let i = 0; i < N; i++)
          for (let j = 0; j < N; j++) {
            const r = ((Math.floor(i / ws) - Math.floor(j / ws) + ws - 1) * L + ((i % ws) - (j % ws) + ws - 1)) * nH + h;
            const val = bias.data[(h * N + i) * N + j];
            if (set[r] && table[r] !== val) throw new Error(`${source}: ${q} relative-position bias '${bias.name}' is not a gather of a table (entry ${i},${j} head ${h})`);
            table[r] = val; set[r] = 1;
          }
      params.set(`${p}.attn.relative_position_bias_table`, table);
    }
  }
  const last = embed * 2 ** (depths.length - 1);
  copy('norm.weight', 'norm.weight');
  copy('norm.bias', 'norm.bias');
  const head = need(`${prefix}head.weight`);
  const classes = head.dims[0];
  if (head.dims[1] !== last) throw new Error(`${source}: head.weight is [${head.dims}], expected [classes, ${last}]`);
  params.set('head.weight', tr(head.data, classes, last));
  copy('head.bias', 'head.bias');
  const hasErf = m.graph.node.some((n: { opType: string }) => n.opType === 'Erf');
  const config: SwinConfig = {
    imgSize: [shp[2], shp[3]], inChans, patch: P, embed, depths, heads, window: ws, classes, act: hasErf ? 'gelu' : 'relu', mlpRatio,
  };
  return { config, params, metadata };
}
