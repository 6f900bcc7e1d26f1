/**
 * The worker process: one BullMQ Worker per queue it serves, each running its processor sandboxed in
 * child processes (tensor work never blocks the event loop that renews job locks; children are kept
 * and reused, so a model loads once per child, not once per job).
 *
 * Shutdown: the first SIGTERM/SIGINT stops taking jobs and asks running jobs to release themselves
 * at their next batch or epoch boundary (they go back to waiting, training keeps its checkpoint);
 * connections are closed when they have. A second signal, or the timeout, forces the exit: the
 * sandboxed children are killed and the process exits at once, whatever Redis does (a graceful close
 * can wait forever on a Redis that is gone; a released lock is not needed, it expires).
 *
 * Processors are forked with exactly the configuration of this worker (Redis, queue prefix, roots).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { childEnv } from '../shared/config/env.js';
import type { Log, LogFormat } from '../shared/log.js';
import { connectionLog } from '../shared/queue/connection-log.js';
import { KEEP_JOBS, QUEUE_KINDS, QUEUES, reportPayload, reportResult, SHUTDOWN_REASON, WORKER_LOCK, type QueueKind } from '../shared/queue/contract.js';
import { holdMetricsLease, readOutcomes, recordOutcome } from '../shared/queue/outcomes.js';
import { redisConnection } from '../shared/queue/redis.js';
import { addRunProgress } from '../shared/queue/run-progress.js';
import { childPids } from './children.js';
import { exporterId, startMetrics, type WorkerMetrics } from './metrics.js';

/** The metrics exporter's lease: renewed on every scrape, so a scrape interval well under it. */
const METRICS_LEASE_MS = 60_000;

export interface WorkerOptions {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly queues: readonly QueueKind[];
  /** Jobs in parallel per queue (each in its own child process). */
  readonly concurrency: number;
  /** Seconds to wait for running jobs to release on shutdown before forcing. */
  readonly shutdownTimeout: number;
  /** Job lock duration and stalled-job check interval, ms (a crashed worker's job is taken over after about their sum). */
  readonly lockDuration?: number;
  readonly stalledInterval?: number;
  /** Serve Prometheus metrics on this port (and host, default 127.0.0.1). */
  readonly metricsPort?: number;
  readonly metricsHost?: string;
  /** The locations this worker serves (jobs naming others are refused). */
  readonly roots: readonly string[];
  readonly log: Log;
  /** Log format of the sandboxed processors (default: the environment's). */
  readonly logFormat?: LogFormat;
}

export interface WorkerSet {
  readonly workers: readonly Worker[];
  /** Graceful stop: no new jobs, running ones released or finished, connections closed. */
  close(): Promise<void>;
}

/** The processor file for a queue: compiled .js next to this file, or .ts when running from source. */
export function processorFile(kind: QueueKind): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
  const file = path.join(here, 'processors', `${kind}${ext}`);
  if (!existsSync(file)) throw new Error(`processor file missing: ${file} (run npm run build)`);
  return file;
}

/** Ends this worker now: kills its sandboxed children, then exits with status 1. */
function forceExit(): never {
  for (const pid of childPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  process.exit(1);
}

export async function startWorkers(opts: WorkerOptions): Promise<WorkerSet> {
  const connections: Redis[] = [];
  const redisLog = connectionLog(opts.log);
  let metrics: WorkerMetrics | undefined;
  const metricQueues = new Map<QueueKind, Queue>();
  if (opts.metricsPort !== undefined) {
    const conn = redisConnection(opts.redisUrl);
    redisLog.watchConnection(conn);
    connections.push(conn);
    // Every queue, whichever this worker serves: the exporter of the queue-wide gauges reports them all.
    for (const kind of QUEUE_KINDS) {
      const q = new Queue(QUEUES[kind], { connection: conn, prefix: opts.prefix });
      redisLog.watch(q);
      metricQueues.set(kind, q);
    }
    const me = exporterId();
    metrics = await startMetrics(opts.metricsPort, opts.metricsHost ?? '127.0.0.1', {
      isExporter: () => holdMetricsLease(conn, opts.prefix, me, METRICS_LEASE_MS),
      jobCounts: async () => {
        const out = new Map<QueueKind, Record<string, number>>();
        for (const [kind, q] of metricQueues) out.set(kind, await q.getJobCounts('waiting', 'waiting-children', 'active', 'completed', 'failed', 'delayed', 'prioritized'));
        return out;
      },
      outcomes: () => readOutcomes(conn, opts.prefix),
    });
    const a = metrics.server.address();
    opts.log(`metrics on http://${opts.metricsHost ?? '127.0.0.1'}:${typeof a === 'object' && a !== null ? a.port : opts.metricsPort}/metrics`);
  }
  // The runs' progress counters (one hash per run; see run-progress.ts).
  const progressConn = redisConnection(opts.redisUrl);
  redisLog.watchConnection(progressConn);
  connections.push(progressConn);
  const countFinished = (kind: QueueKind, job: Job): void => {
    const runId = (job.data as { runId?: unknown } | undefined)?.runId;
    if (typeof runId !== 'string' || !/^(scan|fit)-[0-9a-f]{16}$/.test(runId)) return;
    const r = job.returnvalue as { images?: unknown; failed?: unknown; group?: unknown } | null;
    const n = Number(r?.images ?? 0) + Number(r?.failed ?? 0);
    const add = kind === 'extract' ? { extracted: n } : kind === 'score' ? { extracted: n, scored: n } : kind === 'group' && Number(r?.group ?? -1) >= 0 ? { groupsDone: 1 } : undefined;
    if (add !== undefined && Number.isFinite(n)) void addRunProgress(progressConn, opts.prefix, runId, add).catch(() => undefined);
  };
  // The last outcome of each scanned input, for the ood_audit_last_* gauges (whoever exports them).
  const recordReport = (job: Job): void => {
    const p = reportPayload.safeParse(job.data);
    const r = reportResult.safeParse(job.returnvalue);
    if (!p.success || !r.success) return;
    const o = { input: p.data.input, out: p.data.out, runId: p.data.runId, verdict: r.data.headline ?? r.data.verdict, scored: r.data.scored, failed: r.data.failed, flagged: r.data.flagged, flaggedFraction: r.data.flaggedFraction, at: job.finishedOn ?? Date.now() };
    void recordOutcome(progressConn, opts.prefix, o).catch((err: unknown) => opts.log(`could not record the outcome of ${job.id ?? '?'}: ${String(err)}`, { level: 'warn' }));
  };
  const forkEnv = childEnv({ redisUrl: opts.redisUrl, queuePrefix: opts.prefix, workerRoots: opts.roots, ...(opts.logFormat !== undefined ? { logFormat: opts.logFormat } : {}) });
  const workers = opts.queues.map((kind) => {
    const connection = redisConnection(opts.redisUrl);
    redisLog.watchConnection(connection);
    connections.push(connection);
    const w = new Worker(QUEUES[kind], processorFile(kind), {
      connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      useWorkerThreads: false,
      workerForkOptions: { env: forkEnv },
      name: `ood-audit:${kind}:${process.pid}`,
      ...KEEP_JOBS[kind],
      ...WORKER_LOCK,
      ...(opts.lockDuration !== undefined ? { lockDuration: opts.lockDuration } : {}),
      ...(opts.stalledInterval !== undefined ? { stalledInterval: opts.stalledInterval } : {}),
    });
    w.on('failed', (job, err) => {
      opts.log(`[${kind}] job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`, { level: 'warn', event: 'job_failed', queue: kind, job: job?.id, attempt: job?.attemptsMade });
      if (job !== undefined) metrics?.observe(kind, job, 'failed');
    });
    w.on('completed', (job) => {
      metrics?.observe(kind, job, 'completed');
      countFinished(kind, job);
      if (kind === 'report') recordReport(job);
    });
    // Connection errors are reported once per outage (connectionLog); others as they come.
    w.on('error', (err) => (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|NOAUTH|WRONGPASS|closed/i.test(err.message) ? undefined : opts.log(`[${kind}] worker error: ${err.message}`, { level: 'error', queue: kind })));
    redisLog.watch(w);
    return w;
  });
  let closing: Promise<void> | undefined;
  return {
    workers,
    close(): Promise<void> {
      closing ??= (async () => {
        for (const w of workers) w.cancelAllJobs(SHUTDOWN_REASON);
        const results = await Promise.allSettled(workers.map((w) => w.close()));
        for (const r of results) if (r.status === 'rejected') opts.log(`worker close failed: ${String(r.reason)}`, { level: 'error' });
        await Promise.allSettled([...metricQueues.values()].map((q) => q.close()));
        await metrics?.close();
        await Promise.allSettled(connections.map((c) => c.quit()));
      })();
      return closing;
    },
  };
}

/** Runs workers until SIGTERM/SIGINT; resolves when they are closed. */
export async function runWorkersUntilSignal(opts: WorkerOptions): Promise<void> {
  const set = await startWorkers(opts);
  opts.log(`worker ${process.pid} serving ${opts.queues.join(', ')} (concurrency ${opts.concurrency} per queue)`);
  if (opts.roots.length === 0) opts.log('no roots configured (OOD_WORKER_ROOTS or --roots): every job naming a location will be refused', { level: 'warn' });
  else opts.log(`roots: ${opts.roots.join(', ')}`);
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals += 1;
      if (signals === 1) {
        opts.log(`${sig}: stopping; running jobs are released at their next batch or epoch (forced after ${opts.shutdownTimeout}s)`);
        setTimeout(() => {
          opts.log('shutdown timeout: forcing exit', { level: 'warn' });
          forceExit();
        }, opts.shutdownTimeout * 1000).unref();
        void set.close().then(resolve, resolve);
      } else {
        opts.log(`${sig} again: forcing exit`, { level: 'warn' });
        forceExit();
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
