/**
 * Designed shutdown: SIGTERM makes a worker stop taking jobs and release the running one at its next
 * epoch boundary (back to waiting, no attempt spent, checkpoint kept); it exits cleanly, and another
 * worker finishes the job from the checkpoint.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ROOT, runCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { startWorker } from '../helpers/services.js';
import { QUEUES } from '../../src/shared/queue/contract.js';

const REDIS = 'redis://127.0.0.1:6379';

describe('worker shutdown', () => {
  it('releases a training job on SIGTERM and exits; the next worker resumes it', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-shutdown-'));
    const env = { REDIS_URL: REDIS };
    const first = startWorker(env, ['--queues', 'extract,group,train']);
    const connection = new Redis(REDIS, { maxRetriesPerRequest: null });
    const q = new Queue(QUEUES.train, { connection, prefix: TEST_QUEUE_PREFIX });
    try {
      await first.ready();
      const fit = runCli(['fit', '--id', path.join(ROOT, 'examples/demo/id'), '--model', path.join(work, 'model'), '--epochs', '10', '--width', '512', '--depth', '4', '--batch-size', '64'], env);
      let job;
      for (let i = 0; i < 1200; i++) {
        job = (await q.getJobs(['active'])).find((j) => typeof j.progress === 'object' && Number((j.progress as { done?: number }).done) >= 2 && (j.progress as { stage?: string }).stage === 'train');
        if (job !== undefined) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(job, 'a training job past epoch 2').toBeDefined();
      const exited = new Promise<number | null>((r) => first.child.once('exit', (code) => r(code)));
      const t = Date.now();
      first.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - t).toBeLessThan(30_000);
      expect(first.output()).toMatch(/SIGTERM: stopping/);
      const after = await q.getJob(job!.id!);
      expect(['waiting', 'prioritized']).toContain(await after!.getState());
      expect(after!.attemptsMade).toBe(0);
      const second = startWorker(env, ['--queues', 'extract,group,train']);
      try {
        const r = await fit;
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/training resumed after epoch [2-9]|training resumed after epoch \d\d/);
      } finally {
        await second.stop();
      }
    } finally {
      await q.close();
      connection.disconnect();
      await first.stop();
    }
  }, 240_000); // 10 epochs of a 512 x 4 network in two workers: 181-186 s once with two suites sharing the two cores
});
