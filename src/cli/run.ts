/**
 * Running a planned run from the CLI, one way or the other: through the queues (Redis, and local
 * workers when none serve them) or in this process (--in-process). Both run the same plan through
 * the same job functions; only the driver differs.
 */
import type { EnvConfig } from '../shared/config/env.js';
import { reportResult, trainResult, type ReportResult, type RunPlan, type RunRecord, type TrainResult } from '../shared/queue/contract.js';
import { closeStores } from '../shared/storage/open.js';
import { startRun } from '../producers/enqueue.js';
import { followRun, openPipeline, type OpenOptions, type PipelineSession } from './pipeline.js';
import type { InlineHost } from './inline.js';

export interface RunnerOptions extends OpenOptions {
  /** Run in this process instead of through the queues (`backend` is then this process's). */
  readonly inProcess: boolean;
}

/** What the CLI says of a run: a label when it starts, a line when its listing is complete. */
export interface RunLabels {
  readonly what: string;
  readonly listed: (record: RunRecord) => string;
}

export interface Runner {
  scan(plan: RunPlan, labels: RunLabels): Promise<ReportResult>;
  fit(plan: RunPlan, labels: RunLabels): Promise<TrainResult>;
  close(): Promise<void>;
}

export async function openRunner(env: EnvConfig, opts: RunnerOptions): Promise<Runner> {
  if (opts.inProcess) {
    let host: InlineHost | undefined;
    const get = async (plan: RunPlan, labels: RunLabels): Promise<InlineHost> => {
      opts.log(`run ${plan.runId}: ${labels.what} (in this process)`);
      host ??= await (await import('./inline.js')).createInlineHost(env, opts.backend, opts.log);
      return host;
    };
    const hooks = (plan: RunPlan, labels: RunLabels): { onListed: (r: RunRecord) => void } => ({ onListed: (r) => opts.log(`run ${plan.runId}: listed ${labels.listed(r)}`) });
    return {
      scan: async (plan, labels) => (await get(plan, labels)).runScan(plan, hooks(plan, labels)),
      fit: async (plan, labels) => (await get(plan, labels)).runFit(plan, hooks(plan, labels)),
      async close() {
        await host?.close();
        closeStores();
      },
    };
  }
  const session: PipelineSession = await openPipeline(env, opts);
  const run = async (plan: RunPlan, labels: RunLabels): Promise<unknown> => {
    const started = await startRun(session, plan);
    opts.log(`${started.created ? 'queued' : 'already queued or done:'} run ${started.runId}: ${labels.what}`);
    const listing = started.list({ onListed: (r) => opts.log(`run ${started.runId}: listed ${labels.listed(r)}`) });
    return followRun(session, plan.kind, started.runId, { listing });
  };
  return {
    scan: async (plan, labels) => reportResult.parse(await run(plan, labels)),
    fit: async (plan, labels) => trainResult.parse(await run(plan, labels)),
    async close() {
      await session.close();
      closeStores();
    },
  };
}
