/**
 * Nightly audits: a job scheduler fires scans; the first scans everything, the next only what changed
 * (nothing here), and says so in its report. Real Redis, a real worker process, local folders.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { startWorker } from '../helpers/services.js';

describe('schedule', () => {
  it('registers, fires incremental scans, lists and removes a schedule', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-schedule-'));
    const id = path.join(work, 'id');
    const lake = path.join(work, 'lake');
    for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
      mkdirSync(path.join(id, c), { recursive: true });
      for (const f of readdirSync(path.join(ROOT, 'examples/demo/id', c)).slice(0, 10)) cpSync(path.join(ROOT, 'examples/demo/id', c, f), path.join(id, c, f));
    }
    cpSync(path.join(ROOT, 'examples/demo/scan/fashion-mnist'), path.join(lake, 'fashion'), { recursive: true });
    const model = path.join(work, 'model');
    const fit = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '3', '--width', '64', '--depth', '1']);
    expect(fit.code, fit.stderr).toBe(0);
    const worker = startWorker({ REDIS_URL: 'redis://127.0.0.1:6379' });
    try {
      await worker.ready();
      const add = await runCli(['schedule', '--cron', '*/4 * * * * *', '--name', 'nightly-test', 'scan', '--model', model, '--input', lake, '--out', path.join(work, 'reports', '{datetime}')]);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stdout).toMatch(/schedule nightly-test: cron "\*\/4 \* \* \* \* \*", next run 20\d\d-/);
      const listed = await runCli(['schedule', '--list']);
      expect(listed.stdout).toMatch(/nightly-test {2}cron/);
      // Wait for the state file of a completed incremental run (the second firing or later).
      const reports = path.join(work, 'reports');
      interface Report {
        run: { incremental: boolean; skippedUnchanged: number };
        input: { scored: number };
      }
      let incremental: Report | undefined;
      for (let i = 0; i < 300 && incremental === undefined; i++) {
        await new Promise((r) => setTimeout(r, 500));
        if (!existsSync(reports)) continue;
        for (const d of readdirSync(reports)) {
          const f = path.join(reports, d, 'report.json');
          if (!existsSync(f)) continue;
          const r = JSON.parse(readFileSync(f, 'utf8')) as Report;
          if (r.run.incremental) incremental = r;
        }
      }
      expect(incremental, 'an incremental scheduled scan').toBeDefined();
      expect(incremental!.run.skippedUnchanged).toBe(50);
      expect(incremental!.input.scored).toBe(0);
      const removed = await runCli(['schedule', '--remove', 'nightly-test']);
      expect(removed.code, removed.stderr).toBe(0);
      expect((await runCli(['schedule', '--list'])).stdout).toMatch(/no schedules/);
      const bad = await runCli(['schedule', '--cron', 'not a cron', 'scan', '--model', model, '--input', lake, '--out', path.join(work, 'x')]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/invalid --cron "not a cron"/);
    } finally {
      await worker.stop();
    }
  });
});
