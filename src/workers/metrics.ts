/**
 * Prometheus metrics of a worker process (`ood-audit worker --metrics-port N`), served at /metrics.
 * docs/operations.md lists them with example queries. Three kinds:
 *
 * Per process (sum or break down across workers freely):
 *   process_*, nodejs_*                            prom-client's default metrics, standard names
 *   ood_audit_jobs_finished_total{queue,outcome}   jobs this worker completed or failed
 *   ood_audit_images_processed_total{queue}        images extracted (encoder work) / scored by this worker
 *   ood_audit_image_failures_total{reason}         images that could not be read or decoded, by reason
 *                                                  (counted when their features come from the cache too)
 *   ood_audit_batch_seconds                        encoder batch latency (decode + encode of one batch)
 *   ood_audit_job_seconds{queue}                   job duration
 *   ood_audit_sandbox_processes                    sandboxed processor processes of this worker
 *   ood_audit_sandbox_resident_memory_bytes        their resident memory, summed (and _max_ the largest)
 *   ood_audit_metrics_exporter                     1 on the worker exporting the queue-wide metrics
 *
 * Queue-wide (read from Redis at scrape time) are exported by ONE worker at a time, so a sum across
 * workers counts them once: the workers with a metrics port elect the exporter through a lease key
 * in Redis, renewed on every scrape (60 s; when the exporter stops being scraped or dies, the next
 * worker scraped after the lease expires takes over).
 *   ood_audit_jobs{queue,state}                    jobs per queue and state, every queue
 *   ood_audit_last_*{input,input_id}               the last completed scan of each input prefix:
 *       _flagged_fraction, _verdict_level (0 too few images, 1 no shift, 2 possibly shifted,
 *       3 shifted), _success_timestamp_seconds, _images_scanned, _image_failures
 */
import http from 'node:http';
import { hostname } from 'node:os';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Job } from 'bullmq';
import type { Outcome } from '../shared/queue/outcomes.js';
import { shortLocation } from '../shared/queue/outcomes.js';
import type { QueueKind } from '../shared/queue/contract.js';
import { verdictRank } from '../shared/report/verdict.js';
import { childPids, residentBytes } from './children.js';

/** What the queue-wide metrics are read from (Redis in a worker; fakes in tests). */
export interface QueueWideSource {
  /** Whether this worker is the exporter now (called once per scrape). */
  isExporter(): Promise<boolean>;
  jobCounts(): Promise<ReadonlyMap<QueueKind, Readonly<Record<string, number>>>>;
  outcomes(): Promise<readonly Outcome[]>;
}

interface Snapshot {
  readonly exporter: boolean;
  readonly jobCounts: ReadonlyMap<QueueKind, Readonly<Record<string, number>>>;
  readonly outcomes: readonly Outcome[];
}

/** The queue-wide figures, when this worker is the exporter (else none); Redis errors give none. */
async function takeSnapshot(source: QueueWideSource): Promise<Snapshot> {
  const none: Snapshot = { exporter: false, jobCounts: new Map(), outcomes: [] };
  try {
    if (!(await source.isExporter())) return none;
    const [jobCounts, outcomes] = await Promise.all([source.jobCounts(), source.outcomes()]);
    return { exporter: true, jobCounts, outcomes };
  } catch {
    return none;
  }
}

export interface MetricsRegistry {
  readonly registry: Registry;
  observe(kind: QueueKind, job: Pick<Job, 'returnvalue' | 'finishedOn' | 'processedOn'>, outcome: 'completed' | 'failed'): void;
}

/** A fresh id for this worker's lease (host, pid and a random part). */
export function exporterId(): string {
  return `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
}

export function createMetricsRegistry(source: QueueWideSource, sandboxOf: () => number[] = () => childPids()): MetricsRegistry {
  const registry = new Registry();
  // No prefix: process_cpu_seconds_total, process_resident_memory_bytes, nodejs_heap_size_used_bytes, ...
  collectDefaultMetrics({ register: registry });
  // One look at Redis per scrape (at most one a second), shared by the queue-wide gauges' collect()
  // calls (prom-client runs them concurrently).
  let taken: { at: number; snapshot: Promise<Snapshot> } | undefined;
  const snapshot = (): Promise<Snapshot> => {
    if (taken === undefined || Date.now() - taken.at > 1000) taken = { at: Date.now(), snapshot: takeSnapshot(source) };
    return taken.snapshot;
  };
  new Gauge({
    name: 'ood_audit_metrics_exporter',
    help: '1 on the one worker that exports the queue-wide metrics (ood_audit_jobs, ood_audit_last_*)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).exporter ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ood_audit_jobs',
    help: 'Jobs per queue and state (queue-wide: exported by one worker, see ood_audit_metrics_exporter)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const snap = await snapshot();
      this.reset();
      for (const [kind, counts] of snap.jobCounts) for (const [state, n] of Object.entries(counts)) this.set({ queue: kind, state }, n);
    },
  });
  const perInput = (name: string, help: string, value: (o: Outcome) => number): void =>
    void new Gauge({
      name,
      help: `${help} (queue-wide: exported by one worker)`,
      labelNames: ['input', 'input_id'],
      registers: [registry],
      async collect() {
        const snap = await snapshot();
        this.reset();
        for (const o of snap.outcomes) this.set({ input: shortLocation(o.input), input_id: o.inputId }, value(o));
      },
    });
  perInput('ood_audit_last_flagged_fraction', 'Flagged fraction of the last completed scan of an input', (o) => o.flaggedFraction);
  perInput('ood_audit_last_verdict_level', 'Headline verdict of the last completed scan of an input (the worst of the dataset and its partitions, what scan --fail-on acts on): 0 too few images, 1 no shift detected, 2 possibly shifted, 3 shifted', (o) => verdictRank(o.verdict));
  perInput('ood_audit_last_success_timestamp_seconds', 'When the last scan of an input completed, Unix seconds', (o) => Math.round(o.at / 1000));
  perInput('ood_audit_last_images_scanned', 'Images scored in an input as of its last completed scan (the whole prefix: unchanged images carried forward)', (o) => o.scored);
  perInput('ood_audit_last_image_failures', 'Images that failed in the last completed scan of an input', (o) => o.failed);
  // The sandboxed children's memory, sampled from /proc once per scrape for the three gauges.
  let sampled: { at: number; rss: number[] } | undefined;
  const sample = (): number[] => {
    if (sampled === undefined || Date.now() - sampled.at > 1000) sampled = { at: Date.now(), rss: sandboxOf().flatMap((pid) => residentBytes(pid) ?? []) };
    return sampled.rss;
  };
  const sandbox = (name: string, help: string, value: (rss: number[]) => number): void =>
    void new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(sample()));
      },
    });
  sandbox('ood_audit_sandbox_processes', "This worker's sandboxed processor processes", (rss) => rss.length);
  sandbox('ood_audit_sandbox_resident_memory_bytes', "Resident memory of this worker's sandboxed processors, summed (they hold the tensor engine)", (rss) => rss.reduce((x, y) => x + y, 0));
  sandbox('ood_audit_sandbox_max_resident_memory_bytes', 'Resident memory of the largest sandboxed processor of this worker', (rss) => (rss.length > 0 ? Math.max(...rss) : 0));
  const finished = new Counter({ name: 'ood_audit_jobs_finished_total', help: 'Jobs this worker finished', labelNames: ['queue', 'outcome'], registers: [registry] });
  const images = new Counter({ name: 'ood_audit_images_processed_total', help: 'Images processed by this worker', labelNames: ['queue'], registers: [registry] });
  const failures = new Counter({ name: 'ood_audit_image_failures_total', help: 'Images that could not be read or decoded, by reason', labelNames: ['reason'], registers: [registry] });
  const batch = new Histogram({ name: 'ood_audit_batch_seconds', help: 'Latency of one encoder batch (decode + encode)', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16], registers: [registry] });
  const jobSeconds = new Histogram({ name: 'ood_audit_job_seconds', help: 'Job duration', labelNames: ['queue'], buckets: [0.5, 1, 5, 15, 60, 300, 900, 3600], registers: [registry] });

  return {
    registry,
    observe(kind, job, outcome) {
      finished.inc({ queue: kind, outcome });
      if (job.finishedOn !== undefined && job.processedOn !== undefined) jobSeconds.observe({ queue: kind }, (job.finishedOn - job.processedOn) / 1000);
      if (outcome !== 'completed') return;
      const r = job.returnvalue as { images?: number; failed?: number; cached?: boolean; failuresByReason?: Record<string, number>; batchSeconds?: number[] } | null;
      if (r === null || typeof r !== 'object' || (kind !== 'extract' && kind !== 'score')) return;
      // Score jobs extract too (from the cache when they can); encoder work is counted only when done.
      if (r.cached !== true) images.inc({ queue: 'extract' }, Number(r.images ?? 0));
      if (kind === 'score') images.inc({ queue: 'score' }, Number(r.images ?? 0));
      // Failed images are failures of this scan whether the features were extracted now or cached
      // (a cached feature set keeps its failures); a result without reasons counts them as unknown.
      const byReason = r.failuresByReason ?? (Number(r.failed ?? 0) > 0 ? { unknown: Number(r.failed) } : {});
      for (const [reason, n] of Object.entries(byReason)) failures.inc({ reason }, n);
      if (r.cached !== true) for (const s of r.batchSeconds ?? []) batch.observe(s);
    },
  };
}

export interface WorkerMetrics extends MetricsRegistry {
  readonly server: http.Server;
  close(): Promise<void>;
}

export async function startMetrics(port: number, host: string, source: QueueWideSource): Promise<WorkerMetrics> {
  const m = createMetricsRegistry(source);
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found; see /metrics\n');
      return;
    }
    m.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { ...m, server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
