/**
 * A run's progress counters, one small Redis hash per run (<prefix>:ood-run:<runId>): the planner
 * records what it has listed and planned, workers what they have finished. A CLI following the run
 * reads one hash per poll, whatever the number of shards. Counters are for people (progress lines,
 * `status`); the run's outcome never depends on them.
 */
import type { Redis } from 'ioredis';

/** How long a run's counters are kept (as long as its final job). */
const KEEP_SECONDS = 30 * 24 * 3600;

export interface RunProgress {
  /** Entries listed so far, and images planned into shards. */
  readonly listed: number;
  readonly images: number;
  readonly shards: number;
  readonly groups: number;
  /** Whether the listing is complete. */
  readonly listingDone: boolean;
  /** Images whose extract job finished (features, or a per-image failure). */
  readonly extracted: number;
  /** Images whose score job finished. */
  readonly scored: number;
  /** Groups whose job finished. */
  readonly groupsDone: number;
}

export type ProgressField = 'listed' | 'images' | 'shards' | 'groups' | 'extracted' | 'scored' | 'groupsDone';

export function runProgressKey(prefix: string, runId: string): string {
  return `${prefix}:ood-run:${runId}`;
}

/** Adds to a run's counters (and sets `listing` once it is done). */
export async function addRunProgress(conn: Redis, prefix: string, runId: string, add: Partial<Record<ProgressField, number>>, listingDone = false): Promise<void> {
  const key = runProgressKey(prefix, runId);
  const m = conn.multi();
  for (const [field, n] of Object.entries(add)) if (n !== undefined && n !== 0) m.hincrby(key, field, n);
  if (listingDone) m.hset(key, 'listing', 'done');
  m.expire(key, KEEP_SECONDS);
  await m.exec();
}

export async function readRunProgress(conn: Redis, prefix: string, runId: string): Promise<RunProgress> {
  const h = await conn.hgetall(runProgressKey(prefix, runId));
  const n = (f: ProgressField): number => Number(h[f] ?? 0) || 0;
  return { listed: n('listed'), images: n('images'), shards: n('shards'), groups: n('groups'), listingDone: h['listing'] === 'done', extracted: n('extracted'), scored: n('scored'), groupsDone: n('groupsDone') };
}
