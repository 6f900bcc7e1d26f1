/** Sandboxed processor of the score queue: a scan's shard -> scoreShard (extract, then score). */
import type { SandboxedJob } from 'bullmq';
import { scoreShard } from '../../shared/jobs/score-shard.js';
import type { ScoreResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function score(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ScoreResult> {
  return runJob(job, token, signal, (ctx) => scoreShard(payloadOf('score', job.data), ctx));
}
