/**
 * Redis for the queues: the URL from REDIS_URL (passwords and rediss:// TLS work), else a server
 * answering on the default address, else an embedded `redis-server` started from PATH on a free port
 * with a temporary folder, stopped when the CLI ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { OodError } from '../errors.js';
import { DEFAULTS } from '../config/defaults.js';
import { redactUrl } from '../config/env.js';

const lastErrors = new WeakMap<Redis, string>();

/**
 * A connection with the options BullMQ workers need (no request retry limit: blocking commands
 * wait). Connection errors are recorded, not printed: ioredis' default "unhandled error" print
 * includes the AUTH command and so the password.
 */
export function redisConnection(url: string, extra: Partial<RedisOptions> = {}): Redis {
  const conn = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...extra });
  conn.on('error', (err: Error) => lastErrors.set(conn, err.message));
  return conn;
}

/** Pings with a deadline; the error names the (redacted) URL and the server's complaint. */
export async function checkRedis(conn: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      conn.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(lastErrors.get(conn) ?? `no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    throw new OodError('CONFIG_INVALID', `cannot use Redis at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, host, () => {
      s.write('PING\r\n');
      s.once('data', (d: Buffer) => done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')));
    });
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisHandle {
  readonly url: string;
  /** True when this process started the server. */
  readonly embedded: boolean;
  stop(): Promise<void>;
}

/**
 * The Redis a CLI run uses: REDIS_URL when set; else the default server when it answers; else an
 * embedded redis-server (only the CLI's own runs start one; a worker must share the producers').
 */
export async function ensureRedis(redis: { readonly url: string; readonly explicit: boolean }, log: (m: string) => void = () => undefined): Promise<RedisHandle> {
  const external = { url: redis.url, embedded: false, stop: async () => undefined };
  if (redis.explicit) return external;
  const address = new URL(redis.url);
  if (await canConnect(address.hostname, Number(address.port || 6379), 500)) return external;
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'ood-redis-'));
  let child: ChildProcess;
  try {
    child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw noRedis(err);
  }
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) {
    rmSync(dir, { recursive: true, force: true });
    throw noRedis(undefined);
  }
  for (let i = 0; i < 100 && !(await canConnect('127.0.0.1', port, 200)); i++) await new Promise((r) => setTimeout(r, 50));
  log(`started an embedded redis-server on 127.0.0.1:${port} (data in ${dir}, removed at exit)`);
  return {
    url: `redis://127.0.0.1:${port}`,
    embedded: true,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function noRedis(cause: unknown): OodError {
  return new OodError(
    'CONFIG_INVALID',
    `no Redis: nothing answers on ${DEFAULTS.redisUrl}, REDIS_URL is not set, and redis-server is not on PATH. ` +
      'Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL=redis://host:6379',
    { cause },
  );
}

export { redactUrl };
