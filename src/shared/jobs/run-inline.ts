/**
 * The in-process driver: runs a planned run's jobs in this process, in dependency order, through the
 * same job functions the queue processors call, group by group as the listing produces them. The
 * failure semantics are the queue's: a shard that cannot be extracted or scored fails alone and is
 * reported (scan), while any failed extract fails a fit. Cancellation (ctx.signal) stops between
 * jobs and inside them at batch or epoch boundaries.
 */
import { coerceError, OodError } from '../errors.js';
import type { PlannedEnd, PlannedGroup, ReportResult, RunPlan, RunRecord, TrainResult } from '../queue/contract.js';
import { joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';
import { extractShard } from './extract-shard.js';
import { collectFitGroup, mergeScanGroup } from './merge-group.js';
import { reportRun } from './report-run.js';
import { scoreShard } from './score-shard.js';
import { trainModel, type OnEpoch } from './train-model.js';

export interface InlineHooks {
  /** A group was planned (before it runs). */
  readonly onGroup?: (g: PlannedGroup) => void;
  /** The listing is complete. */
  readonly onListed?: (record: RunRecord) => void;
}

function checkAborted(ctx: JobContext): void {
  if (ctx.signal?.aborted === true) throw new OodError('ABORTED', 'stopped');
}

/** The reason a job failed, as the queue records it ("CODE: message"). */
function reasonOf(err: unknown): string {
  const e = coerceError(err);
  return `${e.code}: ${e.message}`;
}

/** Runs each planned group with `runGroup` as the listing yields it; returns the plan's end. */
async function runGroups(plan: RunPlan, hooks: InlineHooks, ctx: JobContext, runGroup: (g: PlannedGroup) => Promise<void>): Promise<PlannedEnd> {
  const steps = plan.steps(plan.runId);
  for (;;) {
    checkAborted(ctx);
    let next: IteratorResult<PlannedGroup, PlannedEnd>;
    try {
      next = await steps.next();
    } catch (err) {
      // The listing failed: the run cannot complete, and no other job uses its work area.
      const out = ctx.open(plan.out);
      await out.store.deletePrefix(`${joinKey(out.prefix, '.work', plan.runId)}/`).catch(() => undefined);
      throw err;
    }
    if (next.done === true) {
      hooks.onListed?.(next.value.record);
      return next.value;
    }
    hooks.onGroup?.(next.value);
    await runGroup(next.value);
  }
}

export async function runScanInline(plan: RunPlan, ctx: JobContext, hooks: InlineHooks = {}): Promise<ReportResult> {
  const failedGroups = new Map<number, string>();
  const end = await runGroups(plan, hooks, ctx, async (g) => {
    try {
      const results = [];
      const failed = new Map<number, string>();
      for (const s of g.shards) {
        checkAborted(ctx);
        try {
          results.push(await scoreShard(s, ctx));
        } catch (err) {
          checkAborted(ctx);
          ctx.log(`shard ${s.shard.index} failed: ${coerceError(err).message}`);
          failed.set(s.shard.index, reasonOf(err));
        }
      }
      await mergeScanGroup(g.group, { results, failed }, ctx);
    } catch (err) {
      checkAborted(ctx);
      ctx.log(`group ${g.group.group.index} failed: ${coerceError(err).message}`);
      failedGroups.set(g.group.group.index, reasonOf(err));
    }
  });
  checkAborted(ctx);
  if (end.kind !== 'scan') throw new OodError('INTERNAL', 'a scan plan ended as a fit');
  return reportRun(end.report, failedGroups, ctx);
}

export async function runFitInline(plan: RunPlan, ctx: JobContext, hooks: InlineHooks = {}, onEpoch?: OnEpoch): Promise<TrainResult> {
  const end = await runGroups(plan, hooks, ctx, async (g) => {
    const results = [];
    for (const s of g.shards) {
      checkAborted(ctx);
      results.push(await extractShard(s, ctx));
    }
    await collectFitGroup(g.group, results, ctx);
  });
  checkAborted(ctx);
  if (end.kind !== 'fit') throw new OodError('INTERNAL', 'a fit plan ended as a scan');
  return trainModel(end.train, ctx, onEpoch);
}
