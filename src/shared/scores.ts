/**
 * Reconstruction scores (METHOD.md §3), higher = more OOD:
 *   mse        squared error between z0 and its reconstruction, summed over dimensions;
 *   mfsim      minus the mean cosine similarity per stage, skipping the first stage (official code);
 *   mfsim_all  the same over all stages (paper);
 *   lr         error of the first-epoch checkpoint minus (or plus, see LR_SIGN) error of the final one.
 * Plain arrays in, plain arrays out.
 */
import { stageBounds } from './features.js';

export const DLSR_SCORES = ['mfsim', 'mfsim_all', 'mse', 'lr'] as const;
export type DlsrScore = (typeof DLSR_SCORES)[number];

export interface ReconstructionScores {
  readonly mse: Float32Array;
  readonly mfsim: Float32Array;
  readonly mfsim_all: Float32Array;
}

/** Per-row reconstruction scores for row-major [n, D] matrices. */
export function reconstructionScores(z0: Float32Array, rec: Float32Array, stageSizes: readonly number[]): ReconstructionScores {
  const bounds = stageBounds(stageSizes);
  const d = bounds[bounds.length - 1]!;
  const n = z0.length / d;
  const mse = new Float32Array(n);
  const mfsim = new Float32Array(n);
  const mfsimAll = new Float32Array(n);
  const s = stageSizes.length;
  for (let i = 0; i < n; i++) {
    const row = i * d;
    let err = 0;
    let cosSum = 0;
    let cosFirst = 0;
    for (let k = 0; k < s; k++) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let j = row + bounds[k]!; j < row + bounds[k + 1]!; j++) {
        const a = z0[j]!;
        const b = rec[j]!;
        dot += a * b;
        na += a * a;
        nb += b * b;
        err += (a - b) * (a - b);
      }
      const cos = dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12);
      cosSum += cos;
      if (k === 0) cosFirst = cos;
    }
    mse[i] = err;
    mfsimAll[i] = -cosSum / s;
    mfsim[i] = s > 1 ? -(cosSum - cosFirst) / (s - 1) : -cosSum;
  }
  return { mse, mfsim, mfsim_all: mfsimAll };
}

/**
 * LR from the reconstruction errors of the first-epoch and final checkpoints (same noise).
 * `sign` = +1 gives first - final; -1 gives final - first. Measured on CIFAR-10 (README): see the
 * model's `scoring.lrSign`.
 */
export function lrScore(errFirst: Float32Array, errFinal: Float32Array, sign: 1 | -1): Float32Array {
  const out = new Float32Array(errFirst.length);
  for (let i = 0; i < out.length; i++) out[i] = sign * (errFirst[i]! - errFinal[i]!);
  return out;
}
