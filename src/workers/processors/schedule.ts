/**
 * Processor of the schedule queue: a job scheduler fired (say, nightly); plan an incremental scan of
 * the prefix into the output location expanded for this firing ({date}, {datetime}) and enqueue it,
 * listing the input as the CLI does (the job lasts as long as the listing). This processor is a
 * producer: it plans and enqueues like the CLI does. It records the firing under the schedule's
 * name (when, the run it started, or why it could not) for `ood-audit schedule --list`.
 */
import type { SandboxedJob } from 'bullmq';
import { startRun } from '../../producers/enqueue.js';
import { planScan } from '../../producers/plan.js';
import { coerceError } from '../../shared/errors.js';
import { describeSkipped, expandOut, type ScheduleResult } from '../../shared/queue/contract.js';
import { redisConnection } from '../../shared/queue/redis.js';
import { checkScheduleName, recordFiring, type LastFiring } from '../../shared/queue/schedules.js';
import { open, payloadOf, processorEnv, runJob } from '../runtime.js';

export default async function schedule(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ScheduleResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('schedule', job.data);
    const firedAt = new Date(job.timestamp + Number(job.opts.delay ?? 0));
    const out = expandOut(p.out, firedAt);
    const env = processorEnv();
    const connection = redisConnection(env.redis.url);
    // The scheduler's id is the schedule's name; a job added by hand (no scheduler) is not recorded.
    const name = job.repeatJobKey !== undefined ? checkScheduleName(job.repeatJobKey) : undefined;
    const record = async (firing: Omit<LastFiring, 'firedAt' | 'jobId'>): Promise<void> => {
      if (name !== undefined) await recordFiring(connection, env.queuePrefix, name, { firedAt: firedAt.getTime(), jobId: String(job.id), ...firing });
    };
    let runId: string | undefined;
    try {
      await record({ out });
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
        mdStyle: p.mdStyle,
        ...(p.primary !== undefined ? { primary: p.primary } : {}),
        open,
      });
      const run = await startRun({ connection, prefix: env.queuePrefix }, plan);
      runId = run.runId;
      await record({ runId, out });
      const listed = await run.list();
      ctx.log(`scheduled scan ${job.id}: run ${run.runId} into ${out}${listed !== undefined ? ` (${listed.images} images; skipped: ${describeSkipped(listed.skippedByReason)})` : ' (already queued or done)'}`);
      return { runId: run.runId, out, created: run.created };
    } catch (err) {
      await record({ ...(runId !== undefined ? { runId } : {}), out, error: coerceError(err).message }).catch(() => undefined);
      throw err;
    } finally {
      await connection.quit().catch(() => connection.disconnect());
    }
  });
}
