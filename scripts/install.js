#!/usr/bin/env node
// npm install hook: use the prebuilt addon for this platform when the package has one and it loads
// (no compiler needed), else build from source with cmake-js (scripts/build-native.js).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const pre = path.join(require('./prebuild-dir.cjs')(root), 'swinq.node');
if (fs.existsSync(pre) && !process.env.SWINQ_BUILD_FROM_SOURCE) {
  // load it in a child: a binary that cannot load here must not take the installer down
  const r = spawnSync(process.execPath, ['-e', 'process.exit(require(process.argv[1]).opNames().length ? 0 : 1)', pre], { stdio: 'ignore' });
  if (r.status === 0) { console.error(`swinq: using the prebuilt addon ${path.relative(root, pre)}`); process.exit(0); }
  console.error(`swinq: the prebuilt addon ${path.relative(root, pre)} does not load here; building from source`);
}
const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.js')], { cwd: root, stdio: 'inherit' });
process.exit(b.status ?? 1);
