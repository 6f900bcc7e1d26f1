/** Sandboxed processor of the score queue: the payload and its extract child's result -> scoreShard. */
import type { SandboxedJob } from 'bullmq';
import { OodError } from '../../shared/errors.js';
import { scoreShard } from '../../shared/jobs/score-shard.js';
import { extractResult, type ScoreResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function score(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ScoreResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('score', job.data);
    const children = Object.values(await job.getChildrenValues());
    if (children.length !== 1) throw new OodError('INTERNAL', `score shard ${p.shard.index}: expected one extract result, got ${children.length}`);
    return scoreShard(p, extractResult.parse(children[0]), ctx);
  });
}
