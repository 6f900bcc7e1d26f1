/**
 * The worker process: one BullMQ Worker per queue it serves, each running its processor sandboxed in
 * child processes (tensor work never blocks the event loop that renews job locks; children are kept
 * and reused, so a model loads once per child, not once per job).
 *
 * Shutdown: the first SIGTERM/SIGINT stops taking jobs and asks running jobs to release themselves
 * at their next batch or epoch boundary (they go back to waiting, training keeps its checkpoint);
 * connections are closed when they have. A second signal, or the timeout, forces the exit.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES, SHUTDOWN_REASON, WORKER_LOCK, type QueueKind } from '../shared/queue/contract.js';
import { redisConnection } from '../shared/queue/redis.js';
import { startMetrics, type WorkerMetrics } from './metrics.js';

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
  readonly log: (message: string) => void;
}

export interface WorkerSet {
  readonly workers: readonly Worker[];
  /** Graceful stop: no new jobs, running ones released or finished, connections closed. */
  close(force?: boolean): Promise<void>;
}

/** The processor file for a queue: compiled .js next to this file, or .ts when running from source. */
export function processorFile(kind: QueueKind): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
  const file = path.join(here, 'processors', `${kind}${ext}`);
  if (!existsSync(file)) throw new Error(`processor file missing: ${file} (run npm run build)`);
  return file;
}

export async function startWorkers(opts: WorkerOptions): Promise<WorkerSet> {
  const connections: Redis[] = [];
  let metrics: WorkerMetrics | undefined;
  const metricQueues = new Map<QueueKind, Queue>();
  if (opts.metricsPort !== undefined) {
    const conn = redisConnection(opts.redisUrl);
    connections.push(conn);
    for (const kind of opts.queues) metricQueues.set(kind, new Queue(QUEUES[kind], { connection: conn, prefix: opts.prefix }));
    metrics = await startMetrics(opts.metricsPort, opts.metricsHost ?? '127.0.0.1', metricQueues);
    const a = metrics.server.address();
    opts.log(`metrics on http://${opts.metricsHost ?? '127.0.0.1'}:${typeof a === 'object' && a !== null ? a.port : opts.metricsPort}/metrics`);
  }
  // Processors are forked from this process and inherit its environment (REDIS_URL and the rest),
  // so they parse the same configuration.
  const workers = opts.queues.map((kind) => {
    const connection = redisConnection(opts.redisUrl);
    connections.push(connection);
    const w = new Worker(QUEUES[kind], processorFile(kind), {
      connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      useWorkerThreads: false,
      name: `ood-audit:${kind}:${process.pid}`,
      ...WORKER_LOCK,
      ...(opts.lockDuration !== undefined ? { lockDuration: opts.lockDuration } : {}),
      ...(opts.stalledInterval !== undefined ? { stalledInterval: opts.stalledInterval } : {}),
    });
    w.on('failed', (job, err) => {
      opts.log(`[${kind}] job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`);
      if (job !== undefined) metrics?.observe(kind, job, 'failed');
    });
    w.on('completed', (job) => metrics?.observe(kind, job, 'completed'));
    w.on('error', (err) => opts.log(`[${kind}] worker error: ${err.message}`));
    return w;
  });
  let closing: Promise<void> | undefined;
  return {
    workers,
    close(force = false): Promise<void> {
      if (force) {
        void metrics?.close();
        return Promise.allSettled(workers.map((w) => w.close(true))).then(() => {
          for (const c of connections) c.disconnect();
        });
      }
      closing ??= (async () => {
        for (const w of workers) w.cancelAllJobs(SHUTDOWN_REASON);
        const results = await Promise.allSettled(workers.map((w) => w.close()));
        for (const r of results) if (r.status === 'rejected') opts.log(`worker close failed: ${String(r.reason)}`);
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
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals += 1;
      if (signals === 1) {
        opts.log(`${sig}: stopping; running jobs are released at their next batch or epoch (forced after ${opts.shutdownTimeout}s)`);
        const timer = setTimeout(() => {
          opts.log('shutdown timeout: forcing exit');
          void set.close(true).finally(() => process.exit(1));
        }, opts.shutdownTimeout * 1000);
        timer.unref();
        void set.close().then(resolve, resolve);
      } else {
        opts.log(`${sig} again: forcing exit`);
        void set.close(true).finally(() => process.exit(1));
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
