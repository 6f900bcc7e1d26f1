import { describe, expect, it } from 'vitest';
import { reconstructionScores, lrScore, fitFusion, fuseScores } from '../../src/shared/scores.js';
import { standardiseStages, stageBounds } from '../../src/shared/features.js';
import { calibrate, calibratedRank } from '../../src/shared/calibration.js';
import { quantileSorted } from '../../src/shared/stats.js';
import { fitMahalanobis, mahalanobisScores, fitKnn, knnScores, invertSpd } from '../../src/shared/baselines.js';
import { Rng } from '../../src/shared/rng.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

describe('standardisation', () => {
  it('standardises each stage block per image with N-1 std', () => {
    const raw = Float32Array.from([1, 2, 3, 10, 20, 2, 4, 6, 0, 40]);
    const z = standardiseStages(raw, [3, 2]);
    // stage [1,2,3]: mean 2, std 1 -> [-1, 0, 1]; stage [10,20]: mean 15, std sqrt(50)
    expect(z[0]).toBeCloseTo(-1 / (1 + 1e-5), 6);
    expect(z[1]).toBeCloseTo(0, 6);
    expect(z[3]).toBeCloseTo(-5 / (Math.sqrt(50) + 1e-5), 6);
    expect(z[5]).toBeCloseTo(-2 / (2 + 1e-5), 6);
    expect(stageBounds([3, 2])).toEqual([0, 3, 5]);
    expect(() => standardiseStages(new Float32Array(7), [3, 2])).toThrow(/multiple of 5/);
  });
});

describe('reconstruction scores', () => {
  it('computes MSE and both MFsim variants by hand', () => {
    // one image, stages of 2 and 2: z0 = [1,0 | 0,1], rec = [1,0 | 1,0]
    const s = reconstructionScores(Float32Array.from([1, 0, 0, 1]), Float32Array.from([1, 0, 1, 0]), [2, 2]);
    expect(s.mse[0]).toBeCloseTo(2, 6); // (0-1)^2 + (1-0)^2
    expect(s.mfsim_all[0]).toBeCloseTo(-(1 + 0) / 2, 6);
    expect(s.mfsim[0]).toBeCloseTo(-0, 6); // skips the first stage: only cos = 0
    const lr = lrScore(Float32Array.from([5, 1]), Float32Array.from([2, 3]), 1);
    expect(Array.from(lr)).toEqual([3, -2]);
    expect(Array.from(lrScore(Float32Array.from([5]), Float32Array.from([2]), -1))).toEqual([-3]);
  });
});

describe('fused score', () => {
  it('averages the parts z-scored with their holdout mean and std', () => {
    const holdout = { mfsim_all: Float32Array.from([-0.9, -0.8, -0.7]), mse: Float32Array.from([10, 20, 30]) };
    const stats = fitFusion(holdout);
    expect(stats.parts).toEqual(['mfsim_all', 'mse']);
    expect(stats.mean[0]).toBeCloseTo(-0.8, 6);
    expect(stats.std[0]).toBeCloseTo(0.1, 6);
    expect(stats.mean[1]).toBeCloseTo(20, 6);
    expect(stats.std[1]).toBeCloseTo(10, 6);
    // (z_mfsim + z_mse) / 2 for mfsim_all = -0.6 (z = 2) and mse = 0 (z = -2) -> 0; -0.8, 40 -> (0 + 2) / 2 = 1
    const f = fuseScores({ mfsim_all: Float32Array.from([-0.6, -0.8]), mse: Float32Array.from([0, 40]) }, stats);
    expect(f[0]).toBeCloseTo(0, 5);
    expect(f[1]).toBeCloseTo(1, 5);
    // A constant part does not divide by zero.
    expect(fitFusion({ mfsim_all: Float32Array.from([1, 1]), mse: Float32Array.from([2, 3]) }).std[0]).toBe(1);
  });
});

describe('calibration', () => {
  it('keeps the requested ID fraction below the threshold and ranks values', () => {
    const values = Array.from({ length: 200 }, (_, i) => i);
    const cal = calibrate({ mse: values }, 0.95);
    const c = cal.scores['mse']!;
    expect(c.threshold).toBe(189); // 190 of 200 values (95%) are <= 189
    expect(values.filter((v) => v <= c.threshold).length / 200).toBe(0.95);
    expect(quantileSorted([0, 10], 0.25)).toBeCloseTo(2.5, 12);
    expect(calibratedRank(c, -1)).toBe(0);
    expect(calibratedRank(c, 1000)).toBe(1);
    expect(calibratedRank(c, 100)).toBeCloseTo(100.5 / 200, 12);
    expect(() => calibrate({ mse: [] })).toThrow(/empty/);
  });
});

describe('baselines', () => {
  it('inverts SPD matrices', () => {
    const a = Float64Array.from([4, 1, 0, 1, 3, 1, 0, 1, 2]);
    const inv = invertSpd(a, 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += a[i * 3 + k]! * inv[k * 3 + j]!;
      expect(s).toBeCloseTo(i === j ? 1 : 0, 10);
    }
  });

  it('Mahalanobis and kNN score far points higher than near ones', () => {
    const d = 5;
    const rng = new Rng(4);
    const x = new Float32Array(400 * d);
    rng.fillNormal(x);
    const near = new Float32Array(20 * d);
    rng.fillNormal(near);
    const far = new Float32Array(20 * d).map(() => 4 + rng.normal());
    const m = fitMahalanobis(x, d);
    expect(m.shrinkage).toBeGreaterThanOrEqual(0);
    expect(m.shrinkage).toBeLessThanOrEqual(1);
    const mn = mahalanobisScores(m, near, d);
    const mf = mahalanobisScores(m, far, d);
    expect(Math.max(...mn)).toBeLessThan(Math.min(...mf));
    // Near points of a unit Gaussian have squared distance about d.
    expect(mn.reduce((s, v) => s + v, 0) / 20).toBeGreaterThan(2);
    expect(mn.reduce((s, v) => s + v, 0) / 20).toBeLessThan(10);
    const k = fitKnn(x, d, 10);
    const kn = knnScores(k, near, d);
    const kf = knnScores(k, Float32Array.from(far, (v, i) => (i % d === 0 ? v : -v)), d);
    expect(kn.reduce((s, v) => s + v, 0)).toBeLessThan(kf.reduce((s, v) => s + v, 0));
  });
});
