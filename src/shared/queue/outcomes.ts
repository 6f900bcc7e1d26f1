/**
 * The last outcome of every scanned input prefix, one small Redis hash (<prefix>:ood-audit:outcomes,
 * one field per input): written by the worker whose report job completes, read by the worker that
 * exports the queue-wide metrics (ood_audit_last_*). So the gauges describe the last run of each
 * prefix whichever worker ran it, and survive worker restarts.
 */
import type { Redis } from 'ioredis';
import { stableHash } from '../hash.js';

/** Inputs kept (the most recent); older ones are dropped when the hash grows past twice this. */
export const OUTCOMES_KEPT = 500;

export interface Outcome {
  /** The scanned input location, and a short stable id of it (metric label). */
  readonly input: string;
  readonly inputId: string;
  readonly out: string;
  readonly runId: string;
  /** The headline's level (the worst of the dataset verdict and its partitions'), what --fail-on acts on. */
  readonly verdict: string;
  readonly scored: number;
  readonly failed: number;
  readonly flagged: number;
  readonly flaggedFraction: number;
  /** When the report job completed (ms since the epoch). */
  readonly at: number;
}

export function outcomesKey(prefix: string): string {
  return `${prefix}:ood-audit:outcomes`;
}

/** The 12-hex-digit id of an input location (a metric label that stays short whatever the URI). */
export function inputId(uri: string): string {
  return stableHash('input', uri).slice(0, 12);
}

/** A location short enough for a metric label: long ones keep their start and their end. */
export function shortLocation(uri: string, max = 96): string {
  return uri.length <= max ? uri : `${uri.slice(0, 40)}...${uri.slice(uri.length - (max - 43))}`;
}

export async function recordOutcome(conn: Redis, prefix: string, o: Omit<Outcome, 'inputId'>): Promise<void> {
  const key = outcomesKey(prefix);
  const id = inputId(o.input);
  await conn.hset(key, id, JSON.stringify({ ...o, inputId: id }));
  if ((await conn.hlen(key)) > 2 * OUTCOMES_KEPT) {
    const old = (await readOutcomes(conn, prefix, Number.MAX_SAFE_INTEGER)).slice(OUTCOMES_KEPT).map((x) => x.inputId);
    if (old.length > 0) await conn.hdel(key, ...old);
  }
}

/** The outcomes, most recent first (at most `limit`); fields that do not parse are skipped. */
export async function readOutcomes(conn: Redis, prefix: string, limit = OUTCOMES_KEPT): Promise<Outcome[]> {
  const all = await conn.hgetall(outcomesKey(prefix));
  const out: Outcome[] = [];
  for (const v of Object.values(all)) {
    try {
      const o = JSON.parse(v) as Outcome;
      if (typeof o.input === 'string' && typeof o.at === 'number' && typeof o.verdict === 'string') out.push(o);
    } catch {
      // A field another version wrote: ignored.
    }
  }
  return out.sort((a, b) => b.at - a.at).slice(0, limit);
}

/**
 * One elected exporter of queue-wide metrics: a lease key renewed by its holder on every scrape
 * (acquired by any worker once it has expired). Returns whether `me` holds the lease now.
 */
const LEASE = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;

export async function holdMetricsLease(conn: Redis, prefix: string, me: string, ttlMs: number): Promise<boolean> {
  return Number(await conn.eval(LEASE, 1, `${prefix}:ood-audit:metrics-leader`, me, String(ttlMs))) === 1;
}
