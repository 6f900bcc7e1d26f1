import { describe, expect, it } from 'vitest';
import { conditionsScores, fitConditions, transformValue } from '../../src/shared/conditions.js';
import { calibrateScore, flagScores } from '../../src/shared/calibration.js';
import { propertyColumn, propertyTable, selectProperties, type ImageProperties, type PropertyTable } from '../../src/shared/image/properties.js';
import { aggregateShard, decodeAggregate, encodeAggregate, mergeAggregates, type Aggregate } from '../../src/shared/report/aggregate.js';
import { conditionsVerdict, describeShift, emptyPartitionConditions, histogramEmd, histogramKs, addConditionsRows, twoProportionP } from '../../src/shared/report/drift.js';
import { buildReport } from '../../src/shared/report/report.js';
import { renderHtml, renderMarkdown } from '../../src/shared/report/render.js';
import { Rng } from '../../src/shared/rng.js';
import { ks } from '../../src/shared/stats.js';
import { cifarLikeProperties } from '../helpers/properties.js';

const props = cifarLikeProperties;
const table = (n: number, seed: number, over?: (p: ImageProperties) => Partial<ImageProperties>): PropertyTable => {
  const rng = new Rng(seed);
  return propertyTable(Array.from({ length: n }, () => props(rng, over)));
};

const model = fitConditions(table(2000, 1), table(500, 2));

describe('property drift from histograms', () => {
  it('KS and EMD from the fixed bins are within their stated bin errors of the exact values', () => {
    const j = 4; // brightness
    const stats = model.properties[j]!;
    const id = table(500, 2);
    for (const [seed, over] of [[3, () => ({})], [4, (p: ImageProperties) => ({ brightness: p.brightness * 0.6 })]] as const) {
      const scan = table(800, seed, over);
      const pc = emptyPartitionConditions();
      addConditionsRows(pc, model, scan, new Float32Array(800), 1e9, Array.from({ length: 800 }, (_, i) => i));
      const h = histogramKs(pc.counts[j]!, stats.idCounts);
      const tScan = Array.from(propertyColumn(scan, 'brightness'), (v) => transformValue('brightness', v));
      const tId = Array.from(propertyColumn(id, 'brightness'), (v) => transformValue('brightness', v));
      const exact = ks(tScan, tId).d;
      expect(h.d).toBeLessThanOrEqual(exact + 1e-9);
      expect(exact - h.d).toBeLessThanOrEqual(h.dError + 1e-9);
      // Exact 1-D EMD of the two samples, through their quantile functions.
      const a = [...tScan].sort((x, y) => x - y);
      const b = [...tId].sort((x, y) => x - y);
      let exactEmd = 0;
      const grid = 4000;
      for (let g = 0; g < grid; g++) exactEmd += Math.abs(a[Math.floor(((g + 0.5) / grid) * a.length)]! - b[Math.floor(((g + 0.5) / grid) * b.length)]!) / grid;
      const width = (stats.edges[stats.edges.length - 1]! - stats.edges[0]!) / (stats.edges.length - 1);
      expect(Math.abs(histogramEmd(stats.edges, pc.counts[j]!, pc.sums[j]!, stats.idCounts) - exactEmd)).toBeLessThanOrEqual(width);
    }
  });

  it('says in plain words how a property moved', () => {
    expect(describeShift('brightness', 0.45, 0.261)).toMatch(/^42% darker than the ID set/);
    expect(describeShift('jpegQuality', 75, 20)).toBe('JPEG quality 20 vs 75');
    expect(describeShift('sharpness', 200, 100)).toBe("half the ID set's sharpness (blurrier)");
    expect(describeShift('noise', 4, 10)).toMatch(/^2\.5x the ID set's noise/);
    expect(describeShift('grayscale', 0, 1)).toBe('100% greyscale vs 0% in the ID set');
  });
});

describe('conditions verdicts through merged aggregates and the report', () => {
  // Three partitions: clean, darkened and blurred (sharpness / 4), sharded and merged.
  const parts: [string, (p: ImageProperties) => Partial<ImageProperties>][] = [
    ['clean', () => ({})],
    ['dark', (p) => ({ brightness: p.brightness * 0.5, contrast: p.contrast * 0.5 })],
    ['blur', (p) => ({ sharpness: p.sharpness / 4, noise: p.noise / 2 })],
  ];
  const holdout = selectProperties(table(500, 2), Array.from({ length: 500 }, (_, i) => i));
  const cal = calibrateScore(conditionsScores(model, holdout).score, 0.95);
  const shard = (s: number): Aggregate => {
    const keys: string[] = [];
    const ps: PropertyTable[] = [];
    parts.forEach(([name, over], k) => {
      ps.push(table(150, 100 + 10 * s + k, over));
      for (let i = 0; i < 150; i++) keys.push(`${name}/s${s}-${i}.jpg`);
    });
    const properties = { values: Float32Array.from(ps.flatMap((p) => Array.from(p.values))), formats: ps.flatMap((p) => p.formats) };
    const conditions = conditionsScores(model, properties).score;
    const rng = new Rng(s);
    const fused = Float32Array.from(keys, () => rng.normal());
    const t = { keys, digests: keys, scores: { fused, conditions }, properties };
    return decodeAggregate(encodeAggregate(aggregateShard(t, flagScores(cal, fused), 'fused', 1, 5, [], { model, threshold: cal.threshold })), `shard ${s}`);
  };

  it('merges associatively and names the shifted properties per partition, semantic and conditions separately', () => {
    const a = mergeAggregates(mergeAggregates(shard(0), shard(1), 5), shard(2), 5);
    const b = mergeAggregates(shard(0), mergeAggregates(shard(1), shard(2), 5), 5);
    const ca = a.partitions.get('dark')!.conditions!;
    const cb = b.partitions.get('dark')!.conditions!;
    expect([ca.n, ca.flagged, ca.counts, ca.formats]).toEqual([cb.n, cb.flagged, cb.counts, cb.formats]);
    // Sums are float64 sums: equal up to rounding in any grouping.
    ca.sums.forEach((row, j) => row.forEach((v, k) => expect(v).toBeCloseTo(cb.sums[j]![k]!, 8)));
    expect(a.partitions.get('dark')!.conditions!.n).toBe(450);
    const idScores = Float64Array.from({ length: 500 }, (_, i) => (i - 250) / 100);
    const report = buildReport({
      runId: 'r',
      startedAt: 0,
      finishedAt: 1000,
      backend: 'wasm',
      modelUri: 'm',
      encoder: 'e',
      idImages: 2000,
      primary: 'fused',
      calibration: calibrateScore(idScores, 0.95),
      tpr: 0.95,
      inputUri: 's3://b/',
      aggregate: a,
      accounting: { listed: 1350, scored: 1350, failed: 0, skipped: 0, skippedByReason: {} },
      incremental: false,
      missingShards: [],
      partitionDepth: 1,
      topK: 5,
      previous: null,
      history: null,
      conditions: { model, calibration: cal },
    });
    const by = Object.fromEntries(report.partitions.list.map((p) => [p.name, p]));
    expect(by['clean']!.conditions!.level).toBe('no shift detected');
    expect(by['dark']!.conditions!.level).toBe('shifted');
    expect(by['dark']!.conditions!.shiftedProperties.slice(0, 2).sort()).toEqual(['brightness', 'contrast']);
    expect(by['dark']!.conditions!.text).toMatch(/(49|50|51)% darker than the ID set/);
    expect(by['blur']!.conditions!.shiftedProperties[0]).toBe('sharpness');
    expect(by['blur']!.conditions!.text).toMatch(/a quarter of the ID set's sharpness/);
    expect(by['dark']!.summary).toMatch(/^semantic: no shift detected; conditions: shifted \((brightness, contrast|contrast, brightness)/);
    expect(report.verdicts.conditions).toBe('shifted');
    expect(report.conditions!.verdict.properties[0]!.histogram!.scan).toHaveLength(34);
    expect(report.conditions!.method).toMatch(/bins/);
    const html = renderHtml(report, new Map());
    expect(html).toContain('Imaging conditions: property drift');
    expect(html).toContain('darker than the ID set');
    expect(renderMarkdown(report)).toMatch(/semantic: no shift detected; conditions: shifted/);
    // Everything in report.json is plain JSON.
    expect(JSON.parse(JSON.stringify(report))).toEqual(JSON.parse(JSON.stringify(report)));
  });

  it('too few images with properties say so', () => {
    const pc = emptyPartitionConditions();
    addConditionsRows(pc, model, table(5, 9), new Float32Array(5), 1, [0, 1, 2, 3, 4]);
    expect(conditionsVerdict(pc, model, 0.05).level).toBe('too few images');
  });
});

describe('the conditions flag-count test', () => {
  it('allows for the holdout being a sample: 6.3% flagged of 1,000 against a 500-image holdout is not significant, 12% is', () => {
    expect(twoProportionP(63, 1000, 0.05, 500)).toBeGreaterThan(0.05);
    expect(twoProportionP(120, 1000, 0.05, 500)).toBeLessThan(0.001);
    expect(twoProportionP(0, 0, 0.05, 500)).toBe(1);
  });
});
