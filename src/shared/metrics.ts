/**
 * Detection metrics. Convention: higher score = more OOD; OOD is the positive class for AUROC and
 * AUPR-out, ID for AUPR-in. All results are fractions in [0, 1].
 *
 *   auroc    P(s_ood > s_id) + P(s_ood = s_id) / 2 (ties count half).
 *   fpr95    threshold = the smallest ID score with at least 95% of ID scores at or below it (95% of
 *            ID kept); FPR = fraction of OOD scores at or below that threshold (OOD accepted as ID).
 *   aupr_*   average precision (sum over distinct thresholds of recall gain x precision), ties grouped.
 */
import { OodError } from './errors.js';

export interface DetectionMetrics {
  readonly auroc: number;
  readonly fpr95: number;
  readonly aupr_in: number;
  readonly aupr_out: number;
}

function finite(values: ArrayLike<number>, what: string): Float64Array {
  const out = Float64Array.from(values);
  if (out.length === 0) throw new OodError('CONFIG_INVALID', `metrics: ${what} scores are empty`);
  for (const v of out) if (!Number.isFinite(v)) throw new OodError('CONFIG_INVALID', `metrics: ${what} scores contain a non-finite value (${v})`);
  return out;
}

export function auroc(idScores: ArrayLike<number>, oodScores: ArrayLike<number>): number {
  const id = finite(idScores, 'ID');
  const ood = finite(oodScores, 'OOD');
  // Mann-Whitney U with mid-ranks over the pooled sample.
  const all = Array.from({ length: id.length + ood.length }, (_, i) => (i < id.length ? { v: id[i]!, ood: false } : { v: ood[i - id.length]!, ood: true }));
  all.sort((a, b) => a.v - b.v);
  let rankSumOod = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const midRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k]!.ood) rankSumOod += midRank;
    i = j + 1;
  }
  const u = rankSumOod - (ood.length * (ood.length + 1)) / 2;
  return u / (ood.length * id.length);
}

/** Threshold that keeps `tpr` of the ID scores (at or below it). */
export function thresholdAtTpr(idScores: ArrayLike<number>, tpr = 0.95): number {
  const id = finite(idScores, 'ID').sort();
  const k = Math.max(1, Math.ceil(tpr * id.length));
  return id[k - 1]!;
}

export function fprAtTpr(idScores: ArrayLike<number>, oodScores: ArrayLike<number>, tpr = 0.95): number {
  const thr = thresholdAtTpr(idScores, tpr);
  const ood = finite(oodScores, 'OOD');
  let accepted = 0;
  for (const v of ood) if (v <= thr) accepted++;
  return accepted / ood.length;
}

/** Average precision for positives ranked by descending score. */
export function averagePrecision(positive: ArrayLike<number>, negative: ArrayLike<number>): number {
  const pos = finite(positive, 'positive');
  const neg = finite(negative, 'negative');
  const all = Array.from({ length: pos.length + neg.length }, (_, i) => (i < pos.length ? { v: pos[i]!, p: true } : { v: neg[i - pos.length]!, p: false }));
  all.sort((a, b) => b.v - a.v);
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let ap = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.v === all[i]!.v) {
      if (all[j]!.p) tp++;
      else fp++;
      j++;
    }
    const recall = tp / pos.length;
    const precision = tp / (tp + fp);
    ap += (recall - prevRecall) * precision;
    prevRecall = recall;
    i = j;
  }
  return ap;
}

export function detectionMetrics(idScores: ArrayLike<number>, oodScores: ArrayLike<number>): DetectionMetrics {
  const neg = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, (v) => -v);
  return {
    auroc: auroc(idScores, oodScores),
    fpr95: fprAtTpr(idScores, oodScores, 0.95),
    aupr_in: averagePrecision(neg(idScores), neg(oodScores)),
    aupr_out: averagePrecision(oodScores, idScores),
  };
}

/** ROC curve (OOD positive), at most `maxPoints` points, from (0, 0) to (1, 1). */
export function rocCurve(idScores: ArrayLike<number>, oodScores: ArrayLike<number>, maxPoints = 200): { fpr: number[]; tpr: number[] } {
  const id = finite(idScores, 'ID');
  const ood = finite(oodScores, 'OOD');
  const all = Array.from({ length: id.length + ood.length }, (_, i) => (i < id.length ? { v: id[i]!, ood: false } : { v: ood[i - id.length]!, ood: true }));
  all.sort((a, b) => b.v - a.v);
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.v === all[i]!.v) {
      if (all[j]!.ood) tp++;
      else fp++;
      j++;
    }
    fpr.push(fp / id.length);
    tpr.push(tp / ood.length);
    i = j;
  }
  if (fpr.length <= maxPoints) return { fpr, tpr };
  const step = (fpr.length - 1) / (maxPoints - 1);
  const idx = Array.from({ length: maxPoints }, (_, k) => Math.round(k * step));
  return { fpr: idx.map((k) => fpr[k]!), tpr: idx.map((k) => tpr[k]!) };
}
