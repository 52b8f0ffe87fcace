#!/usr/bin/env node
// Issue 14 point 4: 3 seeds × {exact, 4-bit, 3-bit, 2-bit} GELU backward on the shared micro-Swin
// architecture trained FROM SCRATCH on Fashion-MNIST; mean ± sd of the test accuracy per variant.
//
//   node bench/fewbit-seeds.js [--out bench-fewbit-seeds.json] [--seeds 0,1,2] [--bits 0,4,3,2]
//        [--limit 20000] [--epochs 1] [--batch 64] [--lr 2e-3] [--warmup 30] [--cli dist/cli/main.js]
//        [--table regelu2]   (few-bit runs with Approx-BP's fixed table: `--bits 2 --table regelu2`)
//
// Each run is two CLI calls, one thread each (the seed sets the initial weights AND the data order):
//   swinq init M_S.onnx --patch 2 --embed 48 --depths 2,2 --heads 3,6 --window 7 --mlp-ratio 4 --seed S
//   swinq train M_S.onnx --data DATA --epochs E --limit N --batch 64 --lr 2e-3 --warmup 30
//        --fewbit B --seed S --threads 1 --eval-limit 10000 --json
// Results are written to --out after every run; rerunning the same command skips the runs already in
// it (resume), so it can be stopped and started again; two copies may run at once (see below). Runs go seed-major (all variants of seed 0,
// then seed 1, …) so a partial file is balanced. --cli lets it run a frozen copy of the build while
// the worktree is rebuilt.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const str = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const num = (name, def) => Number(str(name, def));
const list = (name, def) => str(name, def).split(',').map(Number);

const out = path.resolve(str('--out', 'bench-fewbit-seeds.json'));
const cli = path.resolve(str('--cli', path.join(root, 'dist', 'cli', 'main.js')));
const data = path.resolve(str('--data', path.join(root, '..', 'shared', 'data', 'fashion-mnist')));
const seeds = list('--seeds', '0,1,2'), bits = list('--bits', '0,4,3,2');
const cfg = {
  limit: num('--limit', 20000), epochs: num('--epochs', 1), batch: num('--batch', 64),
  lr: num('--lr', 2e-3), warmup: num('--warmup', 30), ...(str('--table', '') ? { table: str('--table', '') } : {}),
  arch: ['--patch', '2', '--embed', '48', '--depths', '2,2', '--heads', '3,6', '--window', '7', '--mlp-ratio', '4'],
};
if (!fs.existsSync(cli)) { console.error(`fewbit-seeds: ${cli} not found; run \`npm run build\` first`); process.exit(1); }

// CPU seconds of finished children (cutime + cstime of /proc/self/stat; 0 where there is no /proc)
function childCpu() {
  try {
    const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch { return 0; }
}
const fresh = () => ({ config: cfg, cpu: os.cpus()[0]?.model, runs: [], claims: [] });
const load = () => {
  const st = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : fresh();
  st.claims ??= [];
  return st;
};
const save = (st) => { fs.writeFileSync(out + `.${process.pid}.tmp`, JSON.stringify(st, null, 1) + '\n'); fs.renameSync(out + `.${process.pid}.tmp`, out); };
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
if (JSON.stringify(load().config) !== JSON.stringify(cfg)) {
  console.error(`fewbit-seeds: ${out} was made with another configuration; use another --out`);
  process.exit(1);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fewbit-seeds-'));
const env = { ...process.env, OMP_NUM_THREADS: '1' };
const run = (argv) => execFileSync(process.execPath, [cli, ...argv], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const lastJson = (s) => JSON.parse(s.trim().split('\n').pop());

// Several copies of this command may run at once on one --out (each claims a run before starting
// it; a claim of a process that is gone is void): the runs are single-threaded, so two copies use
// the same CPU time in half the wall time on a loaded machine.
for (const seed of seeds) {
  for (const b of bits) {
    let st = load();
    const same = (r) => r.seed === seed && r.bits === b;
    if (st.runs.some(same) || st.claims.some((c) => same(c) && c.pid !== process.pid && alive(c.pid))) continue;
    st.claims = st.claims.filter((c) => !same(c)).concat([{ seed, bits: b, pid: process.pid }]);
    save(st);
    const model = path.join(tmp, `init-${seed}.onnx`), trained = path.join(tmp, `trained-${seed}-${b}.onnx`);
    run(['init', model, ...cfg.arch, '--seed', String(seed), '--json']);
    const cpuChild0 = childCpu();
    const r = lastJson(run(['train', model, '--data', data, '--out', trained, '--epochs', String(cfg.epochs),
      '--limit', String(cfg.limit), '--batch', String(cfg.batch), '--lr', String(cfg.lr), '--warmup', String(cfg.warmup),
      '--fewbit', String(b), ...(cfg.table && b ? ['--fewbit-table', cfg.table] : []), '--seed', String(seed), '--threads', '1', '--eval-limit', '10000', '--no-progress', '--json']));
    st = load();
    st.claims = st.claims.filter((c) => !same(c));
    st.runs.push({ seed, bits: b, accuracy: r.accuracy, loss: r.loss, seconds: r.seconds, cpu_seconds: childCpu() - cpuChild0, steps: r.steps });
    save(st);
    console.log(`seed ${seed} ${b ? `${b}-bit` : 'exact'}: accuracy ${r.accuracy.toFixed(4)}, loss ${r.loss.toFixed(4)}, ${r.seconds.toFixed(0)} s`);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
const state = load();

// mean ± sample sd per variant
const summary = {};
for (const b of bits) {
  const a = state.runs.filter((r) => r.bits === b).map((r) => r.accuracy);
  if (!a.length) continue;
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  const sd = a.length > 1 ? Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / (a.length - 1)) : NaN;
  summary[b ? `${b}-bit` : 'exact'] = { n: a.length, mean, sd, accuracies: a };
}
state.summary = summary;
if (!state.claims.length) save(state);
for (const [k, s] of Object.entries(summary)) console.log(`${k.padEnd(6)} ${s.mean.toFixed(4)} ± ${s.sd.toFixed(4)} (n=${s.n}: ${s.accuracies.map((x) => x.toFixed(4)).join(', ')})`);
