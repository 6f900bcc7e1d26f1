/**
 * The in-process driver: runs a planned run's jobs in this process, in dependency order, through the
 * same job functions the queue processors call. The failure semantics are the queue's: a shard that
 * cannot be extracted or scored fails alone and is reported (scan), while any failed extract fails a
 * fit. Cancellation (ctx.signal) stops between jobs and inside them at batch or epoch boundaries.
 */
import { coerceError, OodError } from '../errors.js';
import type { ExtractResult, FitPlan, ReportResult, ScanPlan, TrainResult } from '../queue/contract.js';
import type { JobContext } from './context.js';
import { extractShard } from './extract-shard.js';
import { reportRun } from './report-run.js';
import { scoreShard } from './score-shard.js';
import { trainModel, type OnEpoch } from './train-model.js';

function checkAborted(ctx: JobContext): void {
  if (ctx.signal?.aborted === true) throw new OodError('ABORTED', 'stopped');
}

export async function runScanInline(plan: ScanPlan, ctx: JobContext): Promise<ReportResult> {
  const failed = new Map<number, string>();
  let extractSeconds = 0;
  let scoreSeconds = 0;
  for (const s of plan.shards) {
    checkAborted(ctx);
    try {
      const scored = await scoreShard(s.score, await extractShard(s.extract, ctx), ctx);
      extractSeconds += scored.extractSeconds;
      scoreSeconds += scored.scoreSeconds;
    } catch (err) {
      checkAborted(ctx);
      const e = coerceError(err);
      ctx.log(`shard ${s.score.shard.index} failed: ${e.message}`);
      failed.set(s.score.shard.index, `${e.code}: ${e.message}`);
    }
  }
  checkAborted(ctx);
  return reportRun(plan.report, { failed, extractSeconds, scoreSeconds }, ctx);
}

export async function runFitInline(plan: FitPlan, ctx: JobContext, onEpoch?: OnEpoch): Promise<TrainResult> {
  const extracted: ExtractResult[] = [];
  for (const p of plan.extracts) {
    checkAborted(ctx);
    extracted.push(await extractShard(p, ctx));
  }
  return trainModel(plan.train, extracted, ctx, onEpoch);
}
