import { Queue } from 'bullmq';
import type { EnvConfig } from '../../shared/config/env.js';
import { QUEUES, QUEUE_KINDS } from '../../shared/queue/contract.js';
import { checkRedis, redisConnection } from '../../shared/queue/redis.js';
import { int, parse } from '../options.js';
import { printResult } from '../output.js';

export const STATUS_FLAGS = { runs: { type: 'string' }, json: { type: 'boolean' } } as const;

export const STATUS_USAGE = `ood-audit status [--runs N] [--json]
  Queue counts (waiting, active, completed, failed, delayed), workers per queue, and the latest
  runs (fit = train job, scan = report job) with their state and progress. Uses REDIS_URL
  (default 127.0.0.1:6379).
  --runs N        the latest N runs (default 20)
  --json          print one JSON document on stdout: {queues: [...], runs: [...]}
  --log-format F  log lines on stderr: text (default) | json`;

/** The document `status --json` prints. */
export interface StatusJson {
  readonly command: 'status';
  readonly queues: { queue: string; waiting: number; active: number; completed: number; failed: number; delayed: number; workers: number }[];
  readonly runs: { id: string; kind: string; state: string; queuedAt: string; progress: { stage: string; done: number; total: number } | null }[];
}

export async function statusCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, STATUS_FLAGS);
  const doc: StatusJson = { command: 'status', queues: [], runs: [] };
  const url = env.redis.url;
  const connection = redisConnection(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  const out: string[] = [];
  try {
    await checkRedis(connection, url, 5000);
    out.push(`${'queue'.padEnd(12)} ${'waiting'.padStart(8)} ${'active'.padStart(7)} ${'done'.padStart(7)} ${'failed'.padStart(7)} ${'delayed'.padStart(8)} ${'workers'.padStart(8)}`);
    const runs: { id: string; kind: string; state: string; progress: string; at: number; p: StatusJson['runs'][number]['progress'] }[] = [];
    for (const kind of QUEUE_KINDS) {
      const q = new Queue(QUEUES[kind], { connection, prefix: env.queuePrefix });
      try {
        const c = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'waiting-children');
        const workers = (await q.getWorkers()).length;
        doc.queues.push({ queue: kind, waiting: (c['waiting'] ?? 0) + (c['waiting-children'] ?? 0), active: c['active'] ?? 0, completed: c['completed'] ?? 0, failed: c['failed'] ?? 0, delayed: c['delayed'] ?? 0, workers });
        out.push(`${kind.padEnd(12)} ${String((c['waiting'] ?? 0) + (c['waiting-children'] ?? 0)).padStart(8)} ${String(c['active'] ?? 0).padStart(7)} ${String(c['completed'] ?? 0).padStart(7)} ${String(c['failed'] ?? 0).padStart(7)} ${String(c['delayed'] ?? 0).padStart(8)} ${String(workers).padStart(8)}`);
        if (kind === 'train' || kind === 'report') {
          const jobs = await q.getJobs(['active', 'waiting', 'waiting-children', 'completed', 'failed', 'delayed'], 0, 50);
          for (const j of jobs) {
            if (j === undefined || j.id === undefined) continue;
            const p = j.progress as { stage?: string; done?: number; total?: number } | number;
            const prog = typeof p === 'object' && p !== null && p.total !== undefined ? `${p.stage ?? ''} ${p.done ?? 0}/${p.total}` : '';
            const pj = typeof p === 'object' && p !== null && p.total !== undefined ? { stage: p.stage ?? '', done: p.done ?? 0, total: p.total } : null;
            runs.push({ id: j.id.replace(/\.(train|report)$/, ''), kind: kind === 'train' ? 'fit' : 'scan', state: await j.getState(), progress: prog, at: j.timestamp, p: pj });
          }
        }
      } finally {
        await q.close();
      }
    }
    runs.sort((a, b) => b.at - a.at);
    out.push('', `${'run'.padEnd(24)} ${'kind'.padEnd(5)} ${'state'.padEnd(17)} ${'queued at'.padEnd(20)} progress`);
    for (const r of runs.slice(0, int(v, 'runs', 1, 1000) ?? 20)) {
      out.push(`${r.id.padEnd(24)} ${r.kind.padEnd(5)} ${r.state.padEnd(17)} ${new Date(r.at).toISOString().slice(0, 19).padEnd(20)} ${r.progress}`);
      doc.runs.push({ id: r.id, kind: r.kind, state: r.state, queuedAt: new Date(r.at).toISOString(), progress: r.p });
    }
    printResult(v['json'] === true, doc, () => out.join('\n') + '\n');
  } finally {
    connection.disconnect();
  }
}
