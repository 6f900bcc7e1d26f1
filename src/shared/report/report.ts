/**
 * report.json: the stable, documented summary of a scan (schema "ood-audit/report@1", described in
 * docs/report-schema.md). Built from the run's scores, the model's calibration and the run facts;
 * rendering (HTML, Markdown) and thumbnails are separate.
 */
import { calibratedRank, holdoutSpread, type ScoreCalibration } from '../calibration.js';
import type { Failure } from '../feature-set.js';
import type { ScoreType } from '../dlsr/config.js';
import type { ConditionsModel } from '../conditions.js';
import { PROPERTY_BINS } from '../conditions.js';
import { conditionsVerdict, emptyPartitionConditions, mergePartitionConditions, twoVerdicts, type ConditionsVerdict } from './drift.js';
import { headline, verdict, type Headline, type Verdict, type VerdictLevel } from './verdict.js';
import { appendRun, TREND_RUNS, trendRun, type Trend, type TrendRun } from './trend.js';
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

/**
 * The scan's and the holdout's primary scores by their calibrated rank among the ID holdout scores
 * (bins of equal rank width): the holdout is flat by construction, so far-OOD images (all in
 * `aboveMax`) never squeeze the ID mass as they do on the score axis.
 */
export interface RankHistogram {
  /** Rank bin edges from 0 to 1, length bins + 1. */
  readonly edges: number[];
  /** Fraction of the scanned images per bin (those above the holdout's maximum are in aboveMax). */
  readonly scan: number[];
  /** Fraction of the ID holdout images per bin. */
  readonly id: number[];
  /** Fraction of the scanned images scoring above every ID holdout score. */
  readonly aboveMax: number;
  /** The threshold's rank (tpr). */
  readonly threshold: number;
}

/** A gallery image: its entry, and how far above the ID holdout's maximum it scores. */
export interface ReportImage extends ImageEntry {
  /** (score - holdout max) / holdout sd when the score is above every ID holdout score, else null. */
  readonly aboveIdMaxSd: number | null;
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

/**
 * What the report's verdict describes. A scan that records state describes the whole prefix as of
 * the scan: the images it scanned, and the unchanged images whose scores it carried forward from the
 * previous scan of the prefix with the same model and scoring settings.
 */
export interface ReportScope {
  /** True when the report describes every image under the input as of this scan (false: eval's sets). */
  readonly wholePrefix: boolean;
  /** Images the report describes: scored + failed. */
  readonly images: number;
  readonly scored: number;
  readonly failed: number;
  /** Scored images whose scores were carried forward (unchanged since the previous scan). */
  readonly carried: number;
  /** Images this run scanned (scored or failed): new or changed since the previous scan, earlier failures retried, or all. */
  readonly scanned: number;
  /** The scan whose scores were carried forward (null: none). */
  readonly carriedFrom: string | null;
  /** Why every image was scanned (first scan, --full, model changed, ...); null when scores were carried forward, or for eval. */
  readonly rescan: string | null;
  /** One line in plain words. */
  readonly text: string;
}

/** The images new or changed since the previous scan: their own verdict, apart from the whole prefix's. */
export interface NewOrChangedSection {
  /** The previous scan (the one compared with). */
  readonly since: string | null;
  readonly scored: number;
  readonly failed: number;
  readonly verdict: Verdict;
  readonly headline: Headline;
  /** Partitions with new or changed images, worst first. */
  readonly partitions: readonly PartitionReport[];
  /** The most OOD of them (at most NEW_GALLERY). */
  readonly mostOod: ReportImage[];
}

/** Images of the new-or-changed section's own gallery. */
export const NEW_GALLERY = 8;

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
    /** Every encoder runtime that computed this run's features (cached features included), sorted. */
    readonly encoderRuntimes: readonly string[];
    /** Objects left out because they were unchanged since the previous scan (incremental scans). */
    readonly skippedUnchanged: number;
    readonly incremental: boolean;
  };
  readonly model: {
    readonly uri: string;
    readonly encoder: string;
    readonly idImages: number;
    readonly idSource: string | null;
    readonly primary: ScoreType;
    readonly threshold: number;
    readonly tpr: number;
    /** The ID holdout's primary scores: count, maximum and standard deviation. */
    readonly holdout: { readonly n: number; readonly max: number; readonly std: number | null };
  };
  readonly input: { readonly uri: string; readonly images: number; readonly scored: number; readonly failed: number; readonly skippedNonImages: number; readonly missingShards: readonly number[]; readonly accounting: Accounting };
  /** What the report describes: the whole prefix (carried-forward scores included) or, for eval, the sets scanned. */
  readonly scope: ReportScope;
  readonly verdict: Verdict;
  /** Semantic shift (the primary score) and condition shift (image properties), stated separately. */
  readonly verdicts: { readonly semantic: VerdictLevel; readonly conditions: VerdictLevel | null; readonly text: string };
  /** The worst of the whole scan's verdict and its partitions': what the report leads with. */
  readonly headline: Headline;
  readonly partitions: { readonly depth: number; readonly list: readonly PartitionReport[] };
  /** Property drift against the ID holdout (null when the model has no image-property statistics). */
  readonly conditions: ConditionsReport | null;
  readonly histogram: Histogram;
  readonly rankHistogram: RankHistogram;
  readonly failures: { readonly count: number; readonly byReason: readonly { reason: string; count: number }[]; readonly examples: readonly Failure[] };
  readonly mostOod: ReportImage[];
  readonly mostTypical: ReportImage[];
  readonly previous: (PreviousRun & { readonly change: string }) | null;
  /** The images new or changed since the previous scan, with their own verdict; null when every image was scanned (first scan, --full, model changed) or for eval. */
  readonly newOrChanged: NewOrChangedSection | null;
  /** The last scans of this prefix with this model, this one last; null when the run records no scan state (eval). */
  readonly trend: Trend | null;
}

export interface ReportInput {
  readonly runId: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly backend: string;
  /** Encoder runtimes of the run's features (absent: none recorded). */
  readonly encoderRuntimes?: readonly string[];
  readonly modelUri: string;
  readonly encoder: string;
  readonly idImages: number;
  readonly idSource?: string;
  readonly primary: ScoreType;
  readonly calibration: ScoreCalibration;
  readonly tpr: number;
  readonly inputUri: string;
  /** What the report describes (counts, partition scores, galleries, failures): the whole prefix, carried-forward scores included. */
  readonly aggregate: Aggregate;
  /**
   * When scores were carried forward: what this run scanned (the images new or changed since the
   * previous scan), for the report's section of its own, and where the carried scores come from.
   */
  readonly delta?: { readonly aggregate: Aggregate; readonly since: string | null };
  /** Scope facts: carried-forward images and why everything was scanned (absent: nothing carried, no reason given). */
  readonly scope?: { readonly carried: number; readonly rescan: string | null };
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
  /**
   * The prefix's trend before this scan and where this scan's outputs go; null when the run records
   * no scan state (eval).
   */
  readonly history: { readonly runs: readonly TrendRun[]; readonly out: string } | null;
}

/** Rank bins of the rank histogram. */
export const RANK_BINS = 20;

export function rankHistogram(scan: ArrayLike<number>, cal: ScoreCalibration, tpr: number, bins = RANK_BINS): RankHistogram {
  const max = cal.sorted[cal.sorted.length - 1]!;
  const count = (xs: ArrayLike<number>): { bins: number[]; above: number } => {
    const c = new Array<number>(bins).fill(0);
    let above = 0;
    for (let i = 0; i < xs.length; i++) {
      const v = xs[i]!;
      if (v > max) above += 1;
      else c[Math.min(bins - 1, Math.floor(calibratedRank(cal, v) * bins))]! += 1;
    }
    const n = Math.max(1, xs.length);
    return { bins: c.map((v) => v / n), above: above / n };
  };
  const s = count(scan);
  return { edges: Array.from({ length: bins + 1 }, (_, i) => i / bins), scan: s.bins, id: count(cal.sorted).bins, aboveMax: s.above, threshold: tpr };
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

/** A set of images judged against the ID calibration: the whole, and each partition, worst first. */
interface Judged {
  readonly all: Float32Array;
  readonly overall: Verdict;
  readonly partitions: PartitionReport[];
}

function judge(agg: Aggregate, idScores: ArrayLike<number>, expected: number, cond: ReportInput['conditions']): Judged {
  const byPartition = [...agg.partitions].map(([name, p]) => ({ name, scores: partitionScores(p), flagged: p.flagged }));
  const all = new Float32Array(agg.scored);
  let off = 0;
  for (const p of byPartition) {
    all.set(p.scores, off);
    off += p.scores.length;
  }
  const overall = verdict(all, byPartition.reduce((s, p) => s + p.flagged, 0), idScores, expected);
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
  return { all, overall, partitions };
}

/** The scope line: what the verdict describes. */
function scopeOf(r: ReportInput, agg: Aggregate): ReportScope {
  const carried = r.scope?.carried ?? 0;
  const rescan = r.scope?.rescan ?? null;
  const wholePrefix = r.history !== null;
  const images = agg.scored + agg.failed;
  const scanned = images - carried;
  const since = r.delta?.since ?? null;
  const text = !wholePrefix
    ? `${images} images: the images listed for this run`
    : carried > 0 || r.delta !== undefined
      ? `the whole prefix as of this scan: ${images} images, ${carried} unchanged since ${since ?? 'the previous scan'} (scores carried forward) and ${scanned} new or changed scanned now`
      : `the whole prefix as of this scan: ${images} images, all scanned now${rescan !== null ? ` (${rescan})` : ''}`;
  return { wholePrefix, images, scored: agg.scored, failed: agg.failed, carried, scanned, carriedFrom: carried > 0 || r.delta !== undefined ? since : null, rescan, text };
}

export function buildReport(r: ReportInput): ScanReport {
  const agg = r.aggregate;
  const expected = 1 - r.tpr;
  const idScores = r.calibration.sorted;
  const cond = r.conditions;
  const { all, overall, partitions } = judge(agg, idScores, expected, cond);
  const spread = holdoutSpread(r.calibration);
  const image = (e: ImageEntry): ReportImage => ({ ...e, aboveIdMaxSd: e.score > spread.max && spread.std !== null ? (e.score - spread.max) / spread.std : null });
  const newOrChanged = ((): NewOrChangedSection | null => {
    if (r.delta === undefined) return null;
    const d = judge(r.delta.aggregate, idScores, expected, cond);
    return { since: r.delta.since, scored: r.delta.aggregate.scored, failed: r.delta.aggregate.failed, verdict: d.overall, headline: headline(d.overall, d.partitions), partitions: d.partitions, mostOod: r.delta.aggregate.mostOod.slice(0, Math.min(r.topK, NEW_GALLERY)).map(image) };
  })();
  const finishedAt = new Date(r.finishedAt).toISOString();
  const seconds = (r.finishedAt - r.startedAt) / 1000;
  // `input` and the throughput are this run's own: what it listed and scanned.
  const own = r.delta?.aggregate ?? agg;
  const scanned = own.scored + own.failed;
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
      finishedAt,
      seconds,
      imagesPerSecond: scanned / Math.max(seconds, 1e-9),
      backend: r.backend,
      encoderRuntimes: [...(r.encoderRuntimes ?? [])].sort(),
      skippedUnchanged: r.accounting.skippedByReason[SKIP_REASONS.unchanged] ?? 0,
      incremental: r.incremental,
    },
    model: { uri: r.modelUri, encoder: r.encoder, idImages: r.idImages, idSource: r.idSource ?? null, primary: r.primary, threshold: r.calibration.threshold, tpr: r.tpr, holdout: { n: r.calibration.n, ...spread } },
    scope: scopeOf(r, agg),
    input: { uri: r.inputUri, images: scanned, scored: own.scored, failed: own.failed, skippedNonImages: r.accounting.skippedByReason[SKIP_REASONS.notImage] ?? 0, missingShards: r.missingShards, accounting: r.accounting },
    verdict: overall,
    verdicts: { semantic: overall.level, conditions: overallConditions?.level ?? null, text: twoVerdicts(overall.level, overallConditions) },
    headline: headline(overall, partitions),
    partitions: { depth: r.partitionDepth, list: partitions },
    conditions: cond !== undefined && overallConditions !== null ? { threshold: cond.calibration.threshold, verdict: overallConditions, method: DRIFT_METHOD } : null,
    histogram: histogram(all, idScores, r.calibration.threshold),
    rankHistogram: rankHistogram(all, r.calibration, r.tpr),
    failures: {
      count: agg.failed,
      byReason: [...agg.failuresByReason].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
      examples: agg.failureExamples,
    },
    mostOod: agg.mostOod.slice(0, r.topK).map(image),
    mostTypical: agg.mostTypical.slice(0, r.topK).map(image),
    previous,
    newOrChanged,
    trend:
      r.history === null
        ? null
        : { limit: TREND_RUNS, runs: appendRun(r.history.runs, trendRun({ runId: r.runId, finishedAt, out: r.history.out, incremental: r.incremental, verdict: overall, partitions, ...(newOrChanged !== null ? { newOrChanged: newOrChanged.verdict } : {}) })) },
  };
}
