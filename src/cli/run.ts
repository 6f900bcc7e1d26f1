/**
 * Running a planned run from the CLI, one way or the other: through the queues (Redis, and local
 * workers when none serve them) or in this process (--in-process). Both run the same plan through
 * the same job functions; only the driver differs.
 */
import type { EnvConfig } from '../shared/config/env.js';
import { reportResult, trainResult, type FitPlan, type ReportResult, type ScanPlan, type TrainResult } from '../shared/queue/contract.js';
import { closeStores, openLocation } from '../shared/storage/open.js';
import { enqueuePlan } from '../producers/enqueue.js';
import { writePlanFiles } from '../producers/plan.js';
import { followRun, openPipeline, type OpenOptions, type PipelineSession } from './pipeline.js';
import type { InlineHost } from './inline.js';

export interface RunnerOptions extends OpenOptions {
  /** Run in this process instead of through the queues (`backend` is then this process's). */
  readonly inProcess: boolean;
}

export interface Runner {
  /** Runs a scan to its end; `what` describes it in the log line. */
  scan(plan: ScanPlan, what: string): Promise<ReportResult>;
  fit(plan: FitPlan, what: string): Promise<TrainResult>;
  close(): Promise<void>;
}

export async function openRunner(env: EnvConfig, opts: RunnerOptions): Promise<Runner> {
  const open = (uri: string, mustExist = false): ReturnType<typeof openLocation> => openLocation(uri, env, mustExist);
  if (opts.inProcess) {
    let host: InlineHost | undefined;
    const get = async (): Promise<InlineHost> => {
      host ??= await (await import('./inline.js')).createInlineHost(env, opts.backend, opts.log);
      return host;
    };
    const start = async (plan: ScanPlan | FitPlan, what: string): Promise<InlineHost> => {
      opts.log(`run ${plan.runId}: ${what} (in this process)`);
      await writePlanFiles(plan.files, open);
      return get();
    };
    return {
      scan: async (plan, what) => (await start(plan, what)).runScan(plan),
      fit: async (plan, what) => (await start(plan, what)).runFit(plan),
      async close() {
        await host?.close();
        closeStores();
      },
    };
  }
  const session: PipelineSession = await openPipeline(env, opts);
  const enqueue = async (plan: ScanPlan | FitPlan, what: string): Promise<unknown> => {
    const { created } = await enqueuePlan(session, plan, open);
    opts.log(`${created ? 'queued' : 'already queued or done:'} run ${plan.runId}: ${what}`);
    return followRun(session, plan);
  };
  return {
    scan: async (plan, what) => reportResult.parse(await enqueue(plan, what)),
    fit: async (plan, what) => trainResult.parse(await enqueue(plan, what)),
    async close() {
      await session.close();
      closeStores();
    },
  };
}
