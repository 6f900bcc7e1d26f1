/**
 * report.json: the stable, documented summary of a scan (schema "ood-audit/report@1", described in
 * docs/report-schema.md). Built from the run's scores, the model's calibration and the run facts;
 * rendering (HTML, Markdown) and thumbnails are separate.
 */
import type { ScoreCalibration } from '../calibration.js';
import type { Failure } from '../feature-set.js';
import type { ScoreType } from '../dlsr/config.js';
import { verdict, type Verdict } from './verdict.js';
import { partitionScores, type Aggregate, type ImageEntry } from './aggregate.js';
import { quantileSorted } from '../stats.js';
import { SKIP_REASONS, type Accounting } from '../outputs/accounting.js';

export const REPORT_SCHEMA = 'ood-audit/report@1';

export interface Histogram {
  /** Bin edges, length bins + 1. */
  readonly edges: number[];
  /** Fraction of the scanned images per bin. */
  readonly scan: number[];
  /** Fraction of the ID holdout images per bin. */
  readonly id: number[];
  readonly threshold: number;
}

export interface PartitionReport extends Verdict {
  readonly name: string;
}

export interface PreviousRun {
  readonly runId: string;
  readonly finishedAt: string;
  readonly flaggedFraction: number;
  readonly scored: number;
}

export interface ScanReport {
  readonly schema: typeof REPORT_SCHEMA;
  readonly run: {
    readonly id: string;
    readonly startedAt: string;
    readonly finishedAt: string;
    readonly seconds: number;
    readonly imagesPerSecond: number;
    readonly backend: string;
    /** Objects left out because they were unchanged since the previous scan (incremental scans). */
    readonly skippedUnchanged: number;
    readonly incremental: boolean;
  };
  readonly model: { readonly uri: string; readonly encoder: string; readonly idImages: number; readonly idSource: string | null; readonly primary: ScoreType; readonly threshold: number; readonly tpr: number };
  readonly input: { readonly uri: string; readonly images: number; readonly scored: number; readonly failed: number; readonly skippedNonImages: number; readonly missingShards: readonly number[]; readonly accounting: Accounting };
  readonly verdict: Verdict;
  readonly partitions: { readonly depth: number; readonly list: readonly PartitionReport[] };
  readonly histogram: Histogram;
  readonly failures: { readonly count: number; readonly byReason: readonly { reason: string; count: number }[]; readonly examples: readonly Failure[] };
  readonly mostOod: ImageEntry[];
  readonly mostTypical: ImageEntry[];
  readonly previous: (PreviousRun & { readonly change: string }) | null;
}

export interface ReportInput {
  readonly runId: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly backend: string;
  readonly modelUri: string;
  readonly encoder: string;
  readonly idImages: number;
  readonly idSource?: string;
  readonly primary: ScoreType;
  readonly calibration: ScoreCalibration;
  readonly tpr: number;
  readonly inputUri: string;
  /** What the run's shards contributed (counts, partition scores, galleries, failures). */
  readonly aggregate: Aggregate;
  /** listed = scored + failed + skipped, with the skipped entries by reason. */
  readonly accounting: Accounting;
  readonly incremental: boolean;
  readonly missingShards: readonly number[];
  readonly partitionDepth: number;
  /** Images shown in each of the most-OOD and most-typical lists. */
  readonly topK: number;
  readonly previous: PreviousRun | null;
}

export function histogram(scan: ArrayLike<number>, id: ArrayLike<number>, threshold: number, bins = 40): Histogram {
  const all = Float64Array.from([...Array.from(scan), ...Array.from(id)].filter(Number.isFinite)).sort();
  // Robust range: 0.5th to 99.5th percentile of the pooled scores, always showing the threshold.
  const lo = Math.min(all.length > 0 ? quantileSorted(all, 0.005) : 0, threshold);
  const hi = Math.max(all.length > 0 ? quantileSorted(all, 0.995) : 1, threshold);
  const width = (hi - lo) / bins || 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * width);
  const count = (xs: ArrayLike<number>): number[] => {
    const c = new Array<number>(bins).fill(0);
    for (let i = 0; i < xs.length; i++) {
      const b = Math.min(bins - 1, Math.max(0, Math.floor((xs[i]! - lo) / width)));
      c[b]! += 1;
    }
    return c.map((v) => v / Math.max(1, xs.length));
  };
  return { edges, scan: count(scan), id: count(id), threshold };
}

export function buildReport(r: ReportInput): ScanReport {
  const agg = r.aggregate;
  const expected = 1 - r.tpr;
  const idScores = r.calibration.sorted;
  const byPartition = [...agg.partitions].map(([name, p]) => ({ name, scores: partitionScores(p), flagged: p.flagged }));
  const all = new Float32Array(agg.scored);
  let off = 0;
  for (const p of byPartition) {
    all.set(p.scores, off);
    off += p.scores.length;
  }
  const overall = verdict(all, byPartition.reduce((s, p) => s + p.flagged, 0), idScores, expected);
  const partitions: PartitionReport[] = byPartition.map((p) => ({ name: p.name, ...verdict(p.scores, p.flagged, idScores, expected) }));
  partitions.sort((a, b) => b.severity - a.severity || a.name.localeCompare(b.name));
  const seconds = (r.finishedAt - r.startedAt) / 1000;
  const scanned = agg.scored + agg.failed;
  const previous =
    r.previous === null
      ? null
      : {
          ...r.previous,
          change: `${(overall.flaggedFraction * 100).toFixed(1)}% flagged now vs ${(r.previous.flaggedFraction * 100).toFixed(1)}% in the previous scan (${r.previous.finishedAt.slice(0, 10)}): ${
            overall.flaggedFraction - r.previous.flaggedFraction > 0.02 ? 'up' : overall.flaggedFraction - r.previous.flaggedFraction < -0.02 ? 'down' : 'about the same'
          }`,
        };
  return {
    schema: REPORT_SCHEMA,
    run: {
      id: r.runId,
      startedAt: new Date(r.startedAt).toISOString(),
      finishedAt: new Date(r.finishedAt).toISOString(),
      seconds,
      imagesPerSecond: scanned / Math.max(seconds, 1e-9),
      backend: r.backend,
      skippedUnchanged: r.accounting.skippedByReason[SKIP_REASONS.unchanged] ?? 0,
      incremental: r.incremental,
    },
    model: { uri: r.modelUri, encoder: r.encoder, idImages: r.idImages, idSource: r.idSource ?? null, primary: r.primary, threshold: r.calibration.threshold, tpr: r.tpr },
    input: { uri: r.inputUri, images: scanned, scored: agg.scored, failed: agg.failed, skippedNonImages: r.accounting.skippedByReason[SKIP_REASONS.notImage] ?? 0, missingShards: r.missingShards, accounting: r.accounting },
    verdict: overall,
    partitions: { depth: r.partitionDepth, list: partitions },
    histogram: histogram(all, idScores, r.calibration.threshold),
    failures: {
      count: agg.failed,
      byReason: [...agg.failuresByReason].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
      examples: agg.failureExamples,
    },
    mostOod: agg.mostOod.slice(0, r.topK),
    mostTypical: agg.mostTypical.slice(0, r.topK),
    previous,
  };
}
