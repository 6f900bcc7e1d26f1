import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { applyWhitening, fitWhitening, inverseSqrt, symmetricEigen, unapplyWhitening } from '../../src/shared/whitening.js';
import { shrunkCovariance } from '../../src/shared/baselines.js';
import { Rng } from '../../src/shared/rng.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

/** n rows of d correlated features: x = g A + offset, g standard normal. */
function correlated(n: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = Array.from({ length: d * d }, () => rng.normal());
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const g = Array.from({ length: d }, () => rng.normal());
    for (let j = 0; j < d; j++) {
      let s = 3 + j;
      for (let k = 0; k < d; k++) s += g[k]! * a[k * d + j]!;
      x[i * d + j] = s;
    }
  }
  return x;
}

function empirical(x: Float32Array, d: number): { mean: Float64Array; cov: Float64Array } {
  const n = x.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b]! += ((x[i * d + a]! - mean[a]!) * (x[i * d + b]! - mean[b]!)) / n;
  return { mean, cov };
}

describe('whitening', () => {
  it('decomposes a symmetric matrix: A V = V diag(values)', () => {
    const d = 6;
    const x = correlated(50, d, 1);
    const { cov } = shrunkCovariance(x, d);
    const { values, vectors } = symmetricEigen(cov, d);
    for (let i = 0; i < d; i++) {
      for (let k = 0; k < d; k++) {
        let av = 0;
        for (let j = 0; j < d; j++) av += cov[i * d + j]! * vectors[j * d + k]!;
        expect(av).toBeCloseTo(vectors[i * d + k]! * values[k]!, 8);
      }
    }
    // S^-1/2 S S^-1/2 = I
    const w = inverseSqrt(cov, d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) s += w[i * d + a]! * cov[a * d + b]! * w[b * d + j]!;
        expect(s).toBeCloseTo(i === j ? 1 : 0, 8);
      }
    }
  });

  it('whitens the training features to zero mean and (shrunk) identity covariance, globally or per stage', () => {
    const d = 8;
    const n = 4000;
    const x = correlated(n, d, 2);
    const before = tf.memory().numTensors;
    const global = fitWhitening(x, [5, 3], 'global')!;
    const u = applyWhitening(global, x, d);
    expect(tf.memory().numTensors).toBe(before);
    const { mean, cov } = empirical(u, d);
    for (let j = 0; j < d; j++) expect(Math.abs(mean[j]!)).toBeLessThan(1e-4);
    // Ledoit-Wolf shrinks the covariance it inverts, so the whitened covariance is close to, not exactly, I,
    // where the raw one is far from it.
    const off = (c: Float64Array, a: number, b: number): number => Math.max(...Array.from({ length: (b - a) ** 2 }, (_, k) => Math.abs(c[(a + Math.floor(k / (b - a))) * d + a + (k % (b - a))]! - (k % (b - a) === Math.floor(k / (b - a)) ? 1 : 0))));
    expect(off(empirical(x, d).cov, 0, d)).toBeGreaterThan(2);
    expect(off(cov, 0, d)).toBeLessThan(0.15);

    const stage = fitWhitening(x, [5, 3], 'stage')!;
    // Block diagonal: no weight from one stage to the other.
    for (let i = 0; i < 5; i++) for (let j = 5; j < 8; j++) expect(stage.matrix[i * d + j]).toBe(0);
    const us = applyWhitening(stage, x, d);
    const cs = empirical(us, d).cov;
    expect(off(cs, 0, 5)).toBeLessThan(0.15);
    expect(off(cs, 5, 8)).toBeLessThan(0.15);
    expect(fitWhitening(x, [5, 3], 'none')).toBeUndefined();
    expect(applyWhitening(undefined, x, d)).toBe(x);
    expect(() => applyWhitening(global, new Float32Array(6), 3)).toThrow(/rows of 8 features/);
  });

  it('whitens partially by strength: 0 only centres, 1 is full, between is between', () => {
    const d = 8;
    const x = correlated(4000, d, 2);
    const zero = fitWhitening(x, [5, 3], 'global', 0)!;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) expect(zero.matrix[i * d + j]).toBeCloseTo(i === j ? 1 : 0, 6);
    expect(Array.from(fitWhitening(x, [5, 3], 'global', 1)!.matrix)).toEqual(Array.from(fitWhitening(x, [5, 3], 'global')!.matrix));
    // The whitened covariance's distance from I shrinks as the strength grows.
    const offI = (strength: number): number => {
      const { cov } = empirical(applyWhitening(fitWhitening(x, [5, 3], 'global', strength)!, x, d), d);
      return Math.max(...Array.from(cov, (v, k) => Math.abs(v - (k % (d + 1) === 0 ? 1 : 0))));
    };
    expect(offI(0.5)).toBeLessThan(offI(0));
    expect(offI(1)).toBeLessThan(offI(0.5));
    expect(() => fitWhitening(x, [5, 3], 'stage', 1.5)).toThrow(/whitening strength: expected a number in \[0, 1\], got 1.5/);
  });

  it('maps whitened rows back to the standardised space (the inverse of applyWhitening), per stage and globally', () => {
    const d = 8;
    const z = correlated(300, d, 7);
    for (const mode of ['stage', 'global'] as const) {
      const w = fitWhitening(z, [5, 3], mode)!;
      const back = unapplyWhitening(w, applyWhitening(w, z, d), d);
      let worst = 0;
      for (let i = 0; i < z.length; i++) worst = Math.max(worst, Math.abs(back[i]! - z[i]!) / (1 + Math.abs(z[i]!)));
      expect(worst, mode).toBeLessThan(1e-4);
    }
    expect(unapplyWhitening(undefined, z, d)).toBe(z);
    expect(() => unapplyWhitening(fitWhitening(z, [5, 3], 'stage'), z.subarray(0, 6), 6)).toThrow(/whitening: expected rows of 8 features, got 6 values of width 6/);
  });
});
