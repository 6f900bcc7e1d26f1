/**
 * Feature-space baselines on the same standardised features as DLSR (METHOD.md §6):
 *   mahalanobis  (x - mu)^T S^-1 (x - mu), S the Ledoit-Wolf shrunk covariance of the ID training set;
 *   knn          1 - cosine similarity to the k-th nearest ID training feature (k = 10 by default).
 * Both are fitted on the ID training features only and serialise to plain arrays.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from './errors.js';

export interface MahalanobisModel {
  readonly mean: Float32Array;
  /** Row-major [D, D] precision matrix. */
  readonly precision: Float32Array;
  readonly shrinkage: number;
}

/** X^T X for a row-major [n, d] matrix, in float64 accumulation via tf in float32 chunks. */
function gram(x: Float32Array, n: number, d: number): Float64Array {
  const out = new Float64Array(d * d);
  const chunk = 4096;
  for (let s = 0; s < n; s += chunk) {
    const m = Math.min(chunk, n - s);
    const g = tf.tidy(() => {
      const xt = tf.tensor2d(x.subarray(s * d, (s + m) * d), [m, d]);
      return tf.matMul(tf.transpose(xt), xt);
    });
    const v = g.dataSync();
    g.dispose();
    for (let i = 0; i < v.length; i++) out[i]! += v[i]!;
  }
  return out;
}

export interface ShrunkCovariance {
  readonly mean: Float64Array;
  /** Row-major [D, D] Ledoit-Wolf shrunk covariance. */
  readonly cov: Float64Array;
  readonly shrinkage: number;
}

/** Mean and Ledoit-Wolf covariance (shrinkage towards mu * I, the sklearn estimator) of [n, d] rows. */
export function shrunkCovariance(x: Float32Array, d: number, what = 'covariance'): ShrunkCovariance {
  const n = x.length / d;
  if (!Number.isInteger(n) || n < 2) throw new OodError('CONFIG_INVALID', `${what}: need at least 2 rows of ${d} features, got ${x.length} values`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const xc = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) xc[i * d + j] = x[i * d + j]! - mean[j]!;
  const g = gram(xc, n, d);
  const x2 = new Float32Array(xc.length);
  for (let i = 0; i < xc.length; i++) x2[i] = xc[i]! * xc[i]!;
  const g2 = gram(x2, n, d);
  let trace = 0;
  for (let j = 0; j < d; j++) trace += g[j * d + j]! / n;
  const mu = trace / d;
  let beta_ = 0;
  let delta_ = 0;
  for (let i = 0; i < d * d; i++) {
    beta_ += g2[i]!;
    delta_ += (g[i]! / n) ** 2;
  }
  let beta = (beta_ / n - delta_) / (d * n);
  let delta = delta_ - 2 * mu * trace + d * mu * mu;
  delta /= d;
  beta = Math.min(beta, delta);
  const shrinkage = beta === 0 ? 0 : beta / delta;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cov[i * d + j] = (1 - shrinkage) * (g[i * d + j]! / n) + (i === j ? shrinkage * mu : 0);
  return { mean, cov, shrinkage };
}

export function fitMahalanobis(x: Float32Array, d: number): MahalanobisModel {
  const { mean, cov, shrinkage } = shrunkCovariance(x, d, 'mahalanobis');
  return { mean: Float32Array.from(mean), precision: Float32Array.from(invertSpd(cov, d)), shrinkage };
}

/** Inverse of a symmetric positive-definite matrix via Cholesky (float64). */
export function invertSpd(a: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let k = 0; k < j; k++) s -= l[i * d + k]! * l[j * d + k]!;
      if (i === j) {
        if (s <= 0) throw new OodError('INTERNAL', 'covariance is not positive definite');
        l[i * d + i] = Math.sqrt(s);
      } else l[i * d + j] = s / l[j * d + j]!;
    }
  }
  // inv(L) by forward substitution, then inv(A) = inv(L)^T inv(L).
  const li = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    for (let i = c; i < d; i++) {
      let s = i === c ? 1 : 0;
      for (let k = c; k < i; k++) s -= l[i * d + k]! * li[k * d + c]!;
      li[i * d + c] = s / l[i * d + i]!;
    }
  }
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < d; k++) s += li[k * d + i]! * li[k * d + j]!;
      inv[i * d + j] = s;
      inv[j * d + i] = s;
    }
  }
  return inv;
}

export function mahalanobisScores(model: MahalanobisModel, x: Float32Array, d: number): Float32Array {
  const n = x.length / d;
  const out = tf.tidy(() => {
    const xc = tf.sub(tf.tensor2d(x, [n, d]), tf.tensor1d(model.mean));
    const p = tf.tensor2d(model.precision, [d, d]);
    return tf.sum(tf.mul(tf.matMul(xc, p), xc), 1);
  });
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

export interface KnnModel {
  /** Row-major [m, D] unit-normalised ID features. */
  readonly bank: Float32Array;
  readonly k: number;
}

export function normaliseRows(x: Float32Array, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length / d; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j]! ** 2;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j]! * inv;
  }
  return out;
}

export function fitKnn(x: Float32Array, d: number, k = 10): KnnModel {
  const m = x.length / d;
  if (!Number.isInteger(k) || k < 1 || k > m) throw new OodError('CONFIG_INVALID', `knn: expected k in [1, ${m}], got ${k}`);
  return { bank: normaliseRows(x, d), k };
}

/**
 * 1 - cosine similarity to the k-th nearest bank row. `excludeSelf` skips exact self-matches when the
 * queries are the bank itself (leave-one-out calibration).
 */
export function knnScores(model: KnnModel, x: Float32Array, d: number): Float32Array {
  const n = x.length / d;
  const m = model.bank.length / d;
  const q = normaliseRows(x, d);
  const out = new Float32Array(n);
  const qChunk = 256;
  const bankT = tf.tidy(() => tf.transpose(tf.tensor2d(model.bank, [m, d])));
  try {
    for (let s = 0; s < n; s += qChunk) {
      const c = Math.min(qChunk, n - s);
      const kth = tf.tidy(() => {
        const sims = tf.matMul(tf.tensor2d(q.subarray(s * d, (s + c) * d), [c, d]), bankT);
        const { values } = tf.topk(sims, model.k, true);
        return tf.slice(values, [0, model.k - 1], [c, 1]);
      });
      const v = kth.dataSync();
      kth.dispose();
      for (let i = 0; i < c; i++) out[s + i] = 1 - v[i]!;
    }
  } finally {
    bankT.dispose();
  }
  return out;
}
