import type { EnvConfig } from '../../shared/config/env.js';
import { OodError } from '../../shared/errors.js';
import { QUEUE_KINDS, type QueueKind } from '../../shared/queue/contract.js';
import { parseRoots } from '../../shared/storage/roots.js';
import { createLog } from '../../shared/log.js';
import { runWorkersUntilSignal } from '../../workers/worker.js';
import { int, list, parse, str } from '../options.js';

export const WORKER_USAGE = `ood-audit worker --roots <loc,...> [--queues extract,train,score,group,report,schedule] [--concurrency N]
  Serves the queues until SIGTERM/SIGINT. Connects to REDIS_URL (default 127.0.0.1:6379); S3 from
  the AWS SDK's standard environment. OOD_BACKEND picks the backend (default auto:
  the encoder on onnxruntime-node when it loads, else tfjs), OOD_ORT_THREADS its threads (default 1).
  --roots L,L     the locations this worker serves: absolute folders and s3://bucket/prefix/ (default
                  OOD_WORKER_ROOTS). A job naming anything else (its input, output, model, cache) is
                  refused: job data in Redis is input. Without roots every such job is refused.
  --queues        queues to serve (default all)
  --concurrency   jobs in parallel per queue, each in its own child process (default 1)
  --shutdown-timeout  seconds to let running jobs release after a signal before forcing (default 60)
  --metrics-port N   serve Prometheus metrics at http://127.0.0.1:N/metrics (--metrics-host to bind elsewhere)
  --lock-duration MS, --stalled-interval MS   job lock and stalled check (default 30000, 15000): a
                  crashed worker's job goes to another worker after about their sum
  --log-format F  log lines: text (default; timestamped) | json (one object per line, processors too)`;

export async function workerCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, { roots: { type: 'string' }, queues: { type: 'string' }, concurrency: { type: 'string' }, 'shutdown-timeout': { type: 'string' }, 'lock-duration': { type: 'string' }, 'stalled-interval': { type: 'string' }, 'metrics-port': { type: 'string' }, 'metrics-host': { type: 'string' } });
  const metricsPort = int(v, 'metrics-port', 0, 65535);
  const metricsHost = str(v, 'metrics-host');
  const lockDuration = int(v, 'lock-duration', 1000, 3_600_000);
  const stalledInterval = int(v, 'stalled-interval', 500, 3_600_000);
  const queues = (list(v, 'queues') ?? QUEUE_KINDS) as QueueKind[];
  for (const q of queues) if (!(QUEUE_KINDS as readonly string[]).includes(q)) throw new OodError('CONFIG_INVALID', `invalid --queues: expected some of ${QUEUE_KINDS.join(', ')}, got ${JSON.stringify(q)}`);
  const rootsArg = str(v, 'roots');
  const roots = rootsArg !== undefined ? parseRoots(rootsArg, '--roots') : env.workerRoots;
  const log = createLog(env.logFormat, (line) => void process.stderr.write(line), { time: true, base: { component: 'worker' } });
  // A worker never starts its own Redis: it must share the producers' one.
  await runWorkersUntilSignal({
    redisUrl: env.redis.url,
    prefix: env.queuePrefix,
    queues,
    roots,
    concurrency: int(v, 'concurrency', 1, 64) ?? 1,
    shutdownTimeout: int(v, 'shutdown-timeout', 1, 86_400) ?? 60,
    ...(lockDuration !== undefined ? { lockDuration } : {}),
    ...(stalledInterval !== undefined ? { stalledInterval } : {}),
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    ...(metricsHost !== undefined ? { metricsHost } : {}),
    log,
    logFormat: env.logFormat,
  });
}
