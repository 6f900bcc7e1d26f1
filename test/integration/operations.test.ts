/**
 * Operations: a worker's Prometheus metrics after a real scan, and the bull-board dashboard bound
 * to loopback. Real Redis, real worker and dashboard processes, local folders.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { freePort, startRedis, startWorker, stopProcess } from '../helpers/services.js';

describe('operations', () => {
  it('works with a password-protected Redis and never prints the password', async () => {
    const redis = await startRedis('s3cr3t-pw');
    try {
      const ok = await runCli(['status'], { REDIS_URL: redis.url });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^queue\s+waiting/m);
      const wrong = await runCli(['status'], { REDIS_URL: `redis://:wrong-pw@127.0.0.1:${redis.port}` });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr + wrong.stdout).not.toMatch(/s3cr3t-pw|wrong-pw/);
    } finally {
      await redis.stop();
    }
  });

  it('exposes worker metrics after a scan, and serves the dashboard on 127.0.0.1', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-ops-'));
    const id = path.join(work, 'id');
    for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
      mkdirSync(path.join(id, c), { recursive: true });
      for (const f of readdirSync(path.join(ROOT, 'examples/demo/id', c)).slice(0, 10)) cpSync(path.join(ROOT, 'examples/demo/id', c, f), path.join(id, c, f));
    }
    const lake = path.join(work, 'lake');
    cpSync(path.join(ROOT, 'examples/demo/scan/fashion-mnist'), path.join(lake, 'fashion'), { recursive: true });
    writeFileSync(path.join(lake, 'empty.jpg'), new Uint8Array(0));
    const model = path.join(work, 'model');
    expect((await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1'])).code).toBe(0);

    const metricsPort = await freePort();
    const worker = startWorker({ REDIS_URL: 'redis://127.0.0.1:6379' }, ['--metrics-port', String(metricsPort)]);
    const dashPort = await freePort();
    const dash = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/entry.ts'), 'dashboard', '--port', String(dashPort)], {
      cwd: ROOT,
      env: { ...process.env, OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let dashOut = '';
    dash.stdout.on('data', (d: Buffer) => (dashOut += d.toString()));
    try {
      await worker.ready();
      const scan = await runCli(['scan', '--model', model, '--input', lake, '--out', path.join(work, 'out'), '--shard-size', '20']);
      expect(scan.code, scan.stderr).toBe(0);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/ood_audit_jobs\{queue="extract",state="completed"\} [1-9]/);
      expect(metrics).toMatch(/ood_audit_images_processed_total\{queue="extract"\} 50/);
      expect(metrics).toMatch(/ood_audit_image_failures_total\{reason="empty file"\} 1/);
      expect(metrics).toMatch(/ood_audit_batch_seconds_count [1-9]/);
      expect(metrics).toMatch(/ood_audit_jobs_finished_total\{queue="report",outcome="completed"\} 1/);

      for (let i = 0; i < 100 && !dashOut.includes('dashboard on'); i++) await new Promise((r) => setTimeout(r, 200));
      expect(dashOut).toContain(`dashboard on http://127.0.0.1:${dashPort}/`);
      const page = await fetch(`http://127.0.0.1:${dashPort}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>ood-audit</title>');
      const api = (await (await fetch(`http://127.0.0.1:${dashPort}/api/queues`)).json()) as { queues: { name: string; counts: Record<string, number> }[] };
      expect(api.queues.map((q) => q.name)).toEqual(expect.arrayContaining(['ood-extract', 'ood-train', 'ood-score', 'ood-report', 'ood-schedule']));
      expect(api.queues.find((q) => q.name === 'ood-report')!.counts['completed']).toBeGreaterThanOrEqual(1);
    } finally {
      await stopProcess(dash);
      await worker.stop();
    }
  });
});
