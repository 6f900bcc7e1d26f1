import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import express from 'express';
import { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { redactUrl, type EnvConfig } from '../../shared/config/env.js';
import { OodError } from '../../shared/errors.js';
import { QUEUES, QUEUE_KINDS } from '../../shared/queue/contract.js';
import { checkRedis, redisConnection } from '../../shared/queue/redis.js';
import { int, list, parse, str } from '../options.js';

export const DASHBOARD_USAGE = `ood-audit dashboard [--port N] [--host H] [--allowed-hosts H:P,...] [--allow-actions]
  Serves a web view of the queues (bull-board): jobs by state, their data, progress, logs and
  errors. Read-only by default: adding, retrying, cleaning or removing jobs is refused (job data
  names locations that workers act on).
  --port N          default 3000
  --host H          address to bind (default 127.0.0.1); any other address needs credentials
  --allowed-hosts H:P,...   Host headers accepted besides the bound address (behind a port
                    mapping or a proxy, e.g. 127.0.0.1:3000 for a container bound to 0.0.0.0)
  --allow-actions   allow bull-board's write actions; needs credentials
  Credentials: OOD_DASHBOARD_USER and OOD_DASHBOARD_PASSWORD (HTTP basic authentication on every
  request once set). Requests whose Host header is not the bound address are refused (DNS rebinding).`;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function dashboardCommand(argv: readonly string[], env: EnvConfig): Promise<void> {
  const v = parse(argv, { port: { type: 'string' }, host: { type: 'string' }, 'allowed-hosts': { type: 'string' }, 'allow-actions': { type: 'boolean' } });
  const port = int(v, 'port', 0, 65535) ?? 3000;
  const host = str(v, 'host') ?? '127.0.0.1';
  const allowActions = v['allow-actions'] === true;
  const extraHosts = list(v, 'allowed-hosts') ?? [];
  for (const h of extraHosts) if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(h)) throw new OodError('CONFIG_INVALID', `invalid --allowed-hosts: expected host:port entries, got ${JSON.stringify(h)}`);
  const credentials = env.dashboard;
  if (!LOOPBACK.has(host) && credentials === undefined) throw new OodError('CONFIG_INVALID', `--host ${host} is not a loopback address: set OOD_DASHBOARD_USER and OOD_DASHBOARD_PASSWORD first`);
  if (allowActions && credentials === undefined) throw new OodError('CONFIG_INVALID', '--allow-actions: set OOD_DASHBOARD_USER and OOD_DASHBOARD_PASSWORD first (actions change what workers do)');
  const redisUrl = env.redis.url;
  const connection = redisConnection(redisUrl);
  await checkRedis(connection, redisUrl);
  const queues = QUEUE_KINDS.map((k) => new Queue(QUEUES[k], { connection, prefix: env.queuePrefix }));
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: !allowActions })), serverAdapter, options: { uiConfig: { boardTitle: 'ood-audit' } } });
  const app = express();
  let allowedHosts = new Set<string>();
  app.use((req, res, next) => {
    // DNS rebinding: a page on another origin that resolves to this address sends its own Host.
    if (!allowedHosts.has(req.headers.host ?? '')) {
      res.status(421).type('text/plain').send('misdirected request: unknown Host\n');
      return;
    }
    if (credentials !== undefined) {
      const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      const [user, ...rest] = m !== null ? Buffer.from(m[1]!, 'base64').toString('utf8').split(':') : [];
      if (user === undefined || !sameSecret(user, credentials.user) || !sameSecret(rest.join(':'), credentials.password)) {
        res.status(401).set('WWW-Authenticate', 'Basic realm="ood-audit"').type('text/plain').send('authentication required\n');
        return;
      }
    }
    // Read-only: refuse every write at the door too, whatever bull-board's routes do.
    if (!allowActions && req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).type('text/plain').send('read-only dashboard: actions are disabled (--allow-actions)\n');
      return;
    }
    next();
  });
  app.use('/', serverAdapter.getRouter() as express.Router);
  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr !== null ? addr.port : port;
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  allowedHosts = new Set([`${shown}:${actualPort}`, ...(LOOPBACK.has(host) ? [`localhost:${actualPort}`, `127.0.0.1:${actualPort}`, `[::1]:${actualPort}`] : []), ...extraHosts]);
  process.stdout.write(
    `dashboard on http://${shown}:${actualPort}/ (queues ${QUEUE_KINDS.join(', ')} at ${redactUrl(redisUrl)}, prefix ${env.queuePrefix}); ` +
      `${allowActions ? 'actions allowed' : 'read-only'}, ${credentials !== undefined ? 'login required' : 'no login (loopback only)'}; Ctrl-C to stop\n`,
  );
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
