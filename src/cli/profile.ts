// swinq profile MODEL [--batch B]: where the time goes, per plan op and per op kind, from the
// native plan's per-op timers (NativePlan.profile()), median over several runs; and, for the
// session's run() and runSync() alike, wall time per run against the sum of its ops, so what is
// spent outside the ops (feed checks, output allocation, the thread hop, promise resolution) shows.
import type { Command } from 'commander';
import { CliError, emit, intOption, log, withCommon, withRequireInteger, planFields } from './common.js';
import { isaOption } from './run.js';
import { median, openEngine, randomFeeds } from '../engine.js';
import { readModelInfo } from '../io/model-info.js';
import { type IsaOption } from '../native.js';

interface ProfileOptions {
  batch: number;
  iters: number;
  top: number;
  threads: number;
  json?: boolean;
  isa?: IsaOption;
  requireInteger?: boolean;
}

interface OpTime { op: string; name: string; ms: number }

/** One calling mode: per run, wall time and the sum of its op timers (same run). */
interface ModeTimes { wall: number[]; ops: number[] }
function modeSummary(m: ModeTimes): Record<string, number> {
  const outside = m.wall.map((w, i) => w - m.ops[i]);
  return {
    wall_ms: median(m.wall),
    wall_min_ms: Math.min(...m.wall),
    ops_ms: median(m.ops),
    outside_ms: median(outside),
    outside_min_ms: Math.min(...outside),
  };
}

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
    const session = engine.raw;
    if (!session) throw new CliError('profile needs the swinq engine');
    const { Tensor } = await import('../index.js');
    const tfeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) =>
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      [k, new Tensor(t.type as any, t.data as any, t.dims)]));
    await session.run(tfeeds); // warm up both paths
    // until the plan has made its thread choice (warm-up, pool, caller and check runs), so the
    // profiled runs are the configuration it keeps; 64 runs at most
    session.runSync(tfeeds);
    for (let i = 0; i < 64 && session.threadChoiceOf(dims).adaptive && session.threadChoiceOf(dims).choices === 0; i++) session.runSync(tfeeds);
    const threadChoice = session.threadChoiceOf(dims);
    const perOp: number[][] = [];
    const modes: { run: ModeTimes; runSync: ModeTimes } = { run: { wall: [], ops: [] }, runSync: { wall: [], ops: [] } };
    let ops: OpTime[] | null = null;
    const record = (m: ModeTimes, wall: number): void => {
      const p: OpTime[] = session.profileOf(dims);
      if (!p?.length) return;
      ops = p;
      p.forEach((o, k) => (perOp[k] ??= []).push(o.ms));
      m.wall.push(wall);
      m.ops.push(p.reduce((a, o) => a + o.ms, 0));
    };
    // interleaved, so both modes see the same machine
    for (let i = 0; i < opts.iters; i++) {
      let t0 = performance.now();
      await session.run(tfeeds);
      record(modes.run, performance.now() - t0);
      t0 = performance.now();
      session.runSync(tfeeds);
      record(modes.runSync, performance.now() - t0);
    }
    if (!ops) {
      throw new CliError('the plan recorded no per-op profile');
    }
    const run = modeSummary(modes.run), runSync = modeSummary(modes.runSync);
    const total = run.wall_ms;
    const rows = (ops as OpTime[]).map((o, k) => ({ op: o.op, name: o.name, ms: median(perOp[k]) }));
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
    const fmt = (n: string, m: Record<string, number>): string =>
      `${n}: wall ${m.wall_ms.toFixed(3)} ms (min ${m.wall_min_ms.toFixed(3)}), ops ${m.ops_ms.toFixed(3)} ms, outside the ops ${m.outside_ms.toFixed(3)} ms (min ${m.outside_min_ms.toFixed(3)})`;
    lines.push(fmt('run()', run), fmt('runSync()', runSync));
    if (threadChoice.threads > 1 && threadChoice.jobs < threadChoice.ops) lines.push(`row regions: ${threadChoice.ops} ops in ${threadChoice.jobs} pool jobs (consecutive row-local ops hand off once)`);
    if (threadChoice.adaptive) lines.push(`threads: ops on ${threadChoice.config === 'mixed' ? `the pool, ${threadChoice.callerOps} of ${threadChoice.ops} on the caller alone (measured faster there)` : threadChoice.config === 'caller' ? 'the caller alone (measured faster than the pool)' : 'the pool'}`);
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
      thread_choice: { config: threadChoice.config, caller_ops: threadChoice.callerOps, adaptive: threadChoice.adaptive, jobs: threadChoice.jobs },
      ops_ms: opSum,
      outside_ms: run.outside_ms,
      run,
      run_sync: runSync,
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
      .option('--iters <k>', 'profiled runs of each of run() and runSync() (median per op)', intOption('iters'), 10)
      .option('--top <n>', 'how many of the slowest ops to list', intOption('top'), 15)
      .option('--isa <isa>', 'kernel set: auto, scalar, avx2, avxvnni or avx512vnni', isaOption),
  )).action(profile);
}
