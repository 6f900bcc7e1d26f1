/**
 * Prometheus metrics of a worker process (`ood-audit worker --metrics-port N`), served at /metrics:
 *   ood_audit_jobs{queue,state}                    jobs per queue and state (read from Redis at scrape)
 *   ood_audit_jobs_finished_total{queue,outcome}   jobs this worker completed or failed
 *   ood_audit_images_processed_total{queue}        images extracted / scored by this worker
 *   ood_audit_image_failures_total{reason}         images that could not be read or decoded, by reason
 *   ood_audit_batch_seconds                        encoder batch latency (decode + encode of one batch)
 *   ood_audit_job_seconds{queue}                   job duration
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Job, Queue } from 'bullmq';
import type { QueueKind } from '../shared/queue/contract.js';

export interface WorkerMetrics {
  observe(kind: QueueKind, job: Job, outcome: 'completed' | 'failed'): void;
  readonly server: http.Server;
  close(): Promise<void>;
}

export async function startMetrics(port: number, host: string, queues: ReadonlyMap<QueueKind, Queue>): Promise<WorkerMetrics> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ood_audit_process_' });
  new Gauge({
    name: 'ood_audit_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const [kind, q] of queues) {
        const counts = await q.getJobCounts('waiting', 'waiting-children', 'active', 'completed', 'failed', 'delayed', 'prioritized');
        for (const [state, n] of Object.entries(counts)) this.set({ queue: kind, state }, n);
      }
    },
  });
  const finished = new Counter({ name: 'ood_audit_jobs_finished_total', help: 'Jobs this worker finished', labelNames: ['queue', 'outcome'], registers: [registry] });
  const images = new Counter({ name: 'ood_audit_images_processed_total', help: 'Images processed by this worker', labelNames: ['queue'], registers: [registry] });
  const failures = new Counter({ name: 'ood_audit_image_failures_total', help: 'Images that could not be read or decoded, by reason', labelNames: ['reason'], registers: [registry] });
  const batch = new Histogram({ name: 'ood_audit_batch_seconds', help: 'Latency of one encoder batch (decode + encode)', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16], registers: [registry] });
  const jobSeconds = new Histogram({ name: 'ood_audit_job_seconds', help: 'Job duration', labelNames: ['queue'], buckets: [0.5, 1, 5, 15, 60, 300, 900, 3600], registers: [registry] });

  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found; see /metrics\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    observe(kind, job, outcome) {
      finished.inc({ queue: kind, outcome });
      if (job.finishedOn !== undefined && job.processedOn !== undefined) jobSeconds.observe({ queue: kind }, (job.finishedOn - job.processedOn) / 1000);
      if (outcome !== 'completed') return;
      const r = job.returnvalue as { images?: number; cached?: boolean; failuresByReason?: Record<string, number>; batchSeconds?: number[] } | null;
      if (r === null || typeof r !== 'object') return;
      // Score jobs extract too (from the cache when they can).
      if (kind === 'extract' || kind === 'score') {
        if (r.cached !== true) images.inc({ queue: 'extract' }, Number(r.images ?? 0));
        if (kind === 'score') images.inc({ queue: 'score' }, Number(r.images ?? 0));
      }
      if ((kind === 'extract' || kind === 'score') && r.cached !== true) {
        for (const [reason, n] of Object.entries(r.failuresByReason ?? {})) failures.inc({ reason }, n);
        for (const s of r.batchSeconds ?? []) batch.observe(s);
      }
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

