/**
 * Real services for the integration tests and the benchmarks: an s3rver S3 endpoint, a
 * fault-injecting HTTP proxy in front of it, a private redis-server (for tests that restart Redis),
 * and ood-audit worker processes. Everything is started on loopback with free ports and stopped by
 * the returned handles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3';
import { prepareProcess } from '../src/shared/config/env.js';
import { freePort } from '../src/shared/queue/redis.js';

/** The repository root. */
export const ROOT = path.resolve(import.meta.dirname, '..');

// The pinned AWS SDK warns under Node < 22 about future releases; keep test output readable.
prepareProcess();

export { freePort };

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      if (pattern.test(d.toString())) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`process exited with ${code} before ${pattern}`));
    });
  });
}

export interface S3Server {
  readonly endpoint: string;
  readonly bucket: string;
  readonly client: S3Client;
  /** Environment for ood-audit processes talking to this server. */
  readonly env: Record<string, string>;
  /** CPU seconds the server process has used so far (Linux /proc; 0 elsewhere). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** User + system CPU seconds of a process, from /proc/<pid>/stat (0 when unreadable). */
export function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

export async function startS3rver(bucket = 'lake'): Promise<S3Server> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'ood-s3rver-'));
  const child = spawn(process.execPath, [path.join(ROOT, 'support/s3rver-main.cjs'), String(port), dir, bucket], {
    env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForLine(child, /ready/, 20_000);
  const endpoint = `http://127.0.0.1:${port}`;
  const env = { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  return {
    endpoint,
    bucket,
    client,
    env,
    cpuSeconds: () => processCpuSeconds(child.pid),
    stop: async () => {
      client.destroy();
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function upload(s3: S3Server, key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
}

export interface FaultProxy {
  readonly endpoint: string;
  /** Requests answered with an error while failing. */
  failures: number;
  /**
   * Fails every request with 503 SlowDown until `until` (ms since epoch), and past it until at least
   * `atLeast` requests have failed (on a loaded machine the window can pass with no request in it).
   */
  failUntil(until: number, atLeast?: number): void;
  /** Fails the next `times` requests whose URL matches `pattern` (Infinity: all of them). */
  failMatching(pattern: RegExp, times: number): void;
  /** When true, responses come without Content-Length (chunked), as some S3-compatible servers send them. */
  chunked: boolean;
  /** Awaited before a request is forwarded (a test acting at a chosen moment of a run); 'fail' answers it 503 SlowDown. */
  onRequest: ((method: string, url: string) => Promise<void | 'fail'>) | undefined;
  stop(): Promise<void>;
}

/** An HTTP proxy to `target` that can answer 503 SlowDown for a while. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const port = await freePort();
  const t = new URL(target);
  let until = 0;
  let minFailures = 0;
  let matching: { pattern: RegExp; left: number } | undefined;
  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    failures: 0,
    failUntil: (ms, atLeast = 0) => {
      until = ms;
      minFailures = proxy.failures + atLeast;
    },
    failMatching: (pattern, times) => {
      matching = { pattern, left: times };
    },
    chunked: false,
    onRequest: undefined,
    stop: () => new Promise((r) => server.close(() => r())),
  };
  const server = http.createServer((req, res) => {
    const slowDown = (): void => {
      proxy.failures += 1;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    };
    const matched = matching !== undefined && matching.left > 0 && matching.pattern.test(req.url ?? '');
    if (matched) matching!.left -= 1;
    if (matched || Date.now() < until || proxy.failures < minFailures) return slowDown();
    const forward = (): void => {
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        const headers = { ...r.headers };
        if (proxy.chunked) delete headers['content-length'];
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res);
      });
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    };
    if (proxy.onRequest === undefined) return forward();
    req.pause();
    proxy.onRequest(req.method ?? '', req.url ?? '').then(
      (what) => (what === 'fail' ? slowDown() : forward()),
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return proxy;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A private redis-server with AOF on (so a restart keeps the queues), as in docker-compose.yml. */
export async function startRedis(password?: string): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'ood-redis-test-'));
  let child: ChildProcess;
  const start = async (): Promise<void> => {
    const auth = password !== undefined ? ['--requirepass', password] : [];
    child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction', ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(child, /Ready to accept connections/, 10_000);
  };
  await start();
  return {
    url: password !== undefined ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    port,
    restart: async () => {
      await stopProcess(child);
      await start();
    },
    stop: async () => {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves once the worker has registered on its queues (so a CLI run sees it and starts none). */
  ready(): Promise<void>;
  /** SIGKILL the worker and its sandboxed children (its whole process group), like a crashed node. */
  crash(): void;
  stop(): Promise<void>;
}

/** Starts `ood-audit worker` from source in its own process group (`env` should name OOD_QUEUE_PREFIX). */
export function startWorker(env: Record<string, string>, args: string[] = []): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/entry.ts'), 'worker', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    ready: async () => {
      const end = Date.now() + 90_000;
      while (!/ serving /.test(out)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker ${child.pid} exited before serving:\n${out}`);
        if (Date.now() > end) throw new Error(`worker ${child.pid} not serving after 90 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    crash: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
    stop: () => stopProcess(child, true),
  };
}

export function stopProcess(child: ChildProcess, group = false): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      try {
        if (group) process.kill(-child.pid!, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, 15_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      if (group) process.kill(-child.pid!, 'SIGTERM');
      else child.kill('SIGTERM');
    } catch {
      resolve();
    }
  });
}
