/**
 * Processor of the schedule queue: a job scheduler fired (say, nightly); enqueue an incremental scan
 * of the prefix into the output location expanded for this firing ({date}, {datetime}).
 */
import type { SandboxedJob } from 'bullmq';
import { enqueueScan } from '../../producers/runs.js';
import { modelIdentity } from '../../producers/model-identity.js';
import { expandOut, parsePayload, type ScheduleResult } from '../../shared/queue/contract.js';
import { redisConnection } from '../../shared/queue/redis.js';
import { env, open, runJob } from '../runtime.js';

export default async function schedule(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ScheduleResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = parsePayload('schedule', job.data);
    const firedAt = new Date(job.timestamp + Number(job.opts.delay ?? 0));
    const out = expandOut(p.out, firedAt);
    const model = open(p.model, true);
    const { encoder, identity } = await modelIdentity(model);
    const connection = redisConnection(env().redisUrl ?? 'redis://127.0.0.1:6379');
    try {
      const run = await enqueueScan(
        { connection, prefix: env().queuePrefix },
        {
          input: open(p.input, true),
          model: p.model,
          out,
          ...(p.cache !== undefined ? { cache: p.cache } : {}),
          encoder,
          modelIdentity: identity,
          shardSize: p.shardSize,
          incremental: !p.full,
          recordState: true,
          partitionDepth: p.partitionDepth,
          topK: p.topK,
          openWork: (uri) => open(uri),
        },
      );
      ctx.log(`scheduled scan ${job.id}: run ${run.runId} into ${out} (${run.images} images, ${run.skippedUnchanged ?? 0} unchanged skipped)`);
      return { runId: run.runId, out, images: run.images, created: run.created };
    } finally {
      await connection.quit().catch(() => connection.disconnect());
    }
  });
}
