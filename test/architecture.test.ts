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

// The TypeScript layers, lowest first: a module imports only from lower layers (or its own
// directory). The pipeline reads bottom-up: ONNX → IR → passes → compile/quant → the plan that runs
// (runtime, session) → the tools built on a session → the CLI, the server and the package index.
const LAYERS: string[][] = [
  ['util', 'tensor', 'normalize', 'native', 'ir', 'plan'],
  ['onnx', 'io', 'fewbit'],
  ['passes'],
  ['compile'],
  ['quant', 'train'],
  ['runtime'],
  ['session'],
  ['calibrate', 'engine', 'distill'],
  ['serve', 'index'],
  ['cli'],
];

describe('imports go down the pipeline', () => {
  const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as [string, number])));
  const unit = (rel: string) => rel.split('/')[0].replace(/\.(ts|js)$/, '');
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.push(p);
    }
  };
  walk('src');

  it('every directory and top-level module of src/ has a layer', () => {
    const units = new Set(files.map((f) => unit(f.slice('src/'.length))));
    expect([...units].filter((u) => !layerOf.has(u))).toEqual([]);
  });

  it('no import reaches up or sideways to another unit of its layer', () => {
    const bad: string[] = [];
    for (const f of files) {
      const from = unit(f.slice('src/'.length));
      for (const m of read(f).matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const to = unit(path.posix.relative('src', path.posix.normalize(path.posix.join(path.posix.dirname(f), m[1]))));
        if (to !== from && !(layerOf.get(to)! < layerOf.get(from)!)) bad.push(`${f} imports ${m[1]} (${from} → ${to})`);
      }
    }
    expect(bad).toEqual([]);
  });
});
