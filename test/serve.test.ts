// swinq serve over real HTTP on 127.0.0.1 (random ports): protocol, batching, overload, fuzzing,
// graceful shutdown of the real CLI. The model is a tiny MatMul+Add+Relu with a dynamic batch dim,
// built here with onnx-proto; the shared micro-Swin is served too when ../shared is present.
// SERVE_TEST_ENGINE=onnxruntime runs the same tests with onnxruntime-node behind the server, which
// separates server bugs from engine bugs.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/native.js';
import { loadModel, type ServedModel } from '../src/serve/models.js';
import { startServer, type RunningServer, type ServeOptions } from '../src/serve/server.js';
import { mulberry32 as rng } from '../src/util/random.js';
import { buildModel } from './helpers/onnx-builder.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sharedModel = path.resolve(repoRoot, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');
const ENGINE = process.env.SERVE_TEST_ENGINE === 'onnxruntime' ? 'onnxruntime' : 'swinq';
const K = 8;
const M = 5;

/** x[N,K] → Relu(x·W + B) → y[N,M], with a symbolic batch dim. */
function tinyModel(seed: number): Uint8Array {
  const r = rng(seed);
  const W = Float32Array.from({ length: K * M }, () => r() * 2 - 1);
  const B = Float32Array.from({ length: M }, () => r() - 0.5);
  return buildModel({
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['h'], name: 'mm' },
      { op: 'Add', inputs: ['h', 'B'], outputs: ['a'], name: 'add' },
      { op: 'Relu', inputs: ['a'], outputs: ['y'], name: 'relu' },
    ],
    initializers: [{ name: 'W', dims: [K, M], data: W }, { name: 'B', dims: [M], data: B }],
    inputs: [{ name: 'x', dims: ['N', K] }],
    outputs: [{ name: 'y', dims: ['N', M] }],
  });
}

/** x[N,K] FP32 and b[N,M] INT64 → y = Relu(x·W + B) + Cast(b), cls = ArgMax(y, 1) INT64 [N]. */
function twoInputModel(seed: number): Uint8Array {
  const r = rng(seed);
  const W = Float32Array.from({ length: K * M }, () => r() * 2 - 1);
  const B = Float32Array.from({ length: M }, () => r() - 0.5);
  return buildModel({
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['h'], name: 'mm' },
      { op: 'Add', inputs: ['h', 'B'], outputs: ['a'], name: 'add' },
      { op: 'Relu', inputs: ['a'], outputs: ['r'], name: 'relu' },
      { op: 'Cast', inputs: ['b'], outputs: ['bf'], name: 'cast', attrs: { to: 1 } },
      { op: 'Add', inputs: ['r', 'bf'], outputs: ['y'], name: 'add2' },
      { op: 'ArgMax', inputs: ['y'], outputs: ['cls'], name: 'argmax', attrs: { axis: 1, keepdims: 0 } },
    ],
    initializers: [{ name: 'W', dims: [K, M], data: W }, { name: 'B', dims: [M], data: B }],
    inputs: [{ name: 'x', dims: ['N', K] }, { name: 'b', dtype: 'int64', dims: ['N', M] }],
    outputs: [{ name: 'y', dims: ['N', M] }, { name: 'cls', dtype: 'int64', dims: ['N'] }],
  });
}

async function openModel(name: string, file: string): Promise<ServedModel> {
  return loadModel(name, file, { threads: 1, engine: ENGINE });
}

async function reference(m: ServedModel, data: Float32Array, dims: number[], input = 'x'): Promise<Float32Array> {
  const out = await m.session.run({ [input]: m.makeTensor('float32', data, dims) });
  return Float32Array.from(out[m.outputs[0].name].data as Float32Array);
}

interface Res { status: number; headers: Headers; body: Buffer; json(): any } // eslint-disable-line @typescript-eslint/no-explicit-any
async function http(url: string, init: RequestInit = {}): Promise<Res> {
  const r = await fetch(url, init);
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body, json: () => JSON.parse(body.toString('utf8')) };
}
function postJson(base: string, model: string, req: unknown, headers: Record<string, string> = {}) {
  return http(`${base}/v2/models/${model}/infer`, {
    method: 'POST', body: typeof req === 'string' ? req : JSON.stringify(req), headers: { 'content-type': 'application/json', ...headers },
  });
}
function inferReq(data: number[] | number[][], shape: number[], extra: Record<string, unknown> = {}) {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape, data }], ...extra };
}
function randRows(r: () => number, n: number, k = K): Float32Array {
  return Float32Array.from({ length: n * k }, () => Math.round((r() * 8 - 4) * 1024) / 1024);
}

/** Reads one sample of a Prometheus metric, e.g. metric(text, 'swinq_batch_size_count', {model: 'tiny'}). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

/** Wraps a model so that its first run waits until open() is called. */
function holdFirstRun(m: ServedModel): { model: ServedModel; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((res) => { open = res; });
  let calls = 0;
  const model: ServedModel = {
    ...m,
    session: {
      inputNames: m.session.inputNames, outputNames: m.session.outputNames,
      run: async (f) => { if (calls++ === 0) await gate; return m.session.run(f); },
    },
  };
  return { model, open };
}

async function waitQueued(url: string, model: string, n: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const t = (await http(`${url}/metrics`)).body.toString();
    if (metric(t, 'swinq_queue_depth', { model }) === n) return;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`never saw ${n} requests queued for '${model}'`);
}

let tmp: string;
let tinyPath: string;
let tiny2Path: string;
let tiny: ServedModel;
let tiny2: ServedModel;
let two: ServedModel;
const servers: RunningServer[] = [];

async function serve(models: ServedModel[], opts: ServeOptions = {}): Promise<RunningServer> {
  const s = await startServer(models, { port: 0, logLevel: 'silent', defaultMetrics: false, ...opts });
  servers.push(s);
  return s;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-serve-'));
  tinyPath = path.join(tmp, 'tiny.onnx');
  tiny2Path = path.join(tmp, 'other-model.onnx');
  fs.writeFileSync(tinyPath, tinyModel(1));
  fs.writeFileSync(tiny2Path, tinyModel(2));
  tiny = await openModel('tiny', tinyPath);
  tiny2 = await openModel('tiny2', tiny2Path);
  fs.writeFileSync(path.join(tmp, 'two.onnx'), twoInputModel(3));
  two = await openModel('two', path.join(tmp, 'two.onnx'));
});

afterAll(async () => {
  for (const s of servers) await s.close().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('endpoints', () => {
  let s: RunningServer;
  beforeAll(async () => { s = await serve([tiny, tiny2], { maxBatch: 4, maxDelayMs: 1 }); });

  it('answers health, server and model metadata, readiness; 404 for unknown models', async () => {
    expect((await http(`${s.url}/v2/health/live`)).json()).toEqual({ live: true });
    expect((await http(`${s.url}/v2/health/ready`)).json()).toEqual({ ready: true });
    expect((await http(`${s.url}/v2`)).json()).toMatchObject({ name: 'swinq', extensions: expect.arrayContaining(['binary_tensor_data']) });
    const meta = await http(`${s.url}/v2/models/tiny`);
    expect(meta.status).toBe(200);
    expect(meta.json()).toEqual({
      name: 'tiny', versions: ['1'], platform: 'swinq',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, K] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, M] }],
      plan: 'fp32', // which plan the model runs (beside the protocol's keys), on which kernel set
      ...(ENGINE === 'swinq' ? { isa: native.activeIsa() } : {}),
    });
    expect((await http(`${s.url}/v2/models/tiny2/ready`)).json()).toEqual({ name: 'tiny2', ready: true });
    expect((await http(`${s.url}/v2/models/tiny/versions/1/ready`)).status).toBe(200);
    for (const p of ['/v2/models/nope', '/v2/models/nope/ready', '/v2/models/tiny/versions/7']) {
      const r = await http(`${s.url}${p}`);
      expect(r.status, p).toBe(404);
      expect(r.json().error).toMatch(/unknown model/);
    }
    const r = await postJson(s.url, 'nope', inferReq([1, 2, 3, 4, 5, 6, 7, 8], [1, K]));
    expect(r.status).toBe(404);
    expect(r.json().error).toMatch(/unknown model 'nope'.*'tiny'/);
    expect((await http(`${s.url}/v3/whatever`)).status).toBe(404);
  });

  it('JSON infer (flat and nested) equals session.run on the same input', async () => {
    const r = rng(7);
    for (const n of [1, 3]) {
      const x = randRows(r, n);
      const want = await reference(tiny, x, [n, K]);
      const flat = await postJson(s.url, 'tiny', inferReq(Array.from(x), [n, K], { id: `req-${n}` }));
      expect(flat.status, flat.body.toString()).toBe(200);
      const j = flat.json();
      expect(j).toMatchObject({ model_name: 'tiny', id: `req-${n}` });
      expect(j.outputs).toHaveLength(1);
      expect(j.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: [n, M] });
      expect(Float32Array.from(j.outputs[0].data)).toEqual(want);
      const nested = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * K, (i + 1) * K)));
      const nj = (await postJson(s.url, 'tiny', inferReq(nested, [n, K]))).json();
      expect(Float32Array.from(nj.outputs[0].data)).toEqual(want);
    }
    // the second model is a different one, served under its own name
    const x = randRows(r, 2);
    const j2 = (await postJson(s.url, 'tiny2', inferReq(Array.from(x), [2, K]))).json();
    expect(Float32Array.from(j2.outputs[0].data)).toEqual(await reference(tiny2, x, [2, K]));
    expect(Float32Array.from(j2.outputs[0].data)).not.toEqual(await reference(tiny, x, [2, K]));
  });

  it('binary-tensor extension: binary input, binary output, mixed', async () => {
    const x = randRows(rng(8), 2);
    const want = await reference(tiny, x, [2, K]);
    const head = Buffer.from(JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, K], parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }],
    }));
    const res = await http(`${s.url}/v2/models/tiny/infer`, {
      method: 'POST', body: Buffer.concat([head, Buffer.from(x.buffer)]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
    });
    expect(res.status, res.body.toString()).toBe(200);
    const hl = Number(res.headers.get('inference-header-content-length'));
    const rh = JSON.parse(res.body.subarray(0, hl).toString());
    expect(rh.outputs[0]).toEqual({ name: 'y', datatype: 'FP32', shape: [2, M], parameters: { binary_data_size: 2 * M * 4 } });
    expect(res.body.length).toBe(hl + 2 * M * 4);
    const y = new Float32Array(res.body.buffer.slice(res.body.byteOffset + hl, res.body.byteOffset + res.body.length));
    expect(y).toEqual(want);
    // JSON input, binary output requested for all outputs with binary_data_output
    const r2 = await postJson(s.url, 'tiny', inferReq(Array.from(x), [2, K], { parameters: { binary_data_output: true } }));
    expect(Number(r2.headers.get('inference-header-content-length'))).toBeGreaterThan(0);
    // binary input, JSON output
    const head3 = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, K], parameters: { binary_data_size: x.byteLength } }] }));
    const r3 = await http(`${s.url}/v2/models/tiny/infer`, {
      method: 'POST', body: Buffer.concat([head3, Buffer.from(x.buffer)]), headers: { 'inference-header-content-length': String(head3.length) },
    });
    expect(Float32Array.from(r3.json().outputs[0].data)).toEqual(want);
  });

  it('refuses bad requests with a 400 that names the problem', async () => {
    const ok = Array.from({ length: K }, (_, i) => i);
    const cases: [unknown, RegExp, Record<string, string>?][] = [
      ['{"inputs": [', /malformed JSON/],
      [[], /must be a JSON object/],
      [{ inputs: [] }, /'inputs' must be a non-empty array/],
      [{ inputs: [{ name: 'z', datatype: 'FP32', shape: [1, K], data: ok }] }, /unknown input 'z'.*'x'/],
      [{ inputs: [{ name: 'x', datatype: 'INT64', shape: [1, K], data: ok }] }, /input 'x': datatype INT64, the model expects FP32/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K + 1], data: ok }] }, /input 'x': shape\[1\] is 9, the model expects 8/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [K], data: ok }] }, /input 'x': shape has rank 1, the model expects rank 2/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, K], data: ok }] }, /input 'x': data has 8 elements, shape implies 16/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], data: [...ok.slice(1), 'a'] }] }, /input 'x': data element 7 is string/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [0, K], data: [] }] }, /shape\[0\] must be an integer ≥ 1/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], data: ok }, { name: 'x', datatype: 'FP32', shape: [1, K], data: ok }] }, /given twice/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], data: ok }], outputs: [{ name: 'q' }] }, /unknown output 'q'/],
      [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], parameters: { binary_data_size: 32 } }] }, /binary_data_size needs the Inference-Header-Content-Length/],
    ];
    for (const [req, re, headers] of cases) {
      const r = await postJson(s.url, 'tiny', req, headers);
      expect(r.status, JSON.stringify(req)).toBe(400);
      expect(r.json().error, JSON.stringify(req)).toMatch(re);
    }
    // binary byte counts
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], parameters: { binary_data_size: 4 * K } }] }));
    const bin = Buffer.alloc(4 * K);
    const post = (body: Buffer, hl: string) => http(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'inference-header-content-length': hl } });
    let r = await post(Buffer.concat([head, bin.subarray(4)]), String(head.length));
    expect(r.status).toBe(400);
    expect(r.json().error).toMatch(/input 'x': binary data ends at byte \d+ but the body has \d+ bytes/);
    r = await post(Buffer.concat([head, bin, Buffer.alloc(3)]), String(head.length));
    expect(r.json().error).toMatch(/3 bytes after the JSON header/);
    r = await post(Buffer.concat([head, bin]), String(head.length + 1000));
    expect(r.json().error).toMatch(/Inference-Header-Content-Length is \d+ but the body has only/);
    r = await post(Buffer.concat([head, bin]), 'abc');
    expect(r.json().error).toMatch(/Inference-Header-Content-Length must be a non-negative integer/);
    const head2 = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], parameters: { binary_data_size: 4 * K - 4 } }] }));
    r = await post(Buffer.concat([head2, bin]), String(head2.length));
    expect(r.status).toBe(400);
    expect(r.json().error).toMatch(/input 'x': binary_data_size is 28 bytes, shape \[1,8\] × FP32 needs 32/);
  });

  it('closes connections beyond --max-connections at once', async () => {
    const small = await serve([tiny], { maxConnections: 2, warmup: false });
    const port = small.port;
    const open = (): Promise<net.Socket> => new Promise((res, rej) => { const c = net.connect(port, '127.0.0.1', () => res(c)); c.on('error', rej); });
    const held = [await open(), await open()];
    await new Promise((r) => setTimeout(r, 50));
    const third = await open();
    const closed = await new Promise<boolean>((res) => {
      third.on('close', () => res(true));
      setTimeout(() => res(false), 5000);
    });
    expect(closed).toBe(true);
    for (const c of held) c.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect((await http(`${small.url}/v2/health/live`, { headers: { connection: 'close' } })).status).toBe(200);
  });

  it('answers 413 past --max-body-mb', async () => {
    const small = await serve([tiny], { maxBodyMb: 0.001 });
    const big = Array.from({ length: 400 * K }, () => 0.123456);
    const r = await postJson(small.url, 'tiny', inferReq(big, [400, K]));
    expect(r.status).toBe(413);
    expect(r.json().error).toMatch(/exceeds the limit of 0.001 MB \(--max-body-mb\)/);
    expect((await postJson(small.url, 'tiny', inferReq(Array(K).fill(1), [1, K]))).status).toBe(200);
  });
});

describe('dynamic batching', () => {
  it('merges concurrent requests into one native run and splits the results back', async () => {
    // The first run is held until the other nine requests are queued, so the merge is deterministic
    // (the tiny model is otherwise done before the next request arrives).
    const held = holdFirstRun(tiny);
    const s = await serve([held.model], { maxBatch: 16, maxDelayMs: 5, warmup: false });
    const r = rng(11);
    const rows = [1, 1, 3, 1, 2, 1, 1, 1, 2, 1]; // 14 rows in 10 requests
    const xs = rows.map((n) => randRows(r, n));
    const pending = Promise.all(xs.map((x, i) => postJson(s.url, 'tiny', inferReq(Array.from(x), [rows[i], K]))));
    await waitQueued(s.url, 'tiny', 9);
    held.open();
    const res = await pending;
    for (let i = 0; i < rows.length; i++) {
      expect(res[i].status, res[i].body.toString()).toBe(200);
      const got = Float32Array.from(res[i].json().outputs[0].data);
      const want = await reference(tiny, xs[i], [rows[i], K]);
      expect(got.length).toBe(want.length);
      for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[k])));
    }
    const text = (await http(`${s.url}/metrics`)).body.toString();
    const runs = metric(text, 'swinq_batch_size_count', { model: 'tiny' });
    expect(metric(text, 'swinq_batch_size_sum', { model: 'tiny' })).toBe(14);
    // the first request alone, then the nine queued ones: one run of a bucket's worth (12 or 8 rows),
    // the rest in the run after it
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(runs).toBeLessThanOrEqual(3);
    expect(metric(text, 'swinq_batch_size_bucket', { le: '4', model: 'tiny' })).toBeLessThan(runs); // a run of ≥ 8 rows
    expect(metric(text, 'swinq_infer_requests_total', { model: 'tiny', status: '200' })).toBe(rows.length);
    expect(metric(text, 'swinq_infer_request_duration_seconds_count', { model: 'tiny' })).toBe(rows.length);
    expect(metric(text, 'swinq_queue_depth', { model: 'tiny' })).toBe(0);
  });

  it('warms up and pads runs to the bucket sizes, splitting the padding off', async () => {
    const seen: number[] = [];
    const recording: ServedModel = {
      ...tiny,
      session: {
        inputNames: tiny.session.inputNames, outputNames: tiny.session.outputNames,
        run: (f) => { seen.push(f.x.dims[0]); return tiny.session.run(f); },
      },
    };
    const s = await serve([recording], { maxBatch: 12, maxDelayMs: 1 });
    expect(seen).toEqual([1, 2, 3, 4, 6, 8, 12]); // warm-up, before listening
    seen.length = 0;
    for (const n of [3, 5, 12, 13]) {
      const x = randRows(rng(60 + n), n);
      const res = await postJson(s.url, 'tiny', inferReq(Array.from(x), [n, K]));
      const j = res.json();
      expect(j.outputs[0].shape).toEqual([n, M]);
      const want = await reference(tiny, x, [n, K]);
      const got = Float32Array.from(j.outputs[0].data);
      for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[k])));
    }
    expect(seen).toEqual([3, 6, 12, 12, 1]); // 5 rows padded to 6; 13 > max-batch runs as 12 + 1 (bucket sizes, no new plan)
    const text = (await http(`${s.url}/metrics`)).body.toString();
    expect(metric(text, 'swinq_batch_size_sum', { model: 'tiny' })).toBe(3 + 5 + 12 + 13); // real rows, not padding
  });

  it('merges models with two inputs (FP32, INT64) and two outputs (FP32, INT64)', async () => {
    const held = holdFirstRun(two);
    const s = await serve([held.model], { maxBatch: 8, maxDelayMs: 5, warmup: false });
    const meta = (await http(`${s.url}/v2/models/two`)).json();
    expect(meta.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, K] }, { name: 'b', datatype: 'INT64', shape: [-1, M] }]);
    expect(meta.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, M] }, { name: 'cls', datatype: 'INT64', shape: [-1] }]);
    const r = rng(17);
    const rows = [1, 2, 1, 3];
    const xs = rows.map((n) => randRows(r, n));
    const bs = rows.map((n) => Array.from({ length: n * M }, () => Math.floor(r() * 7) - 3));
    const req = (i: number, extra: Record<string, unknown> = {}) => ({
      inputs: [
        { name: 'b', datatype: 'INT64', shape: [rows[i], M], data: [...bs[i]] },
        { name: 'x', datatype: 'FP32', shape: [rows[i], K], data: Array.from(xs[i]) },
      ],
      ...extra,
    });
    const pending = Promise.all(rows.map((_, i) => postJson(s.url, 'two', req(i))));
    await waitQueued(s.url, 'two', 3);
    held.open();
    const res = await pending;
    for (let i = 0; i < rows.length; i++) {
      expect(res[i].status, res[i].body.toString()).toBe(200);
      const out = res[i].json().outputs;
      const want = await two.session.run({
        x: two.makeTensor('float32', xs[i], [rows[i], K]),
        b: two.makeTensor('int64', BigInt64Array.from(bs[i], (v) => BigInt(v)), [rows[i], M]),
      });
      expect(out.map((o: { name: string }) => o.name)).toEqual(['y', 'cls']);
      expect(out[0].shape).toEqual([rows[i], M]);
      const wy = want.y.data as Float32Array;
      out[0].data.forEach((v: number, k: number) => expect(Math.abs(v - wy[k])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(wy[k]))));
      expect(out[1]).toMatchObject({ datatype: 'INT64', shape: [rows[i]] });
      expect(out[1].data).toEqual(Array.from(want.cls.data as BigInt64Array, Number));
    }
    const text = (await http(`${s.url}/metrics`)).body.toString();
    expect(metric(text, 'swinq_batch_size_count', { model: 'two' })).toBeLessThanOrEqual(3); // 4 requests, merged
    expect(metric(text, 'swinq_batch_size_sum', { model: 'two' })).toBe(7);
    // only the INT64 output, as binary
    const one = await postJson(s.url, 'two', req(3, { outputs: [{ name: 'cls', parameters: { binary_data: true } }] }));
    const hl = Number(one.headers.get('inference-header-content-length'));
    expect(JSON.parse(one.body.subarray(0, hl).toString()).outputs).toEqual([{ name: 'cls', datatype: 'INT64', shape: [3], parameters: { binary_data_size: 24 } }]);
    const cls = new BigInt64Array(one.body.buffer.slice(one.body.byteOffset + hl, one.body.byteOffset + one.body.length));
    expect(Array.from(cls, Number)).toEqual(res[3].json().outputs[1].data);
    // INT64 values must be integers that JSON numbers hold exactly
    for (const [v, re] of [[1.5, /expected an integer \(INT64\)/], [2 ** 60, /out of INT64 range/], ['7', /string '7', expected an integer/]] as const) {
      const bad = req(0);
      (bad.inputs[0].data as unknown[])[2] = v;
      const e = await postJson(s.url, 'two', bad);
      expect(e.status).toBe(400);
      expect(e.json().error).toMatch(new RegExp(`input 'b': data element 2 is .*${re.source}`));
    }
    // the two inputs must agree on the batch dim
    const mismatch = req(1);
    mismatch.inputs[0] = { name: 'b', datatype: 'INT64', shape: [1, M], data: [...bs[0]] };
    const e = await postJson(s.url, 'two', mismatch);
    expect(e.status).toBe(400);
    expect(e.json().error).toMatch(/input 'x': shape\[0\] is 2 but dimension 'N' is 1 in input 'b'/);
  });

  it('splits a request of more than --max-batch rows into chunks and refuses more than --max-rows with 413', async () => {
    const seen: number[] = [];
    const recording: ServedModel = {
      ...tiny,
      session: {
        inputNames: tiny.session.inputNames, outputNames: tiny.session.outputNames,
        run: (f) => { seen.push(f.x.dims[0]); return tiny.session.run(f); },
      },
    };
    const s = await serve([recording], { maxBatch: 4, maxRows: 40, maxDelayMs: 1, warmup: false });
    for (const n of [9, 40]) {
      seen.length = 0;
      const x = randRows(rng(70 + n), n);
      const res = await postJson(s.url, 'tiny', inferReq(Array.from(x), [n, K]));
      expect(res.status, res.body.toString()).toBe(200);
      expect(res.json().outputs[0].shape).toEqual([n, M]);
      const want = await reference(tiny, x, [n, K]);
      const got = Float32Array.from(res.json().outputs[0].data);
      for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[k])));
      expect(Math.max(...seen)).toBeLessThanOrEqual(4); // no run bigger than --max-batch
      expect(seen.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(n);
    }
    seen.length = 0;
    const big = await postJson(s.url, 'tiny', inferReq(Array.from(randRows(rng(5), 41)), [41, K]));
    expect(big.status).toBe(413);
    expect(big.json().error).toBe('request has 41 rows; the limit is 40 (--max-rows); send fewer rows per request');
    expect(seen).toEqual([]);
  });

  it('keeps the bucket plans within --max-plan-mb: larger buckets dropped, requests chunked to the largest kept', async () => {
    const all = await serve([tiny], { maxBatch: 8, maxDelayMs: 1 });
    const raw = (tiny.session as { raw?: { planStats(d: Record<string, number[]>): { arenaBytes: number; constantBytes: number } } }).raw;
    if (ENGINE === 'swinq') {
      // buckets 1, 2, 3, 4, 6, 8: their plans' bytes, as the sessions report them
      const want = [1, 2, 3, 4, 6, 8].reduce((a, n) => { const st = raw!.planStats({ x: [n, K] }); return a + st.arenaBytes + st.constantBytes; }, 0);
      expect(metric((await http(`${all.url}/metrics`)).body.toString(), 'swinq_plan_bytes', { model: 'tiny' })).toBe(want);
    }
    const s = await serve([tiny], { maxBatch: 8, maxPlanMb: 1e-9, maxDelayMs: 1 });
    const x = randRows(rng(81), 5);
    const res = await postJson(s.url, 'tiny', inferReq(Array.from(x), [5, K]));
    expect(res.status, res.body.toString()).toBe(200);
    const want = await reference(tiny, x, [5, K]);
    const got = Float32Array.from(res.json().outputs[0].data);
    for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[k])));
    const text = (await http(`${s.url}/metrics`)).body.toString();
    if (ENGINE === 'swinq') {
      // only the batch-1 plan fits: five runs of one row
      expect(metric(text, 'swinq_batch_size_count', { model: 'tiny' })).toBe(5);
      expect(metric(text, 'swinq_batch_size_sum', { model: 'tiny' })).toBe(5);
      const st = raw!.planStats({ x: [1, K] });
      expect(metric(text, 'swinq_plan_bytes', { model: 'tiny' })).toBe(st.arenaBytes + st.constantBytes);
    }
  });

  it('runs one request per native run with --max-batch 1', async () => {
    const s = await serve([tiny], { maxBatch: 1, maxDelayMs: 50 });
    const xs = Array.from({ length: 6 }, (_, i) => randRows(rng(20 + i), 1));
    const res = await Promise.all(xs.map((x) => postJson(s.url, 'tiny', inferReq(Array.from(x), [1, K]))));
    for (let i = 0; i < xs.length; i++) expect(Float32Array.from(res[i].json().outputs[0].data)).toEqual(await reference(tiny, xs[i], [1, K]));
    const text = (await http(`${s.url}/metrics`)).body.toString();
    expect(metric(text, 'swinq_batch_size_count', { model: 'tiny' })).toBe(6);
    expect(metric(text, 'swinq_batch_size_bucket', { le: '1', model: 'tiny' })).toBe(6);
  });

  it('answers 503 with Retry-After when the queue is full, and serves the queued ones', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => { open = r; });
    const gated: ServedModel = {
      ...tiny,
      session: { inputNames: tiny.session.inputNames, outputNames: tiny.session.outputNames, run: async (f) => { await gate; return tiny.session.run(f); } },
    };
    const s = await serve([gated], { maxBatch: 1, maxQueue: 2, warmup: false }); // warm-up would wait at the gate
    const x = randRows(rng(5), 1);
    let rejected = 0;
    const all = Array.from({ length: 8 }, () => postJson(s.url, 'tiny', inferReq(Array.from(x), [1, K])).then((r) => {
      if (r.status === 503) rejected++;
      return r;
    }));
    // one request runs (held at the gate), two wait in the queue, five are refused
    for (let i = 0; i < 200 && rejected < 5; i++) await new Promise((r) => setTimeout(r, 10));
    expect(rejected).toBe(5);
    open();
    const res = await Promise.all(all);
    const codes = res.map((r) => r.status).sort();
    expect(codes).toEqual([200, 200, 200, 503, 503, 503, 503, 503]);
    for (const r of res.filter((q) => q.status === 503)) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.json().error).toMatch(/overloaded/);
    }
    const want = await reference(tiny, x, [1, K]);
    for (const r of res.filter((q) => q.status === 200)) expect(Float32Array.from(r.json().outputs[0].data)).toEqual(want);
    const text = (await http(`${s.url}/metrics`)).body.toString();
    expect(metric(text, 'swinq_infer_requests_total', { model: 'tiny', status: '503' })).toBe(5);
  });
});

describe('fuzzing', () => {
  it('answers ≥ 1,000 malformed requests without a 5xx and keeps serving correct answers', async () => {
    const s = await serve([tiny, tiny2], { maxBatch: 8, maxDelayMs: 1, maxBodyMb: 0.05 });
    const r = rng(1234);
    const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
    const junk = (): unknown => pick<() => unknown>([
      () => null, () => true, () => -1, () => 0, () => 1.5, () => 2 ** 53, () => -(2 ** 31), () => 'x', () => '',
      () => [], () => [[]], () => ({}), () => ({ a: 1 }), () => [1, 'a'], () => Array(K).fill(null), () => 1e308,
    ])();
    const valid = () => ({
      id: 'f',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, K], data: Array.from(randRows(r, 1)) }],
      outputs: [{ name: 'y' }],
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const mutate = (q: any): void => {
      // earlier mutations may have broken the structure: later ones then edit a detached object
      const inp = Array.isArray(q.inputs) && q.inputs[0] && typeof q.inputs[0] === 'object' ? q.inputs[0] : {};
      if (!Array.isArray(inp.data)) inp.data = [];
      switch (Math.floor(r() * 16)) {
        case 0: inp.name = pick(['X', '', 'y', 'x ', junk()]); break;
        case 1: inp.datatype = pick(['FP64', 'FP16', 'INT64', 'fp32', 'BYTES', 'BOOL', junk()]); break;
        case 2: inp.shape = pick([[K], [1, K, 1], [], [1, -K], [1, 0], [1.5, K], [2 ** 40, K], [-1, K], ['1', K], junk()]); break;
        case 3: inp.data = inp.data.slice(0, Math.floor(r() * K)); break;
        case 4: inp.data.push(...inp.data.slice(0, 1 + Math.floor(r() * K))); break;
        case 5: inp.data[Math.floor(r() * K)] = junk(); break;
        case 6: inp.data = pick([[inp.data], [[inp.data]], [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]], junk()]); break;
        case 7: q.inputs = pick([[], [inp, inp], [inp, { ...inp, name: 'z' }], junk()]); break;
        case 8: q.outputs = pick([[{ name: 'z' }], [{ name: 'y' }, { name: 'y' }], [{}], [{ name: 'y', parameters: { binary_data: 'yes' } }], junk()]); break;
        case 9: q.parameters = junk(); break;
        case 10: q.id = junk(); break;
        case 11: inp.parameters = pick([{ binary_data_size: 32 }, { binary_data_size: -1 }, junk()]); break;
        case 12: delete inp[pick(['name', 'datatype', 'shape', 'data'])]; break;
        case 13: inp.shape = [2, K]; break;
        case 14: q.inputs = [junk()]; break;
        default: delete q.inputs; break;
      }
    };
    const counts = new Map<number, number>();
    const make = (i: number): Promise<Res> => {
      const kind = i % 10;
      if (kind <= 3) { // structural mutations of a valid request (one to three)
        const q = valid();
        for (let m = 1 + Math.floor(r() * 3); m > 0; m--) mutate(q);
        return postJson(s.url, 'tiny', q);
      }
      if (kind === 4) { // truncated or byte-flipped JSON
        const txt = Buffer.from(JSON.stringify(valid()));
        const cut = txt.subarray(0, Math.floor(r() * txt.length));
        if (r() < 0.5) for (let f = 0; f < 3; f++) cut[Math.floor(r() * cut.length)] = Math.floor(r() * 256);
        return http(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: cut, headers: { 'content-type': pick(['application/json', 'text/plain', 'application/octet-stream']) } });
      }
      if (kind === 5) { // random bytes, sometimes huge
        const n = pick([0, 1, 7, 100, 5000, 60_000]);
        const b = Buffer.alloc(n);
        for (let k = 0; k < n; k++) b[k] = Math.floor(r() * 256);
        return http(`${s.url}/v2/models/${pick(['tiny', 'tiny2', 'nope'])}/infer`, { method: 'POST', body: b, headers: r() < 0.5 ? { 'inference-header-content-length': String(Math.floor(r() * n)) } : {} });
      }
      if (kind <= 7) { // binary extension with wrong sizes, headers, trailing bytes
        const rows = pick([1, 2]);
        const size = pick([rows * K * 4, rows * K * 4 - 4, rows * K * 4 + 4, 0, 3]);
        const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: pick(['FP32', 'FP32', 'INT8']), shape: [rows, K], parameters: { binary_data_size: size } }] }));
        const bin = Buffer.alloc(Math.max(0, size + pick([0, 0, -4, 4, 1])));
        const hl = pick([String(head.length), String(head.length + pick([-1, 1, 10_000])), '-1', 'x', '1e3', '']);
        return http(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: Buffer.concat([head, bin]), headers: { 'inference-header-content-length': hl } });
      }
      if (kind === 8) { // odd URLs and methods
        const p = pick(['/v2/models/', '/v2/models/tiny/infer/x', '/v2/models/%00/infer', '/v2/models/tiny/versions/2/infer', '/v2/models/' + 'a'.repeat(300) + '/infer']);
        return http(`${s.url}${p}`, { method: pick(['GET', 'POST', 'PUT', 'DELETE']), body: undefined });
      }
      return postJson(s.url, 'tiny', JSON.stringify(valid()).replace(/\d/g, () => (r() < 0.05 ? pick(['e', '-', '.', '"', ']']) : String(Math.floor(r() * 10)))));
    };
    const N = 1200;
    for (let i = 0; i < N; i += 16) {
      const batch = await Promise.all(Array.from({ length: Math.min(16, N - i) }, (_, j) => make(i + j)));
      for (const res of batch) {
        counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
        if (res.status >= 500) throw new Error(`5xx on fuzz request: ${res.status} ${res.body.toString().slice(0, 300)}`);
        if (res.status >= 400) expect(typeof res.json().error).toBe('string');
      }
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(N);
    for (const code of counts.keys()) expect([200, 400, 404, 413, 414]).toContain(code);
    expect(counts.get(400) ?? 0).toBeGreaterThan(N / 2);
    // still serving correct answers
    const x = randRows(rng(99), 2);
    const ok = await postJson(s.url, 'tiny', inferReq(Array.from(x), [2, K]));
    expect(Float32Array.from(ok.json().outputs[0].data)).toEqual(await reference(tiny, x, [2, K]));
    expect((await http(`${s.url}/v2/health/ready`)).status).toBe(200);
  });
});

describe('swinq serve CLI', () => {
  // Runs src/cli/main.ts in a child node through a tiny TypeScript-transpiling loader (no build step needed).
  function loaderDir(): string {
    const d = fs.mkdtempSync(path.join(tmp, 'loader-'));
    fs.writeFileSync(path.join(d, 'hooks.mjs'), `
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
const ts = createRequire(${JSON.stringify(path.join(repoRoot, 'package.json'))})('typescript');
export async function resolve(spec, ctx, next) {
  try { return await next(spec, ctx); } catch (e) {
    if (spec.startsWith('.') && spec.endsWith('.js')) return next(spec.slice(0, -3) + '.ts', ctx);
    throw e;
  }
}
export async function load(url, ctx, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, ctx);
  const file = fileURLToPath(url);
  const out = ts.transpileModule(await readFile(file, 'utf8'), { fileName: file,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
`);
    fs.writeFileSync(path.join(d, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
    return path.join(d, 'register.mjs');
  }

  function spawnCli(args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
    const child = spawn(process.execPath, ['--import', loaderDir(), path.join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', ...args], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWINQ_DEBUG: '1' },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b) => { out += b; });
    child.stderr!.on('data', (b) => { err += b; });
    const exit = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    return { child, stdout: () => out, stderr: () => err, exit };
  }

  async function waitFor<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 60_000, diag = () => ''): Promise<T> {
    const t0 = Date.now();
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}\n${diag()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('serves positional and --model models, and on SIGTERM drains in-flight requests and exits 0', async () => {
    const cli = spawnCli([tinyPath, '--model', `second=${tiny2Path}`, '--port', '0', '--json', '--threads', '1',
      '--max-batch', '64', '--max-delay-ms', '1500', '--log-level', 'warn', '--engine', ENGINE]);
    const exited = cli.exit.then((c) => { throw new Error(`swinq serve exited early (${c}): ${cli.stderr()}`); });
    const hello = await Promise.race([exited, waitFor('the listening line', () => {
      const line = cli.stdout().split('\n').find((l) => l.startsWith('{'));
      return line ? JSON.parse(line) as { url: string; models: string[] } : undefined;
    }, 60_000, cli.stderr)]);
    exited.catch(() => {});
    expect(hello.models).toEqual(['tiny', 'second']);
    const meta = await http(`${hello.url}/v2/models/second`);
    expect(meta.json().name).toBe('second');
    // After a 64-row run, the batcher waits (up to max-delay 1.5 s) for as many rows again, so the
    // next four one-row requests sit in its queue when SIGTERM arrives.
    const big = await postJson(hello.url, 'tiny', inferReq(Array.from(randRows(rng(39), 64)), [64, K]));
    expect(big.status).toBe(200);
    const xs = Array.from({ length: 4 }, (_, i) => randRows(rng(40 + i), 1));
    const inflight = xs.map((x) => postJson(hello.url, 'tiny', inferReq(Array.from(x), [1, K])));
    await waitFor('4 queued requests', async () => {
      const t = (await http(`${hello.url}/metrics`)).body.toString();
      return metric(t, 'swinq_queue_depth', { model: 'tiny' }) === 4 ? true : undefined;
    }, 30_000);
    cli.child.kill('SIGTERM');
    const res = await Promise.all(inflight);
    for (let i = 0; i < xs.length; i++) {
      expect(res[i].status, res[i].body.toString()).toBe(200);
      expect(Float32Array.from(res[i].json().outputs[0].data)).toEqual(await reference(tiny, xs[i], [1, K]));
    }
    expect(await cli.exit).toBe(0);
    expect(cli.stderr()).toMatch(/SIGTERM: draining/);
    await expect(fetch(`${hello.url}/v2/health/live`)).rejects.toThrow();
  });

  it('refuses bad arguments with a one-line error', async () => {
    const cli2 = spawnCli([path.join(tmp, 'missing.onnx'), '--port', '0']);
    expect(await cli2.exit).not.toBe(0);
    expect(cli2.stderr()).toMatch(/model 'missing'.*missing\.onnx/);
  });
});

describe('shared micro-Swin', () => {
  // The server only sees the InferenceSession API; which plan the session builds for a QDQ file
  // (integer-only where lower-int can, else its fp32 simulation, as for this Swin) is the session's affair.
  /** The shared micro-Swin calibrated once (minmax, 8 images) for the tests that serve its QDQ file. */
  let qdqSwin: Promise<string> | undefined;
  const quantizedSwin = () => (qdqSwin ??= (async () => {
    const data = path.resolve(repoRoot, '..', 'shared', 'data', 'fashion-mnist');
    if (!fs.existsSync(sharedModel) || !fs.existsSync(data)) throw new Error(`missing ${sharedModel} or ${data}: the shared models and data live in ../shared relative to the repo root`);
    const { calibrate } = await import('../src/calibrate/calibrate.js');
    const qPath = path.join(tmp, 'swin-q.onnx');
    await calibrate(sharedModel, { data, samples: 8, method: 'minmax', out: qPath, batch: 8, threads: 1 });
    return qPath;
  })());

  it('serves the QDQ micro-Swin: same answers as its session.run, merged or not', async () => {
    const q = await openModel('swinq', await quantizedSwin());
    const input = q.inputs[0].name;
    const held = holdFirstRun(q);
    const s = await serve([held.model], { maxBatch: 4, maxDelayMs: 5, warmup: false });
    const r = rng(4);
    const xs = Array.from({ length: 4 }, () => Float32Array.from({ length: 784 }, () => r() * 3 - 0.8));
    const body = (x: Float32Array) => ({ inputs: [{ name: input, datatype: 'FP32', shape: [1, 1, 28, 28], data: Array.from(x) }] });
    const pending = Promise.all(xs.map((x) => postJson(s.url, 'swinq', body(x))));
    await waitQueued(s.url, 'swinq', 3);
    held.open();
    const res = await pending;
    for (let i = 0; i < xs.length; i++) {
      expect(res[i].status, res[i].body.toString()).toBe(200);
      const want = await reference(q, xs[i], [1, 1, 28, 28], input);
      const got = Float32Array.from(res[i].json().outputs[0].data);
      // swinq: a row's result does not depend on the batch it ran in
      if (ENGINE === 'swinq') expect(got).toEqual(want);
      // (onnxruntime's QDQ kernels may land one quantization step apart at another batch size)
      else for (let k = 0; k < 10; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(0.02 * Math.max(...want.map(Math.abs)));
    }
    const text = (await http(`${s.url}/metrics`)).body.toString();
    expect(metric(text, 'swinq_batch_size_count', { model: 'swinq' })).toBe(2); // 1, then 3 merged
  });

  /**
   * Sends one request per row count at once and polls /v2/health/live and /ready until all are answered;
   * returns the answers and the worst health latency the server is answerable for.
   * The server runs in this process, on this (main) thread. What it is answerable for is the work this
   * thread did while a check was pending: its on-CPU time from Linux's schedstat. Wall time minus
   * run-queue wait was used before, but on an overloaded host (load 6+ on 2 cores) it still reached
   * 76 ms: loopback packets are then handled in ksoftirqd, a wait that is not this thread's. A plan
   * compiled inline is ≥ 200 ms of this thread's CPU. Where schedstat is missing, wall time is checked.
   */
  async function healthDuringBurst(s: RunningServer, m: ServedModel, rows: number[], xs: Float32Array[], minChecks = 11) {
    const input = m.inputs[0].name;
    const req = (x: Float32Array, n: number) => {
      const head = Buffer.from(JSON.stringify({ inputs: [{ name: input, datatype: 'FP32', shape: [n, 1, 28, 28], parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: m.outputs[0].name, parameters: { binary_data: true } }] }));
      return http(`${s.url}/v2/models/${m.name}/infer`, { method: 'POST', body: Buffer.concat([head, Buffer.from(x.buffer, x.byteOffset, x.byteLength)]), headers: { 'inference-header-content-length': String(head.length) } });
    };
    const schedstat = `/proc/self/task/${process.pid}/schedstat`;
    const haveSchedstat = fs.existsSync(schedstat);
    const cpuMs = () => Number(fs.readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e6;
    let burstDone = false;
    const burst = Promise.all(rows.map((n, i) => req(xs[i], n))).finally(() => { burstDone = true; });
    const lat: { wall: number; cpu: number }[] = [];
    while (!burstDone) {
      for (const p of ['/v2/health/live', '/v2/health/ready']) {
        const c0 = haveSchedstat ? cpuMs() : 0;
        const t0 = performance.now();
        const h = await http(`${s.url}${p}`);
        const wall = performance.now() - t0;
        lat.push({ wall, cpu: haveSchedstat ? cpuMs() - c0 : wall });
        expect(h.status).toBe(200);
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    const res = await burst;
    expect(lat.length).toBeGreaterThanOrEqual(minChecks);
    const own = lat.map((l) => l.cpu).sort((a, b) => a - b);
    const walls = lat.map((l) => l.wall).sort((a, b) => a - b);
    for (let i = 0; i < rows.length; i++) {
      expect(res[i].status, res[i].body.toString()).toBe(200);
      const hl = Number(res[i].headers.get('inference-header-content-length'));
      expect(JSON.parse(res[i].body.subarray(0, hl).toString()).outputs[0].shape).toEqual([rows[i], 10]);
    }
    const body = (i: number) => new Float32Array(res[i].body.buffer.slice(res[i].body.byteOffset + Number(res[i].headers.get('inference-header-content-length')), res[i].body.byteOffset + res[i].body.length));
    return { body, worst: own[own.length - 1], text: `health checks: this thread's CPU ms while one was pending (sorted): ${own.map((v) => v.toFixed(1)).join(' ')}; wall: ${walls.map((v) => v.toFixed(1)).join(' ')}` };
  }

  it('answers /v2/health/* within 50 ms during a burst of odd-sized requests (9…127 rows, --max-batch 8)', async () => {
    if (!fs.existsSync(sharedModel)) throw new Error(`missing ${sharedModel}: the shared models live in ../shared relative to the repo root`);
    const swin = await openModel('swin', sharedModel);
    const s = await serve([swin], { maxBatch: 8, maxDelayMs: 2 }); // warms up buckets 1, 2, 3, 4, 6, 8 before listening
    const r = rng(9);
    const rows = [9, 127, 13, 31, 50, 77, 101, 11, 64, 95];
    const xs = rows.map((n) => Float32Array.from({ length: n * 784 }, () => r() * 2 - 0.8));
    const { body, worst, text } = await healthDuringBurst(s, swin, rows, xs);
    // the worst of the checks, not a percentile: one slow answer is what a load balancer acts on
    // (before requests were split into --max-batch chunks, each new row count compiled a plan on the event
    // loop: 67 ms of its own time and 268 ms wall on this host, where chunked runs measure ≤ 29 ms own)
    expect(worst, text).toBeLessThan(50);
    // the first 8 rows of the 127-row request equal a direct run of them
    const got = body(1);
    const want = await reference(swin, xs[1].subarray(0, 8 * 784), [8, 1, 28, 28], swin.inputs[0].name);
    for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want[k])));
  });

  it('answers /v2/health/* within 50 ms while new shapes compile (--no-warmup --no-pad-batches: every new row count is a new plan)', async () => {
    // the integer-only plan is lowered afresh per shape (fp32 plans of new batch sizes are extrapolated
    // from the batch-2/3 plans in milliseconds), so the QDQ model is the one whose new shapes are slow
    const swin = await openModel('swinq', await quantizedSwin());
    // no warm-up and no padding: the rows of each run (a request, or requests merged up to 8 rows) are a
    // new shape, so each run compiles a plan first (only batch 1 was compiled, at load)
    const s = await serve([swin], { maxBatch: 8, maxDelayMs: 0, warmup: false, padBatches: false });
    const r = rng(10);
    const rows = [5, 7, 3, 6];
    const xs = rows.map((n) => Float32Array.from({ length: n * 784 }, () => r() * 2 - 0.8));
    // (the compiles take seconds; on a loaded host few checks fit in, so two rounds are the minimum)
    const { body, worst, text } = await healthDuringBurst(s, swin, rows, xs, 4);
    // compiled inline, each of these shapes held the event loop for 0.4–2.4 s on this host (Zen 3, loaded)
    if (ENGINE === 'swinq') expect(worst, text).toBeLessThan(50);
    for (let i = 0; i < rows.length; i++) {
      const want = await reference(swin, xs[i], [rows[i], 1, 28, 28], swin.inputs[0].name);
      expect(body(i)).toEqual(want);
    }
  });

  it('serves swin-micro-fmnist with results equal to session.run (batched and not)', async () => {
    if (!fs.existsSync(sharedModel)) throw new Error(`missing ${sharedModel}: the shared models live in ../shared relative to the repo root`);
    const swin = await openModel('swin', sharedModel);
    const input = swin.inputs[0].name;
    expect(swin.inputs[0].dims?.slice(1)).toEqual([1, 28, 28]);
    const s = await serve([swin], { maxBatch: 4, maxDelayMs: 100 });
    const r = rng(3);
    const xs = Array.from({ length: 3 }, () => Float32Array.from({ length: 784 }, () => r() * 2 - 0.8));
    const req = (x: Float32Array) => {
      const head = Buffer.from(JSON.stringify({ inputs: [{ name: input, datatype: 'FP32', shape: [1, 1, 28, 28], parameters: { binary_data_size: x.byteLength } }] }));
      return http(`${s.url}/v2/models/swin/infer`, { method: 'POST', body: Buffer.concat([head, Buffer.from(x.buffer)]), headers: { 'inference-header-content-length': String(head.length) } });
    };
    const res = await Promise.all(xs.map(req));
    for (let i = 0; i < xs.length; i++) {
      expect(res[i].status, res[i].body.toString()).toBe(200);
      const got = res[i].json().outputs[0];
      expect(got.shape).toEqual([1, 10]);
      const want = await reference(swin, xs[i], [1, 1, 28, 28], input);
      const scale = Math.max(...want.map(Math.abs));
      for (let k = 0; k < 10; k++) expect(Math.abs(got.data[k] - want[k])).toBeLessThanOrEqual(1e-4 * scale);
    }
  });
});
