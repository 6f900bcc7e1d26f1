/**
 * The CLI side of the queue pipeline: connect to Redis (or start an embedded one), make sure some
 * worker serves the queues (else start local worker processes, one per core, and stop them at the
 * end), then follow a run to its end with progress per stage, read from the run's counters (one
 * small Redis hash, whatever the size of the run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BackendChoice } from '../shared/backend-choice.js';
import { childEnv, type EnvConfig } from '../shared/config/env.js';
import { OodError } from '../shared/errors.js';
import { checkRedis, ensureRedis, redisConnection, type RedisHandle } from '../shared/queue/redis.js';
import { QUEUE_KINDS, finalJobOf, type QueueKind } from '../shared/queue/contract.js';
import { readRunProgress } from '../shared/queue/run-progress.js';
import { queueOn, type QueueTarget } from '../producers/enqueue.js';
import { connectionLog } from '../shared/queue/connection-log.js';
import { lineSplitter, parseLogLine, type Log } from '../shared/log.js';
import { progress, type ProgressLine } from './progress.js';

export interface PipelineSession extends QueueTarget {
  readonly redis: RedisHandle;
  readonly localWorkers: number;
  close(): Promise<void>;
}

async function workersOn(target: QueueTarget, kind: QueueKind): Promise<number> {
  const q = queueOn(target, kind);
  try {
    return (await q.getWorkers()).length;
  } finally {
    await q.close();
  }
}

export interface OpenOptions {
  /** Queues the run needs; local workers start only if one of them has no worker. */
  readonly needs: readonly QueueKind[];
  /** Local worker processes to start when no worker serves the queues (default: one per core). */
  readonly workers?: number;
  /** Tensor backend of the local workers. */
  readonly backend?: BackendChoice;
  /** The locations of the runs: local workers serve exactly these (their roots). */
  readonly roots: readonly string[];
  readonly log: Log;
}

/**
 * A local worker's stderr, re-emitted through the CLI's log: the worker writes JSON lines (it is
 * started with OOD_LOG_FORMAT=json), read whole line by line (a chunk may end mid-line); its
 * warnings and errors (a job that failed, Redis lost) become CLI lines naming the worker; its info
 * lines, library noise and stack traces are dropped (the run's progress comes from the queues).
 */
export function forwardWorkerLines(pid: number | undefined, log: Log): { push(chunk: Buffer | string): void; flush(): void } {
  return lineSplitter((line) => {
    const e = parseLogLine(line);
    if (e === undefined || (e.level !== 'warn' && e.level !== 'error')) return;
    const { time: _t, level, pid: _p, msg, ...fields } = e;
    const flat: Record<string, string | number | boolean> = {};
    for (const [k, val] of Object.entries(fields)) if (typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean') flat[k] = val;
    log(`worker ${pid ?? '?'}: ${msg}`, { ...flat, level, component: 'worker', workerPid: pid ?? -1 });
  });
}

export async function openPipeline(env: EnvConfig, opts: OpenOptions): Promise<PipelineSession> {
  const redis = await ensureRedis(env.redis, opts.log);
  const connection: Redis = redisConnection(redis.url);
  const redisLog = connectionLog(opts.log);
  redisLog.watchConnection(connection);
  try {
    await checkRedis(connection, redis.url);
  } catch (err) {
    await redis.stop();
    connection.disconnect();
    throw err;
  }
  const target = { connection, prefix: env.queuePrefix, redisLog };
  const children: ChildProcess[] = [];
  const missing: QueueKind[] = [];
  for (const kind of opts.needs) if ((await workersOn(target, kind)) === 0) missing.push(kind);
  if (missing.length > 0) {
    const n = opts.workers ?? cpus().length;
    opts.log(`no worker serves ${missing.join(', ')}: starting ${n} local worker process${n > 1 ? 'es' : ''}`);
    const entry = process.argv[1];
    if (entry === undefined) throw new OodError('INTERNAL', 'cannot locate the ood-audit entry script to start workers');
    for (let i = 0; i < n; i++) {
      const child = spawn(process.execPath, [...process.execArgv, entry, 'worker', '--queues', QUEUE_KINDS.join(','), '--concurrency', '1', '--roots', opts.roots.join(',')], {
        env: childEnv({ redisUrl: redis.url, queuePrefix: env.queuePrefix, logFormat: 'json', ...(opts.backend !== undefined ? { backend: opts.backend } : {}) }),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const lines = forwardWorkerLines(child.pid, opts.log);
      child.stderr?.on('data', (d: Buffer) => lines.push(d));
      child.stderr?.on('end', () => lines.flush());
      children.push(child);
    }
    // Wait until they have registered, so the run does not sit unseen.
    for (let i = 0; i < 200 && (await workersOn(target, missing[0]!)) < 1; i++) await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ...target,
    redis,
    localWorkers: children.length,
    async close(): Promise<void> {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null) return resolve();
              const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
              c.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              c.kill('SIGTERM');
            }),
        ),
      );
      await connection.quit().catch(() => connection.disconnect());
      await redis.stop();
    },
  };
}

/** How long a CLI following a run waits out a Redis it cannot use before it gives up. */
const FOLLOW_OUTAGE_MS = 10 * 60_000;

export interface FollowOptions {
  /** The listing, while this process lists the run's input: its failure ends the wait. */
  readonly listing?: Promise<unknown>;
  readonly signal?: AbortSignal;
}

/** Follows a run until its final job completes; returns the final job's result. */
export async function followRun(session: QueueTarget, kind: 'scan' | 'fit', runId: string, opts: FollowOptions = {}): Promise<unknown> {
  const final = finalJobOf(kind, runId);
  const queue = queueOn(session, final.queue);
  let listingError: unknown;
  let listingDone = opts.listing === undefined;
  opts.listing?.then(
    () => (listingDone = true),
    (err: unknown) => (listingError = err),
  );
  const bars: Record<'extract' | 'score', ProgressLine | undefined> = { extract: undefined, score: undefined };
  let trainBar: ProgressLine | undefined;
  /** One look at the run: its final job's state and the stages' progress; the result once it is done. */
  const poll = async (): Promise<{ readonly value: unknown } | undefined> => {
    // The state first: once it says completed, the job's return value is there (both are written
    // by one Redis script), so a job fetched after it cannot race its completion.
    const state = await queue.getJobState(final.id);
    if (state === 'unknown') throw new OodError('INTERNAL', `run ${runId}: its ${final.queue} job disappeared`);
    const finalJob = await Job.fromId(queue, final.id);
    if (finalJob === undefined) throw new OodError('INTERNAL', `run ${runId}: its ${final.queue} job disappeared`);
    const pr = await readRunProgress(session.connection, session.prefix, runId);
    const stages = kind === 'scan' ? (['extract', 'score'] as const) : (['extract'] as const);
    for (const st of stages) {
      const done = st === 'extract' ? pr.extracted : pr.scored;
      if (pr.images === 0 && done === 0) continue;
      const bar = (bars[st] ??= progress(st, pr.images, 'img'));
      bar.setTotal(pr.images);
      bar.update(done, pr.listingDone ? undefined : `(listing: ${pr.listed} entries so far)`);
    }
    if (kind === 'fit' && state === 'active') {
      const epochs = Number((finalJob.data as { config?: { train?: { epochs?: number } } }).config?.train?.epochs ?? 0);
      trainBar ??= progress('train', epochs, 'epochs');
      const p = finalJob.progress as { stage?: string; done?: number; total?: number; loss?: number } | number;
      if (typeof p === 'object' && p.stage === 'train') trainBar.update(p.done ?? 0, p.loss !== undefined ? `loss ${p.loss.toFixed(5)}` : undefined);
    }
    if (state === 'completed') {
      for (const bar of Object.values(bars)) bar?.done();
      trainBar?.done();
      return { value: finalJob.returnvalue };
    }
    if (state === 'failed') throw new OodError('INTERNAL', `run ${runId} failed: ${finalJob.failedReason}`);
    return undefined;
  };
  let outageSince: number | undefined;
  try {
    for (;;) {
      if (listingError !== undefined) throw listingError;
      if (opts.signal?.aborted === true) throw new OodError('ABORTED', `stopped following run ${runId}; it continues in the queue (ood-audit status)`);
      try {
        const done = await poll();
        if (done !== undefined) return done.value;
        outageSince = undefined;
      } catch (err) {
        // The run's own verdicts end the wait; Redis errors (a restart, a rotated password) are
        // waited out: the run goes on in the queue meanwhile. The connection log says so, once.
        if (err instanceof OodError) {
          // A listing that failed is the better reason than the run failure it caused.
          if (!listingDone) await opts.listing?.catch(() => undefined);
          throw listingError ?? err;
        }
        outageSince ??= Date.now();
        if (Date.now() - outageSince > FOLLOW_OUTAGE_MS) throw new OodError('STORAGE_TRANSIENT', `lost Redis for ${FOLLOW_OUTAGE_MS / 60_000} minutes while following run ${runId} (${(err as Error).message}); it continues in the queue (ood-audit status)`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await queue.close();
  }
}
