/**
 * Optional feature whitening before the LFDN (issue 5): u = (z - mean) W, with W = S^(-1/2) the
 * symmetric (ZCA) inverse square root of the Ledoit-Wolf covariance S of the ID training features.
 * ZCA keeps every output dimension closest to its input dimension, so stage blocks keep their meaning
 * for MFsim. In whitened space every direction has unit variance over the ID features, so the
 * reconstruction error counts a deviation by how unusual it is for ID data rather than by the raw
 * scale of the features.
 *
 *   none    no whitening (the paper)
 *   stage   each stage block whitened on its own (block-diagonal W)
 *   global  all stages whitened jointly
 *
 * Plain arrays in, plain arrays out; the matrix product runs in tf in chunks.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from './errors.js';
import { shrunkCovariance } from './baselines.js';
import { stageBounds } from './features.js';

import type { WhitenMode } from './dlsr/config.js';

export interface Whitening {
  readonly mean: Float32Array;
  /** Row-major [D, D], symmetric. */
  readonly matrix: Float32Array;
}

/** Eigen-decomposition of a symmetric [d, d] matrix by cyclic Jacobi rotations (float64). */
export function symmetricEigen(a: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== d * d) throw new OodError('SHAPE_MISMATCH', `eigen: expected ${d}x${d} values, got ${a.length}`);
  const m = Float64Array.from(a);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += m[i]! * m[i]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p * d + q]! * m[p * d + q]!;
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * d + q]! - m[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const mkp = m[k * d + p]!;
          const mkq = m[k * d + q]!;
          m[k * d + p] = c * mkp - s * mkq;
          m[k * d + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < d; k++) {
          const mpk = m[p * d + k]!;
          const mqk = m[q * d + k]!;
          m[p * d + k] = c * mpk - s * mqk;
          m[q * d + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = m[i * d + i]!;
  return { values, vectors: v };
}

/** S^(-1/2) of a symmetric positive-definite matrix (columns of `vectors` are the eigenvectors). */
export function inverseSqrt(s: Float64Array, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(s, d);
  if (values.some((x) => !(x > 0))) throw new OodError('INTERNAL', 'whitening: covariance is not positive definite');
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const w = 1 / Math.sqrt(values[k]!);
    for (let i = 0; i < d; i++) {
      const vik = vectors[i * d + k]! * w;
      for (let j = 0; j < d; j++) out[i * d + j]! += vik * vectors[j * d + k]!;
    }
  }
  return out;
}

function block(x: Float32Array, d: number, a: number, b: number): Float32Array {
  const n = x.length / d;
  const w = b - a;
  const out = new Float32Array(n * w);
  for (let i = 0; i < n; i++) out.set(x.subarray(i * d + a, i * d + b), i * w);
  return out;
}

/**
 * Fits the whitening of standardised ID training features; undefined for mode 'none'. `strength` in
 * [0, 1] whitens partially: the inverse square root of strength x S + (1 - strength) x I, so 1 is full
 * whitening and 0 only centres the (already unit-variance) features.
 */
export function fitWhitening(z: Float32Array, stageSizes: readonly number[], mode: WhitenMode, strength = 1): Whitening | undefined {
  if (mode === 'none') return undefined;
  if (!(strength >= 0 && strength <= 1)) throw new OodError('CONFIG_INVALID', `invalid whitening strength: expected a number in [0, 1], got ${strength}`);
  const bounds = stageBounds(stageSizes);
  const d = bounds[bounds.length - 1]!;
  const groups = mode === 'global' ? [[0, d]] : stageSizes.map((_, s) => [bounds[s]!, bounds[s + 1]!]);
  const mean = new Float32Array(d);
  const matrix = new Float32Array(d * d);
  for (const [a, b] of groups as [number, number][]) {
    const w = b - a;
    const { mean: mu, cov } = shrunkCovariance(block(z, d, a, b), w, 'whitening');
    for (let i = 0; i < w * w; i++) cov[i] = strength * cov[i]! + (i % (w + 1) === 0 ? 1 - strength : 0);
    const inv = inverseSqrt(cov, w);
    for (let i = 0; i < w; i++) {
      mean[a + i] = mu[i]!;
      for (let j = 0; j < w; j++) matrix[(a + i) * d + a + j] = inv[i * w + j]!;
    }
  }
  return { mean, matrix };
}

/** Row by row, (x - before) M + after for row-major [n, d] rows, in chunks of 4,096 rows (tf). */
function affineRows(x: Float32Array, d: number, m: Float32Array, shift: { readonly before?: Float32Array; readonly after?: Float32Array }): Float32Array {
  const n = x.length / d;
  const out = new Float32Array(x.length);
  const matrix = tf.tensor2d(m, [d, d]);
  const before = shift.before !== undefined ? tf.tensor1d(shift.before) : undefined;
  const after = shift.after !== undefined ? tf.tensor1d(shift.after) : undefined;
  try {
    const chunk = 4096;
    for (let s = 0; s < n; s += chunk) {
      const rows = Math.min(chunk, n - s);
      const y = tf.tidy(() => {
        const t = tf.tensor2d(x.subarray(s * d, (s + rows) * d), [rows, d]);
        const p = tf.matMul(before !== undefined ? tf.sub(t, before) : t, matrix);
        return after !== undefined ? tf.add(p, after) : p;
      });
      out.set(y.dataSync(), s * d);
      y.dispose();
    }
  } finally {
    matrix.dispose();
    before?.dispose();
    after?.dispose();
  }
  return out;
}

function checkRows(w: Whitening, x: Float32Array, d: number): void {
  if (w.mean.length !== d || x.length % d !== 0) throw new OodError('SHAPE_MISMATCH', `whitening: expected rows of ${w.mean.length} features, got ${x.length} values of width ${d}`);
}

/** (z - mean) W for row-major [n, D] features; z itself when there is no whitening. */
export function applyWhitening(w: Whitening | undefined, z: Float32Array, d: number): Float32Array {
  if (w === undefined) return z;
  checkRows(w, z, d);
  return affineRows(z, d, w.matrix, { before: w.mean });
}

/** W^-1 of each whitening, computed once (W is symmetric positive definite: its eigenvalues inverted). */
const inverses = new WeakMap<Whitening, Float32Array>();

function inverseOf(w: Whitening): Float32Array {
  const cached = inverses.get(w);
  if (cached !== undefined) return cached;
  const d = w.mean.length;
  const { values, vectors } = symmetricEigen(Float64Array.from(w.matrix), d);
  if (values.some((x) => !(x > 0))) throw new OodError('MODEL_INVALID', 'whitening: the matrix is not positive definite');
  const out = new Float32Array(d * d);
  const acc = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const inv = 1 / values[k]!;
    for (let i = 0; i < d; i++) {
      const vik = vectors[i * d + k]! * inv;
      if (vik === 0) continue;
      for (let j = 0; j < d; j++) acc[i * d + j]! += vik * vectors[j * d + k]!;
    }
  }
  out.set(acc);
  inverses.set(w, out);
  return out;
}

/** The inverse of applyWhitening: u W^-1 + mean, back in the standardised space (u itself without whitening). */
export function unapplyWhitening(w: Whitening | undefined, u: Float32Array, d: number): Float32Array {
  if (w === undefined) return u;
  checkRows(w, u, d);
  return affineRows(u, d, inverseOf(w), { after: w.mean });
}
