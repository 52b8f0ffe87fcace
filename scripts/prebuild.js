#!/usr/bin/env node
// npm pack / publish (prepack): puts the built addon into prebuilds/<platform>-<arch>-<libc>/ so an
// install of the package on the same platform needs no compiler (scripts/install.js). Build first
// (`npm run build`); this only copies and checks that the copy loads.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const built = path.join(root, 'build', 'Release', 'swinq.node');
if (!fs.existsSync(built)) { console.error(`prebuild: ${built} not found; run \`npm run build\` first`); process.exit(1); }
const dir = require('./prebuild-dir.cjs')(root);
fs.mkdirSync(dir, { recursive: true });
const dst = path.join(dir, 'swinq.node');
fs.copyFileSync(built, dst);
const b = require(dst);
if (!b.opNames().length) { console.error(`prebuild: ${dst} loads but lists no ops`); process.exit(1); }
console.error(`prebuild: ${path.relative(root, dst)} (${fs.statSync(dst).size} bytes, ${b.opNames().length} ops)`);
