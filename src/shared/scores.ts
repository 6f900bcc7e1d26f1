/**
 * Reconstruction scores (METHOD.md §3), higher = more OOD:
 *   mse        squared error between z0 and its reconstruction, summed over dimensions;
 *   mfsim      minus the mean cosine similarity per stage, skipping the first stage (official code);
 *   mfsim_all  the same over all stages (paper);
 *   lr         error of the first-epoch checkpoint minus (or plus, see LR_SIGN) error of the final one;
 *   fused      the mean of the model's fused parts (config.scoring.fusedParts: mse and knn by default;
 *              mfsim_all and mse in models made before it), each z-scored with its mean and std on the
 *              ID calibration holdout.
 * Plain arrays in, plain arrays out.
 */
import { stageBounds } from './features.js';
import { meanStd } from './stats.js';
import { OodError } from './errors.js';

export const DLSR_SCORES = ['fused', 'mfsim', 'mfsim_all', 'mse', 'lr'] as const;
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
      let stageE = 0;
      for (let j = row + bounds[k]!; j < row + bounds[k + 1]!; j++) {
        const a = z0[j]!;
        const b = rec[j]!;
        dot += a * b;
        na += a * a;
        nb += b * b;
        stageE += (a - b) * (a - b);
      }
      const cos = dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12);
      err += stageE;
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

/** The scores a fused score can average (config.scoring.fusedParts). */
export const FUSABLE_SCORES = ['mse', 'mfsim', 'mfsim_all', 'lr', 'mahalanobis', 'knn'] as const;
export type FusedPart = (typeof FUSABLE_SCORES)[number];
/** The fused score's parts in models whose configuration does not name them. */
export const FUSED_PARTS: readonly FusedPart[] = ['mfsim_all', 'mse'];

export interface FusionStats {
  readonly parts: readonly FusedPart[];
  /** Per part: mean and std of its scores on the ID calibration holdout. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** Fits the fused score's normalisation on the holdout's part scores. */
export function fitFusion(holdout: Readonly<Partial<Record<FusedPart, ArrayLike<number>>>>, parts: readonly FusedPart[] = FUSED_PARTS): FusionStats {
  const stats = parts.map((p) => {
    const col = holdout[p];
    if (col === undefined) throw new OodError('INTERNAL', `fusion: the holdout has no ${p} scores`);
    return meanStd(col);
  });
  // A constant part gets std 1 so its z-scores stay finite.
  return { parts: [...parts], mean: stats.map((s) => s.mean), std: stats.map((s) => s.std || 1) };
}

/** Mean of the holdout-normalised part scores. */
export function fuseScores<K extends string = FusedPart>(cols: Readonly<Partial<Record<K, ArrayLike<number>>>>, stats: { readonly parts: readonly K[]; readonly mean: readonly number[]; readonly std: readonly number[] }): Float32Array {
  const part = (p: K): ArrayLike<number> => {
    const c = cols[p];
    if (c === undefined) throw new OodError('INTERNAL', `fusion: no ${p} scores to fuse`);
    return c;
  };
  const n = part(stats.parts[0]!).length;
  const out = new Float32Array(n);
  stats.parts.forEach((p, k) => {
    const c = part(p);
    const inv = 1 / (stats.std[k]! * stats.parts.length);
    for (let i = 0; i < n; i++) out[i]! += (c[i]! - stats.mean[k]!) * inv;
  });
  return out;
}
