/**
 * Trust nothing from outside: job payloads written into Redis by someone else, model folders that
 * were edited, options that are wrong, a worker whose Redis is gone, and two runs that want the
 * same output. Real Redis, real worker processes, the real CLI.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ROOT, runCli, startCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { freePort, startRedis, startWorker, type WorkerProcess } from '../helpers/services.js';
import { QUEUES, type QueueKind } from '../../src/shared/queue/contract.js';

const REDIS = 'redis://127.0.0.1:6379';
const work = mkdtempSync(path.join(tmpdir(), 'ood-trust-'));
const model = path.join(work, 'model');
const lake = path.join(work, 'lake');

beforeAll(async () => {
  const id = path.join(work, 'id');
  for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
    mkdirSync(path.join(id, c), { recursive: true });
    for (const f of readdirSync(path.join(ROOT, 'examples/demo/id', c)).sort().slice(0, 10)) cpSync(path.join(ROOT, 'examples/demo/id', c, f), path.join(id, c, f));
  }
  cpSync(path.join(ROOT, 'examples/demo/scan'), lake, { recursive: true });
  const fit = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1']);
  expect(fit.code, fit.stderr).toBe(0);
}, 120_000);

async function finalState(kind: QueueKind, id: string, connection: Redis): Promise<Job> {
  const q = new Queue(QUEUES[kind], { connection, prefix: TEST_QUEUE_PREFIX });
  try {
    for (let i = 0; i < 600; i++) {
      const j = await Job.fromId(q, id);
      // Read again once failed: a job read just before it failed has no failedReason yet.
      if (j !== undefined && (await j.getState()) === 'failed') return (await Job.fromId(q, id)) ?? j;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`job ${id} did not fail`);
  } finally {
    await q.close();
  }
}

describe('job payloads from Redis', () => {
  let worker: WorkerProcess;
  const served = path.join(work, 'served');
  const elsewhere = mkdtempSync(path.join(tmpdir(), 'ood-private-'));

  beforeAll(async () => {
    mkdirSync(served, { recursive: true });
    worker = startWorker({ REDIS_URL: REDIS, OOD_WORKER_ROOTS: `${served},${model},${lake}` });
    await worker.ready();
  }, 120_000);

  afterAll(async () => {
    await worker.stop();
  });

  it('fails a crafted job at once when it names a location outside the worker roots, or a path where a name belongs', async () => {
    cpSync(path.join(lake, 'fashion-mnist'), path.join(elsewhere, 'private'), { recursive: true });
    const connection = new Redis(REDIS, { maxRetriesPerRequest: null });
    const add = async (kind: QueueKind, id: string, data: unknown): Promise<void> => {
      const q = new Queue(QUEUES[kind], { connection, prefix: TEST_QUEUE_PREFIX });
      await q.add(kind, data, { jobId: id, attempts: 3 });
      await q.close();
    };
    const run = 'scan-00000000000000aa';
    const shard = { index: 0, id: '00000-0123abcd', count: 1, contentHash: '0123456789abcdef' };
    const report = { runId: run, work: path.join(served, '.work'), model, input: lake, out: path.join(elsewhere, 'planted'), startedAt: Date.now() };
    const group = { runId: run, step: 'group', work: path.join(served, 'w'), group: { index: 0, id: '00000-0123abcd' } };
    // A run's settings in a served folder, naming a location outside the roots.
    mkdirSync(path.join(served, 'w2'), { recursive: true });
    const settings = { runId: run, kind: 'scan', input: path.join(elsewhere, 'private'), cache: path.join(served, 'cache'), encoder: { name: 'mobilenet_v2', taps: ['block_2_add'], inputSize: 224, preprocessing: { kind: 'unit' } }, model, out: path.join(served, 'o') };
    writeFileSync(path.join(served, 'w2', 'settings.json'), JSON.stringify(settings));
    try {
      await add('report', 'crafted-report', report);
      await add('extract', 'crafted-extract', { runId: run, work: elsewhere, shard });
      await add('score', 'crafted-settings', { runId: run, work: path.join(served, 'w2'), shard });
      await add('report', 'crafted-state', { ...report, out: path.join(served, 'out'), state: path.join(elsewhere, 'scans') });
      await add('group', 'crafted-group', { ...group, group: { index: 0, id: '../../../../tmp/planted' } });
      await add('score', 'crafted-shard', { runId: run, work: path.join(served, 'w'), shard: { ...shard, id: '00000-0123abcd/../../../x' } });
      await add('report', 'crafted-thumbnails', { ...report, out: path.join(served, 'out2'), input: elsewhere });
      for (const [kind, id, reason] of [
        ['report', 'crafted-report', /outside this worker's roots/],
        ['extract', 'crafted-extract', /outside this worker's roots/],
        ['score', 'crafted-settings', /outside this worker's roots/],
        ['report', 'crafted-state', /outside this worker's roots/],
        ['group', 'crafted-group', /invalid group job payload: group.id: must be a shard or group id/],
        ['score', 'crafted-shard', /invalid score job payload: shard.id: must be a shard or group id/],
        ['report', 'crafted-thumbnails', /outside this worker's roots/],
      ] as const) {
        const j = await finalState(kind, id, connection);
        expect(j.failedReason, id).toMatch(reason);
        expect(j.attemptsMade, `${id}: permanent, not retried`).toBe(1);
      }
      expect(existsSync(path.join(elsewhere, 'planted'))).toBe(false);
      expect(existsSync(path.join(served, 'out2'))).toBe(false);
      expect(existsSync('/tmp/planted.json')).toBe(false);
    } finally {
      connection.disconnect();
    }
  });
});

describe('model folders', () => {
  it('refuses an edited model folder with one line naming the file and the field', async () => {
    const variant = async (name: string, edit: (dir: string) => void): Promise<string> => {
      const dir = path.join(work, `model-${name}`);
      cpSync(model, dir, { recursive: true });
      edit(dir);
      const r = await runCli(['scan', '--in-process', '--full', '--model', dir, '--input', path.join(lake, 'fashion-mnist'), '--out', path.join(work, `out-${name}`)]);
      expect(r.code, `${name}: ${r.stderr}`).toBe(1);
      return r.stderr.trim().split('\n').pop()!;
    };
    const json = (dir: string, file: string, fn: (j: Record<string, unknown>) => void): void => {
      const j = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
      fn(j);
      writeFileSync(path.join(dir, file), JSON.stringify(j));
    };
    expect(await variant('no-threshold', (d) => json(d, 'calibration.json', (j) => delete (j['scores'] as Record<string, Record<string, unknown>>)['fused']!['threshold']))).toMatch(/calibration.json: scores.fused.threshold: /);
    expect(await variant('null-threshold', (d) => json(d, 'calibration.json', (j) => ((j['scores'] as Record<string, Record<string, unknown>>)['fused']!['threshold'] = null)))).toMatch(/calibration.json/);
    expect(await variant('doubled-weights', (d) => writeFileSync(path.join(d, 'weights.bin'), Buffer.concat([readFileSync(path.join(d, 'weights.bin')), readFileSync(path.join(d, 'weights.bin'))])))).toMatch(/weights.bin: \d+ bytes, model.json records \d+/);
    expect(await variant('zeroed-fingerprint', (d) => json(d, 'model.json', (j) => ((j['fingerprint'] as Record<string, unknown>)['weightsSha256'] = '0'.repeat(64))))).toMatch(/model.json: fingerprint.id does not match/);
    expect(await variant('garbage', (d) => writeFileSync(path.join(d, 'model.json'), '{not json'))).toMatch(/model.json: not valid JSON/);
    expect(await variant('baselines', (d) => writeFileSync(path.join(d, 'baselines.bin'), Buffer.alloc(64)))).toMatch(/baselines.bin: 64 bytes, model.json records/);
  });
});

describe('options and workers', () => {
  it('validates every option before it connects to Redis or starts workers', async () => {
    const closed = await freePort();
    const r = await runCli(['scan', '--model', model, '--input', lake, '--out', path.join(work, 'o'), '--shard-size', '0'], { REDIS_URL: `redis://127.0.0.1:${closed}` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid --shard-size: expected an integer in \[1, 1000000\], got "0"/);
    expect(r.stderr).not.toMatch(/starting|Redis/);
  });

  it('ends a worker whose Redis is gone or refuses its password within the shutdown timeout', async () => {
    const closed = await freePort();
    const redis = await startRedis('right-password');
    try {
      for (const url of [`redis://127.0.0.1:${closed}`, `redis://:wrong-password@127.0.0.1:${redis.port}`]) {
        const w = startWorker({ REDIS_URL: url }, ['--shutdown-timeout', '2']);
        // Wait until the worker has started and met the outage (a fixed sleep raced slow starts under load).
        const end = Date.now() + 60_000;
        while (!/connection lost/.test(w.output()) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
        expect(w.output(), url).toMatch(/connection lost/);
        const exited = new Promise<number | null>((r) => w.child.once('exit', (code) => r(code)));
        const t = Date.now();
        w.child.kill('SIGTERM');
        const code = await exited;
        expect(Date.now() - t, url).toBeLessThan(10_000);
        expect(code).not.toBeNull();
        expect(w.output()).not.toMatch(/wrong-password/);
        // One line about the lost connection, not one per retry.
        expect(w.output().match(/connection lost/g)?.length ?? 0).toBeLessThanOrEqual(1);
        await w.stop();
      }
    } finally {
      await redis.stop();
    }
  }, 60_000);

  it('refuses a second run into an output another live run is writing', async () => {
    const out = path.join(work, 'shared-out');
    const first = startCli(['scan', '--full', '--model', model, '--input', lake, '--out', out, '--cache', path.join(work, 'cold-cache'), '--shard-size', '25', '--workers', '1'], { REDIS_URL: REDIS });
    await first.waitFor(/queued run scan-/);
    const second = await runCli(['scan', '--full', '--model', model, '--input', path.join(lake, 'fashion-mnist'), '--out', out], { REDIS_URL: REDIS });
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/is being written by another run \(scan-[0-9a-f]+, (active|waiting-children|waiting)\)/);
    const r = await first.done;
    expect(r.code, r.stderr).toBe(0);
    // Once the first run is done, the output is free again.
    const third = await runCli(['scan', '--full', '--model', model, '--input', path.join(lake, 'fashion-mnist'), '--out', out, '--workers', '1'], { REDIS_URL: REDIS });
    expect(third.code, third.stderr).toBe(0);
  }, 180_000);
});
