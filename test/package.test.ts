// The package as users install it: `npm pack` (its prepack step puts the built addon into
// prebuilds/<platform>-<arch>-<libc>/), then `npm install` of the tarball in an empty directory with
// no compiler on PATH (only node and sh), then `swinq demo` from there: the prebuilt addon loads,
// and calibration runs on swinq's own engine (onnxruntime-node, a devDependency, is not installed).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swinq-pack-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** npm's own CLI script, run with this node (so PATH need not hold npm). */
function npmCli(): string {
  const r = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  const p = path.join(r.stdout.trim(), 'npm', 'bin', 'npm-cli.js');
  if (!fs.existsSync(p)) throw new Error(`npm's CLI not found at ${p}`);
  return p;
}

describe('npm pack → install with no compiler → swinq demo', () => {
  it('installs from the tarball using the prebuilt addon and runs the demo', () => {
    const npm = npmCli();
    // prepack's step by hand, then pack without scripts: `prepare` would rebuild dist/ (tsc) while
    // other test files run it
    const pre = spawnSync(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], { cwd: root, encoding: 'utf8' });
    expect(pre.status, pre.stderr).toBe(0);
    const pack = spawnSync(process.execPath, [npm, 'pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', timeout: 300_000 });
    expect(pack.status, pack.stderr.slice(-2000)).toBe(0);
    const tgz = path.join(tmp, pack.stdout.trim().split('\n').pop()!);
    expect(fs.existsSync(tgz)).toBe(true);
    // a PATH with node and sh only: no cc, c++, make or cmake
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    const env = { ...process.env, PATH: bin, npm_config_prefer_offline: 'true' };
    for (const tool of ['cc', 'c++', 'g++', 'make', 'cmake']) {
      expect(spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status, `${tool} must not be on the test PATH`).not.toBe(0);
    }
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const inst = spawnSync(process.execPath, [npm, 'install', tgz, '--omit=dev', '--no-audit', '--no-fund'], { cwd: app, env, encoding: 'utf8', timeout: 300_000 });
    expect(inst.status, inst.stderr.slice(-2000)).toBe(0);
    const pkg = path.join(app, 'node_modules', 'swinq');
    expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false); // nothing was compiled
    expect(fs.readdirSync(path.join(pkg, 'prebuilds')).length).toBe(1);
    expect(fs.existsSync(path.join(app, 'node_modules', 'onnxruntime-node'))).toBe(false);
    const demo = spawnSync(process.execPath, [path.join(pkg, 'dist', 'cli', 'main.js'), 'demo', '--json', '--threads', '1', '--runs', '5'], { cwd: app, env, encoding: 'utf8', timeout: 300_000 });
    expect(demo.status, demo.stderr.slice(-2000)).toBe(0);
    const r = JSON.parse(demo.stdout.trim().split('\n').pop()!) as { rows: { model: string; plan: string; accuracy: number; onnxruntime_ms: number | null }[] };
    expect(r.rows.map((x) => x.plan)).toEqual(['fp32', 'integer-only', 'integer-only']);
    for (const row of r.rows) { expect(row.accuracy).toBeGreaterThan(0.5); expect(row.onnxruntime_ms).toBeNull(); }
  }, 600_000);
});
