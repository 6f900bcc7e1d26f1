/** Sandboxed processor of the extract queue: parse the payload, run extractShard. */
import type { SandboxedJob } from 'bullmq';
import { extractShard } from '../../shared/jobs/extract-shard.js';
import type { ExtractResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function extract(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ExtractResult> {
  return runJob(job, token, signal, (ctx) => extractShard(payloadOf('extract', job.data), ctx));
}
