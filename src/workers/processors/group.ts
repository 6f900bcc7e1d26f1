/**
 * Sandboxed processor of the group queue:
 *   group:  a scan group's score results and failed score jobs (ignored failures, so the group still
 *           runs) -> mergeScanGroup; a fit group's extract results -> collectFitGroup
 *   listed: the run's "listing complete" step -> checks that run.json is there
 */
import type { SandboxedJob } from 'bullmq';
import { OodError } from '../../shared/errors.js';
import { checkListed } from '../../shared/jobs/listed.js';
import { collectFitGroup, mergeScanGroup } from '../../shared/jobs/merge-group.js';
import { extractResult, jobId, scoreResult, type GroupResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function group(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<GroupResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('group', job.data);
    if (p.step === 'listed') return checkListed(p, ctx);
    const values = Object.values(await job.getChildrenValues());
    if (p.mode === 'fit') return collectFitGroup(p, values.map((v) => extractResult.parse(v)), ctx);
    // Failed score jobs, by shard: their keys end with the job id "<run>.score.<shard id>".
    const byJob = new Map(p.shards.map((s) => [jobId(p.runId, 'score', s.id), s.index]));
    const failed = new Map<number, string>();
    for (const [jobKey, reason] of Object.entries(await job.getIgnoredChildrenFailures())) {
      const shard = byJob.get(jobKey.slice(jobKey.lastIndexOf(':') + 1));
      if (shard === undefined) throw new OodError('INTERNAL', `group ${p.group.id}: a failed child ${jobKey} is not one of its score jobs`);
      failed.set(shard, String(reason));
    }
    return mergeScanGroup(p, { results: values.map((v) => scoreResult.parse(v)), failed }, ctx);
  });
}
