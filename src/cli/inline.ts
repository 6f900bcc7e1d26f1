/**
 * The CLI's in-process host (--in-process): the engine and a job context whose progress lines sum
 * the per-shard progress of a stage, then the in-process driver. Loaded on demand (a dynamic import),
 * so the queued commands never load the tensor engine.
 */
import type { BackendChoice } from '../shared/backend-choice.js';
import type { EnvConfig } from '../shared/config/env.js';
import type { JobContext, Progress } from '../shared/jobs/context.js';
import { createEngine, engineContext } from '../shared/jobs/engine.js';
import { runFitInline, runScanInline } from '../shared/jobs/run-inline.js';
import type { FitPlan, ReportResult, ScanPlan, TrainResult } from '../shared/queue/contract.js';
import { openLocation } from '../shared/storage/open.js';
import { progress as progressLine, type ProgressLine } from './progress.js';

export interface InlineHost {
  runScan(plan: ScanPlan): Promise<ReportResult>;
  runFit(plan: FitPlan): Promise<TrainResult>;
  close(): Promise<void>;
}

/** One progress line per stage across the shards of a run (a shard's job reports its own count). */
function stageProgress(totals: Readonly<Record<string, { total: number; unit: string }>>): (label: string, total: number, unit: string) => Progress {
  const lines = new Map<string, { line: ProgressLine; base: number; seen: number }>();
  return (label, total, unit) => {
    const stage = totals[label] ?? { total, unit };
    let s = lines.get(label);
    if (s === undefined) {
      s = { line: progressLine(label, stage.total, stage.unit), base: 0, seen: 0 };
      lines.set(label, s);
    }
    const st = s;
    return {
      update: (done, extra) => st.line.update(st.base + done, extra),
      done: (extra) => {
        st.base += total;
        st.seen += total;
        if (st.seen >= stage.total) st.line.done(extra);
        else st.line.update(st.base, extra);
      },
    };
  };
}

export async function createInlineHost(env: EnvConfig, backend: BackendChoice | undefined, log: (m: string) => void): Promise<InlineHost> {
  const open = (uri: string, mustExist = false): ReturnType<typeof openLocation> => openLocation(uri, env, mustExist);
  const engine = await createEngine(backend ?? env.backend, open);
  const context = (totals: Record<string, { total: number; unit: string }>): JobContext => engineContext(engine, open, { log, progress: stageProgress(totals) });
  return {
    runScan: (plan) => runScanInline(plan, context({ extract: { total: plan.images, unit: 'img' }, score: { total: plan.images, unit: 'img' } })),
    runFit: (plan) => {
      log(`backend: ${engine.backend.provider}`);
      return runFitInline(plan, context({ extract: { total: plan.images, unit: 'img' } }));
    },
    close: () => engine.dispose(),
  };
}
