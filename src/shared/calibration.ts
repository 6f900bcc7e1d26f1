/**
 * Calibration is an artifact: fitted once on held-out ID images by the fit job, stored with the model
 * and applied unchanged by every scan. Per score type it keeps the holdout scores' quantiles, mean and
 * standard deviation, the threshold that keeps `tpr` of ID images (default 95%), and the sorted
 * holdout scores themselves (for rank normalisation and two-sample tests in reports).
 */
import { OodError } from './errors.js';
import { thresholdAtTpr } from './metrics.js';
import { meanStd, quantileSorted } from './stats.js';

export const CALIBRATION_QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999] as const;

export interface ScoreCalibration {
  readonly n: number;
  readonly mean: number;
  readonly std: number;
  /** Quantile level (as a string key, e.g. "0.95") -> score. */
  readonly quantiles: Readonly<Record<string, number>>;
  /** Images with a score above this are flagged as OOD. */
  readonly threshold: number;
  /** Holdout scores, ascending. */
  readonly sorted: readonly number[];
}

export interface Calibration {
  /** Fraction of ID images kept below the threshold. */
  readonly tpr: number;
  readonly holdoutCount: number;
  readonly scores: Readonly<Record<string, ScoreCalibration>>;
}

export function calibrateScore(values: ArrayLike<number>, tpr: number): ScoreCalibration {
  if (!(tpr > 0 && tpr < 1)) throw new OodError('CONFIG_INVALID', `invalid calibration TPR: expected a fraction in (0, 1), got ${tpr}`);
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) throw new OodError('CONFIG_INVALID', 'calibration: the ID holdout is empty (hold out more images)');
  const { mean, std } = meanStd(sorted);
  const quantiles: Record<string, number> = {};
  for (const q of CALIBRATION_QUANTILES) quantiles[String(q)] = quantileSorted(sorted, q);
  return { n: sorted.length, mean, std, quantiles, threshold: thresholdAtTpr(sorted, tpr), sorted: Array.from(sorted) };
}

export function calibrate(scores: Readonly<Record<string, ArrayLike<number>>>, tpr = 0.95): Calibration {
  const out: Record<string, ScoreCalibration> = {};
  let count = 0;
  for (const [name, values] of Object.entries(scores)) {
    out[name] = calibrateScore(values, tpr);
    count = values.length;
  }
  return { tpr, holdoutCount: count, scores: out };
}

/**
 * The holdout's maximum and spread, for saying how far beyond every ID score an image lies. The
 * standard deviation is the stored one; when it is not positive (a constant holdout), the
 * interquartile range / 1.349 of the stored quantiles; null when that is not positive either.
 */
export function holdoutSpread(cal: ScoreCalibration): { max: number; std: number | null } {
  const max = cal.sorted[cal.sorted.length - 1]!;
  if (Number.isFinite(cal.std) && cal.std > 0) return { max, std: cal.std };
  const q1 = cal.quantiles['0.25'];
  const q3 = cal.quantiles['0.75'];
  const iqrSd = q1 !== undefined && q3 !== undefined ? (q3 - q1) / 1.349 : 0;
  return { max, std: iqrSd > 0 ? iqrSd : null };
}

/** Fraction of holdout scores strictly below `value` plus half the ties: an ID-calibrated rank in [0, 1]. */
export function calibratedRank(cal: ScoreCalibration, value: number): number {
  const s = cal.sorted;
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  let eq = lo;
  while (eq < s.length && s[eq] === value) eq++;
  return (lo + (eq - lo) / 2) / s.length;
}

/** The primary score's calibrated rank and flag of every row: the one place "flagged" is decided. */
export interface Flags {
  /** Position among the ID holdout scores, 0..1 (see calibratedRank). */
  readonly rank: Float64Array;
  /** 1 where the score is above the calibrated threshold. */
  readonly flagged: Uint8Array;
}

export function flagScores(cal: ScoreCalibration, column: ArrayLike<number>): Flags {
  return {
    rank: Float64Array.from(column, (v) => calibratedRank(cal, v)),
    flagged: Uint8Array.from(column, (v) => (v > cal.threshold ? 1 : 0)),
  };
}
