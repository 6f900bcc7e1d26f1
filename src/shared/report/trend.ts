/**
 * The trend of a scanned prefix: per completed scan, the flagged fraction and verdict level of the
 * whole scan and of its partitions, for the last TREND_RUNS scans. Kept next to the prefix's scan
 * state (history.json, see outputs/scan-history.ts), appended by every scan that records state (not
 * by eval), listed in report.json and drawn in report.html.
 *
 * Each point describes the whole prefix as of its scan (an incremental scan carries the scores of
 * unchanged objects forward), with the images new or changed since the scan before in
 * `newOrChanged`. Points written before reports described the whole prefix have no `newOrChanged`:
 * those of incremental scans describe that night's delta.
 */
import { z } from 'zod';
import { VERDICT_RANK, type Verdict } from './verdict.js';

/** Scans kept in the trend. */
export const TREND_RUNS = 60;

/** Partitions kept per scan (the worst first); the rest are counted in `partitionsOmitted`. */
export const TREND_PARTITIONS = 32;

const level = z.enum(['shifted', 'possibly shifted', 'no shift detected', 'too few images']);
const fraction = z.number().min(0).max(1);
const count = z.number().int().min(0);

export const trendPartitionSchema = z.object({ name: z.string(), scored: count, flagged: count, flaggedFraction: fraction, level });
export type TrendPartition = z.infer<typeof trendPartitionSchema>;

export const trendRunSchema = z.object({
  runId: z.string().regex(/^scan-[0-9a-f]{16}$/),
  finishedAt: z.iso.datetime(),
  /** Where the scan's outputs (and its report) went. */
  out: z.string(),
  incremental: z.boolean(),
  scored: count,
  flagged: count,
  flaggedFraction: fraction,
  expectedFraction: fraction,
  level,
  /** The worst TREND_PARTITIONS partitions of the scan, worst first. */
  partitions: z.array(trendPartitionSchema).max(TREND_PARTITIONS),
  partitionsOmitted: count,
  /** The images new or changed since the scan before (absent: every image was scanned, or a point written before whole-prefix reports). */
  newOrChanged: z.object({ scored: count, flagged: count, flaggedFraction: fraction, level }).optional(),
});
export type TrendRun = z.infer<typeof trendRunSchema>;

/** report.json's `trend`: the last scans of the prefix, oldest first, this one last. */
export interface Trend {
  readonly limit: number;
  readonly runs: readonly TrendRun[];
}

/** A scan's point of the trend, from its verdicts (partitions worst first). */
export function trendRun(p: {
  readonly runId: string;
  readonly finishedAt: string;
  readonly out: string;
  readonly incremental: boolean;
  readonly verdict: Verdict;
  readonly partitions: readonly (Verdict & { readonly name: string })[];
  readonly newOrChanged?: Verdict;
}): TrendRun {
  const kept = p.partitions.slice(0, TREND_PARTITIONS);
  return {
    runId: p.runId,
    finishedAt: p.finishedAt,
    out: p.out,
    incremental: p.incremental,
    scored: p.verdict.scored,
    flagged: p.verdict.flagged,
    flaggedFraction: p.verdict.flaggedFraction,
    expectedFraction: p.verdict.expectedFraction,
    level: p.verdict.level,
    partitions: kept.map((v) => ({ name: v.name, scored: v.scored, flagged: v.flagged, flaggedFraction: v.flaggedFraction, level: v.level })),
    partitionsOmitted: p.partitions.length - kept.length,
    ...(p.newOrChanged !== undefined ? { newOrChanged: { scored: p.newOrChanged.scored, flagged: p.newOrChanged.flagged, flaggedFraction: p.newOrChanged.flaggedFraction, level: p.newOrChanged.level } } : {}),
  };
}

/**
 * The runs with `run` appended, at most `limit`, oldest first. A run already present (a retried
 * report job) is replaced, not repeated.
 */
export function appendRun(runs: readonly TrendRun[], run: TrendRun, limit = TREND_RUNS): TrendRun[] {
  return [...runs.filter((r) => r.runId !== run.runId), run].slice(-limit);
}

/** The partitions worth a line of their own in a chart: the `n` worst over the trend (by level, then flagged excess). */
export function worstPartitions(runs: readonly TrendRun[], n: number): string[] {
  const worst = new Map<string, number>();
  for (const r of runs) {
    for (const p of r.partitions) {
      const s = VERDICT_RANK[p.level] * 10 + p.flaggedFraction - r.expectedFraction;
      worst.set(p.name, Math.max(worst.get(p.name) ?? -Infinity, s));
    }
  }
  return [...worst].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n).map(([name]) => name);
}
