import { Queue } from 'bullmq';
import type { EnvConfig } from '../../shared/config/env.js';
import { OodError } from '../../shared/errors.js';
import { stableHash } from '../../shared/hash.js';
import { JOB_OPTIONS, QUEUES, schedulePayload } from '../../shared/queue/contract.js';
import { checkRedis, redisConnection } from '../../shared/queue/redis.js';
import { openLocation } from '../../shared/storage/open.js';
import { modelIdentity } from '../../producers/plan.js';
import { absolute, parse, required, SCAN_OPTIONS, scanSettings, str } from '../options.js';

export const SCHEDULE_USAGE = `ood-audit schedule --cron "<expr>" [--tz <zone>] [--name <id>] scan --model <loc> --input <loc> --out <loc> [scan options]
ood-audit schedule --list
ood-audit schedule --remove <id>
  Registers a repeating scan with a BullMQ job scheduler (e.g. --cron "0 2 * * *" for 02:00 daily).
  Each firing enqueues an incremental scan (only objects new or changed since the last completed
  scan of the prefix with the model; --full for everything) into --out, where {date} and
  {datetime} become the firing time (UTC): --out s3://bucket/reports/{date}/. Workers serving the
  "schedule" queue (the default) must be running. Scan options: --shard-size, --cache, --full,
  --partition-depth, --top-k, --max-bytes.`;

export async function scheduleCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const split = argv.indexOf('scan');
  const own = split < 0 ? argv : argv.slice(0, split);
  const scanArgs = split < 0 ? [] : argv.slice(split + 1);
  const v = parse(own, { cron: { type: 'string' }, tz: { type: 'string' }, name: { type: 'string' }, list: { type: 'boolean' }, remove: { type: 'string' } });
  const connection = redisConnection(env.redis.url, { maxRetriesPerRequest: 1 });
  const queue = new Queue(QUEUES.schedule, { connection, prefix: env.queuePrefix });
  try {
    await checkRedis(connection, env.redis.url);
    if (v['list'] === true) {
      const all = await queue.getJobSchedulers(0, -1, true);
      if (all.length === 0) process.stdout.write('no schedules\n');
      for (const s of all) {
        const d = s.template?.data as { input?: string; out?: string; model?: string } | undefined;
        process.stdout.write(`${s.key}  cron "${s.pattern ?? ''}"${s.tz !== undefined ? ` ${s.tz}` : ''}  next ${s.next !== undefined ? new Date(s.next).toISOString() : '?'}  scan ${d?.input ?? '?'} -> ${d?.out ?? '?'} (model ${d?.model ?? '?'})\n`);
      }
      return;
    }
    const remove = str(v, 'remove');
    if (remove !== undefined) {
      if (!(await queue.removeJobScheduler(remove))) throw new OodError('NOT_FOUND', `no schedule named ${JSON.stringify(remove)} (ood-audit schedule --list)`);
      process.stdout.write(`removed schedule ${remove}\n`);
      return;
    }
    const cron = required(v, 'cron');
    if (split < 0) throw new OodError('CONFIG_INVALID', 'missing the scheduled command: ... scan --model <loc> --input <loc> --out <loc>');
    const s = parse(scanArgs, { model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, ...SCAN_OPTIONS });
    const model = absolute(required(s, 'model'));
    const input = absolute(required(s, 'input'));
    const settings = scanSettings(s);
    await modelIdentity(openLocation(model, env, true)); // the model must exist now
    openLocation(input, env, true);
    const data = schedulePayload.parse({ model, input, out: absolute(required(s, 'out')), ...settings });
    const name = str(v, 'name') ?? `scan-${stableHash(input, model).slice(0, 10)}`;
    const tz = str(v, 'tz');
    try {
      await queue.upsertJobScheduler(name, { pattern: cron, ...(tz !== undefined ? { tz } : {}) }, { name: 'scan', data, opts: JOB_OPTIONS.schedule });
    } catch (err) {
      throw new OodError('CONFIG_INVALID', `invalid --cron ${JSON.stringify(cron)}${tz !== undefined ? ` / --tz ${JSON.stringify(tz)}` : ''}: ${(err as Error).message}`, { cause: err });
    }
    const saved = await queue.getJobScheduler(name);
    process.stdout.write(`schedule ${name}: cron "${cron}"${tz !== undefined ? ` (${tz})` : ''}, next run ${saved?.next !== undefined ? new Date(saved.next).toISOString() : '?'}: scan ${input} -> ${data.out}\n`);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
