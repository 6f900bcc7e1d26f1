/**
 * Operations: a worker's Prometheus metrics after a real scan, and the bull-board dashboard bound
 * to loopback. Real Redis, real worker and dashboard processes, local folders.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli, startCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { Redis } from 'ioredis';
import { freePort, startRedis, startWorker, stopProcess } from '../helpers/services.js';
import { verdictRank } from '../../src/shared/report/verdict.js';

describe('operations', () => {
  it('asks for a login before it serves the dashboard beyond loopback or with actions, and then requires it', async () => {
    const open = await runCli(['dashboard', '--host', '0.0.0.0', '--port', '0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/--host 0.0.0.0 is not a loopback address: set OOD_DASHBOARD_USER and OOD_DASHBOARD_PASSWORD first/);
    const actions = await runCli(['dashboard', '--allow-actions', '--port', '0']);
    expect(actions.code).toBe(2);
    const port = await freePort();
    const dash = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/entry.ts'), 'dashboard', '--port', String(port)], {
      cwd: ROOT,
      env: { ...process.env, OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX, OOD_DASHBOARD_USER: 'ops', OOD_DASHBOARD_PASSWORD: 'dash-s3cret' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    dash.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      for (let i = 0; i < 100 && !out.includes('dashboard on'); i++) await new Promise((r) => setTimeout(r, 200));
      expect(out).toMatch(/login required/);
      expect((await fetch(`http://127.0.0.1:${port}/api/queues`)).status).toBe(401);
      const auth = { authorization: `Basic ${Buffer.from('ops:dash-s3cret').toString('base64')}` };
      expect((await fetch(`http://127.0.0.1:${port}/api/queues`, { headers: auth })).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/api/queues`, { headers: { authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` } })).status).toBe(401);
      expect(out).not.toMatch(/dash-s3cret/);
    } finally {
      await stopProcess(dash);
    }
  });

  it('serves the dashboard behind a port mapping (docker-compose) to the Host names it is told, and to no other', async () => {
    const port = await freePort();
    const dash = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/entry.ts'), 'dashboard', '--host', '0.0.0.0', '--port', String(port), '--allowed-hosts', `127.0.0.1:${port},localhost:${port}`], {
      cwd: ROOT,
      env: { ...process.env, OOD_QUEUE_PREFIX: TEST_QUEUE_PREFIX, OOD_DASHBOARD_USER: 'ops', OOD_DASHBOARD_PASSWORD: 'dash-s3cret' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    dash.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      for (let i = 0; i < 100 && !out.includes('dashboard on'); i++) await new Promise((r) => setTimeout(r, 200));
      const auth = `Basic ${Buffer.from('ops:dash-s3cret').toString('base64')}`;
      const get = (host: string): Promise<number> =>
        new Promise((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path: '/api/queues', headers: { host, authorization: auth } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject);
        });
      expect(await get(`127.0.0.1:${port}`)).toBe(200);
      expect(await get(`localhost:${port}`)).toBe(200);
      expect(await get(`rebind.example:${port}`)).toBe(421);
    } finally {
      await stopProcess(dash);
    }
    const bad = await runCli(['dashboard', '--allowed-hosts', 'no-port', '--port', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --allowed-hosts: expected host:port entries, got "no-port"/);
  });

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

  it('never prints a Redis password, even while it is rotated under a running scan', async () => {
    const oldPw = 'old-pw-2b7f9';
    const newPw = 'new-pw-8c1d4';
    const redis = await startRedis(oldPw);
    const work = mkdtempSync(path.join(tmpdir(), 'ood-rotate-'));
    const id = path.join(work, 'id');
    for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
      mkdirSync(path.join(id, c), { recursive: true });
      for (const f of readdirSync(path.join(ROOT, 'examples/demo/id', c)).slice(0, 8)) cpSync(path.join(ROOT, 'examples/demo/id', c, f), path.join(id, c, f));
    }
    const model = path.join(work, 'model');
    expect((await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1'])).code).toBe(0);
    const env = { REDIS_URL: redis.url };
    const worker = startWorker(env);
    try {
      await worker.ready();
      const scan = startCli(['scan', '--model', model, '--input', path.join(ROOT, 'examples/demo/scan'), '--out', path.join(work, 'out'), '--shard-size', '20'], env);
      await scan.waitFor(/queued run/);
      const admin = new Redis(redis.url);
      await admin.config('SET', 'requirepass', newPw);
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
      admin.disconnect();
      await new Promise((r) => setTimeout(r, 3000));
      const admin2 = new Redis(`redis://:${newPw}@127.0.0.1:${redis.port}`);
      await admin2.config('SET', 'requirepass', oldPw);
      admin2.disconnect();
      const r = await scan.done;
      expect(r.code, r.stderr).toBe(0);
      const all = r.stdout + r.stderr + worker.output();
      expect(all).toMatch(/connection lost|connection back/);
      expect(all).not.toContain(oldPw);
      expect(all).not.toContain(newPw);
    } finally {
      await worker.stop();
      await redis.stop();
    }
  }, 180_000);

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
      expect(metrics).toMatch(/ood_audit_jobs\{queue="score",state="completed"\} [1-9]/);
      expect(metrics).toMatch(/ood_audit_images_processed_total\{queue="extract"\} 50/);
      expect(metrics).toMatch(/ood_audit_image_failures_total\{reason="empty file"\} 1/);
      expect(metrics).toMatch(/ood_audit_batch_seconds_count [1-9]/);
      expect(metrics).toMatch(/ood_audit_jobs_finished_total\{queue="report",outcome="completed"\} 1/);
      // Standard Node.js process metric names; the queue-wide gauges from the one exporter (this worker);
      // the last outcome of the scanned prefix; the sandboxed children's memory.
      expect(metrics).toMatch(/^process_cpu_seconds_total \d/m);
      expect(metrics).toMatch(/^process_resident_memory_bytes \d/m);
      expect(metrics).toMatch(/^nodejs_heap_size_used_bytes \d/m);
      expect(metrics).not.toMatch(/ood_audit_process_/);
      expect(metrics).toMatch(/^ood_audit_metrics_exporter 1$/m);
      // The verdict gauge is the report's headline level (what --fail-on acts on).
      const reported = JSON.parse(readFileSync(path.join(work, 'out', 'report.json'), 'utf8')) as { headline: { level: string } };
      expect(metrics).toMatch(new RegExp(`^ood_audit_last_verdict_level\\{input="${lake}",input_id="[0-9a-f]{12}"\\} ${verdictRank(reported.headline.level)}$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^ood_audit_last_images_scanned\\{input="${lake}",input_id="[0-9a-f]{12}"\\} 50$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^ood_audit_last_image_failures\\{input="${lake}",input_id="[0-9a-f]{12}"\\} 1$`, 'm'));
      expect(Number(new RegExp(`^ood_audit_last_success_timestamp_seconds\\{input="${lake}",[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1])).toBeGreaterThan(Date.now() / 1000 - 600);
      expect(Number(/^ood_audit_sandbox_processes (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      expect(Number(/^ood_audit_sandbox_resident_memory_bytes (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(20 * 1024 * 1024);
      // A rescan served from the feature cache still counts its image failures.
      const again = await runCli(['scan', '--full', '--model', model, '--input', lake, '--out', path.join(work, 'out2'), '--shard-size', '20']);
      expect(again.code, again.stderr).toBe(0);
      const after = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(after).toMatch(/ood_audit_images_processed_total\{queue="extract"\} 50$/m);
      expect(after).toMatch(/ood_audit_image_failures_total\{reason="empty file"\} 2$/m);

      for (let i = 0; i < 100 && !dashOut.includes('dashboard on'); i++) await new Promise((r) => setTimeout(r, 200));
      expect(dashOut).toContain(`dashboard on http://127.0.0.1:${dashPort}/`);
      const page = await fetch(`http://127.0.0.1:${dashPort}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>ood-audit</title>');
      const api = (await (await fetch(`http://127.0.0.1:${dashPort}/api/queues`)).json()) as { queues: { name: string; counts: Record<string, number> }[] };
      expect(api.queues.map((q) => q.name)).toEqual(expect.arrayContaining(['ood-extract', 'ood-train', 'ood-score', 'ood-group', 'ood-report', 'ood-schedule']));
      expect(api.queues.find((q) => q.name === 'ood-report')!.counts['completed']).toBeGreaterThanOrEqual(1);
      // Read-only: bull-board's write actions are refused.
      expect(dashOut).toMatch(/read-only, no login \(loopback only\)/);
      for (const [method, route] of [['PUT', '/api/queues/ood-report/retry/completed'], ['PUT', '/api/queues/ood-report/clean/completed'], ['POST', '/api/queues/ood-report/add'], ['PUT', '/api/queues/pause']] as const) {
        const r = await fetch(`http://127.0.0.1:${dashPort}${route}`, { method, headers: { 'content-type': 'application/json' }, body: '{}' });
        expect(r.status, `${method} ${route}`).toBe(405);
      }
      // DNS rebinding: a request naming another host is refused.
      const { request } = await import('node:http');
      const rebound = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: dashPort, path: '/api/queues', headers: { host: `evil.example:${dashPort}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject).end();
      });
      expect(rebound).toBe(421);
    } finally {
      await stopProcess(dash);
      await worker.stop();
    }
  });
});
