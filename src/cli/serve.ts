// `swinq serve MODEL… [--model NAME=PATH]…`: Open Inference Protocol v2 over HTTP with dynamic batching.
import type { Command } from 'commander';
import { CliError, emit, intOption, log, withCommon } from './common.js';
import { type IsaOption } from '../native.js';
import { isaOption } from './run.js';

interface ServeCliOptions {
  model: string[];
  host: string;
  port: number;
  maxBatch: number;
  maxRows: number;
  maxPlanMb: number;
  maxDelayMs: number;
  maxQueue: number;
  maxBodyMb: number;
  maxConnections: number;
  logLevel: string;
  isa?: IsaOption;
  engine: 'swinq' | 'onnxruntime';
  drainTimeoutS: number;
  padBatches: boolean;
  warmup: boolean;
  threads: number;
  json?: boolean;
  requireInteger?: boolean;
}

function posNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new CliError(`--${name} must be a number > 0, got '${v}'`);
    return n;
  };
}

function nonNegNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new CliError(`--${name} must be a number ≥ 0, got '${v}'`);
    return n;
  };
}

export function register(program: Command): void {
  withCommon(program.command('serve'))
    .description('serve models over HTTP (Open Inference Protocol v2 / KServe v2) with dynamic batching')
    .argument('[MODEL...]', 'ONNX models, served under their file name without .onnx')
    .option('--model <name=path>', 'serve PATH under NAME (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port)', intOption('port', 0), 8000)
    .option('--max-batch <n>', 'rows per merged native run (1: no batching)', intOption('max-batch'), 32)
    .option('--max-rows <n>', 'rows one request may carry (413 beyond); requests of more than --max-batch rows run in --max-batch chunks', intOption('max-rows'), 1024)
    .option('--max-plan-mb <mb>', "arena + constant bytes of one model's bucket plans; larger buckets are dropped", posNumber('max-plan-mb'), 1024)
    .option('--max-delay-ms <ms>', 'longest a request waits for others to batch with', nonNegNumber('max-delay-ms'), 2)
    .option('--max-queue <n>', 'requests waiting per model before answering 503', intOption('max-queue'), 128)
    .option('--max-body-mb <mb>', 'largest request body (413 beyond)', posNumber('max-body-mb'), 16)
    .option('--max-connections <n>', 'open connections beyond this are closed at once', intOption('max-connections'), 1024)
    .option('--isa <isa>', 'kernel set: auto, scalar, avx2, avxvnni or avx512vnni', isaOption)
    .option('--engine <engine>', 'swinq, or onnxruntime (a baseline; needs onnxruntime-node)', 'swinq')
    .option('--no-pad-batches', 'run merged batches at their exact size instead of trimming/padding to bucket sizes')
    .option('--no-warmup', 'skip compiling the bucket sizes before listening')
    .option('--log-level <level>', 'pino log level (silent, error, warn, info, debug)', 'info')
    .option('--require-integer', 'refuse a QDQ model that cannot run integer-only (the error names node, op and reason)')
    .option('--drain-timeout-s <s>', 'on SIGTERM, longest wait for in-flight requests', nonNegNumber('drain-timeout-s'), 30)
    .action(async (paths: string[], o: ServeCliOptions) => {
      const { loadModel, modelNameFromPath } = await import('../serve/models.js');
      const { startServer } = await import('../serve/server.js');
      if (!['swinq', 'onnxruntime'].includes(o.engine)) throw new CliError(`--engine must be swinq or onnxruntime, got '${o.engine}'`);
      if (!['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(o.logLevel)) {
        throw new CliError(`--log-level must be silent, error, warn, info or debug, got '${o.logLevel}'`);
      }
      const specs: { name: string; path: string }[] = paths.map((p) => ({ name: modelNameFromPath(p), path: p }));
      for (const m of o.model) {
        const eq = m.indexOf('=');
        if (eq <= 0 || eq === m.length - 1) throw new CliError(`--model must be NAME=PATH, got '${m}'`);
        specs.push({ name: m.slice(0, eq), path: m.slice(eq + 1) });
      }
      if (specs.length === 0) throw new CliError('no model given: pass MODEL paths or --model NAME=PATH');
      const seen = new Set<string>();
      for (const s of specs) {
        if (seen.has(s.name)) throw new CliError(`model name '${s.name}' is given twice (${s.path}); use --model NAME=PATH to rename`);
        seen.add(s.name);
      }
      const models: Awaited<ReturnType<typeof loadModel>>[] = [];
      for (const s of specs) {
        try {
          models.push(await loadModel(s.name, s.path, { threads: o.threads, isa: o.isa, engine: o.engine, requireInteger: o.requireInteger }));
        } catch (e) {
          throw new CliError(`model '${s.name}': ${(e as Error).message.split('\n')[0]}`);
        }
      }
      const server = await startServer(models, {
        host: o.host, port: o.port, maxBatch: o.maxBatch, maxRows: o.maxRows, maxPlanMb: o.maxPlanMb, maxDelayMs: o.maxDelayMs, maxQueue: o.maxQueue,
        maxBodyMb: o.maxBodyMb, maxConnections: o.maxConnections, logLevel: o.logLevel, padBatches: o.padBatches, warmup: o.warmup,
      });
      log(`swinq serve: listening on ${server.url} (models: ${models.map((m) => m.name).join(', ')})`);
      if (o.json) emit(true, { url: server.url, port: server.port, models: models.map((m) => m.name) });

      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log(`swinq serve: ${signal}: draining in-flight requests`);
        const timer = setTimeout(() => {
          log(`swinq serve: requests still in flight after ${o.drainTimeoutS} s; exiting`);
          process.exit(1);
        }, o.drainTimeoutS * 1000);
        timer.unref();
        server.close().then(() => {
          for (const m of models) m.session.release?.();
          log('swinq serve: stopped');
          process.exit(0);
        }, (e: unknown) => {
          log(`swinq serve: shutdown failed: ${(e as Error).message}`);
          process.exit(1);
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
