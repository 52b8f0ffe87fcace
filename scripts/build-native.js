#!/usr/bin/env node
// Builds the addon with cmake-js (the build of record) into build/Release/swinq.node.
// Serialised with a lock file so parallel `npm run build:native` calls never share a half-built tree.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const lock = path.join(root, 'build.lock');
const deadline = Date.now() + 20 * 60 * 1000;
for (;;) {
  try { mkdirSync(lock); break; } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    // a lock older than 20 minutes belongs to a build that died
    try { if (Date.now() - statSync(lock).mtimeMs > 20 * 60 * 1000) rmSync(lock, { recursive: true, force: true }); } catch {}
    if (Date.now() > deadline) { console.error(`build-native: lock ${lock} held too long`); process.exit(1); }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}
let status = 1;
try {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const extra = process.argv.slice(2);
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--parallel', '2', ...extra],
    { cwd: root, stdio: 'inherit' });
  status = r.status ?? 1;
} finally {
  rmSync(lock, { recursive: true, force: true });
}
process.exit(status);
