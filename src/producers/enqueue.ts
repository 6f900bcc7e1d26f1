/**
 * The queue driver: a planned run becomes a BullMQ flow with deterministic job ids.
 *
 *   fit:   train (parent) <- extract shard 0..n-1        a failed extract fails the train job
 *   scan:  report (parent) <- score shard i <- extract shard i
 *          a failed extract fails its score job; a failed score job does NOT fail the report: the
 *          report is written without that shard and lists it under missingShards, so one bad shard
 *          (e.g. an unreadable prefix) never sinks a whole nightly scan.
 *
 * Enqueuing a run that already exists (same id: same inputs, ETags, model and settings) adds nothing.
 * A run whose final job failed is removed and enqueued again.
 */
import { FlowProducer, Queue, type FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ConnectionLog } from '../shared/queue/connection-log.js';
import { finalJobOf, jobId, JOB_OPTIONS, QUEUES, type ExtractPayload, type QueueKind, type RunPlan } from '../shared/queue/contract.js';
import { OodError } from '../shared/errors.js';
import { stableHash } from '../shared/hash.js';
import { writePlanFiles, type Open } from './plan.js';

export interface QueueTarget {
  readonly connection: Redis;
  readonly prefix: string;
  /** Reports the connection's state once per outage (else BullMQ objects report every retry). */
  readonly redisLog?: ConnectionLog;
}

/** A BullMQ queue on the target's connection, its errors going to the target's connection log. */
export function queueOn(target: QueueTarget, kind: QueueKind): Queue {
  const q = new Queue(QUEUES[kind], { connection: target.connection, prefix: target.prefix });
  if (target.redisLog !== undefined) target.redisLog.watch(q);
  else q.on('error', () => undefined);
  return q;
}

async function withQueue<T>(target: QueueTarget, kind: QueueKind, fn: (q: Queue) => Promise<T>): Promise<T> {
  const q = queueOn(target, kind);
  try {
    return await fn(q);
  } finally {
    await q.close();
  }
}

function flowOf(plan: RunPlan): FlowJob {
  const extractNode = (p: ExtractPayload): FlowJob => ({
    name: 'extract',
    queueName: QUEUES.extract,
    data: p,
    opts: { ...JOB_OPTIONS.extract, jobId: jobId(p.runId, 'extract', p.shard.index), failParentOnFailure: true },
  });
  if (plan.kind === 'fit') {
    return { name: 'train', queueName: QUEUES.train, data: plan.train, opts: { ...JOB_OPTIONS.train, jobId: finalJobOf(plan).id }, children: plan.extracts.map(extractNode) };
  }
  return {
    name: 'report',
    queueName: QUEUES.report,
    data: plan.report,
    opts: { ...JOB_OPTIONS.report, jobId: finalJobOf(plan).id },
    children: plan.shards.map((s) => ({
      name: 'score',
      queueName: QUEUES.score,
      data: s.score,
      opts: { ...JOB_OPTIONS.score, jobId: jobId(plan.runId, 'score', s.score.shard.index), ignoreDependencyOnFailure: true },
      children: [extractNode(s.extract)],
    })),
  };
}

/** Final-job states of a run that is still going. */
const LIVE = new Set(['waiting', 'waiting-children', 'active', 'delayed', 'prioritized']);

/**
 * Claims a scan's output location for its run: two different runs writing the same --out at once
 * would interleave their files (the last writer wins, and the first run's CLI would report numbers
 * that are not in them). The claim is a Redis key per output holding the run id; it passes to a new
 * run once the holder's report job is no longer live (done, failed or gone). Compare-and-set.
 */
async function claimOut(target: QueueTarget, plan: Extract<RunPlan, { kind: 'scan' }>): Promise<void> {
  const key = `${target.prefix}:ood-out:${stableHash(plan.report.out)}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    await target.connection.watch(key);
    const holder = await target.connection.get(key);
    if (holder !== null && holder !== plan.runId) {
      const state = await withQueue(target, 'report', (q) => q.getJobState(jobId(holder, 'report')));
      if (LIVE.has(state)) {
        await target.connection.unwatch();
        throw new OodError('CONFIG_INVALID', `${plan.report.out} is being written by another run (${holder}, ${state}): wait for it (ood-audit status) or choose another --out`);
      }
    }
    // Kept for as long as finished runs are kept in Redis.
    const done = await target.connection.multi().set(key, plan.runId, 'EX', 30 * 24 * 3600).exec();
    if (done !== null) return;
  }
  throw new OodError('STORAGE_TRANSIENT', `${plan.report.out}: could not claim the output location (contended)`);
}

/** Enqueues a planned run; `created` is false when it was already queued or done. */
export async function enqueuePlan(target: QueueTarget, plan: RunPlan, open: Open): Promise<{ created: boolean }> {
  const final = finalJobOf(plan);
  const state = await withQueue(target, final.queue, async (q) => (await q.getJob(final.id))?.getState());
  if (state !== undefined && state !== 'failed') return { created: false };
  if (plan.kind === 'scan') await claimOut(target, plan);
  if (state === 'failed') await withQueue(target, final.queue, async (q) => (await q.getJob(final.id))?.remove({ removeChildren: true }));
  await writePlanFiles(plan.files, open);
  const producer = new FlowProducer({ connection: target.connection, prefix: target.prefix });
  if (target.redisLog !== undefined) target.redisLog.watch(producer);
  try {
    await producer.add(flowOf(plan));
  } finally {
    await producer.close();
  }
  return { created: true };
}
