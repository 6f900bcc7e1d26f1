/**
 * Per-process state of a sandboxed processor (a child process BullMQ keeps and reuses): the parsed
 * environment and the engine (tensor backend, encoder and model caches), so an encoder or a model
 * is loaded once per process, not once per job. Also the job wrapper that gives a job function its
 * context and turns errors into BullMQ's retry semantics.
 */
import { Job, Queue, type SandboxedJob } from 'bullmq';
import { parseEnv, prepareProcess, type EnvConfig } from '../shared/config/env.js';
import { coerceError } from '../shared/errors.js';
import { formatLogLine } from '../shared/log.js';
import type { JobContext } from '../shared/jobs/context.js';
import { createEngine, engineContext, type Engine } from '../shared/jobs/engine.js';
import { locationsOf, parsePayload, SHUTDOWN_REASON, type PayloadOf, type QueueKind } from '../shared/queue/contract.js';
import { redisConnection } from '../shared/queue/redis.js';
import { openLocation } from '../shared/storage/open.js';
import { assertWithinRoots } from '../shared/storage/roots.js';
import type { Location } from '../shared/storage/locate.js';

// A sandboxed processor is its own process, started by BullMQ rather than our entry point.
prepareProcess();

let envConfig: EnvConfig | undefined;
function env(): EnvConfig {
  envConfig ??= parseEnv(process.env);
  return envConfig;
}

/** Opens a location a job names: only inside this worker's roots (job data is input). */
function open(uri: string, mustExist = false): Location {
  assertWithinRoots(uri, env().workerRoots);
  return openLocation(uri, env(), mustExist);
}

let enginePromise: Promise<Engine> | undefined;
function engine(): Promise<Engine> {
  enginePromise ??= createEngine(env().backend, open, { ortThreads: env().ortThreads }).then((e) => {
    process.stderr.write(`[processor ${process.pid}] backend: ${e.backend.label}\n`);
    return e;
  });
  return enginePromise;
}

/** The context of one job: logs on stderr, progress reported on the job at most every 500 ms (and at the end of a stage). */
function jobContext(job: SandboxedJob, e: Engine, signal: AbortSignal | undefined): JobContext {
  return engineContext(e, open, {
    // One write per line (the parent pipes this process's stderr to its own, chunk by chunk).
    log: (message: string) => {
      const f = env().logFormat;
      process.stderr.write(`${formatLogLine(f, f === 'text' ? `[${job.queueName} ${job.id}] ${message}` : message, { component: 'processor', queue: job.queueName, job: job.id })}\n`);
    },
    progress: (label, total, unit) => {
      let last = 0;
      const send = (done: number, extra?: string): void => {
        void job.updateProgress({ stage: label, done, total, unit, ...(extra !== undefined ? { note: extra } : {}) }).catch(() => undefined);
      };
      return {
        update: (done, extra) => {
          const now = Date.now();
          if (now - last < 500) return;
          last = now;
          send(done, extra);
        },
        done: (extra) => send(total, extra),
      };
    },
    ...(signal !== undefined ? { signal } : {}),
  });
}

/**
 * Puts a cancelled job back to waiting and returns only once Redis has done it. BullMQ's sandbox
 * proxy for moveToWait is fire-and-forget (the parent may close its connection first and leave the
 * job active until the stalled check), so the child does it on its own short-lived connection.
 */
async function release(job: SandboxedJob, token: string | undefined): Promise<void> {
  const connection = redisConnection(env().redis.url);
  const queue = new Queue(job.queueName, { connection, prefix: job.prefix });
  try {
    const j = await Job.fromId(queue, job.id);
    await j?.moveToWait(token);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/**
 * Runs a job function with BullMQ semantics: a shutdown (the worker cancelled the job) puts the job
 * back to waiting without spending an attempt; a permanent error (bad input, bad payload, denied
 * access) fails the job without retries; transient errors are retried with the queue's backoff.
 */
export async function runJob<R>(job: SandboxedJob, token: string | undefined, signal: AbortSignal | undefined, body: (ctx: JobContext) => Promise<R>): Promise<R> {
  try {
    return await body(jobContext(job, await engine(), signal));
  } catch (err) {
    if (signal?.aborted === true) {
      await release(job, token);
      const e = new Error(`released: ${SHUTDOWN_REASON}`);
      e.name = 'WaitingError';
      throw e;
    }
    const e = coerceError(err);
    const out = new Error(`${e.code}: ${e.message}`);
    // Matched by name in the parent process (errors cross the sandbox as plain objects).
    out.name = e.retryable ? 'OodRetryableError' : 'UnrecoverableError';
    throw out;
  }
}

/**
 * A job's payload, validated against the queue contract, with every location it names checked
 * against this worker's roots before anything runs (job data in Redis is input).
 */
export function payloadOf<K extends QueueKind>(kind: K, data: unknown): PayloadOf[K] {
  const p = parsePayload(kind, data);
  for (const uri of locationsOf(kind, p)) assertWithinRoots(uri, env().workerRoots);
  return p;
}

/** The environment of this processor, for the few processors that talk to Redis themselves. */
export function processorEnv(): EnvConfig {
  return env();
}

/** Opens a location with this process's storage settings. */
export { open };
