/**
 * Sandboxed processor of the report queue: which shards failed (their score jobs' failures, ignored
 * so the report still runs) and the time the shards took -> reportRun.
 */
import type { SandboxedJob } from 'bullmq';
import { reportRun } from '../../shared/jobs/report-run.js';
import { scoreResult, type ReportResult } from '../../shared/queue/contract.js';
import { payloadOf, runJob } from '../runtime.js';

export default async function report(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ReportResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = payloadOf('report', job.data);
    const failed = new Map<number, string>();
    for (const [jobKey, reason] of Object.entries(await job.getIgnoredChildrenFailures())) {
      const m = /\.score\.(\d+)$/.exec(jobKey);
      if (m !== null) failed.set(Number(m[1]), String(reason));
    }
    let extractSeconds = 0;
    let scoreSeconds = 0;
    for (const v of Object.values(await job.getChildrenValues())) {
      const r = scoreResult.safeParse(v);
      if (!r.success) continue;
      extractSeconds += r.data.extractSeconds;
      scoreSeconds += r.data.scoreSeconds;
    }
    return reportRun(p, { failed, extractSeconds, scoreSeconds }, ctx);
  });
}
