/**
 * Sandboxed processor of the group queue:
 *   group:  a scan group's score results and failed score jobs (ignored failures, so the group still
 *           runs) -> mergeScanGroup; a fit group's extract results -> collectFitGroup
 *   listed: the run's "listing complete" step -> checks that run.json is there
 */
import type { SandboxedJob } from 'bullmq';
import { checkListed } from '../../shared/jobs/listed.js';
import { collectFitGroup, mergeScanGroup } from '../../shared/jobs/merge-group.js';
import { extractResult, partIndexOf, scoreResult, type GroupResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function group(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<GroupResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('group', job.data);
    if (p.step === 'listed') return checkListed(p, ctx);
    const values = Object.values(await job.getChildrenValues());
    if (p.runId.startsWith('fit-')) return collectFitGroup(p, values.map((v) => extractResult.parse(v)), ctx);
    const failed = new Map<number, string>();
    for (const [jobKey, reason] of Object.entries(await job.getIgnoredChildrenFailures())) {
      const shard = partIndexOf(jobKey, 'score');
      if (shard !== undefined) failed.set(shard, String(reason));
    }
    return mergeScanGroup(p, { results: values.map((v) => scoreResult.parse(v)), failed }, ctx);
  });
}
