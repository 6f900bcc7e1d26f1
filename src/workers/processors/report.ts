/**
 * Sandboxed processor of the report queue: which groups failed (their jobs' failures, ignored so the
 * report still runs) -> reportRun.
 */
import type { SandboxedJob } from 'bullmq';
import { reportRun } from '../../shared/jobs/report-run.js';
import { partIndexOf, type ReportResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function report(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ReportResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('report', job.data);
    const failed = new Map<number, string>();
    for (const [jobKey, reason] of Object.entries(await job.getIgnoredChildrenFailures())) {
      const g = partIndexOf(jobKey, 'group');
      if (g !== undefined) failed.set(g, String(reason));
    }
    return reportRun(p, failed, ctx);
  });
}
