// Keeps docs/architecture.md's "how to add an op" honest: every op of the one op list
// (native/include/swinq/ops.def) has its one native definition (an OpDef in native/ops/), a
// reference case in the op tests and a row in the table of where each op lives, and every file
// that table, the checklist and the ops.def header name exists.
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
  it('every op has exactly one OpDef in native/ops/, and nothing defines an op not in the list', () => {
    const dir = path.join(root, 'native/ops');
    const defs = fs.readdirSync(dir).filter((f) => f.endsWith('.cc'))
      .flatMap((f) => [...fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/^extern const OpDef op_(\w+)\{/gm)].map((m) => m[1]));
    expect([...defs].sort()).toEqual([...defOps].sort());
  });
  it('the files named by the op table, the checklist and the ops.def header exist', () => {
    const doc = read('docs/architecture.md');
    const text = doc.slice(doc.indexOf('## The op table')) + read('native/include/swinq/ops.def').split('\nX(')[0];
    const named = new Set<string>();
    const file = /(?:[\w.-]+\/)*[\w.-]+\.(?:cc|h|ts|def)\b/g;
    const rooted = (f: string) => f.startsWith('native/') || f.startsWith('src/') || f.startsWith('test/');
    for (const line of text.split('\n')) {
      // in a table cell, bare file names after a path resolve against its directory
      for (const cell of line.startsWith('| ') ? line.split('|') : [line]) {
        let dir = '';
        for (const [f] of cell.matchAll(file)) {
          if (rooted(f)) {
            dir = path.dirname(f);
            named.add(f);
          } else if (line.startsWith('| ') && dir && !f.includes('/')) named.add(`${dir}/${f}`);
        }
      }
    }
    expect(named.size).toBeGreaterThan(20);
    expect([...named].filter((f) => !f.includes('<') && !fs.existsSync(path.join(root, f)))).toEqual([]);
  });
});
