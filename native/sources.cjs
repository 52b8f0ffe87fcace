#!/usr/bin/env node
// The single source list for both build systems (CMakeLists.txt and binding.gyp).
// Sources are found by convention instead of being listed by hand, so adding a kernel file
// touches no build file:
//   native/{core,ops,kernels,train,bench}/**/*.cc -> core (baseline x86-64 flags, no Node headers)
//   ...same, named *_avx2.cc              -> avx2 (compiled with -mavx2 -mfma, dispatched at run time)
//   ...same, named *_avx512.cc            -> avx512 (AVX2 flags + AVX-512 F/BW/VL/VNNI, dispatched at run time)
//   native/binding/*.cc                   -> binding (the only code that includes napi.h)
//   native/tests/*_test.cc                -> tests (one ctest executable each)
// Usage: node native/sources.cjs <core|avx2|avx512|binding|tests> [--lines] [--abs]
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname);
function walk(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.cc')) out.push(p);
  }
  return out.sort();
}
function groups() {
  const lib = ['core', 'ops', 'kernels', 'train', 'bench'].flatMap((d) => walk(path.join(root, d)));
  return {
    core: lib.filter((f) => !f.endsWith('_avx2.cc') && !f.endsWith('_avx512.cc')),
    avx2: lib.filter((f) => f.endsWith('_avx2.cc')),
    avx512: lib.filter((f) => f.endsWith('_avx512.cc')),
    binding: walk(path.join(root, 'binding')),
    tests: walk(path.join(root, 'tests')).filter((f) => f.endsWith('_test.cc')),
  };
}
module.exports = groups;
if (require.main === module) {
  const group = process.argv[2];
  const g = groups();
  if (!(group in g)) {
    console.error(`sources.js: unknown group '${group}' (expected one of ${Object.keys(g).join(', ')})`);
    process.exit(2);
  }
  const sep = process.argv.includes('--lines') ? '\n' : ' ';
  const abs = process.argv.includes('--abs');
  const rel = (f) => (abs ? f : path.relative(path.dirname(root), f)).split(path.sep).join('/');
  process.stdout.write(g[group].map(rel).join(sep));
}
