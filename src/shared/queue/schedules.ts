/**
 * Schedules of scans: BullMQ job schedulers on the schedule queue, one per name. This module checks
 * what a schedule is made of (its name, cron expression and time zone) with one-line errors, works
 * out its next firings with the same function BullMQ uses, and keeps each schedule's last firing (a
 * small Redis hash the schedule processor writes: when it fired, the run it started or why it
 * could not) so `schedule --list` can show the last run and its verdict.
 *
 * Cron expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds
 * first, or are one of @yearly, @annually, @monthly, @weekly, @daily, @hourly. Time zones are IANA
 * names (UTC, Europe/Paris, ...); a schedule without one fires in UTC.
 */
import { getNextMillis } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { OodError } from '../errors.js';
import { QUEUES } from './contract.js';

/** The default time zone of a schedule: firings then match the {date} of the output (UTC). */
export const DEFAULT_TIME_ZONE = 'UTC';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly']);

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
}

/** A schedule's name: it is a BullMQ job scheduler id and part of job ids, so no ':' and no spaces. */
export function checkScheduleName(name: string): string {
  if (!NAME.test(name)) throw new OodError('CONFIG_INVALID', `invalid --name ${JSON.stringify(name)}: expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  return name;
}

/** An IANA time zone that this Node (and so the cron library, which uses Intl) knows. */
export function checkTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new OodError('CONFIG_INVALID', `invalid --tz ${JSON.stringify(tz)}: not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)`);
  }
  return tz;
}

/**
 * The next `count` firings after `from` (ms since the epoch) of a cron expression in a time zone,
 * checking both: a wrong field count, a value out of range or an expression that never fires is a
 * one-line CONFIG_INVALID error naming the expression.
 */
export function nextFirings(cron: string, tz: string, from: number, count = 3): number[] {
  checkTimeZone(tz);
  const expr = cron.trim();
  const fields = expr.split(/\s+/);
  const bad = (why: string): OodError => new OodError('CONFIG_INVALID', `invalid --cron ${JSON.stringify(cron)}: ${why}`);
  if (expr.startsWith('@')) {
    if (fields.length !== 1 || !MACROS.has(expr)) throw bad(`expected one of ${[...MACROS].join(', ')}`);
  } else if (fields.length !== 5 && fields.length !== 6) {
    throw bad(`expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got ${fields.length}`);
  }
  const out: number[] = [];
  let at = from;
  for (let i = 0; i < count; i++) {
    let next: number | undefined;
    try {
      next = getNextMillis(at, { pattern: expr, tz });
    } catch (err) {
      throw bad(oneLine(err));
    }
    if (next === undefined || !Number.isFinite(next)) throw bad('it never fires');
    out.push(next);
    at = next;
  }
  return out;
}

/** "2026-11-28 02:00:00 Europe/Paris" (local time in the schedule's zone). */
export function formatInZone(ms: number, tz: string): string {
  const local = new Intl.DateTimeFormat('sv-SE', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(new Date(ms));
  return `${local} ${tz}`;
}

/** A schedule's last firing, as the schedule processor records it. */
export const lastFiring = z.object({
  /** When it fired (ms since the epoch). */
  firedAt: z.number(),
  /** The schedule queue's job of this firing. */
  jobId: z.string(),
  /** The scan run it started, and its output location (placeholders expanded). */
  runId: z.string().optional(),
  out: z.string().optional(),
  /** Why the firing could not start its scan (the last attempt's error). */
  error: z.string().optional(),
});
export type LastFiring = z.infer<typeof lastFiring>;

/** The Redis hash of last firings (field: schedule name), outside BullMQ's keys of the queue. */
export function lastFiringsKey(prefix: string): string {
  return `${prefix}:ood-audit:${QUEUES.schedule}:last-firing`;
}

export async function recordFiring(connection: Redis, prefix: string, name: string, firing: LastFiring): Promise<void> {
  await connection.hset(lastFiringsKey(prefix), name, JSON.stringify(lastFiring.parse(firing)));
}

export async function forgetFiring(connection: Redis, prefix: string, name: string): Promise<void> {
  await connection.hdel(lastFiringsKey(prefix), name);
}

/** Every schedule's last firing; a record that does not parse is left out (it is Redis data). */
export async function readFirings(connection: Redis, prefix: string): Promise<Map<string, LastFiring>> {
  const raw = await connection.hgetall(lastFiringsKey(prefix));
  const out = new Map<string, LastFiring>();
  for (const [name, value] of Object.entries(raw)) {
    try {
      const r = lastFiring.safeParse(JSON.parse(value));
      if (r.success) out.set(name, r.data);
    } catch {
      // not JSON: ignored, like any record that does not parse
    }
  }
  return out;
}

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Runs `fn` holding the add lock of schedule `name` (a Redis key with a lease): two `schedule`
 * commands adding the same name at once would both see it absent and the second would silently
 * replace the first; with the lock the second is refused in one line.
 */
export async function withScheduleLock<T>(conn: Redis, prefix: string, name: string, fn: () => Promise<T>, leaseMs = 60_000): Promise<T> {
  const key = `${prefix}:ood-audit:schedule-add:${name}`;
  const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  if ((await conn.set(key, token, 'PX', leaseMs, 'NX')) !== 'OK') {
    throw new OodError('BUSY', `schedule ${name}: another schedule command is adding or replacing it right now; try again when it is done (ood-audit schedule --list)`);
  }
  try {
    return await fn();
  } finally {
    await conn.eval(UNLOCK, 1, key, token).catch(() => undefined);
  }
}
