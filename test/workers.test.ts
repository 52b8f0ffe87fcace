// The addon in worker_threads: sessions created, run and released in several workers at once, three
// workers terminated with runs in flight and one leaving its session to the environment's teardown;
// the process then exits normally. Run in a child process so a crash at exit is seen as one.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelPath = path.join(repoRoot, '..', 'shared', 'models', 'swin-micro-fmnist.onnx');

describe('worker_threads', () => {
  it('runs sessions in several workers at once, equal to the main thread, and exits cleanly', () => {
    if (!fs.existsSync(modelPath)) throw new Error(`workers.test: missing ${modelPath} — needs the shared data at ../shared`);
    // dist/ is built from src/ once by test/global-setup.ts.
    const dist = pathToFileURL(path.join(repoRoot, 'dist', 'index.js')).href;
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'workers-child.mjs'), dist, modelPath], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, `child died by ${r.signal}; stderr: ${r.stderr.slice(-2000)}`).toBeNull();
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      main: number[][]; results: { id: number; code?: number; got?: number[][]; error?: string }[]; killed: { code?: number; error?: string }[];
    };
    expect(out.main).toHaveLength(3);
    expect(out.main[0]).toHaveLength(10);
    for (const w of out.results) {
      expect(w.error).toBeUndefined();
      expect(w.code).toBe(0);
      expect(w.got).toHaveLength(9); // 3 rounds × (2 concurrent async runs + 1 sync run)
      // worker 0 runs the main thread's input; every worker's runs agree with each other
      for (const l of w.got!) expect(l).toEqual(w.got![0]);
      if (w.id === 0) expect(w.got![0]).toEqual(out.main[0]);
    }
    expect(out.results.map((w) => w.got![0][0])).not.toEqual(out.results.map(() => out.main[0][0])); // inputs differ per worker
    // terminated with two runs in flight: before the fix, settling them in the dying environment aborted the process
    expect(out.killed).toEqual([{ code: 1 }, { code: 1 }, { code: 1 }]);
  });

  it('native training ops in flight in a terminated worker do not abort the process', () => {
    // trainForwardAsync called while a worker terminates: node-addon-api threw from a function
    // wrapper into the dying environment (std::terminate) until NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
    const nativeJs = pathToFileURL(path.join(repoRoot, 'dist', 'native.js')).href;
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'train-worker-child.mjs'), nativeJs], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, `child died by ${r.signal}; stderr: ${r.stderr.slice(-2000)}`).toBeNull();
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ terminated: 3 });
  });
});
