// Dynamic batching: requests for one model wait at most maxDelayMs, are concatenated along the batch
// (first) dim into one run of at most maxBatch rows, and the outputs are split back per request.
// One run per model is in flight at a time (a session's plan owns one arena, and the native run
// already uses all cores); requests that arrive meanwhile form the next batch. The queue is bounded:
// past maxQueue waiting requests, submit() throws QueueFullError (HTTP 503). A request of more rows than
// maxBatch is run as maxBatch-row chunks (so every run has a warmed-up bucket shape and no request can
// make the session compile a plan for its own row count); past maxRows it is refused (HTTP 413).
import type { DType, TypedArray } from './protocol.js';
import { DTYPES } from './protocol.js';

export interface FeedTensor { dtype: DType; dims: number[]; data: TypedArray }
export type Feeds = Map<string, FeedTensor>;
export type Outputs = Map<string, FeedTensor>;
/** Runs one (possibly concatenated) set of feeds; must not block the event loop. */
export type Runner = (feeds: Feeds) => Promise<Outputs>;

export class QueueFullError extends Error {
  statusCode = 503;
  constructor(readonly retryAfterS: number, depth: number) {
    super(`server overloaded: ${depth} requests already queued for this model; retry later`);
  }
}

export class TooManyRowsError extends Error {
  statusCode = 413;
  constructor(rows: number, maxRows: number) {
    super(`request has ${rows} rows; the limit is ${maxRows} (--max-rows); send fewer rows per request`);
  }
}

export interface BatcherOptions {
  maxBatch: number;
  /** rows one request may carry (batchable models); more is TooManyRowsError (default: unlimited) */
  maxRows?: number;
  maxDelayMs: number;
  maxQueue: number;
  /** Whether every input and output has the batch as its leading dim; if not, requests run one by one. */
  batchable: boolean;
  /**
   * Batch sizes runs are padded up to (ascending), so the session compiles a few plans rather than
   * one per row count; padding rows repeat the first row (always a valid input).
   */
  buckets?: number[];
}

export interface BatcherHooks {
  /** Called after each native run: rows in the batch, requests merged, run time in ms, ok. */
  onRun?(rows: number, requests: number, ms: number, ok: boolean): void;
  onQueueDepth?(depth: number): void;
}

interface Pending {
  feeds: Feeds;
  rows: number;
  key: string; // non-batch dims of every input: only requests with equal keys can be concatenated
  enqueuedAt: number;
  resolve(o: Outputs): void;
  reject(e: unknown): void;
}

function keyOf(feeds: Feeds): string {
  let k = '';
  for (const [name, t] of feeds) k += `${name}:${t.dims.slice(1).join('x')};`;
  return k;
}

export class Batcher {
  private queue: Pending[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private runMsAvg = 0;
  private lastRows = 0; // rows of the previous run

  constructor(private readonly run: Runner, readonly opts: BatcherOptions, private readonly hooks: BatcherHooks = {}) {}

  get depth(): number { return this.queue.length; }
  get busy(): boolean { return this.running || this.queue.length > 0; }

  /** Queues one request. Its rows are the leading dim of its inputs (all inputs share it). */
  submit(feeds: Feeds): Promise<Outputs> {
    const first = feeds.values().next().value;
    const rows = first && first.dims.length > 0 ? first.dims[0] : 1;
    if (!this.opts.batchable) return this.enqueue(feeds, rows, 1);
    if (this.opts.maxRows !== undefined && rows > this.opts.maxRows) return Promise.reject(new TooManyRowsError(rows, this.opts.maxRows));
    const step = Math.max(1, this.opts.maxBatch);
    if (rows <= step) return this.enqueue(feeds, rows, 1);
    const n = Math.ceil(rows / step);
    if (this.queue.length + n > this.opts.maxQueue) return Promise.reject(this.queueFull(n));
    const parts: Promise<Outputs>[] = [];
    for (let r0 = 0; r0 < rows; r0 += step) parts.push(this.enqueue(sliceRows(feeds, r0, Math.min(step, rows - r0)), Math.min(step, rows - r0), 0));
    return Promise.all(parts).then((outs) => {
      for (const o of outs) {
        for (const [name, t] of o) {
          if (t.dims.length === 0) throw new Error(`output '${name}' has no batch dim, so a request of ${rows} rows (more than --max-batch ${step}) cannot be split; send at most ${step} rows`);
        }
      }
      return concat(outs);
    });
  }

  /** Queues one run's worth of rows; `slots` queue places must be free (0: checked by the caller). */
  private enqueue(feeds: Feeds, rows: number, slots: number): Promise<Outputs> {
    if (slots > 0 && this.queue.length + slots > this.opts.maxQueue) return Promise.reject(this.queueFull(slots));
    return new Promise<Outputs>((resolve, reject) => {
      this.queue.push({ feeds, rows, key: keyOf(feeds), enqueuedAt: performance.now(), resolve, reject });
      this.hooks.onQueueDepth?.(this.queue.length);
      this.schedule();
    });
  }

  private queueFull(slots: number): QueueFullError {
    // Expected wait: the batches ahead of a new request times the average run time.
    const batches = Math.ceil((this.queue.length + slots) / Math.max(1, this.opts.maxBatch)) + 1;
    return new QueueFullError(Math.max(1, Math.ceil((batches * this.runMsAvg) / 1000)), this.queue.length);
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    const head = this.queue[0];
    const waited = performance.now() - head.enqueuedAt;
    let rows = 0;
    if (this.opts.batchable && this.opts.maxBatch > 1) {
      for (const p of this.queue) if (p.key === head.key) rows += p.rows;
    }
    // Dispatch early once as many rows wait as the previous run carried: closed-loop clients answered by
    // that run are back, and waiting longer would only idle the engine. maxDelayMs bounds the wait.
    if (!this.opts.batchable || this.opts.maxBatch <= 1 || rows >= this.opts.maxBatch || waited >= this.opts.maxDelayMs ||
        rows >= this.lastRows) {
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      void this.dispatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.schedule(); }, Math.max(0, this.opts.maxDelayMs - waited));
    }
  }

  private take(): Pending[] {
    const head = this.queue.shift()!;
    const batch = [head];
    if (!this.opts.batchable || this.opts.maxBatch <= 1) return batch;
    let rows = head.rows;
    for (let i = 0; i < this.queue.length && rows < this.opts.maxBatch;) {
      const p = this.queue[i];
      if (p.key === head.key && rows + p.rows <= this.opts.maxBatch) {
        batch.push(p);
        rows += p.rows;
        this.queue.splice(i, 1);
      } else {
        i++;
      }
    }
    // Run a bucket's worth of rows rather than pad: trailing requests that take the total past the
    // largest bucket it reaches go back to the front of the queue and lead the next run.
    if (this.opts.buckets && batch.length > 1) {
      let floor = 0;
      for (const b of this.opts.buckets) if (b <= rows) floor = b;
      const back: Pending[] = [];
      while (batch.length > 1 && rows - batch[batch.length - 1].rows >= floor && rows > floor) {
        const p = batch.pop()!;
        rows -= p.rows;
        back.unshift(p);
      }
      this.queue.unshift(...back);
    }
    return batch;
  }

  /** Smallest bucket ≥ rows, or rows itself when there are no buckets or it exceeds them all. */
  bucketFor(rows: number): number {
    for (const b of this.opts.buckets ?? []) if (b >= rows) return b;
    return rows;
  }

  private async dispatch(): Promise<void> {
    this.running = true;
    const batch = this.take();
    this.hooks.onQueueDepth?.(this.queue.length);
    try {
      const rows = batch.map((p) => p.rows);
      const total = rows.reduce((a, b) => a + b, 0);
      this.lastRows = total;
      const target = this.opts.batchable ? this.bucketFor(total) : total;
      if (batch.length === 1 && target === total) {
        const p = batch[0];
        try { p.resolve(await this.timed(p.feeds, total, 1)); } catch (e) { p.reject(e); }
        return;
      }
      let parts: Outputs[] | undefined;
      try {
        let feeds = batch.length === 1 ? batch[0].feeds : concat(batch.map((p) => p.feeds));
        if (target > total) feeds = padRows(feeds, target - total);
        const outs = await this.timed(feeds, total, batch.length);
        parts = split(outs, target > total ? [...rows, target - total] : rows);
      } catch {
        parts = undefined;
      }
      if (parts) {
        batch.forEach((p, i) => p.resolve(parts[i]));
      } else {
        // The merged run failed (one bad request must not fail its neighbours) or an output does not
        // follow the batch dim: run each request on its own, unpadded.
        for (const p of batch) {
          try { p.resolve(await this.timed(p.feeds, p.rows, 1)); } catch (e) { p.reject(e); }
        }
      }
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private async timed(feeds: Feeds, rows: number, requests: number): Promise<Outputs> {
    const t0 = performance.now();
    let ok = false;
    try {
      const o = await this.run(feeds);
      ok = true;
      return o;
    } finally {
      const ms = performance.now() - t0;
      this.runMsAvg = this.runMsAvg === 0 ? ms : 0.9 * this.runMsAvg + 0.1 * ms;
      this.hooks.onRun?.(rows, requests, ms, ok);
    }
  }
}

/** Concatenates feeds (equal non-batch dims, checked by the caller's key) along dim 0. */
export function concat(list: Feeds[]): Feeds {
  const out: Feeds = new Map();
  for (const [name, t0] of list[0]) {
    let rows = 0;
    let len = 0;
    for (const f of list) { const t = f.get(name)!; rows += t.dims[0]; len += t.data.length; }
    const data = DTYPES[t0.dtype].make(len);
    let off = 0;
    for (const f of list) {
      const t = f.get(name)!;
      (data as Uint8Array).set(t.data as Uint8Array, off);
      off += t.data.length;
    }
    out.set(name, { dtype: t0.dtype, dims: [rows, ...t0.dims.slice(1)], data });
  }
  return out;
}

/** Rows [r0, r0 + n) of every input (views, no copy). */
export function sliceRows(feeds: Feeds, r0: number, n: number): Feeds {
  const out: Feeds = new Map();
  for (const [name, t] of feeds) {
    const inner = t.dims[0] === 0 ? 0 : t.data.length / t.dims[0];
    out.set(name, { dtype: t.dtype, dims: [n, ...t.dims.slice(1)], data: t.data.subarray(r0 * inner, (r0 + n) * inner) as TypedArray });
  }
  return out;
}

/** Splits outputs along dim 0 into the given row counts; undefined if an output's dim 0 is not the total. */
export function split(outs: Outputs, rows: number[]): Outputs[] | undefined {
  const total = rows.reduce((a, b) => a + b, 0);
  const parts: Outputs[] = rows.map(() => new Map());
  for (const [name, t] of outs) {
    if (t.dims.length === 0 || t.dims[0] !== total) return undefined;
    const inner = t.data.length / total;
    let r0 = 0;
    rows.forEach((r, i) => {
      parts[i].set(name, { dtype: t.dtype, dims: [r, ...t.dims.slice(1)], data: t.data.subarray(r0 * inner, (r0 + r) * inner) });
      r0 += r;
    });
  }
  return parts;
}

/** Appends `extra` rows to every input, each a copy of row 0. */
export function padRows(feeds: Feeds, extra: number): Feeds {
  const out: Feeds = new Map();
  for (const [name, t] of feeds) {
    const rows = t.dims[0];
    const inner = t.data.length / rows;
    const data = DTYPES[t.dtype].make((rows + extra) * inner);
    (data as Uint8Array).set(t.data as Uint8Array, 0);
    const first = t.data.subarray(0, inner);
    for (let r = rows; r < rows + extra; r++) (data as Uint8Array).set(first as Uint8Array, r * inner);
    out.set(name, { dtype: t.dtype, dims: [rows + extra, ...t.dims.slice(1)], data });
  }
  return out;
}

/**
 * Batch sizes to pad to: powers of two and their midpoints (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, …) below
 * maxBatch, and maxBatch: under a third of a run is padding, and few enough plans for the session's plan cache.
 */
export function defaultBuckets(maxBatch: number): number[] {
  const b = new Set<number>();
  for (let x = 1; x < maxBatch; x *= 2) {
    b.add(x);
    if (x >= 2 && x + x / 2 < maxBatch) b.add(x + x / 2);
  }
  b.add(maxBatch);
  return [...b].sort((a, c) => a - c);
}
