// Accuracy of the four calibration methods on Fashion-MNIST (test split) for the shared micro-Swin:
// fp32 (onnxruntime), the QDQ file in onnxruntime, and the QDQ file in swinq (integer-only plan).
// Calibration: --samples (default 512) images of the train split.
// Usage: node bench/quant-accuracy.js [--samples 512] [--limit 10000] [--threads 2] [--methods minmax,entropy]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '..', 'shared');
const model = path.join(shared, 'models', 'swin-micro-fmnist.onnx');
const data = path.join(shared, 'data', 'fashion-mnist');
if (!fs.existsSync(model) || !fs.existsSync(data)) {
  console.error(`bench/quant-accuracy.js: needs ${model} and ${data} (../shared next to the repo)`);
  process.exit(1);
}
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const samples = Number(arg('samples', 512));
const limit = Number(arg('limit', 10000));
const threads = Number(arg('threads', 2));
const methods = arg('methods', 'minmax,percentile,entropy,mse').split(',');

const { calibrate } = await import(path.join(root, 'dist/calibrate/calibrate.js'));
const { loadLabelledImages, normalizedImages } = await import(path.join(root, 'dist/io/idx.js'));
const api = await import(path.join(root, 'dist/index.js'));
const ortm = await import('onnxruntime-node');
const ort = ortm.default ?? ortm;
const ref = JSON.parse(fs.readFileSync(`${model}.json`, 'utf8'));
const ds = loadLabelledImages(data, 'test');
const B = 250;

async function accuracy(run) {
  let ok = 0;
  for (let i = 0; i < limit; i += B) {
    const b = Math.min(B, limit - i);
    const o = await run(normalizedImages(ds, i, b, ref.mean, ref.std), b);
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (o[r * 10 + k] > o[r * 10 + best]) best = k;
      if (best === ds.labels[i + r]) ok++;
    }
  }
  return ok / limit;
}
async function ortAcc(file) {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: threads });
  const acc = await accuracy(async (x, b) => (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [b, 1, 28, 28]) }))[s.outputNames[0]].data);
  await s.release?.();
  return acc;
}
async function swinqAcc(file) {
  try {
    const s = await api.InferenceSession.create(file, { threads });
    const acc = await accuracy(async (x, b) => (await s.run({ [s.inputNames[0]]: new api.Tensor('float32', x, [b, 1, 28, 28]) }))[s.outputNames[0]].data);
    s.release();
    return acc;
  } catch (e) {
    return `error: ${e.message.split('\n')[0].slice(0, 80)}`;
  }
}

const fp32 = await ortAcc(model);
console.log(`micro-Swin Fashion-MNIST, ${limit} test images, calibration ${samples} train images; fp32 (onnxruntime) ${fp32.toFixed(4)} (PyTorch reference ${ref.test_accuracy})\n`);
console.log('| method | calibrate s | onnxruntime QDQ | swinq | QDQ − fp32 (pp) |');
console.log('| --- | --- | --- | --- | --- |');
for (const method of methods) {
  const out = path.join(os.tmpdir(), `swinq-quant-${method}.onnx`);
  const r = await calibrate(model, { data, samples, method, out, threads });
  const qa = await ortAcc(out);
  const sa = await swinqAcc(out);
  const f = (v) => (typeof v === 'number' ? v.toFixed(4) : v);
  console.log(`| ${method} | ${r.seconds.toFixed(1)} | ${f(qa)} | ${f(sa)} | ${((qa - fp32) * 100).toFixed(2)} |`);
}
