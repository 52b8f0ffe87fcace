#!/usr/bin/env node
// Load benchmark of `swinq serve` (Open Inference Protocol v2 over loopback) with autocannon:
// throughput and p50/p99 latency at several concurrencies, dynamic batching on (--max-batch 32
// --max-delay-ms 2) and off (--max-batch 1). The server is the real CLI in its own process
// (dist/: `npm run build:ts` first); autocannon runs in this one. Prints a markdown table.
//
//   node bench/serve-load.js [--model PATH] [--duration S] [--concurrency 1,8,64] [--runs R]
//                            [--engine swinq|onnxruntime] [--threads N] [--body binary|json] [--json]
//
// Default model: ../shared/models/swin-micro-fmnist.onnx (input [N,1,28,28]). Every cell is the run
// with the median throughput of R runs (the machine is shared and noisy); latencies are measured per
// response (autocannon's 'response' event, sub-millisecond), percentiles over that run.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

function parseArgs(argv) {
  const o = {
    model: path.resolve(root, '..', 'shared', 'models', 'swin-micro-fmnist.onnx'),
    duration: 6, concurrency: [1, 8, 64], runs: 1, engine: 'swinq', threads: undefined, body: 'binary', json: false,
    warmup: 3,
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const posInt = (s, flag) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got '${s}'`);
      return n;
    };
    if (a === '--model') o.model = path.resolve(v());
    else if (a === '--duration') o.duration = Math.min(120, posInt(v(), a));
    else if (a === '--warmup') o.warmup = Math.min(60, posInt(v(), a));
    else if (a === '--runs') o.runs = Math.min(9, posInt(v(), a));
    else if (a === '--concurrency') o.concurrency = v().split(',').map((s) => posInt(s, a));
    else if (a === '--engine') o.engine = v();
    else if (a === '--threads') o.threads = posInt(v(), a);
    else if (a === '--body') o.body = v();
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown argument '${a}'`);
  }
  if (!['swinq', 'onnxruntime'].includes(o.engine)) throw new Error(`--engine must be swinq or onnxruntime, got '${o.engine}'`);
  if (!['binary', 'json'].includes(o.body)) throw new Error(`--body must be binary or json, got '${o.body}'`);
  return o;
}

/** Starts `swinq serve` on a free loopback port; resolves with its URL and a stop() that SIGTERMs it. */
async function startServer(o, extra) {
  const args = [cli, 'serve', o.model, '--port', '0', '--host', '127.0.0.1', '--json', '--log-level', 'warn',
    '--engine', o.engine, '--max-queue', '4096', ...extra];
  if (o.threads) args.push('--threads', String(o.threads));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => { out += b; });
  child.stderr.on('data', (b) => { err += b; });
  const exited = new Promise((res) => child.on('exit', (code) => res(code)));
  const hello = await new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) { clearInterval(t); resolve(JSON.parse(line)); }
    }, 20);
    exited.then((code) => { clearInterval(t); reject(new Error(`swinq serve exited (${code}): ${err.trim().split('\n').pop()}`)); });
  });
  return {
    url: hello.url,
    model: hello.models[0],
    pid: child.pid,
    async stop() { child.kill('SIGTERM'); return exited; },
  };
}

async function requestBody(o, url, model) {
  const meta = await (await fetch(`${url}/v2/models/${model}`)).json();
  const inp = meta.inputs[0];
  if (inp.datatype !== 'FP32') throw new Error(`input '${inp.name}' is ${inp.datatype}; this benchmark sends FP32`);
  const dims = inp.shape.map((d, i) => (i === 0 ? 1 : d));
  if (dims.some((d) => d < 1)) throw new Error(`input '${inp.name}' has dynamic non-batch dims [${inp.shape}]`);
  const n = dims.reduce((a, b) => a * b, 1);
  let s = 7;
  const x = Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) >>> 0; return (s / 2 ** 32) * 2 - 0.8; });
  if (o.body === 'json') {
    return { body: JSON.stringify({ inputs: [{ name: inp.name, datatype: 'FP32', shape: dims, data: Array.from(x) }] }), headers: { 'content-type': 'application/json' } };
  }
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: inp.name, datatype: 'FP32', shape: dims, parameters: { binary_data_size: x.byteLength } }] }));
  return {
    body: Buffer.concat([head, Buffer.from(x.buffer)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
  };
}

/** CPU seconds (user + system, all threads) the process has used; Linux /proc only, else NaN. */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function load(url, model, req, connections, duration) {
  const lat = [];
  const inst = autocannon({
    url: `${url}/v2/models/${model}/infer`, method: 'POST', body: req.body, headers: req.headers,
    connections, duration, pipelining: 1, timeout: 30,
  });
  inst.on('response', (_client, status, _bytes, ms) => { if (status === 200) lat.push(ms); });
  const r = await inst;
  lat.sort((a, b) => a - b);
  return {
    rps: lat.length / duration,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    ok: lat.length,
    bad: r.non2xx + r.errors + r.timeouts,
  };
}

async function metricsSummary(url, model) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`model="${model}"`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
  };
  return { rows: get('swinq_batch_size_sum'), runs: get('swinq_batch_size_count') };
}

async function main() {
  const o = parseArgs(process.argv);
  if (!fs.existsSync(cli)) throw new Error(`${cli} is not built; run \`npm run build:ts\` first`);
  if (!fs.existsSync(o.model)) throw new Error(`model not found: ${o.model} (the shared models live in ../shared)`);
  const modes = [
    { name: 'batching on (max-batch 32, max-delay 2 ms)', key: 'on', args: ['--max-batch', '32', '--max-delay-ms', '2'] },
    { name: 'batching off (max-batch 1)', key: 'off', args: ['--max-batch', '1'] },
  ];
  const rows = [];
  for (const mode of modes) {
    const srv = await startServer(o, mode.args);
    try {
      const req = await requestBody(o, srv.url, srv.model);
      // Warm up: compiles the plans for the batch sizes this mode will see.
      for (const c of [...o.concurrency].reverse()) await load(srv.url, srv.model, req, c, o.warmup);
      for (const c of o.concurrency) {
        const m0 = await metricsSummary(srv.url, srv.model);
        const runs = [];
        for (let k = 0; k < o.runs; k++) {
          const cpu0 = cpuSeconds(srv.pid);
          const r = await load(srv.url, srv.model, req, c, o.duration);
          r.cpuMsPerReq = ((cpuSeconds(srv.pid) - cpu0) * 1000) / Math.max(1, r.ok);
          runs.push(r);
        }
        const m1 = await metricsSummary(srv.url, srv.model);
        runs.sort((a, b) => a.rps - b.rps);
        const r = runs[Math.floor(runs.length / 2)];
        const meanBatch = (m1.rows - m0.rows) / Math.max(1, m1.runs - m0.runs);
        rows.push({ mode: mode.key, concurrency: c, ...r, meanBatch, rpsMin: runs[0].rps, rpsMax: runs[runs.length - 1].rps });
        process.stderr.write(`${mode.key} c=${c}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms mean batch ${meanBatch.toFixed(1)} server cpu ${r.cpuMsPerReq.toFixed(2)} ms/req\n`);
      }
    } finally {
      const code = await srv.stop();
      if (code !== 0) process.stderr.write(`warning: swinq serve exited with ${code}\n`);
    }
  }
  const find = (mode, c) => rows.find((r) => r.mode === mode && r.concurrency === c);
  const cMax = Math.max(...o.concurrency);
  const speedup = find('on', cMax) && find('off', cMax) ? find('on', cMax).rps / find('off', cMax).rps : NaN;
  const c8 = find('on', 8);
  const tail = c8 ? c8.p99 / c8.p50 : NaN;
  const [l1, l5] = fs.existsSync('/proc/loadavg') ? fs.readFileSync('/proc/loadavg', 'utf8').split(' ') : ['?', '?'];
  console.log(`\nswinq serve load test — ${path.basename(o.model)}, engine ${o.engine}, ${o.body} request bodies, ${o.duration} s per cell (median of ${o.runs}), loopback, load average ${l1}/${l5} (1/5 min)\n`);
  console.log('| batching | concurrency | req/s | p50 ms | p99 ms | mean rows/run | server CPU ms/req | errors |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.mode} | ${r.concurrency} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.meanBatch.toFixed(1)} | ${r.cpuMsPerReq.toFixed(2)} | ${r.bad} |`);
  }
  console.log(`\nthroughput at concurrency ${cMax}, batching on / off: ${speedup.toFixed(2)}× (target ≥ 3×)`);
  if (c8) console.log(`p99 / p50 at concurrency 8, batching on: ${tail.toFixed(2)} (target ≤ 3)`);
  if (o.json) console.log(JSON.stringify({ rows, speedup, p99_over_p50_c8: tail }));
}

main().catch((e) => {
  console.error(`bench/serve-load.js: ${e.message}`);
  process.exit(1);
});
