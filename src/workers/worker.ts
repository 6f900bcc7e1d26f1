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
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { childEnv } from '../shared/config/env.js';
import type { Log, LogFormat } from '../shared/log.js';
import { connectionLog } from '../shared/queue/connection-log.js';
import { KEEP_JOBS, QUEUES, SHUTDOWN_REASON, WORKER_LOCK, type QueueKind } from '../shared/queue/contract.js';
import { redisConnection } from '../shared/queue/redis.js';
import { addRunProgress } from '../shared/queue/run-progress.js';
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

/** Pids of this process's children (the sandboxed processors), from /proc. */
function childPids(): number[] {
  const out: number[] = [];
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) out.push(Number(d));
      } catch {
        // The process ended meanwhile.
      }
    }
  } catch {
    // No /proc (not Linux): nothing to kill by hand.
  }
  return out;
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
    for (const kind of opts.queues) {
      const q = new Queue(QUEUES[kind], { connection: conn, prefix: opts.prefix });
      redisLog.watch(q);
      metricQueues.set(kind, q);
    }
    metrics = await startMetrics(opts.metricsPort, opts.metricsHost ?? '127.0.0.1', metricQueues);
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
