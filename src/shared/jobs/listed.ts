/**
 * The "listing complete" step of a run (see src/producers/enqueue.ts): it runs when the planner
 * promotes it, or when the planner's heartbeat ran out. Either way the listing is complete only if
 * run.json, written last by the planner, is there; otherwise the run fails (the step fails its
 * final job), naming the reason.
 */
import { OodError } from '../errors.js';
import { workKeys, type GroupResult, type ListedPayload } from '../queue/contract.js';
import { joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';

export async function checkListed(p: ListedPayload, ctx: JobContext): Promise<GroupResult> {
  const work = ctx.open(p.work);
  if ((await work.store.head(joinKey(work.prefix, workKeys.run))) === undefined) {
    throw new OodError('LISTING_INCOMPLETE', `run ${p.runId}: the listing of its input did not complete (the planner failed or stopped before it wrote run.json)`);
  }
  return { group: -1, scored: 0, failed: 0, missingShards: [], extractSeconds: 0, scoreSeconds: 0 };
}
