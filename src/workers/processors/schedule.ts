/**
 * Processor of the schedule queue: a job scheduler fired (say, nightly); plan an incremental scan of
 * the prefix into the output location expanded for this firing ({date}, {datetime}) and enqueue it,
 * listing the input as the CLI does (the job lasts as long as the listing). This processor is a
 * producer: it plans and enqueues like the CLI does.
 */
import type { SandboxedJob } from 'bullmq';
import { startRun } from '../../producers/enqueue.js';
import { planScan } from '../../producers/plan.js';
import { describeSkipped, expandOut, type ScheduleResult } from '../../shared/queue/contract.js';
import { redisConnection } from '../../shared/queue/redis.js';
import { open, payloadOf, processorEnv, runJob } from '../runtime.js';

export default async function schedule(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ScheduleResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('schedule', job.data);
    const firedAt = new Date(job.timestamp + Number(job.opts.delay ?? 0));
    const out = expandOut(p.out, firedAt);
    const plan = await planScan({
      input: open(p.input, true),
      model: p.model,
      out,
      ...(p.cache !== undefined ? { cache: p.cache } : {}),
      shardSize: p.shardSize,
      maxBytes: p.maxBytes,
      incremental: !p.full,
      recordState: true,
      partitionDepth: p.partitionDepth,
      topK: p.topK,
      open,
    });
    const env = processorEnv();
    const connection = redisConnection(env.redis.url);
    try {
      const run = await startRun({ connection, prefix: env.queuePrefix }, plan);
      const record = await run.list();
      ctx.log(`scheduled scan ${job.id}: run ${run.runId} into ${out}${record !== undefined ? ` (${record.images} images; skipped: ${describeSkipped(record.skippedByReason)})` : ' (already queued or done)'}`);
      return { runId: run.runId, out, created: run.created };
    } finally {
      await connection.quit().catch(() => connection.disconnect());
    }
  });
}
