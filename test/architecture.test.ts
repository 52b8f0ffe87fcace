// Keeps docs/architecture.md's "how to add an op" honest: every op of the one op list
// (native/include/swinq/ops.def) has a reference case in the op tests and a row in the table of
// where each op lives.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OP_NAMES } from '../src/plan/ops.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (p: string) => fs.readFileSync(path.join(root, p), 'utf8');
const defOps = [...read('native/include/swinq/ops.def').matchAll(/^X\((\w+),/gm)].map((m) => m[1]);

describe('the op list', () => {
  it('ops.def and src/plan/ops.ts list the same ops', () => {
    expect(defOps).toEqual([...OP_NAMES]);
  });
  it('every op has a reference case in test/plan.test.ts or test/plan_int.test.ts', () => {
    const used = new Set([...(read('test/plan.test.ts') + read('test/plan_int.test.ts')).matchAll(/OpKind\.(\w+)/g)].map((m) => m[1]));
    expect(defOps.filter((op) => !used.has(op))).toEqual([]);
  });
  it('every op has a row in docs/architecture.md', () => {
    const doc = read('docs/architecture.md');
    const table = doc.slice(doc.indexOf('## The op table'), doc.indexOf('## How to add an op'));
    const rows = new Set(table.split('\n').filter((l) => l.startsWith('| ')).flatMap((l) => l.split('|')[1].split(',').map((s) => s.trim())));
    expect(defOps.filter((op) => !rows.has(op))).toEqual([]);
  });
});
