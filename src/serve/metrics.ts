// Prometheus metrics for the server. One Registry per server, so several servers (tests) in one
// process never collide on metric names.
import client from 'prom-client';

export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export class ServeMetrics {
  readonly registry = new client.Registry();
  readonly requests = new client.Counter({
    name: 'swinq_infer_requests_total',
    help: 'Inference requests by model and HTTP status',
    labelNames: ['model', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new client.Histogram({
    name: 'swinq_infer_request_duration_seconds',
    help: 'Inference request latency, from the body being read to the response being sent',
    labelNames: ['model'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly batchSize = new client.Histogram({
    name: 'swinq_batch_size',
    help: 'Rows (samples) per native run; > 1 when dynamic batching merged requests',
    labelNames: ['model'] as const,
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  readonly batchRequests = new client.Histogram({
    name: 'swinq_batch_requests',
    help: 'HTTP requests merged into one native run',
    labelNames: ['model'] as const,
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  readonly runSeconds = new client.Histogram({
    name: 'swinq_run_duration_seconds',
    help: 'Time of one native run (session.run) per batch',
    labelNames: ['model'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly runErrors = new client.Counter({
    name: 'swinq_run_errors_total',
    help: 'Native runs that failed',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new client.Gauge({
    name: 'swinq_queue_depth',
    help: 'Requests waiting for a batch slot',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly planBytes = new client.Gauge({
    name: 'swinq_plan_bytes',
    help: 'Arena and constant bytes of the plans compiled for the bucket sizes (bounded by --max-plan-mb)',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) client.collectDefaultMetrics({ register: this.registry, prefix: 'swinq_' });
  }
}
