import { describe, expect, it } from 'vitest';
import { auroc, averagePrecision, detectionMetrics, fprAtTpr, thresholdAtTpr } from '../../src/shared/metrics.js';
import { Rng } from '../../src/shared/rng.js';

// Slow, obviously-correct references.
function aurocRef(id: number[], ood: number[]): number {
  let s = 0;
  for (const o of ood) for (const i of id) s += o > i ? 1 : o === i ? 0.5 : 0;
  return s / (id.length * ood.length);
}
function apRef(pos: number[], neg: number[]): number {
  // Precision at each distinct threshold, weighted by the recall gained there.
  const thresholds = [...new Set([...pos, ...neg])].sort((a, b) => b - a);
  let ap = 0;
  let prevRecall = 0;
  for (const t of thresholds) {
    const tp = pos.filter((v) => v >= t).length;
    const fp = neg.filter((v) => v >= t).length;
    const recall = tp / pos.length;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}
function fprRef(id: number[], ood: number[]): number {
  // Smallest threshold keeping >= 95% of ID at or below it.
  const cands = [...id].sort((a, b) => a - b);
  const thr = cands.find((t) => id.filter((v) => v <= t).length >= 0.95 * id.length)!;
  return ood.filter((v) => v <= thr).length / ood.length;
}

describe('metrics', () => {
  it('matches hand-computed small cases', () => {
    expect(auroc([1, 2, 3], [4, 5, 6])).toBe(1);
    expect(auroc([4, 5, 6], [1, 2, 3])).toBe(0);
    expect(auroc([1, 2], [2, 3])).toBeCloseTo((1 + 1 + 0.5 + 1) / 4, 12); // one tie counts half
    expect(auroc([1, 1, 1], [1, 1])).toBe(0.5);
    // ID 1..20: the 95% threshold is 19; OOD 10, 19.5, 30 -> only 10 is accepted.
    const id = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(thresholdAtTpr(id, 0.95)).toBe(19);
    expect(fprAtTpr(id, [10, 19.5, 30])).toBeCloseTo(1 / 3, 12);
    // AP: positives 0.9, 0.4; negatives 0.8, 0.1 -> (0.5 * 1) + (0.5 * 2/3).
    expect(averagePrecision([0.9, 0.4], [0.8, 0.1])).toBeCloseTo(0.5 + 1 / 3, 12);
    // A tie between a positive and a negative at the top: one group, precision 1/2.
    expect(averagePrecision([1], [1])).toBeCloseTo(0.5, 12);
  });

  it('matches the slow reference on random cases with ties', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 40; trial++) {
      const nId = 5 + rng.int(60);
      const nOod = 5 + rng.int(60);
      const q = trial % 2 === 0 ? 4 : 1000; // coarse values make many ties
      const id = Array.from({ length: nId }, () => Math.round(rng.normal() * q) / q);
      const ood = Array.from({ length: nOod }, () => Math.round((rng.normal() + 0.7) * q) / q);
      const m = detectionMetrics(id, ood);
      expect(m.auroc).toBeCloseTo(aurocRef(id, ood), 10);
      expect(m.fpr95).toBeCloseTo(fprRef(id, ood), 10);
      expect(m.aupr_out).toBeCloseTo(apRef(ood, id), 10);
      expect(m.aupr_in).toBeCloseTo(apRef(id.map((v) => -v), ood.map((v) => -v)), 10);
    }
  });

  it('refuses empty or non-finite scores', () => {
    expect(() => auroc([], [1])).toThrow(/empty/);
    expect(() => auroc([1, Number.NaN], [1])).toThrow(/non-finite/);
  });
});
