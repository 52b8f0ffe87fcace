// `swinq serve`: Open Inference Protocol v2 over HTTP (fastify), one dynamic batcher per model,
// Prometheus metrics at /metrics. Errors are JSON `{"error": "..."}` as the protocol specifies.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pino from 'pino';
import { Batcher, QueueFullError, TooManyRowsError, defaultBuckets, type Feeds, type Outputs, type Runner } from './batcher.js';
import { ServeMetrics } from './metrics.js';
import { isBatchable, type ServedModel } from './models.js';
import {
  DTYPES, ProtocolError, encodeInferResponse, modelMetadata, parseInferRequest,
  type DType, type OutputTensor, type TypedArray,
} from './protocol.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  maxBatch?: number;
  /** rows one request may carry (batchable models; default 1024): more is 413; more than maxBatch runs in maxBatch-row chunks */
  maxRows?: number;
  maxDelayMs?: number;
  /** arena + constant bytes of one model's bucket plans (default 1024 MB): larger buckets are dropped, and with them the chunk size */
  maxPlanMb?: number;
  maxQueue?: number;
  maxBodyMb?: number;
  /** pino level; 'silent' in tests */
  logLevel?: string;
  /** process metrics (CPU, heap, event-loop lag) in /metrics */
  defaultMetrics?: boolean;
  /** open connections beyond this are closed at once (bounds bodies being received; default 1024) */
  maxConnections?: number;
  /** pad merged runs to a few row counts (defaultBuckets) so few plans are compiled (default true) */
  padBatches?: boolean;
  /** before listening, run every padded batch size once so no request pays for a plan compile (default true) */
  warmup?: boolean;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  metrics: ServeMetrics;
  /** Stops accepting and lets queued and in-flight requests finish. Sessions stay the caller's to release. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly statusCode: number, message: string) { super(message); }
}

const VERSION = '0.1.0';

function makeRunner(m: ServedModel): Runner {
  return async (feeds: Feeds): Promise<Outputs> => {
    const rec: Record<string, ReturnType<ServedModel['makeTensor']>> = {};
    for (const [n, t] of feeds) rec[n] = m.makeTensor(t.dtype, t.data, t.dims);
    const res = await m.session.run(rec);
    const out: Outputs = new Map();
    for (const [n, t] of Object.entries(res)) {
      const dtype = t.type as DType;
      const info = DTYPES[dtype];
      if (!info) throw new Error(`model '${m.name}': output '${n}' has type ${t.type}, which swinq serve cannot send`);
      let data = t.data as TypedArray;
      if (!ArrayBuffer.isView(data)) {
        const arr = t.data as ArrayLike<number>;
        data = info.make(arr.length);
        (data as Float32Array).set(dtype === 'int64' ? Array.from(arr, (v) => BigInt(v) as unknown as number) : arr);
      }
      out.set(n, { dtype, dims: [...t.dims], data });
    }
    return out;
  };
}

interface PlanStatsSource { planStats(dims: Record<string, readonly number[]>): { arenaBytes: number; constantBytes: number } }

/**
 * The bucket sizes whose plans fit in maxBytes together (at least the smallest), and their bytes.
 * Plan bytes are affine in the batch (arena per row, constants once), so they are predicted from the
 * batch-1 and batch-2 plans and no plan over the budget is ever compiled. Undefined bytes: the engine
 * does not report plan sizes (onnxruntime) or the non-batch dims are not fixed.
 */
function fitPlans(m: ServedModel, sizes: number[], maxBytes: number): { sizes: number[]; bytes?: number } {
  const raw = (m.session as { raw?: Partial<PlanStatsSource> }).raw;
  if (!raw?.planStats || !m.inputs.every((d) => d.dims && d.dims.slice(1).every((x) => typeof x === 'number'))) return { sizes };
  const bytesAt = (n: number) => {
    const dims: Record<string, number[]> = {};
    for (const d of m.inputs) dims[d.name] = [n, ...(d.dims!.slice(1) as number[])];
    const st = raw.planStats!(dims);
    return st.arenaBytes + st.constantBytes;
  };
  const b1 = bytesAt(1);
  const perRow = sizes.some((n) => n > 1) ? Math.max(0, bytesAt(2) - b1) : 0;
  const kept: number[] = [];
  let total = 0;
  for (const n of [...sizes].sort((a, c) => a - c)) {
    const b = b1 + perRow * (n - 1);
    if (kept.length > 0 && total + b > maxBytes) break;
    kept.push(n);
    total += b;
  }
  return { sizes: kept, bytes: total };
}

/** Runs each batch size once on zeros (models whose non-batch dims are all fixed), compiling its plan. */
async function warmup(m: ServedModel, run: Runner, sizes: number[], logger: pino.Logger): Promise<void> {
  if (!m.inputs.every((d) => d.dims && d.dims.slice(1).every((x) => typeof x === 'number'))) return;
  const t0 = performance.now();
  for (const n of sizes) {
    const feeds: Feeds = new Map();
    for (const d of m.inputs) {
      const dims = [n, ...(d.dims!.slice(1) as number[])];
      const dtype = d.dtype as DType;
      feeds.set(d.name, { dtype, dims, data: DTYPES[dtype].make(dims.reduce((a, b) => a * b, 1)) });
    }
    try {
      await run(feeds);
    } catch (e) {
      logger.warn({ model: m.name, batch: n, err: (e as Error).message }, 'warm-up run failed');
      return;
    }
  }
  logger.info({ model: m.name, sizes, ms: Math.round(performance.now() - t0) }, 'warmed up');
}

interface Limits { maxBatch: number; maxRows: number; maxPlanBytes: number; maxDelayMs: number; maxQueue: number; maxBodyMb: number }
type Served = { m: ServedModel; batcher: Batcher };
type P = { Params: { name: string; version?: string } };

/** One model's batcher: bucket sizes that fit the plan budget, warmed up, with its metrics hooks. */
async function serveModel(m: ServedModel, lim: Limits, opts: ServeOptions, metrics: ServeMetrics, logger: pino.Logger): Promise<Served> {
  const runner = makeRunner(m);
  const batchable = isBatchable(m);
  let buckets = opts.padBatches === false ? undefined : defaultBuckets(lim.maxBatch);
  let modelMaxBatch = lim.maxBatch;
  if (buckets && batchable) {
    const fit = fitPlans(m, buckets, lim.maxPlanBytes);
    if (fit.sizes.length < buckets.length) {
      logger.warn({ model: m.name, buckets: fit.sizes, maxPlanMb: lim.maxPlanBytes / 2 ** 20 },
        `the plans of batch sizes above ${fit.sizes[fit.sizes.length - 1]} do not fit in --max-plan-mb; larger requests run in chunks of that size`);
      buckets = fit.sizes;
      modelMaxBatch = fit.sizes[fit.sizes.length - 1];
    }
    if (fit.bytes !== undefined) metrics.planBytes.set({ model: m.name }, fit.bytes);
  }
  if (opts.warmup !== false && batchable) await warmup(m, runner, buckets ?? [1], logger);
  const batcher = new Batcher(runner, { maxBatch: modelMaxBatch, maxRows: lim.maxRows, maxDelayMs: lim.maxDelayMs, maxQueue: lim.maxQueue, batchable, buckets }, {
    onRun: (rows, requests, ms, ok) => {
      metrics.batchSize.observe({ model: m.name }, rows);
      metrics.batchRequests.observe({ model: m.name }, requests);
      metrics.runSeconds.observe({ model: m.name }, ms / 1000);
      if (!ok) metrics.runErrors.inc({ model: m.name });
    },
    onQueueDepth: (d) => metrics.queueDepth.set({ model: m.name }, d),
  });
  metrics.queueDepth.set({ model: m.name }, 0);
  logger.info({ model: m.name, path: m.path, batchable: batcher.opts.batchable }, 'model loaded');
  return { m, batcher };
}

/** Every failure becomes a JSON error with the right status; 5xx are logged, refusals only at debug. */
function errorHandler(maxBodyMb: number) {
  return (err: Error & { statusCode?: number; code?: string }, req: FastifyRequest, reply: FastifyReply) => {
    let status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    let msg = err.message;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') { status = 413; msg = `request body exceeds the limit of ${maxBodyMb} MB (--max-body-mb)`; }
    else if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') status = 400;
    if (err instanceof QueueFullError) reply.header('Retry-After', String(err.retryAfterS));
    if (err instanceof TooManyRowsError) status = 413;
    if (status >= 500 && !(err instanceof QueueFullError)) req.log.error({ err, url: req.url }, 'request failed');
    else req.log.debug({ url: req.url, status, msg }, 'request refused');
    void reply.code(status).type('application/json').send({ error: msg });
  };
}

/** The KServe v2 (Open Inference Protocol) routes, /metrics and the drain hooks. */
function registerRoutes(app: FastifyInstance, models: Map<string, Served>, metrics: ServeMetrics, closing: () => boolean): void {
  const getModel = (name: string) => {
    const e = models.get(name);
    if (!e) throw new HttpError(404, `unknown model '${name.slice(0, 128)}'; serving ${[...models.keys()].map((k) => `'${k}'`).join(', ')}`);
    return e;
  };
  const checkVersion = (v: string | undefined) => {
    if (v !== undefined && v !== '1') throw new HttpError(404, `unknown model version '${v.slice(0, 32)}'; only version 1 exists`);
  };
  app.get('/v2', async () => ({ name: 'swinq', version: VERSION, extensions: ['binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_req, reply) => (closing() ? reply.code(503).send({ ready: false }) : { ready: true }));
  const meta = async (req: FastifyRequest<P>) => {
    checkVersion(req.params.version);
    const { m } = getModel(req.params.name);
    return modelMetadata(m.name, m.inputs, m.outputs, m.plan);
  };
  app.get<P>('/v2/models/:name', meta);
  app.get<P>('/v2/models/:name/versions/:version', meta);
  const ready = async (req: FastifyRequest<P>, reply: FastifyReply) => {
    checkVersion(req.params.version);
    const { m } = getModel(req.params.name);
    if (closing()) return reply.code(503).send({ name: m.name, ready: false });
    return { name: m.name, ready: true };
  };
  app.get<P>('/v2/models/:name/ready', ready);
  app.get<P>('/v2/models/:name/versions/:version/ready', ready);
  const infer = async (req: FastifyRequest<P>, reply: FastifyReply) => {
    checkVersion(req.params.version);
    return inferOne(getModel(req.params.name), req, reply);
  };
  const inferRoute = { config: { infer: true } };
  app.post<P>('/v2/models/:name/infer', inferRoute, infer);
  app.post<P>('/v2/models/:name/versions/:version/infer', inferRoute, infer);
  // While draining, tell keep-alive clients to go away so the close is not held up by idle sockets.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing()) void reply.header('Connection', 'close');
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    if (!(reply.routeOptions.config as { infer?: boolean } | undefined)?.infer) return;
    const name = (req.params as { name?: string } | undefined)?.name;
    const model = name !== undefined && models.has(name) ? name : '_unknown';
    metrics.requests.inc({ model, status: String(reply.statusCode) });
    metrics.latency.observe({ model }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

/** One inference request: parse (JSON or binary tensors), queue on the model's batcher, encode the answer. */
async function inferOne({ m, batcher }: Served, req: FastifyRequest<P>, reply: FastifyReply) {
  const body = req.body;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new ProtocolError('request body is empty; expected a JSON inference request');
  const hl = req.headers['inference-header-content-length'];
  if (Array.isArray(hl)) throw new ProtocolError('Inference-Header-Content-Length is given more than once');
  const parsed = parseInferRequest(body, hl, m.inputs, m.outputs);
  const feeds: Feeds = new Map();
  for (const d of m.inputs) {
    const t = parsed.inputs.get(d.name)!;
    feeds.set(d.name, { dtype: t.dtype, dims: t.dims, data: t.data });
  }
  const outs = await batcher.submit(feeds);
  const list = parsed.outputs.map((o) => {
    const t = outs.get(o.name);
    if (!t) throw new Error(`model '${m.name}' produced no output '${o.name}'`);
    return { tensor: { name: o.name, ...t } as OutputTensor, binary: o.binary };
  });
  const enc = encodeInferResponse(m.name, parsed.id, list);
  if (enc.headerLength !== undefined) {
    void reply.header('Inference-Header-Content-Length', String(enc.headerLength)).type('application/octet-stream');
  } else {
    void reply.type('application/json');
  }
  return reply.send(enc.body);
}

export async function createServer(modelList: ServedModel[], opts: ServeOptions = {}): Promise<{
  app: FastifyInstance; metrics: ServeMetrics; shutdown(): Promise<void>;
}> {
  const lim: Limits = {
    maxBatch: opts.maxBatch ?? 32, maxRows: opts.maxRows ?? 1024, maxPlanBytes: (opts.maxPlanMb ?? 1024) * 2 ** 20,
    maxDelayMs: opts.maxDelayMs ?? 2, maxQueue: opts.maxQueue ?? 128, maxBodyMb: opts.maxBodyMb ?? 16,
  };
  const metrics = new ServeMetrics(opts.defaultMetrics ?? true);
  const logger = pino({ level: opts.logLevel ?? 'info', base: undefined }, pino.destination({ dest: 2, sync: true }));
  const models = new Map<string, Served>();
  for (const m of modelList) {
    if (models.has(m.name)) throw new Error(`model name '${m.name}' is used twice`);
    models.set(m.name, await serveModel(m, lim, opts, metrics, logger));
  }
  let closing = false;
  const app: FastifyInstance = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    // per-request logs would dominate at thousands of requests/s; failures are logged in the error handler
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: Math.floor(lim.maxBodyMb * 1024 * 1024),
    return503OnClosing: true,
    // a client trickling a body must not hold its buffer forever
    requestTimeout: 60_000,
    forceCloseConnections: 'idle',
  });
  app.server.maxConnections = opts.maxConnections ?? 1024;
  // Bodies are parsed by the protocol code (JSON, or JSON header + binary tensors), so every
  // malformed body gets a 400 that says what is wrong.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler(lim.maxBodyMb));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.slice(0, 200)}` });
  });
  registerRoutes(app, models, metrics, () => closing);

  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await app.close(); // stops accepting; resolves once in-flight requests have been answered
    // Requests already queued were answered before their connections closed; wait for any run still going.
    for (const { batcher } of models.values()) while (batcher.busy) await new Promise((r) => setTimeout(r, 5));
    logger.info('stopped');
  };
  return { app, metrics, shutdown };
}

export async function startServer(models: ServedModel[], opts: ServeOptions = {}): Promise<RunningServer> {
  const { app, metrics, shutdown } = await createServer(models, opts);
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port ?? 8000 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port ?? 8000;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  app.log.info({ url, models: models.map((m) => m.name) }, 'listening');
  return { app, url, port, metrics, close: shutdown };
}
