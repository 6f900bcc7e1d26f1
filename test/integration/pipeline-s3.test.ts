/**
 * The distributed pipeline against real services: a real S3-protocol server (s3rver) on loopback,
 * real Redis, real worker processes (each with its own sandboxed children), crashed with SIGKILL, and
 * a fault proxy in front of S3. The model is a fixture fitted once; every test scans into outputs of
 * its own, so none depends on another's results.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parquetReadObjects } from 'hyparquet';
import { contentOf, readParquet, rowDifferences } from '../helpers/parquet.js';
import { ROOT, runCli, startCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { hugePngHeader, textAsPng, truncatedJpeg } from '../helpers/images.js';
import { startS3rver, startWorker, upload, type S3Server, type WorkerProcess } from '../helpers/services.js';
import { QUEUES } from '../../src/shared/queue/contract.js';

const REDIS = 'redis://127.0.0.1:6379';
const FAST_LOCKS = ['--lock-duration', '3000', '--stalled-interval', '1500'];
let s3: S3Server;
let env: Record<string, string>;
const workers: WorkerProcess[] = [];

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

function runIdFrom(stderr: string): string {
  const m = /run ((?:scan|fit)-[0-9a-f]+)/.exec(stderr);
  if (m === null) throw new Error(`no run id in: ${stderr}`);
  return m[1]!;
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

/** The worker process holding a job (from BullMQ's processedBy = "ood-audit:<queue>:<pid>"). */
function holder(job: Job): WorkerProcess | undefined {
  const pid = Number(/:(\d+)$/.exec(job.processedBy ?? '')?.[1]);
  return workers.find((w) => w.pid === pid);
}

/** Uploads the scan set (CIFAR-10, Fashion-MNIST, broken files, a text file) under `prefix`. */
async function uploadScanSet(prefix: string): Promise<void> {
  for (const f of demoFiles('scan/cifar10', 10)) await upload(s3, `${prefix}cifar10/${f.rel}`, readFileSync(f.abs));
  for (const f of demoFiles('scan/fashion-mnist', 5)) await upload(s3, `${prefix}fashion-mnist/${f.rel}`, readFileSync(f.abs));
  await upload(s3, `${prefix}broken/truncated.jpg`, await truncatedJpeg());
  await upload(s3, `${prefix}broken/empty.jpg`, new Uint8Array(0));
  await upload(s3, `${prefix}broken/text.png`, textAsPng());
  await upload(s3, `${prefix}broken/bomb.png`, hugePngHeader());
  await upload(s3, `${prefix}README.txt`, 'not an image');
}

beforeAll(async () => {
  s3 = await startS3rver('lake');
  env = { ...s3.env, REDIS_URL: REDIS };
  for (const f of demoFiles('id', 30)) await upload(s3, `datasets/id/${f.rel}`, readFileSync(f.abs));
  await uploadScanSet('datasets/scan/');
  workers.push(startWorker(env, FAST_LOCKS), startWorker(env, FAST_LOCKS));
  await Promise.all(workers.map((w) => w.ready()));
  const fit = await runCli(['fit', '--id', 's3://lake/datasets/id/', '--model', 's3://lake/models/m1', '--epochs', '6', '--width', '128', '--depth', '2', '--lr', '1e-3', '--shard-size', '100'], env);
  expect(fit.code, fit.stderr).toBe(0);
  expect(fit.stderr).toMatch(/listed 300 entries: 300 ID images in \d+ shards/);
  expect(fit.stderr).not.toMatch(/starting \d+ local worker/);
}, 240_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await s3?.stop();
}, 120_000);

describe('pipeline on S3', () => {
  it('scans with bad inputs itemised, keys relative to the prefix and full URIs; outputs land under the expected keys; the in-process core gives the same rows', async () => {
    const modelKeys = await listKeys('models/m1/');
    for (const f of ['model.json', 'weights.bin', 'weights-first.bin', 'baselines.bin', 'calibration.json', 'training-log.json', 'checkpoints/latest.ckpt', 'checkpoints/epoch-0001.ckpt']) expect(modelKeys).toContain(`models/m1/${f}`);
    const scan = await runCli(['scan', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r1', '--shard-size', '40'], env);
    expect(scan.code, scan.stderr).toBe(0);
    expect(scan.stderr).toMatch(/listed 155 entries: 154 images in \d+ shards \(skipped: 1 not an image \(file extension\)\)/);
    const outKeys = await listKeys('reports/r1/');
    for (const f of ['scores.parquet', 'scores.csv', 'failures.csv', 'skipped.csv', 'summary.json', 'report.json', 'report.html', 'report.md']) expect(outKeys).toContain(`reports/r1/${f}`);
    const summary = JSON.parse(new TextDecoder().decode(await getBytes('reports/r1/summary.json'))) as { input: Record<string, number>; run: { id: string; missingShards: number[] }; accounting: Record<string, unknown> };
    expect(summary.input).toMatchObject({ images: 154, scored: 150, failed: 4, skippedNonImages: 1 });
    expect(summary.accounting).toMatchObject({ listed: 155, scored: 150, failed: 4, skipped: 1 });
    expect(summary.run.missingShards).toEqual([]);
    const failures = new TextDecoder().decode(await getBytes('reports/r1/failures.csv'));
    expect(failures).toMatch(/^broken\/truncated.jpg,s3:\/\/lake\/datasets\/scan\/broken\/truncated.jpg,.*(premature end|corrupt)/im);
    expect(failures).toMatch(/^broken\/empty.jpg,.*,empty file/m);
    expect(failures).toMatch(/^broken\/text.png,.*unsupported image format/im);
    expect(failures).toMatch(/^broken\/bomb.png,.*pixel limit/im);
    const rows = await parquetRows('reports/r1/scores.parquet');
    expect(rows).toHaveLength(150);
    const one = rows.find((r) => String(r['key']).startsWith('cifar10/'))!;
    expect(one['uri']).toBe(`s3://lake/datasets/scan/${String(one['key'])}`);
    expect(String(one['sha256'])).toMatch(/^[0-9a-f]{64}$/);
    // Credentials never reach outputs.
    expect(JSON.stringify(summary)).not.toMatch(/S3RVER/);
    // Nor job data in Redis: every hash of this test's queues, scanned for the secret.
    const redisClient = new Redis(REDIS);
    try {
      let cursor = '0';
      let seen = 0;
      do {
        const [next, keys] = await redisClient.scan(cursor, 'MATCH', `${TEST_QUEUE_PREFIX}:*`, 'COUNT', 500);
        cursor = next;
        for (const k of keys) {
          if ((await redisClient.type(k)) !== 'hash') continue;
          seen += 1;
          expect(JSON.stringify(await redisClient.hgetall(k))).not.toMatch(/S3RVER/);
        }
      } while (cursor !== '0');
      expect(seen).toBeGreaterThan(5);
    } finally {
      redisClient.disconnect();
    }
    const local = await runCli(['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r1-core'], env);
    expect(local.code, local.stderr).toBe(0);
    expect(rowDifferences(await parquetRows('reports/r1-core/scores.parquet'), rows)).toEqual([]);
  });

  it('adds nothing when the same scan is started again while it runs, and a re-scan of the unchanged prefix hits the feature cache', async () => {
    const args = ['scan', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r2a', '--shard-size', '40'];
    const connection = new Redis(REDIS, { maxRetriesPerRequest: null });
    const reports = new Queue(QUEUES.report, { connection, prefix: TEST_QUEUE_PREFIX });
    const shardJobs = new Queue(QUEUES.score, { connection, prefix: TEST_QUEUE_PREFIX });
    try {
      // The report queue is paused so the first run is still going when the second starts.
      await reports.pause();
      const first = startCli(args, env);
      await first.waitFor(/queued run scan-/);
      const again = startCli(args, env);
      await again.waitFor(/already queued or done: run scan-/);
      expect(runIdFrom(again.output())).toBe(runIdFrom(first.output()));
      await reports.resume();
      const [a, b] = await Promise.all([first.done, again.done]);
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      expect(b.stdout).toBe(a.stdout);
      const rescan = await runCli(['scan', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r2b', '--shard-size', '40'], env);
      expect(rescan.code, rescan.stderr).toBe(0);
      const runId = runIdFrom(rescan.stderr);
      const jobs = (await shardJobs.getJobs(['completed'], 0, -1)).filter((j) => j.id?.startsWith(`${runId}.score.`) === true);
      expect(jobs.length).toBeGreaterThan(1);
      for (const j of jobs) expect((j.returnvalue as { cached: boolean }).cached, j.id).toBe(true);
    } finally {
      await reports.resume();
      await reports.close();
      await shardJobs.close();
      connection.disconnect();
    }
    expect(rowDifferences(await parquetRows('reports/r2b/scores.parquet'), await parquetRows('reports/r2a/scores.parquet'))).toEqual([]);
  });

  it('gives a scan of many listing pages, shards and groups the same outputs as a single-shard scan of the same objects', async () => {
    // 2,050 images over 3 listing pages (1,000 keys a page): 50 real ones in two partitions and
    // 2,000 empty ones (each a failure), so ~200 shards in 4 groups through the queues.
    const real = demoFiles('scan/cifar10', 5);
    for (const [i, f] of real.entries()) await upload(s3, `wide/p${i % 2}/${f.rel.replace('/', '-')}`, readFileSync(f.abs));
    const empties = Array.from({ length: 2000 }, (_, i) => `wide/p${i % 3}/empty-${String(i).padStart(5, '0')}.jpg`);
    for (let i = 0; i < empties.length; i += 100) await Promise.all(empties.slice(i, i + 100).map((k) => upload(s3, k, new Uint8Array(0))));
    const args = (out: string, shardSize: string): string[] => ['scan', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/wide/', '--out', `s3://lake/reports/${out}`, '--shard-size', shardSize, '--top-k', '5'];
    const many = await runCli(args('wide-many', '12'), env);
    expect(many.code, many.stderr).toBe(0);
    const shards = Number(/listed 2050 entries: 2050 images in (\d+) shards/.exec(many.stderr)?.[1]);
    expect(shards).toBeGreaterThan(150);
    const one = await runCli([...args('wide-one', '100000'), '--in-process'], env);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stderr).toMatch(/listed 2050 entries: 2050 images in 1 shards/);
    const text = async (key: string): Promise<string> => new TextDecoder().decode(await getBytes(key));
    const runless = (t: string): string => t.replace(/scan-[0-9a-f]{16}/g, '<run>');
    for (const f of ['scores.csv', 'failures.csv', 'skipped.csv']) expect(runless(await text(`reports/wide-many/${f}`)), f).toBe(runless(await text(`reports/wide-one/${f}`)));
    expect(rowDifferences(await parquetRows('reports/wide-many/scores.parquet'), await parquetRows('reports/wide-one/scores.parquet'))).toEqual([]);
    const content = (r: { run: unknown; input: unknown; scope: object; verdict: unknown; partitions: unknown; histogram: unknown; failures: unknown; mostOod: unknown; mostTypical: unknown }): unknown => ({ ...r, run: undefined, previous: undefined, trend: undefined, scope: { ...r.scope, rescan: undefined, text: undefined } }); // the second run's trend has the first's point too, its scope says it rescanned
    const reportOf = async (out: string): Promise<unknown> => content(JSON.parse(await text(`reports/${out}/report.json`)) as Parameters<typeof content>[0]);
    expect(await reportOf('wide-many')).toEqual(await reportOf('wide-one'));
    const summaryOf = async (out: string): Promise<{ accounting: unknown; scores: unknown; parts: { scores: number } }> => JSON.parse(await text(`reports/${out}/summary.json`)) as { accounting: unknown; scores: unknown; parts: { scores: number } };
    const [sm, so] = [await summaryOf('wide-many'), await summaryOf('wide-one')];
    expect(sm.accounting).toEqual(so.accounting);
    expect(sm.accounting).toMatchObject({ listed: 2050, scored: 50, failed: 2000, skipped: 0 });
    expect(sm.scores).toEqual(so.scores);
    expect(sm.parts.scores).toBeGreaterThanOrEqual(3);
    expect(so.parts.scores).toBe(1);
    // The dataset layout: one part per group, the same rows as the single file.
    const parts = (await listKeys('reports/wide-many/scores/')).filter((k) => k.endsWith('.parquet'));
    expect(parts).toHaveLength(sm.parts.scores);
    const partRows = [];
    for (const k of parts) partRows.push(...(await parquetRows(k)));
    expect(rowDifferences(partRows, await parquetRows('reports/wide-one/scores.parquet'))).toEqual([]);
    // The runs' work areas (manifests, shard rows, aggregates) are removed once the outputs are complete.
    expect(await listKeys('reports/wide-many/.work/')).toEqual([]);
  }, 300_000);

  it('scans only new or changed objects incrementally, counts the unchanged ones, and compares with the previous scan', async () => {
    await uploadScanSet('incremental/');
    const args = (out: string): string[] => ['scan', '--model', 's3://lake/models/m1', '--input', 's3://lake/incremental/', '--out', `s3://lake/reports/${out}`, '--shard-size', '40'];
    const first = await runCli(args('inc1'), env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/154 images in \d+ shards/);
    const f = demoFiles('scan/cifar10', 12);
    await upload(s3, 'incremental/cifar10/new/extra-1.jpg', readFileSync(f[10]!.abs));
    await upload(s3, 'incremental/cifar10/new/extra-2.jpg', readFileSync(f[11]!.abs));
    // Rewrite one existing object with other content: a new ETag.
    await upload(s3, `incremental/cifar10/${f[0]!.rel}`, readFileSync(f[1]!.abs));
    const inc = await runCli(args('inc2'), env);
    expect(inc.code, inc.stderr).toBe(0);
    // 3 new or changed, and the 4 broken images again: failed images are retried by every scan.
    expect(inc.stderr).toMatch(/listed 157 entries: 7 images in \d+ shards \(skipped: 1 not an image \(file extension\), 149 unchanged since the previous scan/);
    const report = JSON.parse(new TextDecoder().decode(await getBytes('reports/inc2/report.json'))) as { run: { incremental: boolean; skippedUnchanged: number }; scope: { scored: number; failed: number; carried: number; scanned: number }; input: { scored: number; accounting: { listed: number; scored: number; skipped: number } }; previous: { change: string } | null };
    expect(report.run).toMatchObject({ incremental: true, skippedUnchanged: 149 });
    expect(report.input.scored).toBe(3);
    expect(report.input.accounting).toMatchObject({ listed: 157, scored: 3, failed: 4, skipped: 150 });
    // The report describes the whole prefix in the S3 store's scan state: 149 scores carried forward.
    expect(report.scope).toMatchObject({ scored: 152, failed: 4, carried: 149, scanned: 7 });
    expect(report.previous?.change).toMatch(/flagged now vs .* in the previous scan/);
    const full = await runCli([...args('inc3'), '--full'], env);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toMatch(/156 images in \d+ shards/);
  });

  it('gives the same bytes the same scores under another name, in another store', async () => {
    const img = demoFiles('scan/fashion-mnist', 1)[0]!;
    await upload(s3, 'twins/a/original.png', readFileSync(img.abs));
    await upload(s3, 'twins/b/renamed.png', readFileSync(img.abs));
    const local = mkdtempSync(path.join(tmpdir(), 'ood-twins-'));
    mkdirSync(path.join(local, 'elsewhere'));
    cpSync(img.abs, path.join(local, 'elsewhere', 'third-name.png'));
    const a = await runCli(['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/twins/', '--out', 's3://lake/reports/twins'], env);
    expect(a.code, a.stderr).toBe(0);
    const b = await runCli(['scan', '--in-process', '--full', '--model', 's3://lake/models/m1', '--input', local, '--out', path.join(local, 'out')], env);
    expect(b.code, b.stderr).toBe(0);
    const rows = [...(await parquetRows('reports/twins/scores.parquet')), ...(await readParquet(path.join(local, 'out', 'scores.parquet')))];
    expect(rows.map((r) => r['key'])).toEqual(['a/original.png', 'b/renamed.png', 'elsewhere/third-name.png']);
    const content = rows.map(contentOf);
    expect(content[1]).toEqual(content[0]);
    expect(content[2]).toEqual(content[0]);
  });

  it('completes a shard on another worker when its worker is SIGKILLed mid-extraction, with exactly one score row per image', async () => {
    const connection = new Redis(REDIS, { maxRetriesPerRequest: null });
    const q = new Queue(QUEUES.score, { connection, prefix: TEST_QUEUE_PREFIX });
    try {
      // A fresh cache so the shards are really encoded.
      const scan = runCli(['scan', '--full', '--model', 's3://lake/models/m1', '--input', 's3://lake/datasets/scan/', '--out', 's3://lake/reports/r3', '--cache', 's3://lake/cache-r3', '--shard-size', '80'], env);
      const victim = await waitFor('a shard extracting', async () => {
        const active = await q.getJobs(['active']);
        const j = active.find((x) => x.id?.includes('.score.') === true && typeof x.progress === 'object' && (x.progress as { stage?: string }).stage === 'extract' && Number((x.progress as { done?: number }).done ?? 0) > 0);
        return j;
      });
      const w = holder(victim);
      expect(w, `holder of ${victim.id} (${victim.processedBy})`).toBeDefined();
      w!.crash();
      workers.push(startWorker(env, FAST_LOCKS)); // the fleet replaces the node
      const r = await scan;
      expect(r.code, r.stderr).toBe(0);
      const rows = await parquetRows('reports/r3/scores.parquet');
      const keys = rows.map((x) => String(x['key']));
      expect(new Set(keys).size).toBe(keys.length);
      expect(keys).toHaveLength(150);
      const done = await q.getJob(victim.id!);
      expect(await done?.getState()).toBe('completed');
    } finally {
      await q.close();
      connection.disconnect();
    }
  });

  it('resumes training from the last checkpoint when the training worker is SIGKILLed', async () => {
    const connection = new Redis(REDIS, { maxRetriesPerRequest: null });
    const q = new Queue(QUEUES.train, { connection, prefix: TEST_QUEUE_PREFIX });
    try {
      const fit = runCli(['fit', '--id', 's3://lake/datasets/id/', '--model', 's3://lake/models/m2', '--epochs', '10', '--width', '512', '--depth', '4', '--batch-size', '32', '--shard-size', '150'], env);
      const victim = await waitFor('a train job past epoch 3', async () => {
        const active = await q.getJobs(['active']);
        return active.find((x) => typeof x.progress === 'object' && (x.progress as { stage?: string; done?: number }).stage === 'train' && Number((x.progress as { done?: number }).done) >= 3 && (x.progress as { checkpoint?: string }).checkpoint !== undefined);
      }, 300_000);
      const epochAtCrash = Number((victim.progress as { done: number }).done);
      holder(victim)!.crash();
      workers.push(startWorker(env, FAST_LOCKS));
      const r = await fit;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/training resumed after epoch (\d+)/);
      const resumed = Number(/training resumed after epoch (\d+)/.exec(r.stderr)![1]);
      expect(resumed).toBeGreaterThanOrEqual(epochAtCrash);
      const log = JSON.parse(new TextDecoder().decode(await getBytes('models/m2/training-log.json'))) as { epochs: { epoch: number }[] };
      expect(log.epochs[0]!.epoch).toBe(resumed + 1);
      expect(log.epochs[log.epochs.length - 1]!.epoch).toBe(10);
    } finally {
      await q.close();
      connection.disconnect();
    }
  }, 300_000); // as long as its own wait for epoch 3: a loaded machine trains slower
});
