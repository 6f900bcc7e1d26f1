/**
 * report.json: the stable, documented summary of a scan (schema "ood-audit/report@1", described in
 * docs/report-schema.md). Built from the run's scores, the model's calibration and the run facts;
 * rendering (HTML, Markdown) and thumbnails are separate.
 */
import type { ScoreCalibration } from '../calibration.js';
import type { Failure } from '../feature-set.js';
import type { ScoreType } from '../dlsr/config.js';
import { verdict, type Verdict, type VerdictLevel } from './verdict.js';
import type { ConditionsModel } from '../conditions.js';
import { PROPERTY_BINS } from '../conditions.js';
import { conditionsVerdict, emptyPartitionConditions, mergePartitionConditions, twoVerdicts, type ConditionsVerdict } from './drift.js';
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
  /** The partition's imaging-condition verdict (null when the model or the rows have no properties). */
  readonly conditions: ConditionsVerdict | null;
  /** "semantic: ...; conditions: ..." */
  readonly summary: string;
}

/** The property-drift section: the whole scan's conditions verdict, property by property, with histograms. */
export interface ConditionsReport {
  /** The conditions score's calibrated threshold. */
  readonly threshold: number;
  readonly verdict: ConditionsVerdict;
  /** How KS and EMD were computed (from the model's fixed bins), and their error bounds. */
  readonly method: string;
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
  /** Semantic shift (the primary score) and condition shift (image properties), stated separately. */
  readonly verdicts: { readonly semantic: VerdictLevel; readonly conditions: VerdictLevel | null; readonly text: string };
  readonly partitions: { readonly depth: number; readonly list: readonly PartitionReport[] };
  /** Property drift against the ID holdout (null when the model has no image-property statistics). */
  readonly conditions: ConditionsReport | null;
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
  /** The model's image-property statistics and the conditions score's calibration (absent: no property drift). */
  readonly conditions?: { readonly model: ConditionsModel; readonly calibration: ScoreCalibration };
}

export const DRIFT_METHOD = `KS and Earth Mover's distance from fixed-bin histograms (${PROPERTY_BINS} bins over the ID holdout's range, fixed in the model, plus under- and overflow bins): the KS distance may be short of the exact one by at most the largest single-bin mass (ksDError); the EMD, in robust ID standard deviations, is within one bin width (emdError) for values inside the bins' range`;

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
  const cond = r.conditions;
  const condOf = (name: string): ConditionsVerdict | null => {
    const pc = agg.partitions.get(name)?.conditions;
    return cond === undefined || pc === undefined ? null : conditionsVerdict(pc, cond.model, expected);
  };
  const partitions: PartitionReport[] = byPartition.map((p) => {
    const v = verdict(p.scores, p.flagged, idScores, expected);
    const c = condOf(p.name);
    return { name: p.name, ...v, conditions: c, summary: twoVerdicts(v.level, c) };
  });
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
  // The whole scan's conditions: every partition's histograms merged (partitions without properties add none).
  const withConditions = [...agg.partitions.values()].filter((p) => p.conditions !== undefined);
  const overallConditions =
    cond !== undefined && withConditions.length > 0
      ? conditionsVerdict(
          withConditions.reduce((a, p) => mergePartitionConditions(a, p.conditions!), emptyPartitionConditions()),
          cond.model,
          expected,
          { histograms: true },
        )
      : null;
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
    verdicts: { semantic: overall.level, conditions: overallConditions?.level ?? null, text: twoVerdicts(overall.level, overallConditions) },
    partitions: { depth: r.partitionDepth, list: partitions },
    conditions: cond !== undefined && overallConditions !== null ? { threshold: cond.calibration.threshold, verdict: overallConditions, method: DRIFT_METHOD } : null,
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
