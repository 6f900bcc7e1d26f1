import express from 'express';
import { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { redactUrl, type EnvConfig } from '../../shared/config/env.js';
import { QUEUES, QUEUE_KINDS } from '../../shared/queue/contract.js';
import { checkRedis, redisConnection } from '../../shared/queue/redis.js';
import { int, parse, str } from '../options.js';

export const DASHBOARD_USAGE = `ood-audit dashboard [--port N] [--host H]
  Serves a web view of the queues (bull-board): jobs by state, their data, progress, logs and
  errors, with retry and clean actions. Binds to 127.0.0.1 unless --host says otherwise.
  --port N   default 3000`;

export async function dashboardCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, { port: { type: 'string' }, host: { type: 'string' } });
  const port = int(v, 'port', 0, 65535) ?? 3000;
  const host = str(v, 'host') ?? '127.0.0.1';
  const redisUrl = env.redis.url;
  const connection = redisConnection(redisUrl);
  await checkRedis(connection, redisUrl);
  const queues = QUEUE_KINDS.map((k) => new Queue(QUEUES[k], { connection, prefix: env.queuePrefix }));
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter, options: { uiConfig: { boardTitle: 'ood-audit' } } });
  const app = express();
  app.use('/', serverAdapter.getRouter() as express.Router);
  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr !== null ? addr.port : port;
  process.stdout.write(`dashboard on http://${host}:${actualPort}/ (queues ${QUEUE_KINDS.join(', ')} at ${redactUrl(redisUrl)}, prefix ${env.queuePrefix}); Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close(() => resolve());
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await Promise.all(queues.map((q) => q.close()));
  connection.disconnect();
}
