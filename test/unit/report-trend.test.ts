/**
 * Reports that describe the dataset: the headline that a small shifted partition cannot hide
 * behind, report.md's partitions (table and list), the trend kept in history.json and its chart,
 * the holdout-relative standing of far-OOD images, and the run_id / partition columns of score tables.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { calibrateScore, flagScores } from '../../src/shared/calibration.js';
import { appendScanHistory, HISTORY_KEY, readScanHistory } from '../../src/shared/outputs/scan-history.js';
import { scoresToCsv, scoresToParquet } from '../../src/shared/outputs/score-files.js';
import { aggregateShard } from '../../src/shared/report/aggregate.js';
import { trendSvg } from '../../src/shared/report/charts.js';
import { renderHtml, renderMarkdown } from '../../src/shared/report/render.js';
import { buildReport, type ScanReport } from '../../src/shared/report/report.js';
import { appendRun, TREND_RUNS, type TrendRun } from '../../src/shared/report/trend.js';
import { Rng } from '../../src/shared/rng.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';

const rng = new Rng(11);
const cal = calibrateScore(Array.from({ length: 500 }, () => rng.normal()), 0.95);

/** 600 in-distribution images in two big partitions and 12 far-OOD ones in a small third. */
function report(history: TrendRun[] = []): ScanReport {
  const keys: string[] = [];
  const scores: number[] = [];
  for (let i = 0; i < 612; i++) {
    keys.push(`${i < 300 ? '2026-01-01' : i < 600 ? '2026-01-02' : '2026-01-03'}/img-${String(i).padStart(4, '0')}.jpg`);
    scores.push(i < 600 ? rng.normal() : 9 + i / 1000);
  }
  const col = Float32Array.from(scores);
  const aggregate = aggregateShard({ keys, digests: keys, scores: { fused: col } }, flagScores(cal, col), 'fused', 1, 4, []);
  return buildReport({
    runId: 'scan-00000000000000aa', startedAt: 0, finishedAt: Date.parse('2026-01-03T02:00:00Z'), backend: 'wasm', modelUri: '/m', encoder: 'e', idImages: 5000, primary: 'fused', calibration: cal, tpr: 0.95,
    inputUri: '/lake', aggregate, accounting: { listed: 612, scored: 612, failed: 0, skipped: 0, skippedByReason: {} }, incremental: true, missingShards: [], partitionDepth: 1, topK: 4, previous: null,
    history: { runs: history, out: '/out/2026-01-03' },
  });
}

const point = (i: number, level: TrendRun['level'] = 'no shift detected'): TrendRun => ({
  runId: `scan-${i.toString(16).padStart(16, '0')}`, finishedAt: new Date(Date.UTC(2025, 10, 1 + i)).toISOString(), out: `/out/${i}`, incremental: true, scored: 100, flagged: 5, flaggedFraction: 0.05, expectedFraction: 0.05, level,
  partitions: [{ name: `p${i % 3}`, scored: 100, flagged: 5, flaggedFraction: 0.05, level }], partitionsOmitted: 0,
});

describe('the headline and report.md', () => {
  it('leads with a small shifted partition even when the whole scan is not shifted', () => {
    const r = report();
    const small = r.partitions.list[0]!;
    expect(small).toMatchObject({ name: '2026-01-03', level: 'shifted', fewImages: true, scored: 12, flagged: 12 });
    expect(r.verdict.level).not.toBe('shifted');
    expect(r.headline.level).toBe('shifted');
    expect(r.headline.partitions).toEqual(['2026-01-03']);
    expect(r.headline.text).toMatch(/^partition shifted: 2026-01-03 \(12 of 12 flagged, few images\); whole scan: /);
    const html = renderHtml(r, new Map());
    expect(html).toContain('<div class="verdict" style="background:#b42318">partition shifted: 2026-01-03');
  });

  it('lists every partition with its level, as a table or as a plain list', () => {
    const r = report();
    const table = renderMarkdown(r);
    expect(table).toMatch(/^\*\*SHIFTED\*\*: partition shifted: 2026\\-01\\-03 \(12 of 12 flagged, few images\); whole scan: /m);
    expect(table).toContain('| partition | verdict | flagged |');
    for (const p of r.partitions.list) expect(table).toContain(`| ${p.name.replace(/-/g, '\\-')} | ${p.level} |`);
    const list = renderMarkdown(r, { style: 'list' });
    expect(list).not.toContain('|');
    expect(list).toContain('Partitions (3, worst first):');
    expect(list).toMatch(/^- 2026\\-01\\-03: shifted, 100\.0% of 12 \(few images\) flagged$/m);
    expect(list.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(3);
  });

  it('says how far beyond the ID holdout a far-OOD image scores, instead of a saturated rank', () => {
    const r = report();
    const top = r.mostOod[0]!;
    expect(top.aboveIdMaxSd).toBeCloseTo((top.score - cal.sorted[cal.sorted.length - 1]!) / cal.std, 6);
    expect(r.mostTypical.every((e) => e.aboveIdMaxSd === null)).toBe(true);
    const html = renderHtml(r, new Map());
    expect(html).toMatch(/<span class="s">above every ID score by \d+\.\d sd<\/span>/);
    expect(html).not.toContain('rank 100.0%');
    expect(html).toContain(`<a class="key" href="file:///lake/${top.key}">`);
    expect(r.rankHistogram.aboveMax).toBeCloseTo(12 / 612, 10);
  });
});

describe('the trend', () => {
  it('appends this scan to the history, replaces a retried one and keeps the last TREND_RUNS', () => {
    const r = report([point(1), point(2, 'shifted')]);
    expect(r.trend?.runs.map((x) => x.runId)).toEqual([point(1).runId, point(2).runId, 'scan-00000000000000aa']);
    const last = r.trend!.runs[2]!;
    expect(last).toMatchObject({ level: r.verdict.level, scored: 612, incremental: true, out: '/out/2026-01-03' });
    expect(last.partitions.map((p) => p.name)).toEqual(r.partitions.list.map((p) => p.name));
    const many = Array.from({ length: 70 }, (_, i) => point(i));
    const kept = appendRun(many, point(5));
    expect(kept).toHaveLength(TREND_RUNS);
    expect(kept[kept.length - 1]!.runId).toBe(point(5).runId);
    expect(kept.filter((x) => x.runId === point(5).runId)).toHaveLength(1);
  });

  it('keeps history.json next to the scan state, validated when read', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ood-history-'));
    const store = new LocalStore(dir);
    expect(await readScanHistory(store, 'scans/x/')).toEqual([]);
    await appendScanHistory(store, 'scans/x/', point(1));
    await appendScanHistory(store, 'scans/x/', point(2));
    await appendScanHistory(store, 'scans/x/', point(2));
    expect((await readScanHistory(store, 'scans/x/')).map((x) => x.runId)).toEqual([point(1).runId, point(2).runId]);
    writeFileSync(path.join(dir, 'scans/x', HISTORY_KEY), JSON.stringify({ format: 'ood-audit-scan-history@1', runs: [{ ...point(1), flaggedFraction: 2 }] }));
    await expect(readScanHistory(store, 'scans/x/')).rejects.toThrow(/history\.json: runs\.0\.flaggedFraction: /);
  });

  it('draws one point per scan in its verdict colour, the expected line and the worst partitions', () => {
    const two = (r: TrendRun): TrendRun => ({ ...r, partitions: [...r.partitions, { name: 'cam-2', scored: 10, flagged: 0, flaggedFraction: 0, level: 'too few images' }] });
    const runs = [point(1), two(point(2)), two(point(3, 'shifted')), point(4)];
    const svg = trendSvg({ limit: TREND_RUNS, runs });
    expect(svg.match(/<circle /g)).toHaveLength(4);
    // Partitions are drawn from the scans that covered several: p2 and p0 once, cam-2 twice.
    expect(svg.match(/<rect /g)).toHaveLength(4);
    expect(svg.match(/fill="#b42318"/g)).toHaveLength(2); // the shifted point and its partition's mark
    expect(svg).toContain('expected 5.0%');
    expect(svg).toContain('2025-11-02 00:00 UTC');
    expect(svg).toContain('href="file:///out/3/report.html"');
    expect(svg).not.toMatch(/NaN|undefined/);
    const html = renderHtml(report(runs), new Map());
    expect(html).toContain('Trend: the last 5 scans of this prefix');
    expect(html).toContain('class="plot trend"');
  });
});

describe('score tables', () => {
  it('carry run_id and partition columns in Parquet and CSV', async () => {
    const keys = ['2026-01-01/a.jpg', '2026-01-02/cam/b.jpg', 'c.jpg'];
    const col = Float32Array.from([0, 1, 9]);
    const table = { keys, digests: ['d1', 'd2', 'd3'], scores: { fused: col } };
    const ctx = { inputUri: 's3://b/lake/', runId: 'scan-00000000000000ab', partitionDepth: 1 };
    const csv = scoresToCsv(table, flagScores(cal, col), ctx).trim().split('\n');
    expect(csv[0]).toBe('key,uri,run_id,partition,sha256,fused,rank,flagged');
    expect(csv[2]).toMatch(/^2026-01-02\/cam\/b\.jpg,s3:\/\/b\/lake\/2026-01-02\/cam\/b\.jpg,scan-00000000000000ab,2026-01-02,d2,/);
    const bytes = scoresToParquet(table, flagScores(cal, col), { ...ctx, partitionDepth: 2 });
    const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
    expect(rows.map((r) => [r['run_id'], r['partition']])).toEqual([
      ['scan-00000000000000ab', '2026-01-01'],
      ['scan-00000000000000ab', '2026-01-02/cam'],
      ['scan-00000000000000ab', '(root)'],
    ]);
  });
});
