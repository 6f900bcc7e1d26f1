/**
 * Nightly reports that describe the dataset: consecutive incremental scans of a folder where a new
 * date partition appears each night append to the prefix's trend (history.json next to the scan
 * state), each point the whole prefix as of its scan with the night's new images apart, each report
 * lists it, a night without new images is a point of its own, eval adds
 * nothing; report.md lists every partition (table or list); score tables carry run_id and
 * partition; the HTML report is checked in the real browser.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stableHash } from '../../src/shared/hash.js';
import type { ScanReport } from '../../src/shared/report/report.js';
import type { TrendRun } from '../../src/shared/report/trend.js';
import { checkPage } from '../../support/browser.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { readParquet } from '../helpers/parquet.js';
import { copyEntries, demoIdSubset, fitTinyModel } from '../helpers/demo.js';

const demo = path.join(ROOT, 'examples/demo');

const copy = copyEntries;

describe('trend over nightly scans', () => {
  it('appends every completed scan of the prefix, and reports it', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-trend-'));
    const model = path.join(work, 'model');
    await fitTinyModel(demoIdSubset(work), model);

    const lake = path.join(work, 'lake');
    const night = async (date: string, extra: string[] = []): Promise<{ runId: string; out: string; report: ScanReport }> => {
      const out = path.join(work, 'reports', date);
      const r = await runCli(['scan', '--in-process', '--model', model, '--input', lake, '--out', out, '--top-k', '4', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return { runId: /run (scan-[0-9a-f]{16})/.exec(r.stderr)![1]!, out, report: JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as ScanReport };
    };
    copy(path.join(demo, 'scan/cifar10/airplane'), path.join(lake, '2026-01-01'), 12);
    const n1 = await night('2026-01-01', ['--md-style', 'list']);
    copy(path.join(demo, 'scan/cifar10/ship'), path.join(lake, '2026-01-02'), 12);
    const n2 = await night('2026-01-02');
    copy(path.join(demo, 'scan/fashion-mnist/9_ankle_boot'), path.join(lake, '2026-01-03'), 5);
    copy(path.join(demo, 'scan/fashion-mnist/7_sneaker'), path.join(lake, '2026-01-03'), 5);
    const n3 = await night('2026-01-03');
    const n4 = await night('2026-01-04'); // nothing new tonight

    // history.json next to the scan state: one point per completed scan, oldest first.
    const state = path.join(model, 'scans', stableHash(lake));
    expect(existsSync(path.join(state, 'index.json'))).toBe(true);
    const history = JSON.parse(readFileSync(path.join(state, 'history.json'), 'utf8')) as { format: string; runs: TrendRun[] };
    expect(history.format).toBe('ood-audit-scan-history@1');
    // Each point describes the whole prefix as of its scan; the images new or changed that night apart.
    expect(history.runs.map((r) => [r.runId, r.out, r.incremental, r.scored, r.newOrChanged?.scored])).toEqual([
      [n1.runId, n1.out, false, 12, undefined],
      [n2.runId, n2.out, true, 24, 12],
      [n3.runId, n3.out, true, 34, 10],
      [n4.runId, n4.out, true, 34, 0],
    ]);
    expect(history.runs.map((r) => r.partitions.map((p) => p.name).sort())).toEqual([['2026-01-01'], ['2026-01-01', '2026-01-02'], ['2026-01-01', '2026-01-02', '2026-01-03'], ['2026-01-01', '2026-01-02', '2026-01-03']]);
    // Each report lists the trend up to itself; the last is the history.
    expect(n1.report.trend?.runs).toHaveLength(1);
    expect(n3.report.trend?.runs.map((r) => r.runId)).toEqual([n1.runId, n2.runId, n3.runId]);
    expect(n4.report.trend?.runs).toEqual(history.runs);
    expect(n3.report.trend?.runs[2]).toMatchObject({ level: n3.report.verdict.level, flagged: n3.report.verdict.flagged });
    // The headline is never milder than a partition's verdict.
    const rank = { shifted: 3, 'possibly shifted': 2, 'no shift detected': 1, 'too few images': 0 } as const;
    for (const r of [n1, n2, n3]) expect(rank[r.report.headline.level]).toBeGreaterThanOrEqual(Math.max(rank[r.report.verdict.level], ...r.report.partitions.list.map((p) => rank[p.level])));

    // eval records no scan state and no trend.
    const ev = await runCli(['eval', '--in-process', '--model', model, '--id', path.join(lake, '2026-01-01'), '--ood', `f=${path.join(lake, '2026-01-03')}`]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(readdirSync(path.join(model, 'scans'))).toEqual([stableHash(lake)]);
    expect((JSON.parse(readFileSync(path.join(state, 'history.json'), 'utf8')) as { runs: unknown[] }).runs).toHaveLength(4);

    // report.md: every partition with its level, as a list (--md-style list) or a table (default).
    const md1 = readFileSync(path.join(n1.out, 'report.md'), 'utf8');
    expect(md1).toContain('Partitions (1, worst first):');
    expect(md1).toMatch(new RegExp(`^- 2026\\\\-01\\\\-01: ${n1.report.partitions.list[0]!.level}, `, 'm'));
    expect(md1).not.toContain('|');
    const md3 = readFileSync(path.join(n3.out, 'report.md'), 'utf8');
    expect(md3).toContain('| partition | verdict | flagged |');
    expect(md3).toMatch(/^Trend \(last 3 of 3 scans, flagged\): /m);

    // Score tables: run_id and partition beside key and uri, in Parquet and CSV.
    const rows = await readParquet(path.join(n3.out, 'scores.parquet'));
    expect(rows).toHaveLength(10);
    expect(new Set(rows.map((r) => `${String(r['run_id'])} ${String(r['partition'])}`))).toEqual(new Set([`${n3.runId} 2026-01-03`]));
    const parts = readdirSync(path.join(n3.out, 'scores'));
    expect((await readParquet(path.join(n3.out, 'scores', parts[0]!)))[0]).toMatchObject({ run_id: n3.runId, partition: '2026-01-03' });
    const csv = readFileSync(path.join(n3.out, 'scores.csv'), 'utf8').split('\n');
    expect(csv[0]).toMatch(/^key,uri,run_id,partition,sha256,/);
    expect(csv[1]).toContain(`,${n3.runId},2026-01-03,`);

    // The HTML report in the browser: the trend chart with a point per scan, score items that never
    // break inside, thumbnails linking to their objects, the failures link.
    const page = await checkPage(path.join(n3.out, 'report.html'), async (p) => ({
      trendPoints: await p.locator('svg.trend circle').count(),
      brokenItems: await p.$$eval('.thumb .s', (els) => els.filter((e) => (e as unknown as { getClientRects(): { length: number } }).getClientRects().length > 1).length),
      items: await p.locator('.thumb .s').count(),
      objectLinks: await p.$$eval('.thumb a[href^="file:///"]', (els) => els.map((e) => e.getAttribute('href') ?? '')),
    }));
    expect(page.consoleErrors).toEqual([]);
    expect(page.failedRequests).toEqual([]);
    expect(page.svgCount).toBeGreaterThanOrEqual(3);
    expect(page.probed?.trendPoints).toBe(3);
    expect(page.probed?.items).toBeGreaterThan(0);
    expect(page.probed?.brokenItems).toBe(0);
    expect(page.probed?.objectLinks.some((h) => h.startsWith(`file://${path.join(lake, '2026-01-03')}/`))).toBe(true);
  }, 300_000);
});
