#!/usr/bin/env node
// Whole-model ReLU vs GELU speed (issue 13): integer-only QDQ models (swinq calibrate output) of a GELU
// teacher and one or more ReLU students (e.g. a `distill --sparsity` student and its `swinq prune`d
// copy), public InferenceSession.run(), one process, real Fashion-MNIST test images. Rounds of
// per-model blocks (order rotated each round; one untimed run before each block), ms per batch:
// min and median; ratio = student / GELU, min-over-min and median-over-median.
// --profile: per model, the per-op minimum over --profile-runs profiled runs of the MLP GEMMs (ops whose
// name has /mlp/), summed per block (features.S.B) and per fc (mlp.0 = fc1, mlp.3 = fc2), at batch 1.
//   node bench/relu-models.js --gelu T-q.onnx --relu S-q.onnx [--relu P-q.onnx …] [--batches 1,32]
//        [--rounds 8 --per 10] [--threads 1] [--profile [--profile-runs 200]] [--json]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (k, d) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : d; };
const all = (k) => argv.flatMap((a, i) => (a === `--${k}` ? [argv[i + 1]] : []));
const fail = (m) => { console.error(`bench/relu-models.js: ${m}`); process.exit(1); };
const gelu = arg('gelu');
const relus = all('relu');
if (!gelu || relus.length === 0) fail('needs --gelu GELU-q.onnx and at least one --relu RELU-q.onnx');
for (const f of [gelu, ...relus]) if (!fs.existsSync(f)) fail(`${f}: no such file`);
const batches = arg('batches', '1,32').split(',').map(Number);
const rounds = Number(arg('rounds', 8)), per = Number(arg('per', 10)), threads = Number(arg('threads', 1));
const profRuns = Number(arg('profile-runs', 200));
for (const [k, v] of [['rounds', rounds], ['per', per], ['threads', threads], ['profile-runs', profRuns], ...batches.map((b) => ['batches', b])]) {
  if (!Number.isInteger(v) || v < 1) fail(`--${k} must be positive integers`);
}
const data = arg('data', path.resolve(root, '..', 'shared', 'data', 'fashion-mnist'));
const mean = Number(arg('mean', 0.286)), std = Number(arg('std', 0.353));
const json = argv.includes('--json');

const api = await import(path.join(root, 'dist/index.js'));
const { loadLabelledImages, normalizedImages } = await import(path.join(root, 'dist/io/idx.js'));
const ds = loadLabelledImages(data, 'test');
const files = [gelu, ...relus];
const label = (f) => path.basename(f);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

async function timeBatch(B) {
  const x = new api.Tensor('float32', normalizedImages(ds, 0, B, mean, std), [B, 1, ds.height, ds.width]);
  const sessions = [];
  for (const f of files) sessions.push(await api.InferenceSession.create(f, { threads, requireInteger: true }));
  const t = files.map(() => []);
  for (const s of sessions) await s.run({ input: x });
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < files.length; j++) {
      const k = (r + j) % files.length;
      await sessions[k].run({ input: x });
      for (let i = 0; i < per; i++) {
        const t0 = performance.now();
        await sessions[k].run({ input: x });
        t[k].push(performance.now() - t0);
      }
    }
  }
  for (const s of sessions) s.release();
  return files.map((f, k) => ({ model: label(f), batch: B, min: Math.min(...t[k]), median: median(t[k]) }));
}

// per-op minimum over profiled runs, MLP GEMMs grouped by block and fc
async function mlpProfile(f) {
  const x = new api.Tensor('float32', normalizedImages(ds, 0, 1, mean, std), [1, 1, ds.height, ds.width]);
  const s = await api.InferenceSession.create(f, { threads, requireInteger: true, profile: true });
  const best = new Map();
  let total = Infinity;
  for (let i = 0; i < profRuns; i++) {
    await s.run({ input: x });
    const p = s.profileOf({ input: [1, 1, ds.height, ds.width] });
    total = Math.min(total, p.reduce((a, o) => a + o.ms, 0));
    for (const o of p) best.set(o.name, Math.min(best.get(o.name) ?? Infinity, o.ms));
  }
  s.release();
  const groups = {};
  for (const [name, ms] of best) {
    if (!name.includes('/mlp/')) continue;
    const blk = (name.match(/features\.\d+\.\d+/) ?? ['?'])[0];
    const fc = name.includes('mlp.0') ? 'fc1' : name.includes('mlp.3') ? 'fc2' : 'other';
    groups[blk] ??= { fc1: 0, fc2: 0, other: 0 };
    groups[blk][fc] += ms;
  }
  const mlp = Object.values(groups).reduce((a, g) => a + g.fc1 + g.fc2 + g.other, 0);
  return { model: label(f), ops_min_sum_ms: total, mlp_ms: mlp, blocks: groups };
}

const rows = [];
for (const B of batches) rows.push(...(await timeBatch(B)));
const prof = argv.includes('--profile') ? await Promise.all(files.map((f) => mlpProfile(f))) : [];
if (json) {
  console.log(JSON.stringify({ threads, rounds, per, rows, profile: prof }));
} else {
  console.log(`${threads} thread(s), ${rounds} rotated rounds × ${per} runs, public run(), ms per batch`);
  console.log('| model | batch | min ms | median ms | / GELU min-over-min | / GELU median |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const g = rows.find((q) => q.batch === r.batch && q.model === label(gelu));
    console.log(`| ${r.model} | ${r.batch} | ${r.min.toFixed(3)} | ${r.median.toFixed(3)} | ${(r.min / g.min).toFixed(3)} | ${(r.median / g.median).toFixed(3)} |`);
  }
  for (const p of prof) {
    console.log(`\n${p.model}, batch 1, per-op min over ${profRuns} profiled runs: ops ${p.ops_min_sum_ms.toFixed(3)} ms, MLP GEMMs ${p.mlp_ms.toFixed(3)} ms`);
    for (const [b, g] of Object.entries(p.blocks)) console.log(`  ${b}: fc1 ${g.fc1.toFixed(4)} ms, fc2 ${g.fc2.toFixed(4)} ms${g.other ? `, other ${g.other.toFixed(4)} ms` : ''}`);
  }
}
