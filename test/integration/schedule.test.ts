/**
 * Nightly audits: schedules have unique names (a second one of the same model and input with another
 * output is added beside the first; an existing name is refused unless --replace), their cron and
 * time zone are checked, the command warns when no worker serves the schedule queue, and a job
 * scheduler fires scans: the first scans everything, the next only what changed (nothing here), and
 * `schedule --list` shows the last firing's run and verdict. Real Redis, a real worker process,
 * local folders.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ScheduleListing } from '../../src/cli/commands/schedule.js';
import { Redis } from 'ioredis';
import { ROOT, runCli, TEST_QUEUE_PREFIX } from '../helpers/cli.js';
import { startWorker } from '../helpers/services.js';

interface Listing {
  workers: number | null;
  schedules: ScheduleListing[];
}

async function listJson(): Promise<Listing> {
  const r = await runCli(['schedule', '--list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Listing;
}

describe('schedule', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'ood-schedule-'));
  const lake = path.join(work, 'lake');
  const model = path.join(work, 'model');

  beforeAll(async () => {
    const id = path.join(work, 'id');
    for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
      mkdirSync(path.join(id, c), { recursive: true });
      for (const f of readdirSync(path.join(ROOT, 'examples/demo/id', c)).slice(0, 10)) cpSync(path.join(ROOT, 'examples/demo/id', c, f), path.join(id, c, f));
    }
    cpSync(path.join(ROOT, 'examples/demo/scan/fashion-mnist'), path.join(lake, 'fashion'), { recursive: true });
    const fit = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '3', '--width', '64', '--depth', '1']);
    expect(fit.code, fit.stderr).toBe(0);
  }, 180_000);

  it('keeps names unique, refuses a collision and bad cron or zones in one line, and warns without a schedule worker', async () => {
    const scan = (out: string): string[] => ['scan', '--model', model, '--input', lake, '--out', path.join(work, out, '{date}')];
    const a = await runCli(['schedule', '--cron', '0 2 * * *', ...scan('a')]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^schedule scan-[0-9a-f]{10}: cron "0 2 \* \* \*" in UTC: scan /);
    expect(a.stdout).toMatch(/\nnext firings: (20\d\d-\d\d-\d\d 02:00:00 UTC \(20\d\d-\d\d-\d\dT02:00:00\.000Z\)(, |\n)){3}$/);
    expect(a.stderr).toMatch(/warning: no worker serves the "schedule" queue/);
    // The same model and input into another output is another schedule (the first one stays).
    const b = await runCli(['schedule', '--cron', '0 3 * * *', '--tz', 'Europe/Paris', ...scan('b')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/next firings: 20\d\d-\d\d-\d\d 03:00:00 Europe\/Paris \(20\d\d-\d\d-\d\dT0[12]:00:00\.000Z\)/);
    let listed = await listJson();
    expect(listed.workers).toBe(0);
    expect(listed.schedules.map((s) => s.output).sort()).toEqual([path.join(work, 'a', '{date}'), path.join(work, 'b', '{date}')]);
    const nameA = /^schedule (\S+):/.exec(a.stdout)![1]!;
    const first = listed.schedules.find((s) => s.name === nameA)!;
    expect(first).toMatchObject({ cron: '0 2 * * *', timezone: 'UTC', input: lake, model, last: null });
    expect(first.next).toMatch(/^20\d\d-\d\d-\d\dT02:00:00\.000Z$/);

    // Adding it again (here: another cron) is refused with the existing schedule's description.
    const again = await runCli(['schedule', '--cron', '0 4 * * *', ...scan('a')]);
    expect(again.code).toBe(2);
    const line = again.stderr.trim().split('\n').at(-1)!;
    expect(line).toContain(`ood-audit schedule: schedule ${nameA} already exists (cron "0 2 * * *" UTC, scan ${lake} -> ${path.join(work, 'a', '{date}')} (model ${model}), next 20`);
    expect(line).toMatch(/: add --replace to replace it, or choose another --name$/);
    const replaced = await runCli(['schedule', '--cron', '0 4 * * *', '--replace', ...scan('a')]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toMatch(/^schedule \S+ \(replaced\): cron "0 4 \* \* \*"/);
    listed = await listJson();
    expect(listed.schedules).toHaveLength(2);
    expect(listed.schedules.find((s) => s.name === nameA)!.cron).toBe('0 4 * * *');

    const text = await runCli(['schedule', '--list']);
    expect(text.stdout).toContain(`${nameA}\n  cron      0 4 * * *\n  timezone  UTC\n  input     ${lake}\n  output    ${path.join(work, 'a', '{date}')}\n  model     ${model}\n  next      20`);
    expect(text.stdout).toMatch(/timezone {2}Europe\/Paris\n[\s\S]*next {6}20\d\d-\d\d-\d\d 03:00:00 Europe\/Paris \(/);
    expect(text.stdout).toMatch(/last {6}never fired/);

    for (const [args, message] of [
      [['--cron', '0 2 * *'], 'invalid --cron "0 2 * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got 4'],
      [['--cron', '0 2 * * *', '--tz', 'Mars/Olympus'], 'invalid --tz "Mars/Olympus": not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)'],
      [['--cron', '0 2 * * *', '--name', 'a:b'], 'invalid --name "a:b"'],
    ] as const) {
      const bad = await runCli(['schedule', ...args, ...scan('c')]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n').at(-1)).toContain(`ood-audit schedule: ${message}`);
    }
    // Adding a name is atomic: while another command holds the name's add lock, an add is refused in
    // one line (the lock held here by hand), and of two concurrent adds of one name exactly one wins.
    const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
    try {
      const lockKey = `${TEST_QUEUE_PREFIX}:ood-audit:schedule-add:race`;
      await redis.set(lockKey, 'someone-else', 'PX', 30_000);
      const held = await runCli(['schedule', '--name', 'race', '--cron', '0 5 * * *', ...scan('r1')]);
      expect(held.code).toBe(1); // busy, not a bad option
      expect(held.stderr.trim().split('\n').at(-1)).toContain('ood-audit schedule: schedule race: another schedule command is adding or replacing it right now');
      expect(await redis.get(lockKey)).toBe('someone-else');
      await redis.del(lockKey);
    } finally {
      redis.disconnect();
    }
    const both = await Promise.all([runCli(['schedule', '--name', 'race', '--cron', '0 5 * * *', ...scan('r1')]), runCli(['schedule', '--name', 'race', '--cron', '0 6 * * *', ...scan('r2')])]);
    // The loser saw the name taken (exit 2) or the lock held (exit 1: busy).
    const loser = both.find((r) => r.code !== 0)!;
    expect(both.filter((r) => r.code === 0)).toHaveLength(1);
    expect(`${loser.code} ${loser.stderr}`).toMatch(/^(2 [^]*schedule race already exists|1 [^]*schedule race: another schedule command is adding)/);
    const raced = (await listJson()).schedules.find((s) => s.name === 'race')!;
    expect(raced.output).toBe(path.join(work, both[0]!.code === 0 ? 'r1' : 'r2', '{date}'));
    for (const s of (await listJson()).schedules) expect((await runCli(['schedule', '--remove', s.name])).code).toBe(0);
    expect((await runCli(['schedule', '--list'])).stdout).toMatch(/no schedules/);
  }, 300_000);

  it('fires incremental scans and lists the last firing with its verdict', async () => {
    const worker = startWorker({ REDIS_URL: 'redis://127.0.0.1:6379' });
    try {
      await worker.ready();
      const reports = path.join(work, 'reports');
      const add = await runCli(['schedule', '--cron', '*/4 * * * * *', '--name', 'nightly-test', 'scan', '--model', model, '--input', lake, '--out', path.join(reports, '{datetime}')]);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stdout).toMatch(/^schedule nightly-test: cron "\*\/4 \* \* \* \* \*" in UTC: scan /);
      expect(add.stderr).not.toMatch(/no worker serves/);
      // Wait for the report of a completed incremental run (the second firing or later).
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

      // Stop the firings (a yearly cron), then the last one's run completes and is listed with its verdict.
      const yearly = await runCli(['schedule', '--cron', '0 0 1 1 *', '--name', 'nightly-test', '--replace', 'scan', '--model', model, '--input', lake, '--out', path.join(reports, '{datetime}')]);
      expect(yearly.code, yearly.stderr).toBe(0);
      let last: ScheduleListing['last'] = null;
      for (let i = 0; i < 240 && last?.state !== 'completed'; i++) {
        const listed = await listJson();
        expect(listed.workers).toBeGreaterThan(0);
        last = listed.schedules.find((s) => s.name === 'nightly-test')?.last ?? null;
        if (last?.state !== 'completed') await new Promise((r) => setTimeout(r, 500));
      }
      expect(last).toMatchObject({ state: 'completed', error: null });
      expect(last!.runId).toMatch(/^scan-[0-9a-f]{16}$/);
      expect(last!.output!.startsWith(reports + path.sep)).toBe(true);
      expect(existsSync(path.join(last!.output!, 'report.json'))).toBe(true);
      expect(last!.verdict).toBe((JSON.parse(readFileSync(path.join(last!.output!, 'report.json'), 'utf8')) as { headline: { level: string } }).headline.level);
      expect(last!.flaggedFraction).toEqual(expect.any(Number));
      const text = await runCli(['schedule', '--list']);
      expect(text.stdout).toMatch(new RegExp(`last {6}20\\d\\d-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(\\S+\\) run ${last!.runId}: verdict ${last!.verdict!} \\(\\d+\\.\\d% flagged\\) -> `));

      const removed = await runCli(['schedule', '--remove', 'nightly-test']);
      expect(removed.code, removed.stderr).toBe(0);
      expect((await runCli(['schedule', '--list'])).stdout).toMatch(/no schedules/);
      expect((await listJson()).schedules).toEqual([]);
    } finally {
      await worker.stop();
    }
  }, 240_000);
});
