// Plan compilation on a worker thread, so an async run() of a new shape does not hold the event loop
// for the compile (0.4–1.5 s per shape on Swin-T, seconds on ViT-B; a server's health checks and
// other models' requests would wait that long). The worker loads its own copy of the model; it is
// started on the first request and ended after `idleMs` without one, so the copy is not kept for
// the session's life.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { IntegerPlanError, type BlockedBy, type PlanChoice } from './model-compiler.js';

export interface CompileRequest { id: number; dims: Record<string, number[]>; opts: { requireInteger?: boolean; simulate?: boolean } }
export type CompileReply =
  | { id: number; ok: true; choice: PlanChoice }
  | { id: number; ok: false; name: string; message: string; blockedBy?: unknown };

const here = path.dirname(fileURLToPath(import.meta.url));
// From dist/ the worker is the sibling .js file; under vitest this module is TypeScript source in
// src/, and the worker runs from the built dist/ (test/global-setup.ts builds it).
const WORKER = import.meta.url.endsWith('.ts')
  ? path.resolve(here, '..', '..', 'dist', 'runtime', 'compile-worker.js')
  : path.join(here, 'compile-worker.js');

export class BackgroundCompiler {
  private worker?: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(c: PlanChoice): void; reject(e: Error): void }>();
  private idleTimer?: NodeJS.Timeout;

  constructor(private readonly source: string | Uint8Array, private readonly idleMs = 30_000) {}

  compile(dims: Record<string, number[]>, opts: CompileRequest['opts']): Promise<PlanChoice> {
    const w = this.start();
    const id = this.nextId++;
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    return new Promise<PlanChoice>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.ref(); // a pending compile keeps the process alive, as a pending native run does
      w.postMessage({ id, dims, opts } satisfies CompileRequest);
    });
  }

  /** Ends the worker; pending compiles reject. */
  close(): void {
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('compile worker: session released'));
    void w?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER, { workerData: { source: this.source } });
    w.on('message', (r: CompileReply) => this.settle(r));
    w.on('error', (e) => { if (this.worker === w) this.worker = undefined; this.failAll(new Error(`compile worker failed: ${e.message}`)); });
    w.on('exit', (code) => {
      if (this.worker === w) this.worker = undefined;
      if (code !== 0) this.failAll(new Error(`compile worker exited with code ${code}`));
    });
    this.worker = w;
    return w;
  }

  private settle(r: CompileReply): void {
    const p = this.waiting.get(r.id);
    if (!p) return;
    this.waiting.delete(r.id);
    if (r.ok) p.resolve(r.choice);
    else if (r.name === 'IntegerPlanError' && r.blockedBy) p.reject(new IntegerPlanError(r.blockedBy as BlockedBy));
    else p.reject(new Error(r.message));
    if (this.waiting.size === 0 && this.worker) {
      this.worker.unref();
      const w = this.worker;
      this.idleTimer = setTimeout(() => { if (this.worker === w && this.waiting.size === 0) { this.worker = undefined; void w.terminate(); } }, this.idleMs);
      this.idleTimer.unref();
    }
  }

  private failAll(e: Error): void {
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }
}
