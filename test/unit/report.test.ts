import { describe, expect, it } from 'vitest';
import { binomialUpperP, ks, mannWhitney, normalUpper } from '../../src/shared/stats.js';
import { partitionOf, verdict } from '../../src/shared/report/verdict.js';
import { buildReport, histogram } from '../../src/shared/report/report.js';
import { aggregateShard, decodeAggregate, encodeAggregate, mergeAggregates, reasonCategory, type Aggregate } from '../../src/shared/report/aggregate.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ScanReport } from '../../src/shared/report/report.js';
import { escapeMarkdown, renderHtml, renderMarkdown } from '../../src/shared/report/render.js';
import { calibrateScore, flagScores } from '../../src/shared/calibration.js';
import { csvText } from '../../src/shared/outputs/score-files.js';
import { auroc, rocCurve } from '../../src/shared/metrics.js';
import { Rng } from '../../src/shared/rng.js';
import { decodeFrame, encodeFrame } from '../../src/shared/binary-frame.js';

function binomRef(k: number, n: number, p: number): number {
  let s = 0;
  let c = 1; // C(n, i) built iteratively
  for (let i = 0; i <= n; i++) {
    if (i > 0) c = (c * (n - i + 1)) / i;
    if (i >= k) s += c * p ** i * (1 - p) ** (n - i);
  }
  return s;
}

describe('shift statistics', () => {
  it('binomial upper tail matches direct summation', () => {
    for (const [k, n, p] of [[0, 10, 0.05], [3, 10, 0.05], [10, 40, 0.05], [2, 100, 0.05], [30, 100, 0.05], [55, 60, 0.5]] as const) {
      expect(binomialUpperP(k, n, p)).toBeCloseTo(binomRef(k, n, p), 10);
    }
    expect(binomialUpperP(3100, 10000, 0.05)).toBeLessThan(1e-300 + 1e-12);
  });

  it('normal tail, Mann-Whitney and KS behave as expected', () => {
    expect(normalUpper(0)).toBeCloseTo(0.5, 6);
    expect(normalUpper(1.96)).toBeCloseTo(0.025, 3);
    const rng = new Rng(5);
    const a = Array.from({ length: 300 }, () => rng.normal());
    const b = Array.from({ length: 400 }, () => rng.normal());
    const shifted = Array.from({ length: 300 }, () => rng.normal() + 1);
    const same = mannWhitney(a, b);
    expect(same.auc).toBeCloseTo(auroc(b, a), 10);
    expect(same.p).toBeGreaterThan(0.01);
    const diff = mannWhitney(shifted, b);
    expect(diff.auc).toBeGreaterThan(0.7);
    expect(diff.p).toBeLessThan(1e-10);
    expect(ks(a, b).p).toBeGreaterThan(0.01);
    const k = ks(shifted, b);
    expect(k.d).toBeGreaterThan(0.3);
    expect(k.p).toBeLessThan(1e-10);
    expect(ks([1, 2, 3], [1, 2, 3]).d).toBe(0);
  });
});

/** The trend point of the scan before the golden report's (as history.json holds it). */
const PREVIOUS_POINT = {
  runId: 'scan-0000000000000000', finishedAt: '2026-01-01T00:00:00.000Z', out: '/out/2026-01-01', incremental: false, scored: 800, flagged: 40, flaggedFraction: 0.05, expectedFraction: 0.05, level: 'no shift detected' as const,
  partitions: [{ name: '2026-01-01', scored: 800, flagged: 40, flaggedFraction: 0.05, level: 'no shift detected' as const }], partitionsOmitted: 0,
};

describe('verdicts and partitions', () => {
  const rng = new Rng(9);
  const idScores = Array.from({ length: 1000 }, () => rng.normal()).sort((x, y) => x - y);
  const cal = calibrateScore(idScores, 0.95);

  it('says shifted, possibly shifted or no shift in plain words', () => {
    const inDist = Array.from({ length: 500 }, () => rng.normal());
    const v1 = verdict(inDist, inDist.filter((s) => s > cal.threshold).length, cal.sorted, 0.05);
    expect(v1.level).toBe('no shift detected');
    const drift = Array.from({ length: 500 }, (_, i) => (i < 150 ? rng.normal() + 3 : rng.normal()));
    const v2 = verdict(drift, drift.filter((s) => s > cal.threshold).length, cal.sorted, 0.05);
    expect(v2.level).toBe('shifted');
    expect(v2.text).toMatch(/^shifted: \d+% flagged vs 5\.0% expected/);
    expect(verdict([5], 1, cal.sorted, 0.05).level).toBe('too few images');
    // Under 20 images the exact binomial test still speaks: 2 of 2 far above the threshold is not "too few".
    const two = verdict([5, 5], 2, cal.sorted, 0.05);
    expect(two).toMatchObject({ level: 'possibly shifted', fewImages: true });
    const small = verdict(Array.from({ length: 12 }, (_, i) => (i < 10 ? 5 : 0)), 10, cal.sorted, 0.05);
    expect(small).toMatchObject({ level: 'shifted', fewImages: true });
    expect(small.text).toMatch(/^shifted \(only 12 images\): 83% flagged vs 5\.0% expected \(10 of 12, p = /);
    expect(verdict(Array.from({ length: 12 }, () => 0), 0, cal.sorted, 0.05).level).toBe('too few images');
  });

  it('partitions keys by the path segments below the scanned prefix', () => {
    expect(partitionOf('lake/2026-11-27/cam1/a.jpg', 'lake/')).toBe('2026-11-27');
    expect(partitionOf('lake/2026-11-27/cam1/a.jpg', 'lake/', 2)).toBe('2026-11-27/cam1');
    expect(partitionOf('lake/a.jpg', 'lake/')).toBe('(root)');
    expect(partitionOf('x/y.jpg', '')).toBe('x');
  });

  it('builds a report whose worst partition comes first, and renders it', () => {
    const keys: string[] = [];
    const scores: number[] = [];
    for (let i = 0; i < 300; i++) {
      const shiftedPart = i >= 200;
      keys.push(`${shiftedPart ? 'day-3' : i < 100 ? 'day-1' : 'day-2'}/img-${String(i).padStart(3, '0')}.jpg`);
      scores.push(shiftedPart && i % 2 === 0 ? rng.normal() + 4 : rng.normal());
    }
    const col = Float32Array.from(scores);
    const aggregate = aggregateShard({ keys, digests: keys, scores: { mfsim: col } }, flagScores(cal, col), 'mfsim', 1, 5, [{ key: 'day-3/bad.jpg', reason: 'Input buffer has corrupt header: premature end of JPEG image' }]);
    const r = buildReport({
      runId: 'scan-x', startedAt: 0, finishedAt: 10_000, backend: 'wasm', modelUri: '/m', encoder: 'e', idImages: 900, primary: 'mfsim', calibration: cal, tpr: 0.95,
      inputUri: 's3://b/lake/', aggregate,
      accounting: { listed: 303, scored: 300, failed: 1, skipped: 2, skippedByReason: { 'not an image (file extension)': 2 } }, incremental: false, missingShards: [], partitionDepth: 1, topK: 5,
      previous: { runId: 'scan-w', finishedAt: '2026-11-26T02:00:00.000Z', flaggedFraction: 0.05, scored: 300 },
      history: null,
    });
    expect(r.partitions.list[0]!.name).toBe('day-3');
    expect(r.partitions.list[0]!.level).toBe('shifted');
    expect(r.mostOod).toHaveLength(5);
    expect(r.mostOod.every((e) => e.partition === 'day-3')).toBe(true);
    expect(r.failures.byReason).toEqual([{ reason: 'truncated or corrupt image', count: 1 }]);
    expect(r.previous?.change).toMatch(/flagged now vs 5\.0% in the previous scan \(2026-11-26\): up/);
    expect(r.input.images).toBe(301);
    const html = renderHtml(r, new Map([[r.mostOod[0]!.key, 'data:image/jpeg;base64,AAAA']]));
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|(src|href)="https?:/);
    expect(html).toContain('day-3');
    expect(renderMarkdown(r).split('\n').length).toBeLessThan(15);
    expect(renderMarkdown({ ...r, partitions: { depth: 1, list: [{ ...r.partitions.list[0]!, name: '![p](http:evil)' }] } })).toContain('\\!\\[p\\]\\(http\\:evil\\)');
    expect(reasonCategory('Input image exceeds pixel limit')).toBe('image too large (pixel limit)');
  });

  it('writes names from the data as inert Markdown and neutralised CSV cells', () => {
    expect(escapeMarkdown('![x](http://evil.example/i.png)')).toBe('\\!\\[x\\]\\(http\\://evil\\.example/i\\.png\\)');
    expect(escapeMarkdown('# title\n| a |')).toBe('\\# title \\| a \\|');
    expect(csvText('=1+2')).toBe("'=1+2");
    expect(csvText('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvText('-2+3')).toBe("'-2+3");
    expect(csvText('\tx')).toBe("'\tx");
    expect(csvText('a,"b"')).toBe('"a,""b"""');
    expect(csvText('plain/key.jpg')).toBe('plain/key.jpg');
    expect(csvText('+x,y')).toBe(`"'+x,y"`);
  });

  it('builds the same report from one aggregate or from shards merged in any grouping, with the numbers of the table-based report', () => {
    // The fixture was written by the report built from the whole score table (before aggregates).
    const golden = JSON.parse(readFileSync(path.join(import.meta.dirname, '../fixtures/report-golden.json'), 'utf8')) as ScanReport;
    const g = new Rng(7);
    const idScores = Float32Array.from({ length: 400 }, () => g.normal());
    const gcal = calibrateScore(idScores, 0.95);
    const keys: string[] = [];
    const primary: number[] = [];
    const other: number[] = [];
    for (let i = 0; i < 900; i++) {
      const part = i < 300 ? '2026-01-01' : i < 600 ? '2026-01-02' : '2026-01-03/sub';
      keys.push(`${part}/img-${String(i).padStart(4, '0')}.jpg`);
      primary.push(Math.round(((i >= 600 && i % 3 === 0) ? g.normal() + 3 : g.normal()) * 100) / 100);
      other.push(g.normal());
    }
    keys.push('root-file.jpg');
    primary.push(0.5);
    other.push(0);
    const failures = [{ key: '2026-01-02/empty.jpg', reason: 'empty file (0 bytes)' }, { key: '2026-01-03/sub/bad.jpg', reason: 'VipsJpeg: premature end of JPEG image' }];
    const report = (aggregate: Aggregate): ScanReport => buildReport({
      runId: 'scan-0000000000000001', startedAt: 0, finishedAt: 60_000, backend: 'wasm', encoderRuntimes: ['tfjs wasm', 'onnxruntime-node 1.30.0 cpu, 1 thread'], modelUri: '/m', encoder: 'e', idImages: 4000, primary: 'fused', calibration: gcal, tpr: 0.95, inputUri: '/lake', aggregate,
      accounting: { listed: 906, scored: 901, failed: 2, skipped: 3, skippedByReason: { 'not an image (file extension)': 3 } }, incremental: false, missingShards: [], partitionDepth: 1, topK: 8,
      previous: { runId: 'scan-0000000000000000', finishedAt: '2026-01-01T00:00:00.000Z', flaggedFraction: 0.05, scored: 800 },
      history: { runs: [PREVIOUS_POINT], out: '/out/2026-01-02' },
    });
    // Shards in key order: [0, 250), [250, 610), [610, 901); failures belong to the shards of their keys.
    const shard = (from: number, to: number, fails: typeof failures): Aggregate => {
      const col = Float32Array.from(primary.slice(from, to));
      const t = { keys: keys.slice(from, to), digests: keys.slice(from, to), scores: { fused: col, mse: Float32Array.from(other.slice(from, to)) } };
      return decodeAggregate(encodeAggregate(aggregateShard(t, flagScores(gcal, col), 'fused', 1, 8, fails)), 'test');
    };
    const whole = report(shard(0, 901, failures));
    const parts = [shard(0, 250, []), shard(250, 610, [failures[0]!]), shard(610, 901, [failures[1]!])];
    const leftFirst = report(mergeAggregates(mergeAggregates(parts[0]!, parts[1]!, 8), parts[2]!, 8));
    const parts2 = [shard(0, 250, []), shard(250, 610, [failures[0]!]), shard(610, 901, [failures[1]!])];
    const rightFirst = report(mergeAggregates(parts2[0]!, mergeAggregates(parts2[1]!, parts2[2]!, 8), 8));
    // The golden fixture listed the failures in a different order (it is a fixed input, not a scan).
    const normalise = (r: ScanReport): unknown => JSON.parse(JSON.stringify({ ...r, failures: { ...r.failures, examples: [...r.failures.examples].sort((a, b) => a.key.localeCompare(b.key)), byReason: [...r.failures.byReason].sort((a, b) => a.reason.localeCompare(b.reason)) } }));
    expect(normalise(whole)).toEqual(normalise(golden));
    expect(leftFirst).toEqual(whole);
    expect(rightFirst).toEqual(whole);
  });

  it('histograms keep the threshold in range, ROC curves run from (0,0) to (1,1)', () => {
    const h = histogram([1, 2, 3], [0, 1, 2], 10, 10);
    expect(h.edges[h.edges.length - 1]).toBeGreaterThanOrEqual(10);
    expect(h.scan.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    const roc = rocCurve([0, 1, 2, 3], [2, 3, 4, 5]);
    expect([roc.fpr[0], roc.tpr[0]]).toEqual([0, 0]);
    expect([roc.fpr[roc.fpr.length - 1], roc.tpr[roc.tpr.length - 1]]).toEqual([1, 1]);
  });
});

describe('aggregate files from outside', () => {
  it('refuse a partition named twice, more flagged than images, and too many failure examples', () => {
    const cal = calibrateScore(Float32Array.from({ length: 100 }, (_, i) => i / 100), 0.95);
    const keys = ['a/1.jpg', 'a/2.jpg', 'b/1.jpg'];
    const col = Float32Array.from([0.1, 0.99, 0.5]);
    const bytes = encodeAggregate(aggregateShard({ keys, digests: keys, scores: { fused: col } }, flagScores(cal, col), 'fused', 1, 4, []));
    const frame = decodeFrame(bytes, 'OODAGG01', 'test', 'an aggregate');
    const header = frame.header as { partitions: { name: string; count: number; flagged: number }[]; failureExamples: unknown[] };
    const tamper = (edit: (h: typeof header) => void): Uint8Array => {
      const h = JSON.parse(JSON.stringify(header)) as typeof header;
      edit(h);
      return encodeFrame('OODAGG01', h, frame.body.slice());
    };
    expect(() => decodeAggregate(tamper(() => undefined), 'x.agg')).not.toThrow();
    expect(() => decodeAggregate(tamper((h) => (h.partitions[1]!.name = 'a')), 'x.agg')).toThrow(/^x\.agg: partition "a" appears twice$/);
    expect(() => decodeAggregate(tamper((h) => (h.partitions[0]!.flagged = 5)), 'x.agg')).toThrow(/^x\.agg: partition "a" has 5 flagged of 2 images$/);
    expect(() => decodeAggregate(tamper((h) => (h.failureExamples = Array.from({ length: 201 }, (_, i) => ({ key: `k${i}`, reason: 'r' })))), 'x.agg')).toThrow(/^x\.agg: 201 failure examples, at most 200$/);
  });
});
