/**
 * `ood-audit schedule`: adds, lists and removes schedules of scans (BullMQ job schedulers on the
 * schedule queue). Names are unique: adding a name that exists is refused unless --replace. The
 * cron expression and time zone are checked before anything is stored (src/shared/queue/schedules.ts)
 * and the next three firings are printed. Every form warns on stderr when no worker serves the
 * schedule queue, since then no schedule fires.
 */
import { Job, Queue, type JobSchedulerJson } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EnvConfig } from '../../shared/config/env.js';
import { OodError } from '../../shared/errors.js';
import { stableHash } from '../../shared/hash.js';
import { jobId, JOB_OPTIONS, QUEUES, reportResult, schedulePayload } from '../../shared/queue/contract.js';
import { checkRedis, redisConnection } from '../../shared/queue/redis.js';
import { checkScheduleName, checkTimeZone, DEFAULT_TIME_ZONE, forgetFiring, formatInZone, nextFirings, readFirings, withScheduleLock, type LastFiring } from '../../shared/queue/schedules.js';
import { openLocation } from '../../shared/storage/open.js';
import { checkPrimary, modelIdentity } from '../../producers/plan.js';
import type { Log } from '../../shared/log.js';
import { absolute, parse, required, SCAN_OPTIONS, scanSettings, str } from '../options.js';
import { cliLog, printResult } from '../output.js';

export const SCHEDULE_USAGE = `ood-audit schedule --cron "<expr>" [--tz <zone>] [--name <id>] [--replace] scan --model <loc> --input <loc> --out <loc> [scan options]
ood-audit schedule --list [--json]
ood-audit schedule --remove <id>
  Registers a repeating scan with a BullMQ job scheduler (e.g. --cron "0 2 * * *" for 02:00 daily).
  Each firing enqueues an incremental scan (only objects new or changed since the last completed
  scan of the prefix with the model; --full for everything) into --out, where {date} and
  {datetime} become the firing time (UTC): --out s3://bucket/reports/{date}/. Workers serving the
  "schedule" queue must be running (the command warns when none is).
  --cron "<expr>"  5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first,
                   or @daily, @hourly, @weekly, @monthly, @yearly
  --tz <zone>      IANA time zone the cron expression is read in (default UTC): Europe/Paris, ...
  --name <id>      the schedule's name (default: scan- and a hash of model, input and output);
                   letters, digits, '.', '_', '-'
  --replace        replace the schedule of that name if it exists (otherwise refused)
  --list           every schedule: cron, time zone, input, output, model, next firing, last firing
                   and its run's state and verdict; --json prints one JSON document
  Scan options: --shard-size, --cache, --full, --partition-depth, --top-k, --md-style, --max-bytes, --primary.`;

interface ScheduleData {
  input?: string;
  out?: string;
  model?: string;
}

/** One schedule, as `--list --json` prints it. */
export interface ScheduleListing {
  name: string;
  cron: string | null;
  /** The zone the cron expression is read in; null: the worker's local time (schedules made before zones were set). */
  timezone: string | null;
  input: string | null;
  output: string | null;
  model: string | null;
  /** Next firing, ISO 8601 UTC. */
  next: string | null;
  last: null | {
    firedAt: string;
    runId: string | null;
    output: string | null;
    /** planning: the firing is listing its input; running, completed, failed: the scan run; unknown: its jobs have expired. */
    state: 'planning' | 'running' | 'completed' | 'failed' | 'unknown';
    verdict: string | null;
    flaggedFraction: number | null;
    error: string | null;
  };
}

function describe(s: JobSchedulerJson): string {
  const d = (s.template?.data ?? {}) as ScheduleData;
  return `cron "${s.pattern ?? '?'}" ${s.tz ?? 'local time'}, scan ${d.input ?? '?'} -> ${d.out ?? '?'} (model ${d.model ?? '?'})${s.next !== undefined ? `, next ${new Date(s.next).toISOString()}` : ''}`;
}

/** Warns (stderr) when no worker serves the schedule queue: schedules are stored but never fire. */
async function warnWithoutWorkers(queue: Queue, prefix: string, log: Log): Promise<number | undefined> {
  let workers: number;
  try {
    workers = await queue.getWorkersCount();
  } catch {
    return undefined; // CLIENT LIST may be disabled on a managed Redis: nothing to say
  }
  if (workers === 0) log(`warning: no worker serves the "schedule" queue (prefix ${prefix}): schedules fire only while one runs (ood-audit worker --queues schedule, or the scheduler service of docker-compose.yml)`, { level: 'warn' });
  return workers;
}

/** The state and verdict of the run a firing started, from its final (report) job. */
async function lastOf(f: LastFiring, reports: Queue): Promise<NonNullable<ScheduleListing['last']>> {
  const base = { firedAt: new Date(f.firedAt).toISOString(), runId: f.runId ?? null, output: f.out ?? null, verdict: null, flaggedFraction: null, error: f.error ?? null };
  if (f.runId === undefined) return { ...base, state: f.error !== undefined ? 'failed' : 'planning' };
  const job = await Job.fromId(reports, jobId(f.runId, 'report'));
  if (job === undefined) return { ...base, state: f.error !== undefined ? 'failed' : 'unknown' };
  const state = await job.getState();
  if (state === 'completed') {
    const r = reportResult.safeParse(job.returnvalue);
    return { ...base, state: 'completed', verdict: r.success ? (r.data.headline ?? r.data.verdict) : null, flaggedFraction: r.success ? r.data.flaggedFraction : null };
  }
  if (state === 'failed') return { ...base, state: 'failed', error: job.failedReason ?? f.error ?? null };
  return { ...base, state: 'running' };
}

async function listSchedules(queue: Queue, connection: Redis, prefix: string): Promise<ScheduleListing[]> {
  const all = await queue.getJobSchedulers(0, -1, true);
  const firings = await readFirings(connection, prefix);
  const reports = new Queue(QUEUES.report, { connection, prefix });
  try {
    const out: ScheduleListing[] = [];
    for (const s of all.sort((a, b) => a.key.localeCompare(b.key))) {
      const d = (s.template?.data ?? {}) as ScheduleData;
      const f = firings.get(s.key);
      out.push({
        name: s.key,
        cron: s.pattern ?? null,
        timezone: s.tz ?? null,
        input: d.input ?? null,
        output: d.out ?? null,
        model: d.model ?? null,
        next: s.next !== undefined ? new Date(s.next).toISOString() : null,
        last: f !== undefined ? await lastOf(f, reports) : null,
      });
    }
    return out;
  } finally {
    await reports.close();
  }
}

function formatListing(list: readonly ScheduleListing[]): string {
  if (list.length === 0) return 'no schedules\n';
  const when = (iso: string, tz: string | null): string => (tz !== null ? `${formatInZone(Date.parse(iso), tz)} (${iso})` : iso);
  const lines: string[] = [];
  for (const s of list) {
    lines.push(s.name);
    lines.push(`  cron      ${s.cron ?? '?'}`, `  timezone  ${s.timezone ?? 'local time of the worker'}`);
    lines.push(`  input     ${s.input ?? '?'}`, `  output    ${s.output ?? '?'}`, `  model     ${s.model ?? '?'}`);
    lines.push(`  next      ${s.next !== null ? when(s.next, s.timezone) : '?'}`);
    const l = s.last;
    if (l === null) lines.push('  last      never fired');
    else {
      const outcome =
        l.state === 'completed'
          ? `verdict ${l.verdict ?? '?'}${l.flaggedFraction !== null ? ` (${(100 * l.flaggedFraction).toFixed(1)}% flagged)` : ''}`
          : l.state === 'failed'
            ? `failed: ${l.error ?? '?'}`
            : l.state === 'unknown'
              ? 'outcome unknown (its jobs have expired; see its report)'
              : l.state;
      lines.push(`  last      ${when(l.firedAt, s.timezone)}${l.runId !== null ? ` run ${l.runId}` : ''}: ${outcome}${l.output !== null ? ` -> ${l.output}` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

export async function scheduleCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const split = argv.indexOf('scan');
  const own = split < 0 ? argv : argv.slice(0, split);
  const scanArgs = split < 0 ? [] : argv.slice(split + 1);
  const v = parse(own, { cron: { type: 'string' }, tz: { type: 'string' }, name: { type: 'string' }, replace: { type: 'boolean' }, list: { type: 'boolean' }, json: { type: 'boolean' }, remove: { type: 'string' } });
  if (v['json'] === true && v['list'] !== true) throw new OodError('CONFIG_INVALID', '--json goes with --list');
  // Everything that can be checked without Redis is checked first, so a typo costs no connection.
  const cron = v['list'] === true || str(v, 'remove') !== undefined ? undefined : required(v, 'cron');
  const tz = checkTimeZone(str(v, 'tz') ?? DEFAULT_TIME_ZONE);
  const firings = cron !== undefined ? nextFirings(cron, tz, Date.now(), 3) : [];
  const log = cliLog(env);
  const connection = redisConnection(env.redis.url, { maxRetriesPerRequest: 1 });
  const queue = new Queue(QUEUES.schedule, { connection, prefix: env.queuePrefix });
  try {
    await checkRedis(connection, env.redis.url);
    if (v['list'] === true) {
      const list = await listSchedules(queue, connection, env.queuePrefix);
      const workers = await warnWithoutWorkers(queue, env.queuePrefix, log);
      printResult(v['json'] === true, { workers: workers ?? null, schedules: list }, () => formatListing(list));
      return;
    }
    const remove = str(v, 'remove');
    if (remove !== undefined) {
      if (!(await queue.removeJobScheduler(remove))) throw new OodError('NOT_FOUND', `no schedule named ${JSON.stringify(remove)} (ood-audit schedule --list)`);
      await forgetFiring(connection, env.queuePrefix, remove);
      process.stdout.write(`removed schedule ${remove}\n`);
      return;
    }
    if (cron === undefined) throw new OodError('INTERNAL', 'no --cron');
    if (split < 0) throw new OodError('CONFIG_INVALID', 'missing the scheduled command: ... scan --model <loc> --input <loc> --out <loc>');
    const s = parse(scanArgs, { model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, ...SCAN_OPTIONS });
    const model = absolute(required(s, 'model'));
    const input = absolute(required(s, 'input'));
    const out = absolute(required(s, 'out'));
    const settings = scanSettings(s);
    const name = checkScheduleName(str(v, 'name') ?? `scan-${stableHash(input, model, out).slice(0, 10)}`);
    const { json } = await modelIdentity(openLocation(model, env, true)); // the model must exist now
    if (settings.primary !== undefined && settings.primary !== json.config.scoring.primary) await checkPrimary(openLocation(model, env, true), model, json, settings.primary);
    openLocation(input, env, true);
    const data = schedulePayload.parse({ model, input, out, ...settings });
    // Check and add under the name's lock: a concurrent add of the same name is refused, not lost.
    const existing = await withScheduleLock(connection, env.queuePrefix, name, async () => {
      const found = await queue.getJobScheduler(name);
      if (found !== undefined && v['replace'] !== true) {
        throw new OodError('CONFIG_INVALID', `schedule ${name} already exists (${describe(found)}): add --replace to replace it, or choose another --name`);
      }
      await queue.upsertJobScheduler(name, { pattern: cron.trim(), tz }, { name: 'scan', data, opts: JOB_OPTIONS.schedule });
      return found;
    });
    process.stdout.write(
      `schedule ${name}${existing !== undefined ? ' (replaced)' : ''}: cron "${cron.trim()}" in ${tz}: scan ${input} -> ${out} (model ${model})\n` +
        `next firings: ${firings.map((t) => `${formatInZone(t, tz)} (${new Date(t).toISOString()})`).join(', ')}\n`,
    );
    await warnWithoutWorkers(queue, env.queuePrefix, log);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
