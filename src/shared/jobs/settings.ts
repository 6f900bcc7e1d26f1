/**
 * A run's shared settings (<work>/settings.json) and a group's plan (groups/<id>.plan.json), read by
 * the shard and group jobs: validated like job data, and checked to belong to the job's run.
 */
import { OodError } from '../errors.js';
import { groupPlan, runSettings, workKeys, type GroupPlan, type RunSettings } from '../queue/contract.js';
import { getValidJson, joinKey, objectUri } from '../storage/object-store.js';
import type { JobContext } from './context.js';

export async function settingsOf(p: { readonly runId: string; readonly work: string }, kind: RunSettings['kind'], ctx: JobContext): Promise<RunSettings> {
  const work = ctx.open(p.work);
  const key = joinKey(work.prefix, workKeys.settings);
  const s = await getValidJson(work.store, key, runSettings);
  if (s.runId !== p.runId || s.kind !== kind) throw new OodError('PAYLOAD_INVALID', `${objectUri(work.store, key)}: the settings of ${s.kind} run ${s.runId}, not of ${kind} run ${p.runId}`);
  // Every location it names passes the host's check (a worker's roots) before anything runs.
  for (const uri of [s.input, s.cache, ...(s.model !== undefined ? [s.model] : []), ...(s.out !== undefined ? [s.out] : [])]) ctx.open(uri);
  return s;
}

export async function groupPlanOf(p: { readonly work: string; readonly group: { readonly index: number; readonly id: string } }, ctx: JobContext): Promise<GroupPlan> {
  const work = ctx.open(p.work);
  const key = joinKey(work.prefix, workKeys.groupPlan(p.group.id));
  const plan = await getValidJson(work.store, key, groupPlan);
  if (plan.group.id !== p.group.id || plan.group.index !== p.group.index) throw new OodError('PAYLOAD_INVALID', `${objectUri(work.store, key)}: the plan of group ${plan.group.id}, not ${p.group.id}`);
  return plan;
}
