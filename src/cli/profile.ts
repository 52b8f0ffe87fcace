// swinq profile MODEL [--batch B]: where the time goes, per plan op and per op kind, from the
// native plan's per-op timers (NativePlan.profile()), median over several runs.
import type { Command } from 'commander';
import { CliError, emit, intOption, log, withCommon, withRequireInteger, planFields } from './common.js';
import { isaOption } from './run.js';
import { median, openEngine, randomFeeds } from '../io/engine.js';
import { readModelInfo } from '../io/model-info.js';

interface ProfileOptions {
  batch: number;
  iters: number;
  top: number;
  threads: number;
  json?: boolean;
  isa?: 'auto' | 'scalar' | 'avx2';
  requireInteger?: boolean;
}

interface OpTime { op: string; name: string; ms: number }

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

async function profile(model: string, opts: ProfileOptions): Promise<void> {
  const info = readModelInfo(model);
  const feeds = randomFeeds(info.inputs, opts.batch);
  const dims = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims]));
  const engine = await openEngine('swinq', model, { threads: opts.threads, isa: opts.isa, profile: true, requireInteger: opts.requireInteger, logger: log });
  try {
    const tc = performance.now();
    engine.prepare(dims);
    const compileMs = performance.now() - tc;
    const stats = engine.raw?.planStats(dims);
    await engine.run(feeds); // warm up
    const totals: number[] = [];
    const perOp: number[][] = [];
    let ops: OpTime[] | null = null;
    for (let i = 0; i < opts.iters; i++) {
      const t0 = performance.now();
      await engine.run(feeds);
      totals.push(performance.now() - t0);
      const p: OpTime[] | undefined = engine.raw?.profileOf(dims);
      if (p?.length) {
        ops = p;
        p.forEach((o, k) => (perOp[k] ??= []).push(o.ms));
      }
    }
    const total = median(totals);
    if (!ops) {
      throw new CliError(`the plan recorded no per-op profile; total run time was ${total.toFixed(3)} ms`);
    }
    const rows = ops.map((o, k) => ({ op: o.op, name: o.name, ms: median(perOp[k]) }));
    const opSum = rows.reduce((a, r) => a + r.ms, 0);
    const byKind = new Map<string, { ms: number; count: number }>();
    for (const r of rows) {
      const e = byKind.get(r.op) ?? { ms: 0, count: 0 };
      e.ms += r.ms;
      e.count++;
      byKind.set(r.op, e);
    }
    const kinds = [...byKind.entries()].sort((a, b) => b[1].ms - a[1].ms);
    const top = [...rows.keys()].sort((a, b) => rows[b].ms - rows[a].ms).slice(0, opts.top);
    const lines: string[] = [];
    lines.push(`${model}: batch ${opts.batch}, ${opts.threads} thread${opts.threads === 1 ? '' : 's'}, median of ${opts.iters} runs: ${total.toFixed(3)} ms per run, ${opSum.toFixed(3)} ms in ${rows.length} ops`);
    if (stats) lines.push(`${stats.onnxNodes} ONNX nodes → ${stats.planOps} plan ops; compiled in ${compileMs.toFixed(0)} ms; arena ${(stats.arenaBytes / 2 ** 20).toFixed(1)} MiB, constants ${(stats.constantBytes / 2 ** 20).toFixed(1)} MiB`);
    lines.push('', '| op kind | count | ms | % |', '| --- | ---: | ---: | ---: |');
    for (const [k, v] of kinds) lines.push(`| ${k} | ${v.count} | ${v.ms.toFixed(3)} | ${((100 * v.ms) / opSum).toFixed(1)} |`);
    lines.push('', `top ${top.length} ops:`, '| # | op | ms | % | ONNX node(s) |', '| ---: | --- | ---: | ---: | --- |');
    for (const k of top) {
      const r = rows[k];
      const nm = r.name.length > 60 ? r.name.slice(0, 57) + '...' : r.name;
      lines.push(`| ${pad(String(k), 4, true)} | ${r.op} | ${r.ms.toFixed(3)} | ${((100 * r.ms) / opSum).toFixed(1)} | ${nm} |`);
    }
    log(`profiled ${rows.length} plan ops`);
    emit(opts.json, {
      ...planFields(engine.planFor(dims)),
      total_ms: total,
      compile_ms: compileMs,
      onnx_nodes: stats?.onnxNodes,
      plan_ops: stats?.planOps,
      ops_ms: opSum,
      by_kind: Object.fromEntries(kinds.map(([k, v]) => [k, { ms: v.ms, count: v.count }])),
      ops: rows,
    }, lines.join('\n'));
  } finally {
    engine.release();
  }
}

export function register(program: Command): void {
  withRequireInteger(withCommon(
    program
      .command('profile')
      .showSuggestionAfterError(false) // errors stay on one line
      .description('per-op time table of MODEL (native plan profile), median of several runs')
      .argument('<model>', 'ONNX model')
      .option('--batch <b>', 'batch size (the first input dim)', intOption('batch'), 1)
      .option('--iters <k>', 'profiled runs (median per op)', intOption('iters'), 10)
      .option('--top <n>', 'how many of the slowest ops to list', intOption('top'), 15)
      .option('--isa <isa>', 'kernel set: auto, scalar or avx2', isaOption),
  )).action(profile);
}
