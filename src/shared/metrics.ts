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
import { rankSum } from './stats.js';

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
  const u = rankSum(ood, id).rankSum - (ood.length * (ood.length + 1)) / 2;
  return u / (ood.length * id.length);
}

/**
 * Walks the pooled scores from the highest down, one tie group at a time, calling `visit` with the
 * positives and negatives at or above the group's score.
 */
function sweepDescending(positive: Float64Array, negative: Float64Array, visit: (tp: number, fp: number) => void): void {
  const all = new Float64Array(positive.length + negative.length);
  all.set(positive);
  all.set(negative, positive.length);
  const order = Uint32Array.from(all, (_, i) => i).sort((x, y) => all[y]! - all[x]!);
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < order.length; ) {
    const v = all[order[i]!]!;
    while (i < order.length && all[order[i]!] === v) {
      if (order[i]! < positive.length) tp++;
      else fp++;
      i++;
    }
    visit(tp, fp);
  }
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
  let prevRecall = 0;
  let ap = 0;
  sweepDescending(pos, neg, (tp, fp) => {
    const recall = tp / pos.length;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  });
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
  const fpr = [0];
  const tpr = [0];
  sweepDescending(ood, id, (tp, fp) => {
    fpr.push(fp / id.length);
    tpr.push(tp / ood.length);
  });
  if (fpr.length <= maxPoints) return { fpr, tpr };
  const step = (fpr.length - 1) / (maxPoints - 1);
  const idx = Array.from({ length: maxPoints }, (_, k) => Math.round(k * step));
  return { fpr: idx.map((k) => fpr[k]!), tpr: idx.map((k) => tpr[k]!) };
}
