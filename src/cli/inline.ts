/**
 * The CLI's in-process host (--in-process): the engine and a job context whose progress lines sum
 * the per-shard progress of a stage (their totals grow as the listing plans images), then the
 * in-process driver. Loaded on demand (a dynamic import), so the queued commands never load the
 * tensor engine.
 */
import type { BackendChoice } from '../shared/backend-choice.js';
import type { EnvConfig } from '../shared/config/env.js';
import type { JobContext, Progress } from '../shared/jobs/context.js';
import { createEngine, engineContext } from '../shared/jobs/engine.js';
import { runFitInline, runScanInline, type InlineHooks } from '../shared/jobs/run-inline.js';
import type { ReportResult, RunPlan, TrainResult } from '../shared/queue/contract.js';
import { openLocation } from '../shared/storage/open.js';
import { progress as progressLine, type ProgressLine } from './progress.js';

export interface InlineHost {
  runScan(plan: RunPlan, hooks: InlineHooks): Promise<ReportResult>;
  runFit(plan: RunPlan, hooks: InlineHooks): Promise<TrainResult>;
  close(): Promise<void>;
}

/**
 * One progress line per stage across the shards of a run (a shard's job reports its own count);
 * `planned()` is the number of images planned so far, the total of the image stages.
 */
function stageProgress(planned: () => number): { factory: (label: string, total: number, unit: string) => Progress; finish: () => void } {
  const lines = new Map<string, { line: ProgressLine; base: number }>();
  const finish = (): void => {
    for (const s of lines.values()) s.line.done();
  };
  const factory = (label: string, total: number, unit: string): Progress => {
    const image = unit === 'img';
    let s = lines.get(label);
    if (s === undefined || !image) {
      s = { line: progressLine(label, image ? planned() : total, unit), base: 0 };
      if (image) lines.set(label, s);
    }
    const st = s;
    return {
      update: (done, extra) => {
        if (image) st.line.setTotal(planned());
        st.line.update(st.base + done, extra);
      },
      done: (extra) => {
        if (!image) return st.line.done(extra);
        st.base += total;
        st.line.setTotal(planned());
        st.line.update(st.base, extra);
      },
    };
  };
  return { factory, finish };
}

export async function createInlineHost(env: EnvConfig, backend: BackendChoice | undefined, log: (m: string) => void): Promise<InlineHost> {
  const open = (uri: string, mustExist = false): ReturnType<typeof openLocation> => openLocation(uri, env, mustExist);
  const engine = await createEngine(backend ?? env.backend, open, { ortThreads: env.ortThreads });
  log(`backend: ${engine.backend.label}`);
  const start = (hooks: InlineHooks): { ctx: JobContext; hooks: InlineHooks } => {
    let planned = 0;
    const stages = stageProgress(() => planned);
    const ctx = engineContext(engine, open, { log, progress: stages.factory });
    return {
      ctx,
      hooks: {
        onGroup: (g) => {
          planned += g.shards.reduce((s, x) => s + x.shard.count, 0);
          hooks.onGroup?.(g);
        },
        // The listing completes once its last group has run: the image stages are done.
        onListed: (record) => {
          stages.finish();
          hooks.onListed?.(record);
        },
      },
    };
  };
  return {
    runScan: (plan, hooks) => {
      const s = start(hooks);
      return runScanInline(plan, s.ctx, s.hooks);
    },
    runFit: (plan, hooks) => {
      const s = start(hooks);
      return runFitInline(plan, s.ctx, s.hooks);
    },
    close: () => engine.dispose(),
  };
}
