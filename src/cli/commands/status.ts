import { Queue } from 'bullmq';
import type { EnvConfig } from '../../shared/config/env.js';
import { QUEUES, QUEUE_KINDS } from '../../shared/queue/contract.js';
import { checkRedis, redisConnection } from '../../shared/queue/redis.js';
import { int, parse } from '../options.js';

export const STATUS_USAGE = `ood-audit status [--runs N]
  Queue counts (waiting, active, completed, failed, delayed), workers per queue, and the latest
  runs (fit = train job, scan = report job) with their state and progress. Uses REDIS_URL
  (default 127.0.0.1:6379).`;

export async function statusCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, { runs: { type: 'string' } });
  const url = env.redis.url;
  const connection = redisConnection(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  const out: string[] = [];
  try {
    await checkRedis(connection, url, 5000);
    out.push(`${'queue'.padEnd(12)} ${'waiting'.padStart(8)} ${'active'.padStart(7)} ${'done'.padStart(7)} ${'failed'.padStart(7)} ${'delayed'.padStart(8)} ${'workers'.padStart(8)}`);
    const runs: { id: string; kind: string; state: string; progress: string; at: number }[] = [];
    for (const kind of QUEUE_KINDS) {
      const q = new Queue(QUEUES[kind], { connection, prefix: env.queuePrefix });
      try {
        const c = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'waiting-children');
        const workers = (await q.getWorkers()).length;
        out.push(`${kind.padEnd(12)} ${String((c['waiting'] ?? 0) + (c['waiting-children'] ?? 0)).padStart(8)} ${String(c['active'] ?? 0).padStart(7)} ${String(c['completed'] ?? 0).padStart(7)} ${String(c['failed'] ?? 0).padStart(7)} ${String(c['delayed'] ?? 0).padStart(8)} ${String(workers).padStart(8)}`);
        if (kind === 'train' || kind === 'report') {
          const jobs = await q.getJobs(['active', 'waiting', 'waiting-children', 'completed', 'failed', 'delayed'], 0, 50);
          for (const j of jobs) {
            if (j === undefined || j.id === undefined) continue;
            const p = j.progress as { stage?: string; done?: number; total?: number } | number;
            const prog = typeof p === 'object' && p !== null && p.total !== undefined ? `${p.stage ?? ''} ${p.done ?? 0}/${p.total}` : '';
            runs.push({ id: j.id.replace(/\.(train|report)$/, ''), kind: kind === 'train' ? 'fit' : 'scan', state: await j.getState(), progress: prog, at: j.timestamp });
          }
        }
      } finally {
        await q.close();
      }
    }
    runs.sort((a, b) => b.at - a.at);
    out.push('', `${'run'.padEnd(24)} ${'kind'.padEnd(5)} ${'state'.padEnd(17)} ${'queued at'.padEnd(20)} progress`);
    for (const r of runs.slice(0, int(v, 'runs', 1, 1000) ?? 20)) out.push(`${r.id.padEnd(24)} ${r.kind.padEnd(5)} ${r.state.padEnd(17)} ${new Date(r.at).toISOString().slice(0, 19).padEnd(20)} ${r.progress}`);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    connection.disconnect();
  }
}
