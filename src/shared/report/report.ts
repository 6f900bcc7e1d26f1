/**
 * report.json: the stable, documented summary of a scan (schema "ood-audit/report@1", described in
 * docs/report-schema.md). Built from the run's scores, the model's calibration and the run facts;
 * rendering (HTML, Markdown) and thumbnails are separate.
 */
import type { ScoreCalibration } from '../calibration.js';
import type { Failure } from '../feature-set.js';
import type { ScoreType } from '../dlsr/config.js';
import { partitionOf, verdict, type Verdict } from './verdict.js';
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

export interface ImageEntry {
  readonly key: string;
  readonly score: number;
  /** Position among the ID holdout scores, 0..1. */
  readonly rank: number;
  readonly flagged: boolean;
  readonly partition: string;
  /** Every computed score. */
  readonly scores: Readonly<Record<string, number>>;
  /** Thumbnail file name under thumbs/ (when one could be made). */
  thumbnail?: string;
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
  /** Key prefix of the scanned location (partitions are the path segments below it). */
  readonly inputPrefix: string;
  readonly keys: readonly string[];
  /** Every computed score column (same order as keys). */
  readonly scores: Readonly<Partial<Record<ScoreType, ArrayLike<number>>>>;
  readonly flagged: ArrayLike<number>;
  readonly rank: ArrayLike<number>;
  readonly failures: readonly Failure[];
  /** listed = scored + failed + skipped, with the skipped entries by reason. */
  readonly accounting: Accounting;
  readonly incremental: boolean;
  readonly missingShards: readonly number[];
  readonly partitionDepth: number;
  /** Images shown in each of the most-OOD and most-typical lists. */
  readonly topK: number;
  readonly previous: PreviousRun | null;
}

/** Failure reasons grouped into readable categories (decoder messages vary in details). */
export function reasonCategory(reason: string): string {
  const r = reason.toLowerCase();
  if (r.includes('empty file')) return 'empty file';
  if (r.includes('pixel limit')) return 'image too large (pixel limit)';
  if (r.includes('unsupported image format')) return 'not an image / unsupported format';
  if (r.includes('premature end') || r.includes('truncated') || r.includes('corrupt')) return 'truncated or corrupt image';
  if (r.startsWith('shard ')) return 'shard failed';
  return reason.length > 80 ? `${reason.slice(0, 77)}...` : reason;
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
  const primary = r.scores[r.primary];
  if (primary === undefined) throw new Error(`report: primary score ${r.primary} missing`);
  const expected = 1 - r.tpr;
  const idScores = r.calibration.sorted;
  const overall = verdict(primary, r.flagged, idScores, expected);
  // Partitions.
  const groups = new Map<string, number[]>();
  r.keys.forEach((k, i) => {
    const p = partitionOf(k, r.inputPrefix, r.partitionDepth);
    const g = groups.get(p);
    if (g === undefined) groups.set(p, [i]);
    else g.push(i);
  });
  const partitions: PartitionReport[] = [...groups].map(([name, idx]) => ({
    name,
    ...verdict(
      idx.map((i) => primary[i]!),
      idx.map((i) => r.flagged[i]!),
      idScores,
      expected,
    ),
  }));
  partitions.sort((a, b) => b.severity - a.severity || a.name.localeCompare(b.name));
  // Failures.
  const byReason = new Map<string, number>();
  for (const f of r.failures) byReason.set(reasonCategory(f.reason), (byReason.get(reasonCategory(f.reason)) ?? 0) + 1);
  // Most OOD and most typical images.
  const order = r.keys.map((_, i) => i).sort((a, b) => primary[b]! - primary[a]!);
  const entry = (i: number): ImageEntry => ({
    key: r.keys[i]!,
    score: primary[i]!,
    rank: r.rank[i]!,
    flagged: r.flagged[i]! > 0,
    partition: partitionOf(r.keys[i]!, r.inputPrefix, r.partitionDepth),
    scores: Object.fromEntries(Object.entries(r.scores).map(([t, v]) => [t, (v as ArrayLike<number>)[i]!])),
  });
  const k = Math.min(r.topK, r.keys.length);
  const seconds = (r.finishedAt - r.startedAt) / 1000;
  const scanned = r.keys.length + r.failures.length;
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
    input: { uri: r.inputUri, images: scanned, scored: r.keys.length, failed: r.failures.length, skippedNonImages: r.accounting.skippedByReason[SKIP_REASONS.notImage] ?? 0, missingShards: r.missingShards, accounting: r.accounting },
    verdict: overall,
    partitions: { depth: r.partitionDepth, list: partitions },
    histogram: histogram(primary, idScores, r.calibration.threshold),
    failures: {
      count: r.failures.length,
      byReason: [...byReason].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
      examples: r.failures.slice(0, 200),
    },
    mostOod: order.slice(0, k).map(entry),
    mostTypical: order.slice(-k).reverse().map(entry),
    previous,
  };
}
