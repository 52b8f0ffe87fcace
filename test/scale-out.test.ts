// Scale-out as users run it: two `swinq serve` replicas behind Debian's nginx with the shipped
// configuration (deploy/nginx/swinq.conf, ports rewritten to free loopback ports). A bounded load
// runs while one replica is killed: every request must get the right answer (nginx retries the
// other replica on connection failure; the client retries once on its own connection errors).
// Throughput of one vs two replicas is a benchmark, not a test: bench/scale-out.js.
// Needs nginx (`apt-get install nginx`; .ci/run installs it); without it this file fails saying so.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../src/index.js';
// @ts-expect-error — a plain .mjs helper shared with bench/scale-out.js
import { freePort, stopNginx, writeNginxConf } from '../scripts/nginx-conf.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const MODEL = path.join(root, 'demo', 'teacher-gelu.onnx');
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-scale-'));
const procs: ChildProcess[] = [];

/** Starts a process and waits for a line matching `ready` on stdout/stderr. */
function start(cmd: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${path.basename(cmd)} did not start in 60 s: ${out.slice(-500)}`)), 60_000);
    const on = (d: Buffer) => { out += d; if (ready.test(out)) { clearTimeout(timer); resolve(p); } };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${path.basename(cmd)} exited with ${code}: ${out.slice(-500)}`)); });
  });
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(url)).ok) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

let front = '';
let replicas: ChildProcess[] = [];
let nginx: ChildProcess | undefined;
beforeAll(async () => {
  if (!NGINX) throw new Error('nginx not found (/usr/sbin/nginx): `apt-get install nginx` (CI installs it in .ci/run)');
  const ports: number[] = [await freePort(), await freePort()];
  replicas = await Promise.all(ports.map((p) => start(process.execPath, [cli, 'serve', MODEL, '--port', String(p), '--threads', '1', '--log-level', 'error', '--json'], /"url"/)));
  const fp: number = await freePort();
  // the shipped configuration, with this test's ports and a private prefix
  const confFile = writeNginxConf(path.join(root, 'deploy', 'nginx', 'swinq.conf'), { replicas: ports, listen: fp, prefix: tmp });
  nginx = spawn(NGINX, ['-p', tmp, '-c', confFile], { stdio: 'ignore' });
  front = `http://127.0.0.1:${fp}`;
  await waitHttp(`${front}/v2/health/ready`);
}, 120_000);

afterAll(async () => {
  // nginx first, by SIGTERM: a SIGKILLed master leaves its workers behind on the port
  if (nginx) await stopNginx(nginx);
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('two replicas behind nginx', () => {
  it('every request of a bounded load gets the right answer while one replica is killed mid-run', async () => {
    const s = await InferenceSession.create(MODEL, { threads: 1 });
    const x = Float32Array.from({ length: 784 }, (_, i) => Math.sin(i * 0.1));
    const want = Array.from((await s.run({ input: new Tensor('float32', x, [1, 1, 28, 28]) })).logits.data as Float32Array);
    s.release();
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(x) }] });
    const post = () => fetch(`${front}/v2/models/teacher-gelu/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const N = 240, C = 8;
    let sent = 0, ok = 0, retried = 0;
    const bad: string[] = [];
    const worker = async () => {
      while (sent < N) {
        const i = sent++;
        if (i === N / 3) replicas[0].kill('SIGKILL'); // a replica dies with requests in flight
        let r: Response;
        try { r = await post(); } catch { retried++; r = await post(); } // the client's own retry on a reset
        const text = await r.text();
        let j: { outputs?: { data: number[] }[] } = {};
        try { j = JSON.parse(text); } catch { /* an nginx error page: reported below */ }
        if (r.status !== 200 || !j.outputs) { bad.push(`#${i}: ${r.status} ${text.slice(0, 120)}`); continue; }
        const y = j.outputs[0].data;
        if (y.length === want.length && y.every((v, k) => Math.abs(v - want[k]) <= 1e-5 * (1 + Math.abs(want[k])))) ok++;
        else bad.push(`#${i}: wrong logits`);
      }
    };
    await Promise.all(Array.from({ length: C }, worker));
    const log = fs.existsSync(path.join(tmp, 'error.log')) ? fs.readFileSync(path.join(tmp, 'error.log'), 'utf8').split('\n').filter((l) => /\[(error|crit|emerg)\]/.test(l)).slice(0, 2).join(' | ') : '';
    expect(bad, `${bad.slice(0, 3).join('; ')} — nginx: ${log}`).toEqual([]);
    expect(ok).toBe(N);
    expect(replicas[0].exitCode !== null || replicas[0].signalCode !== null).toBe(true);
    expect(retried).toBeLessThanOrEqual(C); // nginx retries upstream; clients see at most a reset each
  }, 120_000);
});
