#!/usr/bin/env node
// Throughput of one vs two 1-thread `swinq serve` replicas behind nginx (deploy/nginx/swinq.conf),
// the same bounded closed-loop load each time (requests of R images, concurrency C; R = 1 as JSON,
// R > 1 as binary tensor data so the client's encoding does not dominate). Needs nginx
// (`apt-get install nginx`) and a built dist/. Prints the CPU and images/s for 1 and 2 replicas.
//   node bench/scale-out.js [--model demo/teacher-gelu.onnx] [--requests 600] [--concurrency 8] [--runs 3] [--rows 1]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, stopNginx, writeNginxConf } from '../scripts/nginx-conf.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const model = path.resolve(arg('model', path.join(root, 'demo', 'teacher-gelu.onnx')));
const N = Number(arg('requests', 600)), C = Number(arg('concurrency', 8)), runs = Number(arg('runs', 3)), R = Number(arg('rows', 1));
const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
if (!nginx) { console.error('bench/scale-out.js: nginx not found (apt-get install nginx)'); process.exit(1); }
const cli = path.join(root, 'dist', 'cli', 'main.js');
const name = path.basename(model, '.onnx');
const procs = [];

const waitHttp = async (url) => { for (let i = 0; i < 300; i++) { try { if ((await fetch(url)).ok) return; } catch { /* not up */ } await new Promise((r) => setTimeout(r, 100)); } throw new Error(`${url} did not answer`); };

async function cluster(replicas) {
  const ports = [];
  for (let i = 0; i < replicas; i++) {
    const p = await freePort();
    ports.push(p);
    procs.push(spawn(process.execPath, [cli, 'serve', model, '--port', String(p), '--threads', '1', '--log-level', 'error'], { stdio: 'ignore' }));
  }
  for (const p of ports) await waitHttp(`http://127.0.0.1:${p}/v2/health/ready`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-scale-bench-'));
  const fp = await freePort();
  const conf = writeNginxConf(path.join(root, 'deploy', 'nginx', 'swinq.conf'), { replicas: ports, listen: fp, prefix: tmp });
  const ng = spawn(nginx, ['-p', tmp, '-c', conf], { stdio: 'ignore' });
  procs.push(ng);
  const url = `http://127.0.0.1:${fp}`;
  await waitHttp(`${url}/v2/health/ready`);
  return {
    url,
    stop: async () => {
      await stopNginx(ng);
      for (const p of procs.splice(0)) p.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

const x = Float32Array.from({ length: R * 784 }, (_, i) => Math.sin(i * 0.1));
let body, headers = { 'content-type': 'application/json' };
if (R === 1) {
  body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(x) }] });
} else {
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [R, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
  body = Buffer.concat([head, Buffer.from(x.buffer)]);
  headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) };
}
async function load(url) {
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    while (sent < N) {
      sent++;
      const r = await fetch(`${url}/v2/models/${name}/infer`, { method: 'POST', body, headers });
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      await r.arrayBuffer();
    }
  }));
  return (N * R) / ((performance.now() - t0) / 1000);
}

const cpu = `${(os.cpus()[0]?.model ?? '').trim()}, ${os.cpus().length} cores`;
const rates = { 1: [], 2: [] };
try {
  for (let r = 0; r < runs; r++) {
    for (const n of [1, 2]) {
      const c = await cluster(n);
      try { await load(c.url); rates[n].push(await load(c.url)); } finally { await c.stop(); }
    }
  }
} finally { for (const p of procs) p.kill('SIGKILL'); }
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
console.log(`${cpu}; ${name}, ${N} requests of ${R} image${R > 1 ? 's' : ''} at concurrency ${C}, ${runs} runs (after one warm-up load each)`);
console.log('| replicas (1 thread each) | images/s median | images/s max |');
console.log('| ---: | ---: | ---: |');
for (const n of [1, 2]) console.log(`| ${n} | ${med(rates[n]).toFixed(0)} | ${Math.max(...rates[n]).toFixed(0)} |`);
console.log(`two / one: ${(med(rates[2]) / med(rates[1])).toFixed(2)}× (median), ${(Math.max(...rates[2]) / Math.max(...rates[1])).toFixed(2)}× (best)`);
