/**
 * The queue driver: a planned run becomes BullMQ jobs with deterministic ids, added in bounded
 * pieces while the input is listed.
 *
 *   start:     the final job (report or train) with one child, the run's "listed" step, delayed
 *              (LISTED_DELAY) and kept delayed by the planner's heartbeat while it lists
 *   per group: one flow, a child of the final job:
 *                scan: group <- score shard i (extract, then score)
 *                      a failed score job does NOT fail the group (it lists the shard's images as
 *                      failures), and a failed group does not fail the report (it lists the
 *                      group's), so one bad shard (an unreadable prefix) never sinks a nightly scan
 *                fit:  group <- extract shard i        (any failed extract fails the fit)
 *   end:       run.json is written and the "listed" step promoted: once it and every group are
 *              done, the final job runs. A planner that dies leaves the step delayed until its
 *              heartbeat runs out; it then fires, finds no run.json and fails the run, loudly.
 *
 * Every Redis call adds at most one group (GROUP_SHARDS shards). Enqueuing a run that is queued,
 * running or done adds nothing; a run whose final job failed is run again under a new id derived
 * from the failed one (its jobs stay for inspection until they expire).
 */
import { FlowProducer, Job, Queue, type FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ConnectionLog } from '../shared/queue/connection-log.js';
import { finalJobOf, jobId, JOB_OPTIONS, QUEUES, type PlannedEnd, type PlannedGroup, type QueueKind, type RunPlan, type RunRecord } from '../shared/queue/contract.js';
import { addRunProgress } from '../shared/queue/run-progress.js';
import { OodError } from '../shared/errors.js';
import { stableHash } from '../shared/hash.js';

export interface QueueTarget {
  readonly connection: Redis;
  readonly prefix: string;
  /** Reports the connection's state once per outage (else BullMQ objects report every retry). */
  readonly redisLog?: ConnectionLog;
}

/** How long the "listed" step waits for the planner's next heartbeat before it fails the run. */
export const LISTED_DELAY_MS = 5 * 60_000;
const HEARTBEAT_MS = 30_000;

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

/** How long a planner waits out a Redis it cannot use (a restart, a rotated password) before it gives up. */
const OUTAGE_MS = 10 * 60_000;

/**
 * Runs a Redis step of the listing again while Redis is unusable (the connection log says so, once);
 * the run's own errors (OodError) end it at once. Steps are idempotent (they check before they add).
 */
async function redisStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const since = Date.now();
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof OodError) throw err;
      if (Date.now() - since > OUTAGE_MS) throw new OodError('STORAGE_TRANSIENT', `${what}: lost Redis for ${OUTAGE_MS / 60_000} minutes (${(err as Error).message})`, { cause: err });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Final-job states of a run that is still going. */
const LIVE = new Set(['waiting', 'waiting-children', 'active', 'delayed', 'prioritized']);

/**
 * The id the queue runs a plan under: the plan's own, unless a run of that id failed: then an id
 * derived from the failed run (deterministic, so two invocations agree), and so on.
 */
async function resolveRun(target: QueueTarget, plan: RunPlan): Promise<{ runId: string; state: string }> {
  let runId = plan.runId;
  for (let attempt = 0; attempt < 100; attempt++) {
    const final = finalJobOf(plan.kind, runId);
    const job = await withQueue(target, final.queue, (q) => Job.fromId(q, final.id));
    if (job === undefined) return { runId, state: 'none' };
    const state = await job.getState();
    if (state !== 'failed') return { runId, state };
    runId = `${plan.kind}-${stableHash(runId, 'after failure', job.finishedOn ?? job.timestamp)}`;
  }
  throw new OodError('INTERNAL', `run ${plan.runId} failed 100 times; see ood-audit status`);
}

/**
 * Claims a scan's output location for its run: two different runs writing the same --out at once
 * would interleave their files. The claim is a Redis key per output holding the run id; it passes
 * to a new run once the holder's report job is no longer live (done, failed or gone; a run whose
 * planner died fails within LISTED_DELAY_MS). Compare-and-set.
 */
async function claimOut(target: QueueTarget, out: string, runId: string): Promise<void> {
  const key = `${target.prefix}:ood-out:${stableHash(out)}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    await target.connection.watch(key);
    const holder = await target.connection.get(key);
    if (holder !== null && holder !== runId) {
      const state = await withQueue(target, 'report', (q) => q.getJobState(jobId(holder, 'report')));
      if (LIVE.has(state)) {
        await target.connection.unwatch();
        throw new OodError('CONFIG_INVALID', `${out} is being written by another run (${holder}, ${state}): wait for it (ood-audit status) or choose another --out`);
      }
    }
    // Kept for as long as finished runs are kept in Redis.
    const done = await target.connection.multi().set(key, runId, 'EX', 30 * 24 * 3600).exec();
    if (done !== null) return;
  }
  throw new OodError('STORAGE_TRANSIENT', `${out}: could not claim the output location (contended)`);
}

/** One group's flow, a child of the run's final job. */
function groupFlow(g: PlannedGroup, parent: { id: string; queue: string }): FlowJob {
  const { runId } = g.group;
  const kind = g.mode === 'fit' ? 'extract' : 'score';
  // A failed extract fails its fit; a failed score job leaves its shard's images as failures.
  const onFailure = g.mode === 'fit' ? { failParentOnFailure: true } : { ignoreDependencyOnFailure: true };
  return {
    name: 'group',
    queueName: QUEUES.group,
    data: g.group,
    // A scan report goes on without a failed group; a fit fails with it.
    opts: { ...JOB_OPTIONS.group, jobId: jobId(runId, 'group', g.group.group.id), parent, ...onFailure },
    children: g.shards.map((s) => ({ name: kind, queueName: QUEUES[kind], data: s, opts: { ...JOB_OPTIONS[kind], jobId: jobId(runId, kind, s.shard.id), ...onFailure } })),
  };
}

export interface RunHooks {
  /** A group was planned; `added` is false when its jobs existed already. */
  readonly onGroup?: (g: PlannedGroup, added: boolean) => void;
  /** The listing is complete. */
  readonly onListed?: (record: RunRecord) => void;
}

export interface StartedRun {
  /** The id the run has in the queue (see resolveRun). */
  readonly runId: string;
  /** False when the run was queued, running or done already (nothing is added). */
  readonly created: boolean;
  /**
   * Lists the input and adds its groups (created runs only; otherwise resolves at once). Rejects
   * with the listing's error; the run then fails in the queue as well.
   */
  list(hooks?: RunHooks): Promise<RunRecord | undefined>;
}

/** Enqueues a planned run: its final job at once, its groups while `list()` lists the input. */
export async function startRun(target: QueueTarget, plan: RunPlan): Promise<StartedRun> {
  const { runId, state } = await resolveRun(target, plan);
  if (state !== 'none') return { runId, created: false, list: () => Promise.resolve(undefined) };
  if (plan.kind === 'scan') await claimOut(target, plan.out, runId);
  const work = plan.workOf(runId);
  const final = finalJobOf(plan.kind, runId);
  const listedId = jobId(runId, 'group', 'listed');
  const producer = new FlowProducer({ connection: target.connection, prefix: target.prefix });
  if (target.redisLog !== undefined) target.redisLog.watch(producer);
  const finalQueue = queueOn(target, final.queue);
  const groupQueue = queueOn(target, 'group');
  const close = async (): Promise<void> => {
    await Promise.allSettled([producer.close(), finalQueue.close(), groupQueue.close()]);
  };
  try {
    // The final job waits for the "listed" step and every group; it reads the listing's facts from run.json.
    const finalJob = plan.finalOf(runId);
    await producer.add({
      name: plan.kind === 'scan' ? 'report' : 'train',
      queueName: QUEUES[final.queue],
      data: finalJob.kind === 'scan' ? finalJob.report : finalJob.train,
      opts: { ...JOB_OPTIONS[final.queue], jobId: final.id },
      children: [{ name: 'listed', queueName: QUEUES.group, data: { runId, step: 'listed', work }, opts: { jobId: listedId, delay: LISTED_DELAY_MS, attempts: 1, removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 }, failParentOnFailure: true } }],
    });
  } catch (err) {
    await close();
    throw err;
  }
  const parent = { id: final.id, queue: finalQueue.qualifiedName };
  let listing: Promise<RunRecord | undefined> | undefined;
  const list = async (hooks: RunHooks = {}): Promise<RunRecord> => {
    const steps = plan.steps(runId);
    // The heartbeat runs on its own timer (a listing page or a group's writes may take a while); a
    // missed one fails the listing at its next step.
    let beatError: unknown;
    const timer = setInterval(() => {
      heartbeat(groupQueue, listedId).catch((err: unknown) => {
        // A Redis error is retried at the next beat; a step that is no longer waiting is final.
        if (err instanceof OodError) beatError ??= err;
      });
    }, HEARTBEAT_MS);
    try {
      let end: PlannedEnd;
      for (;;) {
        const next = await steps.next();
        if (beatError !== undefined) throw beatError;
        if (next.done === true) {
          end = next.value;
          break;
        }
        const g = next.value;
        const added = await redisStep(`run ${runId}: adding group ${g.group.group.id}`, async () => {
          if ((await groupQueue.getJobState(jobId(runId, 'group', g.group.group.id))) !== 'unknown') return false;
          await producer.add(groupFlow(g, parent));
          return true;
        });
        if (added) await redisStep(`run ${runId}: progress`, () => addRunProgress(target.connection, target.prefix, runId, { groups: 1, shards: g.shards.length, images: g.shards.reduce((s, x) => s + x.shard.count, 0) }));
        hooks.onGroup?.(g, added);
      }
      await redisStep(`run ${runId}: progress`, () => addRunProgress(target.connection, target.prefix, runId, { listed: end.record.listed }, true));
      await redisStep(`run ${runId}: completing the listing`, () => promote(groupQueue, listedId));
      hooks.onListed?.(end.record);
      return end.record;
    } catch (err) {
      // Fail the run now rather than at the heartbeat's end: the step fires, finds no run.json and
      // fails the final job with it.
      await promote(groupQueue, listedId).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(timer);
      await close();
    }
  };
  return {
    runId,
    created: true,
    list: (hooks) => (listing ??= list(hooks)),
  };
}

/** Keeps the run's "listed" step waiting while the planner lists. */
async function heartbeat(q: Queue, listedId: string): Promise<void> {
  const job = await Job.fromId(q, listedId);
  if (job === undefined || (await job.getState()) !== 'delayed') throw new OodError('LISTING_INCOMPLETE', `run ${listedId.replace(/\.group\.listed$/, '')}: listing took more than ${LISTED_DELAY_MS / 60_000} minutes between two heartbeats, so its run was failed`);
  await job.changeDelay(LISTED_DELAY_MS);
}

async function promote(q: Queue, listedId: string): Promise<void> {
  const job = await Job.fromId(q, listedId);
  if (job !== undefined && (await job.getState()) === 'delayed') await job.promote();
}
