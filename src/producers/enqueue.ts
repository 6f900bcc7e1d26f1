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
import { finalJobOf, jobId, JOB_OPTIONS, QUEUES, type ExtractPayload, type QueueKind, type RunPlan } from '../shared/queue/contract.js';
import { writePlanFiles, type Open } from './plan.js';

export interface QueueTarget {
  readonly connection: Redis;
  readonly prefix: string;
}

async function withQueue<T>(target: QueueTarget, kind: QueueKind, fn: (q: Queue) => Promise<T>): Promise<T> {
  const q = new Queue(QUEUES[kind], { connection: target.connection, prefix: target.prefix });
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

/** Enqueues a planned run; `created` is false when it was already queued or done. */
export async function enqueuePlan(target: QueueTarget, plan: RunPlan, open: Open): Promise<{ created: boolean }> {
  const final = finalJobOf(plan);
  const state = await withQueue(target, final.queue, async (q) => (await q.getJob(final.id))?.getState());
  if (state !== undefined && state !== 'failed') return { created: false };
  if (state === 'failed') await withQueue(target, final.queue, async (q) => (await q.getJob(final.id))?.remove({ removeChildren: true }));
  await writePlanFiles(plan.files, open);
  const producer = new FlowProducer({ connection: target.connection, prefix: target.prefix });
  try {
    await producer.add(flowOf(plan));
  } finally {
    await producer.close();
  }
  return { created: true };
}
