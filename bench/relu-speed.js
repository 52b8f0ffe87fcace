#!/usr/bin/env node
// ReLU speed-up of integer inference (issue 6): the same Swin block shape as ONE integer plan
// (bench/int-block.js builders) with the MLP activation as
//   gelu:        fc1 + 256-entry GELU table epilogue, fc2 dense (input zero point ≠ 0)
//   relu dense:  fc1 + fused ReLU epilogue (u8, zero point 0), fc2 dense (createPlan option sparseA: false)
//   relu sparse: the same plan, fc2 skips the zero codes when the run's measured density is below
//                the break-even (qkernels.h sparse_max_density; docs/sparsity.md)
// All plans run interleaved in the same process; ms per run = min / median of --runs (wall) and
// min thread-CPU (process.cpuUsage: the machine is shared, wall time includes preemption).
// The ReLU density (share of non-zero fc1 output codes) of the random block is ~50 %; --density
// d1,d2,.. adds synthetic rows where the fc1 bias is lowered so that a share d of the codes is
// non-zero (a trained ReLU student's activations are sparser than a random block's).
// --model M.onnx (fp32, GELU as Erf; default the shared micro-Swin when ../shared exists) also
// measures the real density: the GELU input of every MLP on --images Fashion-MNIST test images in
// onnxruntime, as if GELU were swapped for ReLU (u8 codes at max/255, as the calibrator sets them).
// Usage: node bench/relu-speed.js [--runs 20] [--windows 64 --dim 96 --heads 3] [--density 0.3,0.15,0.08]
//        [--model M.onnx --images 256] [--json]
import fs from 'node:fs';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBlock, makeInput, floatBlock, buildIntBlock, toWindows } from './int-block.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

function measure(plans, x, runs) {
  const ys = plans.map(() => new Float32Array(x.length));
  const wall = plans.map(() => []), cpu = plans.map(() => []);
  for (let i = 0; i < 3; ++i) plans.forEach((pl, j) => pl.run([x], [ys[j]]));
  for (let r = 0; r < runs; ++r)
    plans.forEach((pl, j) => {
      const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      pl.run([x], [ys[j]]);
      wall[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
      const c = process.cpuUsage(c0);
      cpu[j].push((c.user + c.system) / 1e3);
    });
  return plans.map((_, j) => {
    const w = wall[j].sort((a, b) => a - b), c = cpu[j].sort((a, b) => a - b);
    return { min: +w[0].toFixed(3), median: +w[w.length >> 1].toFixed(3), cpu_min: +c[0].toFixed(3), y: ys[j] };
  });
}
// per-op minimum of the op named `name` over n profiled runs
function opMin(plan, x, name, n) {
  const y = new Float32Array(x.length);
  let best = Infinity;
  for (let i = 0; i < n; ++i) {
    plan.run([x], [y]);
    for (const r of plan.profile()) if (r.name === name) best = Math.min(best, r.ms);
  }
  return +best.toFixed(3);
}
// share of non-zero u8 codes of relu(pre) at the calibration scale (what fc2 sees)
function density(ref) {
  let mx = 0;
  for (const v of ref.hgl) mx = Math.max(mx, v);
  const s = mx / 255 || 1;
  let nz = 0;
  for (const v of ref.hgl) nz += Math.round(v / s) !== 0 ? 1 : 0;
  return nz / ref.hgl.length;
}

// Density of relu(x) codes for every Erf input x/√2 of the model (same sign as the GELU input).
async function modelDensity(require, native, modelPath, images) {
  const ort = require('onnxruntime-node');
  const proto = require('onnx-proto');
  const onnx = proto.onnx ?? proto.default?.onnx ?? proto;
  const meta = JSON.parse(fs.readFileSync(`${modelPath}.json`, 'utf8'));
  const m = onnx.ModelProto.decode(fs.readFileSync(modelPath));
  const taps = m.graph.node.filter((n) => n.opType === 'Erf').map((n) => n.input[0]);
  if (!taps.length) throw new Error(`${modelPath}: no Erf node (GELU) found`);
  for (const n of taps) m.graph.output.push(onnx.ValueInfoProto.create({ name: n, type: { tensorType: { elemType: 1 } } }));
  const sess = await ort.InferenceSession.create(onnx.ModelProto.encode(m).finish());
  const dataFile = path.join(root, '..', 'shared', 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
  if (!fs.existsSync(dataFile)) throw new Error(`${dataFile} is missing (needs /work/shared next to the repo)`);
  const img = zlib.gunzipSync(fs.readFileSync(dataFile)).subarray(16);
  const x = new Float32Array(images * 784);
  for (let i = 0; i < x.length; ++i) x[i] = (img[i] / 255 - meta.mean) / meta.std;
  const out = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x, [images, 1, 28, 28]) });
  const layers = [];
  let all = 0, allNz = 0;
  for (const n of taps) {
    const d = out[n].data, K = out[n].dims[out[n].dims.length - 1];
    let mx = 0;
    for (const v of d) mx = Math.max(mx, v);
    const s = mx / 255;
    let nz = 0, tiles = 0;
    for (let r = 0; r + 4 <= d.length / K; r += 4) {
      let t = 0;
      for (let i = r * K; i < (r + 4) * K; ++i) t += Math.round(d[i] / s) > 0 ? 1 : 0;
      nz += t; ++tiles;
    }
    // fc2 takes the sparse path per run when the layer's density is below the break-even of its
    // packed weights (7-bit codes: the int8 kernel); the benchmark entry point reports it for K
    const breakEven = native.qBenchSparseGemm(4, K, 16, 0, { reps: 1, aMax: 127 }).breakEven;
    const density = nz / (tiles * 4 * K);
    layers.push({ tensor: n, dims: out[n].dims, density: +density.toFixed(4), break_even: breakEven, sparse_fc2: density < breakEven });
    all += tiles * 4 * K; allNz += nz;
  }
  return { model: modelPath, images, density: +(allNz / all).toFixed(4), layers };
}

export function runCase(native, p, xw, x, runs, label) {
  const refG = floatBlock(p, xw, 'gelu'), refR = floatBlock(p, xw, 'relu');
  const opts = { threads: 1, profile: true };
  const gelu = native.createPlan(buildIntBlock(p, refG, 'gelu'), opts);
  const reluDense = native.createPlan(buildIntBlock(p, refR, 'relu'), { ...opts, sparseA: false });
  const reluSparse = native.createPlan(buildIntBlock(p, refR, 'relu'), opts);
  const [g, rd, rs] = measure([gelu, reluDense, reluSparse], x, runs);
  let same = true;
  for (let i = 0; i < rd.y.length; ++i) if (rd.y[i] !== rs.y[i] && !(Number.isNaN(rd.y[i]) && Number.isNaN(rs.y[i]))) { same = false; break; }
  const n = Math.max(5, runs >> 1);
  return {
    label, relu_density: +density(refR).toFixed(4),
    gelu_ms: { min: g.min, median: g.median, cpu_min: g.cpu_min },
    relu_dense_ms: { min: rd.min, median: rd.median, cpu_min: rd.cpu_min },
    relu_sparse_ms: { min: rs.min, median: rs.median, cpu_min: rs.cpu_min },
    fc2_ms: { gelu: opMin(gelu, x, 'fc2', n), relu_dense: opMin(reluDense, x, 'fc2', n), relu_sparse: opMin(reluSparse, x, 'fc2', n) },
    fc1_ms: { gelu: opMin(gelu, x, 'fc1+gelu', n), relu: opMin(reluSparse, x, 'fc1+relu', n) },
    // ReLU (sparse plan) / GELU by wall min and by CPU min
    ratio_wall: +(rs.min / g.min).toFixed(3),
    ratio_cpu: +(rs.cpu_min / g.cpu_min).toFixed(3),
    ratio_cpu_relu_dense: +(rd.cpu_min / g.cpu_min).toFixed(3),
    sparse_equals_dense: same,
  };
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
  const runs = Number(opt('runs', 20));
  const shape = { windows: Number(opt('windows', 64)), dim: Number(opt('dim', 96)), heads: Number(opt('heads', 3)) };
  const dens = String(opt('density', '0.3,0.15,0.08')).split(',').filter(Boolean).map(Number);
  const require = createRequire(import.meta.url);
  const native = require(process.env.SWINQ_ADDON ?? path.join(root, 'build', 'Release', 'swinq.node'));
  const p = makeBlock(shape);
  const x = makeInput(p);
  const xw = toWindows(p, x);
  const rows = [runCase(native, p, xw, x, runs, 'random block')];
  // synthetic: lower every fc1 bias by the (1 − d) quantile of the pre-activations
  const pre = Float64Array.from(floatBlock(p, xw, 'relu').pre).sort();
  for (const d of dens) {
    const t = pre[Math.min(pre.length - 1, Math.floor((1 - d) * pre.length))];
    const q = { ...p, bf1: Float64Array.from(p.bf1, (b) => b - t) };
    rows.push(runCase(native, q, xw, x, runs, `synthetic d=${d}`));
  }
  const res = { shape: { tokens: p.T, ...shape, hidden: p.H }, isa: native.activeIsa(), runs, rows };
  const shared = path.join(root, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');
  const modelPath = opt('model', fs.existsSync(shared) ? shared : '');
  if (modelPath) res.model_density = await modelDensity(require, native, modelPath, Number(opt('images', 256)));
  if (args.includes('--json')) { console.log(JSON.stringify(res)); return; }
  console.log(`Swin block, ${p.T} tokens, C=${p.C}, MLP ${p.H}, threads 1, isa ${res.isa}, ${runs} interleaved runs; ms min / median / cpu-min`);
  const f = (m) => `${m.min.toFixed(2)} / ${m.median.toFixed(2)} / ${m.cpu_min.toFixed(2)}`;
  if (res.model_density) {
    const md = res.model_density;
    console.log(`  ${path.basename(md.model)} with GELU→ReLU (${md.images} test images): non-zero codes ${(md.density * 100).toFixed(1)} % ` +
      `(${md.layers.map((l) => `${(l.density * 100).toFixed(1)} % → ${l.sparse_fc2 ? 'sparse' : 'dense'} fc2 (break-even ${(l.break_even * 100).toFixed(0)} %)`).join('; ')})`);
  }
  for (const r of rows) {
    console.log(`  ${r.label} (ReLU density ${(r.relu_density * 100).toFixed(1)} %):`);
    console.log(`    int8 GELU        ${f(r.gelu_ms)}   fc1 ${r.fc1_ms.gelu}  fc2 ${r.fc2_ms.gelu}`);
    console.log(`    int8 ReLU dense  ${f(r.relu_dense_ms)}   fc1 ${r.fc1_ms.relu}  fc2 ${r.fc2_ms.relu_dense}`);
    console.log(`    int8 ReLU sparse ${f(r.relu_sparse_ms)}   fc2 ${r.fc2_ms.relu_sparse}   ReLU/GELU wall ${r.ratio_wall}, cpu ${r.ratio_cpu} (dense fc2: cpu ${r.ratio_cpu_relu_dense}; target ≤ 0.85)` +
      `${r.sparse_equals_dense ? '' : '   SPARSE ≠ DENSE OUTPUT!'}`);
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
