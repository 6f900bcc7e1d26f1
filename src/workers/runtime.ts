/**
 * Per-process state of a sandboxed processor (a child process BullMQ keeps and reuses): the parsed
 * environment, the tensor backend, and caches so an encoder or a model is loaded once per process,
 * not once per job. Also the job wrapper that turns errors into BullMQ's retry semantics.
 */
import { Job, Queue, type SandboxedJob } from 'bullmq';
import { initBackend, type BackendInfo } from '../shared/backend.js';
import { parseEnv, type EnvConfig } from '../shared/config/env.js';
import { coerceError, OodError } from '../shared/errors.js';
import { createEncoder, type EncoderSpec } from '../shared/encoder/registry.js';
import type { Encoder } from '../shared/encoder/encoder.js';
import { loadModel, MODEL_FILES } from '../shared/dlsr/artifact.js';
import { disposeModel, type DlsrModel } from '../shared/dlsr/model.js';
import { joinKey } from '../shared/storage/object-store.js';
import { encoderFolders, openLocation } from '../shared/storage/open.js';
import type { Location } from '../shared/storage/locate.js';
import type { RunContext } from '../shared/app/context.js';
import { stableHash } from '../shared/queue/contract.js';
import { redisConnection } from '../shared/queue/redis.js';

let envConfig: EnvConfig | undefined;
export function env(): EnvConfig {
  envConfig ??= parseEnv(process.env);
  return envConfig;
}

let backendPromise: Promise<BackendInfo> | undefined;
export function backend(): Promise<BackendInfo> {
  backendPromise ??= initBackend(env().backend);
  return backendPromise;
}

export function open(uri: string, mustExist = false): Location {
  return openLocation(uri, env(), mustExist);
}

const encoders = new Map<string, Promise<Encoder>>();
export async function encoderFor(spec: EncoderSpec): Promise<Encoder> {
  await backend();
  const key = stableHash(spec);
  let e = encoders.get(key);
  if (e === undefined) {
    e = createEncoder(spec, encoderFolders(env()));
    encoders.set(key, e);
    e.catch(() => encoders.delete(key));
  }
  return e;
}

const models = new Map<string, { etag: string; model: DlsrModel }>();
/** The model at `uri`, reloaded only when its model.json changes. */
export async function modelFor(uri: string): Promise<DlsrModel> {
  await backend();
  const loc = open(uri);
  const head = await loc.store.head(joinKey(loc.prefix, MODEL_FILES.model));
  if (head === undefined) throw new OodError('NOT_FOUND', `no model at ${uri}: ${MODEL_FILES.model} is missing`);
  const cached = models.get(uri);
  if (cached !== undefined && cached.etag === head.etag) return cached.model;
  const model = await loadModel(loc.store, loc.prefix);
  if (cached !== undefined) disposeModel(cached.model);
  models.set(uri, { etag: head.etag, model });
  return model;
}

/** Progress reported on the job, at most every 500 ms (and always at the end of a stage). */
export function jobContext(job: SandboxedJob, info: BackendInfo, signal: AbortSignal | undefined): RunContext {
  return {
    backend: info,
    encoders: encoderFolders(env()),
    log: (message) => {
      process.stderr.write(`[${job.queueName} ${job.id}] ${message}\n`);
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
  };
}

export const SHUTDOWN_REASON = 'worker shutting down';

/** Set by the worker process before it forks processors: the Redis its queues live on. */
export const WORKER_REDIS_ENV = 'OOD_WORKER_REDIS_URL';

/**
 * Puts a cancelled job back to waiting and returns only once Redis has done it. BullMQ's sandbox
 * proxy for moveToWait is fire-and-forget (the parent may close its connection first and leave the
 * job active until the stalled check), so the child does it on its own short-lived connection.
 */
async function release(job: SandboxedJob, token: string | undefined): Promise<void> {
  const url = process.env[WORKER_REDIS_ENV];
  if (url === undefined) {
    await job.moveToWait(token);
    return;
  }
  const connection = redisConnection(url);
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
 * Runs a processor body with BullMQ semantics: a shutdown (the worker cancelled the job) puts the job
 * back to waiting without spending an attempt; a permanent error (bad input, bad payload, denied
 * access) fails the job without retries; transient errors are retried with the queue's backoff.
 */
export async function runJob<R>(job: SandboxedJob, token: string | undefined, signal: AbortSignal | undefined, body: (ctx: RunContext) => Promise<R>): Promise<R> {
  const info = await backend();
  try {
    return await body(jobContext(job, info, signal));
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
