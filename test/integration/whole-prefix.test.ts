/**
 * Nightly reports describe the whole prefix: consecutive incremental scans of a folder carry the
 * scores of unchanged images forward, so a night without new images reports the same prefix as the
 * night before (and "new or changed: 0"), a night that adds a shifted partition shows it in the whole
 * prefix and in the new-or-changed section (that night through the queues, with a worker process),
 * a deleted object leaves the report, a corrupt page aggregate fails the scan with one line naming
 * the file, and a refitted model carries nothing forward (so --fail-on-new judges the whole prefix).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stableHash } from '../../src/shared/hash.js';
import type { RunSummary } from '../../src/shared/outputs/score-files.js';
import type { ScanReport } from '../../src/shared/report/report.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { readParquet } from '../helpers/parquet.js';

const demo = path.join(ROOT, 'examples/demo');

function copy(from: string, to: string, count: number): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from).slice(0, count)) cpSync(path.join(from, f), path.join(to, f));
}

interface Night {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly out: string;
  readonly report: ScanReport;
  readonly summary: RunSummary;
}

describe('whole-prefix reports', () => {
  it('carry unchanged scores forward and report the new or changed images apart', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-prefix-'));
    const id = path.join(work, 'id');
    for (const c of readdirSync(path.join(demo, 'id'))) copy(path.join(demo, 'id', c), path.join(id, c), 12);
    const model = path.join(work, 'model');
    const fit = async (seed: string): Promise<void> => {
      const r = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1', '--seed', seed]);
      expect(r.code, r.stderr).toBe(0);
    };
    await fit('1');
    const lake = path.join(work, 'lake');
    const night = async (date: string, extra: string[] = [], code = 0): Promise<Night> => {
      const out = path.join(work, 'reports', date);
      const r = await runCli(['scan', '--model', model, '--input', lake, '--out', out, '--top-k', '4', ...(extra.includes('--workers') ? [] : ['--in-process']), ...extra]);
      expect(r.code, r.stderr).toBe(code);
      const json = <T>(f: string): T => JSON.parse(readFileSync(path.join(out, f), 'utf8')) as T;
      return { ...r, out, report: json<ScanReport>('report.json'), summary: json<RunSummary>('summary.json') };
    };
    copy(path.join(demo, 'scan/cifar10/airplane'), path.join(lake, '2026-01-01'), 15);
    copy(path.join(demo, 'scan/cifar10/ship'), path.join(lake, '2026-01-02'), 15);

    // First scan: the whole prefix, every image scanned now, no separate section.
    const n1 = await night('2026-01-02');
    expect(n1.report.scope).toMatchObject({ wholePrefix: true, scored: 30, carried: 0, scanned: 30, rescan: 'first scan of this prefix with this model' });
    expect(n1.report.newOrChanged).toBeNull();
    expect(readFileSync(path.join(n1.out, 'report.html'), 'utf8')).toContain('Every image of the prefix was scanned by this run (first scan of this prefix with this model)');

    // A night without new images: the same prefix, the same verdict, and "new or changed: 0".
    const n2 = await night('2026-01-03');
    expect(n2.report.verdict).toEqual(n1.report.verdict);
    expect(n2.report.partitions).toEqual(n1.report.partitions);
    expect(n2.report.mostOod).toEqual(n1.report.mostOod);
    expect(n2.report.scope).toMatchObject({ scored: 30, carried: 30, scanned: 0, carriedFrom: n1.summary.run!.id, rescan: null });
    expect(n2.report.newOrChanged).toMatchObject({ scored: 0, failed: 0, since: n1.summary.run!.id, verdict: { level: 'too few images' } });
    expect(n2.report.input).toMatchObject({ scored: 0, failed: 0 });
    expect(n2.report.previous).toMatchObject({ scored: 30, flaggedFraction: n1.report.verdict.flaggedFraction });
    expect(n2.report.previous?.change).toMatch(/about the same$/);
    expect(n2.summary).toMatchObject({ input: { scored: 0 }, prefix: { scored: 30, carried: 30, flagged: n1.report.verdict.flagged } });
    expect(readFileSync(path.join(n2.out, 'report.md'), 'utf8')).toMatch(/^New or changed since the last scan: none$/m);
    expect(n2.stdout).toMatch(/^whole prefix: 30 scored, 0 failed, \d+ flagged .*\nnew or changed since the last scan: 0 scored, 0 failed, 0 flagged: too few images\nverdict: /m);
    expect(n2.summary.parts.scores).toBe(0); // the score tables hold the night's own rows

    // A shifted partition arrives, scanned through the queues: in the whole prefix and in the new section.
    copy(path.join(demo, 'scan/fashion-mnist/9_ankle_boot'), path.join(lake, '2026-01-04'), 5);
    copy(path.join(demo, 'scan/fashion-mnist/7_sneaker'), path.join(lake, '2026-01-04'), 5);
    const n3 = await night('2026-01-04', ['--workers', '1', '--json', '--fail-on-new', 'shifted'], 3);
    const doc = JSON.parse(n3.stdout) as { scored: number; newOrChanged: { scored: number; headline: string } | null; exitCode: number };
    expect(n3.report.scope).toMatchObject({ scored: 40, carried: 30, scanned: 10 });
    expect(n3.report.partitions.list.map((p) => p.name).sort()).toEqual(['2026-01-01', '2026-01-02', '2026-01-04']);
    const shifted = n3.report.partitions.list.find((p) => p.name === '2026-01-04')!;
    expect(shifted.level).toBe('shifted');
    expect(n3.report.headline.level).toBe('shifted');
    expect(n3.report.newOrChanged?.partitions).toEqual([shifted]);
    expect(n3.report.newOrChanged).toMatchObject({ scored: 10, headline: { level: 'shifted' } });
    expect(n3.report.trend?.runs.map((r) => [r.scored, r.newOrChanged?.scored])).toEqual([[30, undefined], [30, 0], [40, 10]]);
    // --json: the counts are the whole prefix's; --fail-on-new acts on the new section (exit 3 above).
    expect(doc).toMatchObject({ scored: 40, newOrChanged: { scored: 10, headline: 'shifted' }, exitCode: 3 });
    expect((await readParquet(path.join(n3.out, 'scores.parquet'))).map((r) => r['partition'])).toEqual(new Array(10).fill('2026-01-04'));

    // An object deleted from the prefix leaves the report.
    rmSync(path.join(lake, '2026-01-01', readdirSync(path.join(lake, '2026-01-01'))[0]!));
    const n4 = await night('2026-01-05', ['--fail-on-new', 'shifted']);
    expect(n4.report.scope).toMatchObject({ scored: 39, carried: 39, scanned: 0 });
    expect(n4.report.partitions.list.find((p) => p.name === '2026-01-01')?.scored).toBe(14);
    expect(n4.report.newOrChanged).toMatchObject({ scored: 0 });

    // A corrupt page aggregate fails the scan with one line naming the file.
    const state = path.join(model, 'scans', stableHash(lake));
    const index = JSON.parse(readFileSync(path.join(state, 'index.json'), 'utf8')) as { pages: { id: string }[] };
    const agg = `${index.pages[0]!.id}.agg`;
    writeFileSync(path.join(state, 'pages', agg), 'garbage');
    const bad = await runCli(['scan', '--in-process', '--model', model, '--input', lake, '--out', path.join(work, 'reports', 'bad'), '--top-k', '4']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`${path.join(state, 'pages', agg).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not an ood-audit page aggregate \\(bad magic\\)`));

    // A refitted model carries nothing forward (and says why): every image is scanned again.
    // --fail-on-new then judges the whole prefix (every image is new to this model), and says so.
    await fit('2');
    const n5 = await night('2026-01-06', ['--fail-on-new', 'shifted'], 3);
    expect(n5.report.headline.level).toBe('shifted');
    expect(n5.stdout).toMatch(/^every image was scanned by this run, so --fail-on-new judges the whole prefix\nverdict: .* \(exit 3: --fail-on never, --fail-on-new shifted\)$/m);
    expect(n5.report.scope).toMatchObject({ scored: 39, carried: 0, scanned: 39 });
    expect(n5.report.scope.rescan).toMatch(/^the model or its scoring settings \(--max-bytes\) changed since scan-[0-9a-f]{16}: every image scanned again, nothing carried forward$/);
    expect(n5.report.newOrChanged).toBeNull();
    expect(n5.report.input.scored).toBe(39);
  }, 400_000);
});
