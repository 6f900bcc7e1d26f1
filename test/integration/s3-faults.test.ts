/**
 * The pipeline on S3 under faults: a fault proxy in front of a real S3-protocol server (s3rver)
 * answering 503 for a while or to listing continuation pages, a private Redis restarted mid-run, an
 * S3 endpoint where nothing answers, another scan recording the prefix's state while a run reports, a
 * report job retried after it recorded the state. Real worker processes; the model is fitted once, in-process.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { S3Store } from '../../src/shared/storage/s3-store.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parquetReadObjects } from 'hyparquet';
import { ROOT, runCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { rowDifferences } from '../helpers/parquet.js';
import { freePort, startFaultProxy, startRedis, startS3rver, startWorker, upload, type FaultProxy, type S3Server } from '../helpers/services.js';
import { QUEUES } from '../../src/shared/queue/contract.js';
import { scanStateLocation, STATE_FORMAT, STATE_KEYS, stateIndexSchema, type StateIndex } from '../../src/shared/outputs/scan-state.js';

const REDIS = 'redis://127.0.0.1:6379';
const FAST_LOCKS = ['--lock-duration', '3000', '--stalled-interval', '1500'];
let s3: S3Server;
let env: Record<string, string>;

const demo = path.join(ROOT, 'examples/demo');
function demoFiles(sub: string, perClass: number): { rel: string; abs: string }[] {
  const root = path.join(demo, sub);
  return readdirSync(root).sort().flatMap((c) => readdirSync(path.join(root, c)).sort().slice(0, perClass).map((f) => ({ rel: `${c}/${f}`, abs: path.join(root, c, f) })));
}

async function listKeys(prefix: string): Promise<string[]> {
  const r = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

async function getBytes(key: string): Promise<Uint8Array> {
  const r = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return r.Body!.transformToByteArray();
}

async function parquetRows(key: string): Promise<Record<string, unknown>[]> {
  const b = await getBytes(key);
  return parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer });
}

async function readJson(key: string): Promise<unknown> {
  return JSON.parse(new TextDecoder().decode(await getBytes(key)));
}

/** Model m1's scan-state folder over an input prefix of the bucket, and a reader of its index. */
function stateOf(input: string): { folder: string; index: () => Promise<StateIndex> } {
  const folder = scanStateLocation('s3://lake/models/m1', `s3://lake/${input}`).slice('s3://lake/'.length);
  return { folder, index: async () => stateIndexSchema.parse(await readJson(`${folder}/${STATE_KEYS.index}`)) };
}

/** Runs `body` with one worker on a private Redis that reaches S3 through a fault proxy steered by `onRequest`. */
async function withFaultedWorker(onRequest: FaultProxy['onRequest'], body: (faultEnv: Record<string, string>) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  const proxy = await startFaultProxy(s3.endpoint);
  proxy.onRequest = onRequest;
  const faultEnv = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, REDIS_URL: redis.url };
  const worker = startWorker(faultEnv, FAST_LOCKS);
  try {
    await worker.ready();
    await body(faultEnv);
  } finally {
    await worker.stop();
    await proxy.stop();
    await redis.stop();
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  s3 = await startS3rver('lake');
  env = { ...s3.env, REDIS_URL: REDIS };
  for (const f of demoFiles('id', 20)) await upload(s3, `datasets/id/${f.rel}`, readFileSync(f.abs));
  for (const f of demoFiles('scan/cifar10', 10)) await upload(s3, `datasets/scan/cifar10/${f.rel}`, readFileSync(f.abs));
  for (const f of demoFiles('scan/fashion-mnist', 5)) await upload(s3, `datasets/scan/fashion-mnist/${f.rel}`, readFileSync(f.abs));
  const fit = await runCli(['fit', '--in-process', '--id', 's3://lake/datasets/id/', '--model', 's3://lake/models/m1', '--epochs', '3', '--width', '64', '--depth', '1'], env);
  expect(fit.code, fit.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await s3?.stop();
}, 120_000);

describe('pipeline under faults', () => {
  it('completes with nothing lost or duplicated while S3 answers 503 for a while and Redis restarts mid-run, printing one line per outage', async () => {
    const redis = await startRedis();
    const proxy = await startFaultProxy(s3.endpoint);
    const faultEnv = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, REDIS_URL: redis.url };
    const own = [startWorker(faultEnv, FAST_LOCKS), startWorker(faultEnv, FAST_LOCKS)];
    try {
      await Promise.all(own.map((w) => w.ready()));
      const scan = runCli(['scan', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r4', '--cache', 's3://lake/cache-r4', '--shard-size', '20'], faultEnv);
      const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
      const q = new Queue(QUEUES.score, { connection, prefix: TEST_QUEUE_PREFIX });
      await waitFor('extraction to start', async () => ((await q.getJobs(['active'])).length > 0 ? true : undefined));
      await q.close();
      connection.disconnect();
      proxy.failUntil(Date.now() + 4000, 3);
      await new Promise((r) => setTimeout(r, 1500));
      await redis.restart();
      const r = await scan;
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.failures).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/^\s+at /m); // no stack traces
      expect(r.stderr.match(/connection lost/g)?.length ?? 0).toBeLessThanOrEqual(1);
      const rows = await parquetRows('reports/r4/scores.parquet');
      const keys = rows.map((x) => String(x['key']));
      expect(keys).toHaveLength(150);
      expect(new Set(keys).size).toBe(150);
      // The same rows as a scan without faults (through the shared workers and the model's cache).
      const reference = await runCli(['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r4-reference', '--shard-size', '20'], env);
      expect(reference.code, reference.stderr).toBe(0);
      expect(rowDifferences(rows, await parquetRows('reports/r4-reference/scores.parquet'))).toEqual([]);
    } finally {
      await Promise.all(own.map((w) => w.stop()));
      await proxy.stop();
      await redis.stop();
    }
  });

  it('lists a prefix of many pages completely while a continuation page answers 503, and fails loudly when it never recovers', async () => {
    const keys = Array.from({ length: 1040 }, (_, i) => `many/notes/${String(i).padStart(5, '0')}.txt`);
    for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map((k) => upload(s3, k, new Uint8Array(0))));
    for (const f of demoFiles('scan/fashion-mnist', 1)) await upload(s3, `many/${f.rel}`, readFileSync(f.abs));
    const proxy = await startFaultProxy(s3.endpoint);
    const faultEnv = { ...env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
    try {
      proxy.failMatching(/continuation-token=/, 3);
      const ok = await runCli(['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/many/', '--out', 's3://lake/reports/many'], faultEnv);
      expect(ok.code, ok.stderr).toBe(0);
      expect(proxy.failures).toBe(3);
      const summary = JSON.parse(new TextDecoder().decode(await getBytes('reports/many/summary.json'))) as { accounting: { listed: number; scored: number; skipped: number } };
      expect(summary.accounting).toMatchObject({ listed: 1050, scored: 10, skipped: 1040 });
      proxy.failMatching(/continuation-token=/, Number.POSITIVE_INFINITY);
      const bad = await runCli(['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/many/', '--out', 's3://lake/reports/many-bad'], faultEnv);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim().split('\n').pop()).toMatch(/s3:\/\/lake\/many\/: SlowDown: .* \(gave up after \d+ attempts\)/);
      expect(await listKeys('reports/many-bad/')).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 240_000);

  it('reads an object whose length is not announced (chunked) up to the cap, and refuses it past the cap without holding it', async () => {
    const proxy = await startFaultProxy(s3.env.AWS_ENDPOINT_URL_S3!);
    const client = new S3Client({ endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxAttempts: 1 });
    try {
      const store = new S3Store(s3.bucket, { endpoint: proxy.endpoint }, client);
      const body = new Uint8Array(300_000).map((_, i) => i % 251);
      await upload(s3, 'chunked/big.bin', body);
      proxy.chunked = true;
      expect(await store.get('chunked/big.bin', { maxBytes: 300_000 })).toEqual(body);
      await expect(store.get('chunked/big.bin', { maxBytes: 100_000, limit: '(--max-bytes)' })).rejects.toThrow(/^s3:\/\/lake\/chunked\/big\.bin: no length announced, and more bytes read than the 100000-byte limit \(--max-bytes\)$/);
      proxy.chunked = false;
      await expect(store.get('chunked/big.bin', { maxBytes: 100_000 })).rejects.toThrow('s3://lake/chunked/big.bin: 300000 bytes, more than the 100000-byte limit');
    } finally {
      client.destroy();
      await proxy.stop();
    }
  });

  it('says so when another scan of the prefix recorded its state while this one reported: the report is complete, the other state stands', async () => {
    const proxy = await startFaultProxy(s3.env.AWS_ENDPOINT_URL_S3!);
    try {
      for (const f of demoFiles('scan/cifar10', 2)) await upload(s3, `overtaken/${f.rel}`, readFileSync(f.abs));
      const stateKey = `${scanStateLocation('s3://lake/models/m1', 's3://lake/overtaken/').slice('s3://lake/'.length)}/${STATE_KEYS.index}`;
      const other = { format: STATE_FORMAT, runId: 'scan-00000000000000ff', finishedAt: new Date().toISOString(), out: 's3://lake/reports/other', flaggedFraction: 0, scored: 0, carry: '0123456789abcdef', pages: [], retired: [] };
      // Another scan records its state just as this run writes summary.json (after its report, before its state).
      proxy.onRequest = async (method, url) => {
        if (method === 'PUT' && url.includes('/reports/overtaken/summary.json')) await upload(s3, stateKey, JSON.stringify(other));
      };
      const r = await runCli(['scan', '--in-process', '--model', 's3://lake/models/m1', '--input', 's3://lake/overtaken/', '--out', 's3://lake/reports/overtaken', '--json'], { ...env, AWS_ENDPOINT_URL_S3: proxy.endpoint });
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { scored: number; stateNotRecorded: string | null };
      expect(doc.scored).toBe(20);
      expect(doc.stateNotRecorded).toBe('scan scan-00000000000000ff recorded the state of this prefix while this run was reporting; its state stands, and the next scan plans on it');
      expect(JSON.parse(new TextDecoder().decode(await getBytes(stateKey)))).toEqual(other);
      expect(await listKeys('reports/overtaken/report.html')).toHaveLength(1);
    } finally {
      proxy.onRequest = undefined;
      await proxy.stop();
    }
  }, 120_000);

  it('a report job retried after it recorded the scan state builds nothing again: the pages it retired stay, a scan recorded in between stands', async () => {
    for (const f of demoFiles('scan/cifar10', 2)) await upload(s3, `retried/${f.rel}`, readFileSync(f.abs));
    const { folder, index } = stateOf('retried/');
    const first = await runCli(['scan', '--in-process', '--model', 's3://lake/models/m1', '--input', 's3://lake/retried/', '--out', 's3://lake/reports/retried-1'], env);
    expect(first.code, first.stderr).toBe(0);
    const s1 = await index();
    // One image changes: the next scan's page replaces (retires) the first scan's.
    const [a, b] = demoFiles('scan/cifar10', 2);
    await upload(s3, `retried/${a!.rel}`, readFileSync(b!.abs));

    // Every attempt of the first history.json write is refused: the report job fails after recording
    // its state, and is retried. Before the retry, another scan records its state (and would delete
    // what this run's index retired, had it been planned on it).
    let refused = 0;
    let recorded: StateIndex | undefined;
    const other = { ...s1, runId: 'scan-00000000000000ee', finishedAt: new Date().toISOString(), pages: [], retired: [] };
    const refuseHistory: FaultProxy['onRequest'] = async (method, url) => {
      if (method !== 'PUT' || !url.includes(`${folder}/history.json`) || refused >= 8) return undefined;
      refused += 1;
      if (refused === 8) {
        recorded = await index();
        await upload(s3, `${folder}/${STATE_KEYS.index}`, JSON.stringify(other));
      }
      return 'fail';
    };
    await withFaultedWorker(refuseHistory, async (faultEnv) => {
      const second = await runCli(['scan', '--model', 's3://lake/models/m1', '--input', 's3://lake/retried/', '--out', 's3://lake/reports/retried-2', '--json'], faultEnv);
      expect(second.code, second.stderr).toBe(0);
      expect(refused).toBe(8);
      expect(JSON.parse(second.stdout)).toMatchObject({ scored: 20, stateNotRecorded: null });
      // The first attempt recorded this run's state: it retired the first scan's page, which is still there.
      expect(recorded!.runId).not.toBe(s1.runId);
      expect(recorded!.retired).toEqual(s1.pages.map((p) => p.id));
      for (const id of recorded!.retired) expect(await listKeys(`${folder}/${STATE_KEYS.page(id)}`)).toHaveLength(1);
      // The retry changed no state (the scan recorded in between stands) and compared with the first scan, not itself.
      expect(await index()).toEqual(other);
      expect(await readJson('reports/retried-2/report.json')).toMatchObject({ previous: { runId: s1.runId } });
      const history = (await readJson(`${folder}/history.json`)) as { runs: { runId: string }[] };
      expect(history.runs.map((r) => r.runId)).toEqual([s1.runId, recorded!.runId]);
      expect(await listKeys(`reports/retried-2/.work/`)).toEqual([]);
    });
  }, 240_000);

  it('a report job retried after it recorded its index, but before its outcome, records nothing over a scan recorded in between', async () => {
    for (const f of demoFiles('scan/cifar10', 2)) await upload(s3, `window/${f.rel}`, readFileSync(f.abs));
    const { folder, index } = stateOf('window/');
    // Every write of the report's state outcome is refused: the job fails just after writing its
    // index, and is retried. At the first refusal another scan records its state over it.
    let recorded: StateIndex | undefined;
    let other: StateIndex | undefined;
    const refuseOutcome: FaultProxy['onRequest'] = async (method, url) => {
      if (method !== 'PUT' || !url.includes('/state-outcome.json')) return undefined;
      if (other === undefined) {
        recorded = await index();
        other = { ...recorded, runId: 'scan-00000000000000ef', finishedAt: new Date().toISOString(), pages: [], retired: [] };
        await upload(s3, `${folder}/${STATE_KEYS.index}`, JSON.stringify(other));
      }
      return 'fail';
    };
    await withFaultedWorker(refuseOutcome, async (faultEnv) => {
      const r = await runCli(['scan', '--model', 's3://lake/models/m1', '--input', 's3://lake/window/', '--out', 's3://lake/reports/window', '--json'], faultEnv);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { scored: number; stateNotRecorded: string | null };
      expect(doc.scored).toBe(20);
      expect(doc.stateNotRecorded).toMatch(/^scan scan-00000000000000ef recorded the state of this prefix after this run's first report attempt/);
      // The first attempt had recorded this run; the retry neither rebuilt nor wrote over the scan after it.
      expect(recorded!.out).toBe('s3://lake/reports/window');
      expect(await index()).toEqual(other);
      expect(await listKeys('reports/window/.work/')).toEqual([]);
    });
  }, 240_000);

  it('a scan run again after its outputs were deleted is a new run: its state is recorded, not taken for a retry', async () => {
    for (const f of demoFiles('scan/cifar10', 1)) await upload(s3, `again/${f.rel}`, readFileSync(f.abs));
    const { index } = stateOf('again/');
    const args = ['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/again/', '--out', 's3://lake/reports/again', '--json'];
    const first = await runCli(args, env);
    expect(first.code, first.stderr).toBe(0);
    const firstId = (await index()).runId;
    for (const key of await listKeys('reports/again/')) await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
    const second = await runCli(args, env);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ scored: 10, stateNotRecorded: null });
    expect((await index()).runId).not.toBe(firstId);
  }, 120_000);

  it('fails with one line naming the endpoint when nothing answers there, and writes nothing', async () => {
    const closed = await freePort();
    const r = await runCli(['scan', '--in-process', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/unreachable'], { ...env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closed}` });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(new RegExp(`cannot reach the S3 endpoint http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`));
    expect(await listKeys('reports/unreachable/')).toEqual([]);
  }, 120_000);
});
