import { mkdtempSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/shared/storage/local-store.js';
import { getJson, MAX_JSON_BYTES } from '../../src/shared/storage/object-store.js';
import { classifyS3Error } from '../../src/shared/storage/s3-store.js';
import { withRetry } from '../../src/shared/storage/retry.js';
import { coerceError, OodError } from '../../src/shared/errors.js';
import { joinUri, locate } from '../../src/shared/storage/locate.js';
import { parseEnv, redactUrl } from '../../src/shared/config/env.js';
import { jobId, partIndexOf, parsePayload } from '../../src/shared/queue/contract.js';
import { shardEndsAfter } from '../../src/producers/plan.js';

describe('local store', () => {
  it('writes atomically, lists sorted with etags, and refuses keys that escape the root', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ood-store-'));
    const s = new LocalStore(root);
    await s.put('b/2.txt', 'two');
    await s.put('a/1.txt', 'one');
    await s.put('a/sub/3.txt', new Uint8Array([1, 2, 3]));
    const listed = [];
    for await (const o of s.list('')) listed.push(o);
    expect(listed.map((o) => o.key)).toEqual(['a/1.txt', 'a/sub/3.txt', 'b/2.txt']);
    expect((listed[1] as { size: number }).size).toBe(3);
    const inA = [];
    for await (const o of s.list('a/')) inA.push(o.key);
    expect(inA).toEqual(['a/1.txt', 'a/sub/3.txt']);
    const before = (await s.head('a/1.txt'))!.etag;
    await new Promise((r) => setTimeout(r, 5));
    await s.put('a/1.txt', 'one again');
    expect((await s.head('a/1.txt'))!.etag).not.toBe(before);
    expect(readdirSync(path.join(root, 'a')).filter((f) => f.startsWith('.ood-tmp'))).toEqual([]);
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\0b']) await expect(s.put(bad, 'x')).rejects.toMatchObject({ code: 'KEY_UNSAFE' });
    await expect(s.get('missing.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a JSON file over the JSON limit before reading it, naming the file and the limit', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ood-store-'));
    const s = new LocalStore(root);
    const file = path.join(root, 'index.json');
    writeFileSync(file, '{}');
    truncateSync(file, MAX_JSON_BYTES + 1); // sparse: costs no disk
    await expect(getJson(s, 'index.json')).rejects.toThrow(`${file}: ${MAX_JSON_BYTES + 1} bytes, more than the ${MAX_JSON_BYTES}-byte limit of a JSON file`);
    await s.put('small.json', '{"a":1}');
    await expect(getJson(s, 'small.json')).resolves.toEqual({ a: 1 });
  });

  it('parses locations and joins URIs', () => {
    expect(() => locate('s3://', { mustExist: false, openS3: () => new LocalStore('/tmp') })).toThrow(/no bucket/);
    expect(() => locate('gs://bucket/x', { mustExist: false })).toThrow(/unsupported location/);
    expect(() => locate('/no/such/dir', { mustExist: true })).toThrow(/no such folder/);
    expect(joinUri('s3://b/p/', 'x', '/y/')).toBe('s3://b/p/x/y');
    expect(joinUri('/data/out', '.work', 'run-1')).toBe('/data/out/.work/run-1');
  });
});

describe('S3 errors and retries', () => {
  const err = (name: string, status?: number, extra: object = {}): unknown => Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra });

  it('classifies throttling, 5xx and resets as transient, and access or bucket errors as permanent, naming the URI', () => {
    expect(classifyS3Error(err('SlowDown', 503), 's3://b/k').code).toBe('STORAGE_TRANSIENT');
    expect(classifyS3Error(err('InternalError', 500), 's3://b/k').code).toBe('STORAGE_TRANSIENT');
    expect(classifyS3Error(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 's3://b/k').code).toBe('STORAGE_TRANSIENT');
    const denied = classifyS3Error(err('AccessDenied', 403), 's3://b/k');
    expect(denied.code).toBe('STORAGE_PERMANENT');
    expect(denied.message).toContain('s3://b/k');
    expect(classifyS3Error(err('NoSuchBucket', 404), 's3://b/k').code).toBe('STORAGE_PERMANENT');
    expect(classifyS3Error(err('NoSuchKey', 404), 's3://b/k').code).toBe('NOT_FOUND');
  });

  it('retries transient errors with backoff and fails fast on permanent ones', async () => {
    let calls = 0;
    const delays: number[] = [];
    const v = await withRetry(async () => {
      calls += 1;
      if (calls < 3) throw new OodError('STORAGE_TRANSIENT', 'busy');
      return 'ok';
    }, { baseMs: 10, maxMs: 40, onRetry: (_a, d) => delays.push(d) });
    expect(v).toBe('ok');
    expect(calls).toBe(3);
    expect(delays.every((d) => d >= 0 && d <= 40)).toBe(true);
    let permanentCalls = 0;
    await expect(withRetry(async () => {
      permanentCalls += 1;
      throw new OodError('STORAGE_PERMANENT', 'denied');
    })).rejects.toMatchObject({ code: 'STORAGE_PERMANENT' });
    expect(permanentCalls).toBe(1);
    await expect(withRetry(async () => {
      throw new OodError('STORAGE_TRANSIENT', 'down');
    }, { attempts: 3, baseMs: 1, maxMs: 2 })).rejects.toThrow(/gave up after 3 attempts/);
  });
});

describe('error table', () => {
  it('retries only transient storage faults; a bug, a bad payload or an unknown error fails at once', () => {
    expect(new OodError('STORAGE_TRANSIENT', 'x').retryable).toBe(true);
    for (const code of ['INTERNAL', 'PAYLOAD_INVALID', 'MODEL_INVALID', 'CONFIG_INVALID', 'OBJECT_UNREADABLE', 'OBJECT_TOO_LARGE', 'STORAGE_PERMANENT'] as const) expect(new OodError(code, 'x').retryable, code).toBe(false);
    expect(coerceError(new Error('something odd')).code).toBe('INTERNAL');
    expect(coerceError(new Error('something odd')).retryable).toBe(false);
    expect(coerceError({ code: 'STORAGE_TRANSIENT', message: 'crossed a process boundary' }).retryable).toBe(true);
    expect(new OodError('CONFIG_INVALID', 'x').exitCode).toBe(2);
    expect(new OodError('NOT_FOUND', 'x').exitCode).toBe(1);
  });
});

describe('environment and queue contract', () => {
  it('parses the environment once, redacting secrets in messages', () => {
    const e = parseEnv({ REDIS_URL: 'rediss://user:secret@redis.example:6380/1', AWS_ENDPOINT_URL: 'http://minio:9000', AWS_REGION: 'eu-west-1' });
    expect(e.redis).toEqual({ url: 'rediss://user:secret@redis.example:6380/1', explicit: true });
    expect(parseEnv({}).redis).toEqual({ url: 'redis://127.0.0.1:6379', explicit: false });
    expect(e.s3).toEqual({ endpoint: 'http://minio:9000', region: 'eu-west-1' });
    expect(e.queuePrefix).toBe('ood');
    expect(redactUrl('redis://:pw@h:1')).toBe('redis://***@h:1');
    expect(() => parseEnv({ REDIS_URL: 'http://user:secret@x' })).toThrow(/invalid REDIS_URL/);
    try {
      parseEnv({ REDIS_URL: 'http://user:secret@x' });
    } catch (err) {
      expect((err as Error).message).not.toContain('secret');
    }
    expect(parseEnv({ AWS_ENDPOINT_URL_S3: 'http://a', AWS_ENDPOINT_URL: 'http://b' }).s3.endpoint).toBe('http://a');
  });

  it('validates payloads when a job starts and refuses signed URLs', () => {
    const good = { runId: 'scan-0123456789abcdef', work: '/w', shard: { index: 0, id: '00000-0123abcd', count: 2, contentHash: '0123456789abcdef' } };
    expect(parsePayload('score', good).shard.index).toBe(0);
    // Names that become paths are checked: a run id, a shard id.
    expect(() => parsePayload('score', { ...good, runId: '../../etc' })).toThrow(/invalid score job payload: runId/);
    expect(() => parsePayload('score', { ...good, shard: { ...good.shard, id: '../../../home/u/.ssh/id_rsa' } })).toThrow(/shard.id/);
    expect(() => parsePayload('score', { ...good, shard: { ...good.shard, index: -1 } })).toThrow(/invalid score job payload: shard.index/);
    expect(() => parsePayload('score', { ...good, work: 'https://b.s3.amazonaws.com/m?X-Amz-Signature=abc' })).toThrow(/signed URL/);
    expect(() => parsePayload('group', { runId: good.runId, step: 'nope', work: '/w' })).toThrow(/invalid group job payload: step/);
    expect(jobId('scan-abc', 'extract', '00007-0123abcd')).toBe('scan-abc.extract.00007-0123abcd');
    expect(jobId('scan-abc', 'report')).not.toContain(':');
  });

  it('cuts shards where the keys say, so an added object moves only the shard around it', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `day-${i % 7}/img-${String(i).padStart(6, '0')}.jpg`).sort();
    const cut = (ks: readonly string[], size: number): string[][] => {
      const shards: string[][] = [];
      let cur: string[] = [];
      for (const k of ks) {
        cur.push(k);
        if (shardEndsAfter(k, cur.length, size)) {
          shards.push(cur);
          cur = [];
        }
      }
      if (cur.length > 0) shards.push(cur);
      return shards;
    };
    const shards = cut(keys, 100);
    expect(shards.every((s) => s.length <= 200)).toBe(true);
    const mean = keys.length / shards.length;
    expect(mean).toBeGreaterThan(60);
    expect(mean).toBeLessThan(120);
    expect(cut(keys, 100)).toEqual(shards);
    // One key added: every shard but the one that takes it is unchanged.
    const added = [...keys, 'day-3/img-new.jpg'].sort();
    const after = cut(added, 100);
    const before = new Set(shards.map((s) => s.join('|')));
    expect(after.filter((s) => !before.has(s.join('|'))).length).toBe(1);
    expect(cut(keys, 1).every((s) => s.length === 1)).toBe(true);
  });

  it('reads a failed child job\'s shard or group index from its key, and nothing from other keys', () => {
    expect(partIndexOf(`ood:score:${jobId('scan-00000000000000ab', 'score', '00012-0123abcd')}`, 'score')).toBe(12);
    expect(partIndexOf(`ood:group:${jobId('scan-00000000000000ab', 'group', '00003-89abcdef')}`, 'group')).toBe(3);
    expect(partIndexOf(jobId('scan-00000000000000ab', 'group', 'listed'), 'group')).toBeUndefined();
    expect(partIndexOf(jobId('scan-00000000000000ab', 'score', '00003-89abcdef'), 'group')).toBeUndefined();
  });
});
