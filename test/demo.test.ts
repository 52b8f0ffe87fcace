// `swinq demo` runs on the bundled assets only (demo/, no ../shared): the built CLI with --json,
// then a missing-assets error.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

// The demo takes ~10 s on a quiet 2-core machine; the limit leaves room for a loaded CI host (it timed
// out at 60 s at load average 17). Its speed is the README's affair, not this test's.
function swinq(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 180_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: Record<string, unknown> | undefined;
  try { json = JSON.parse(last); } catch { json = undefined; }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

describe('swinq demo', () => {
  it('bundles small assets', () => {
    let total = 0;
    for (const f of ['teacher-gelu.onnx', 'student-relu.onnx', 'fmnist-slice/t10k-images-idx3-ubyte.gz', 'fmnist-slice/t10k-labels-idx1-ubyte.gz',
      'fmnist-slice/train-images-idx3-ubyte.gz', 'fmnist-slice/train-labels-idx1-ubyte.gz']) {
      const p = path.join(root, 'demo', f);
      expect(fs.existsSync(p), `${p} missing`).toBe(true);
      total += fs.statSync(p).size;
    }
    // the teacher is the shared micro-Swin (85.5 % on the slice), the student its distilled ReLU copy
    expect(total).toBeLessThan(4e6);
  });

  it('prints the fp32/int8 GELU/int8 ReLU table as JSON, int8 rows integer-only', { timeout: 200_000 }, () => {
    const r = swinq(['demo', '--json', '--threads', '2', '--runs', '3', '--limit', '200', '--samples', '64']);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json as { rows: Array<Record<string, unknown>>; seconds: number; images: number };
    expect(j).toBeDefined();
    expect(j.images).toBe(200);
    expect(j.seconds).toBeGreaterThan(0);
    expect(j.rows.map((x) => x.model)).toEqual(['fp32 GELU', 'int8 GELU', 'int8 ReLU']);
    for (const row of j.rows) {
      for (const k of ['model', 'accuracy', 'swinq_ms', 'onnxruntime_ms']) expect(row).toHaveProperty(k);
      expect(row.accuracy as number).toBeGreaterThanOrEqual(0);
      expect(row.accuracy as number).toBeLessThanOrEqual(1);
      // a trained model: far above chance (0.1) on 10 classes
      expect(row.accuracy as number).toBeGreaterThan(0.3);
      expect(row.swinq_ms as number).toBeGreaterThan(0);
      expect(row.onnxruntime_ms as number).toBeGreaterThan(0);
    }
    // a well-trained teacher and student (≥ 0.84 on the slice's 500 images; 200 here)
    for (const row of j.rows) expect(row.accuracy as number, String(row.model)).toBeGreaterThan(0.8);
    const fp32 = j.rows[0].op_counts as Record<string, number>;
    expect(fp32.linear ?? 0).toBeGreaterThan(0);
    expect(j.rows[0].integer_only).toBe(false);
    for (const row of j.rows.slice(1)) {
      const oc = row.op_counts as Record<string, number>;
      expect(oc.linear_q ?? 0, `${row.model}: ${JSON.stringify(oc)}`).toBeGreaterThan(0);
      expect(oc.linear, `${row.model}: ${JSON.stringify(oc)}`).toBeUndefined();
      expect(row.integer_only).toBe(true);
    }
  });

  it('names the missing asset', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-demo-empty-'));
    const r = swinq(['demo', '--dir', empty]);
    fs.rmSync(empty, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/teacher-gelu\.onnx is missing/);
  });
});
