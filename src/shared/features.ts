/**
 * Per-stage, per-image standardisation of pooled features (METHOD.md §1): each stage block of each
 * image becomes (x - mean) / (std + 1e-5), std with N - 1. Plain arrays in, plain arrays out.
 */
import { OodError } from './errors.js';
import { meanStd } from './stats.js';

export const STANDARDISE_EPS = 1e-5;

/** Offsets of each stage block in a feature row: [0, c0, c0+c1, ..., D]. */
export function stageBounds(stageSizes: readonly number[]): number[] {
  const b = [0];
  for (const s of stageSizes) b.push(b[b.length - 1]! + s);
  return b;
}

/** Standardises a row-major [n, D] feature matrix stage by stage, returning a new array. */
export function standardiseStages(raw: Float32Array, stageSizes: readonly number[]): Float32Array {
  const bounds = stageBounds(stageSizes);
  const d = bounds[bounds.length - 1]!;
  if (d === 0 || raw.length % d !== 0) {
    throw new OodError('SHAPE_MISMATCH', `features: expected a multiple of ${d} values (stages ${stageSizes.join('+')}), got ${raw.length}`);
  }
  if (stageSizes.some((s) => s < 2)) throw new OodError('SHAPE_MISMATCH', 'features: every stage needs at least 2 channels to standardise');
  const n = raw.length / d;
  const out = new Float32Array(raw.length);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let s = 0; s < stageSizes.length; s++) {
      const a = row + bounds[s]!;
      const b = row + bounds[s + 1]!;
      const { mean, std } = meanStd(raw.subarray(a, b));
      const inv = 1 / (std + STANDARDISE_EPS);
      for (let j = a; j < b; j++) out[j] = (raw[j]! - mean) * inv;
    }
  }
  return out;
}

/** Rows [start, end) of a row-major matrix with `d` columns, as a view. */
export function rows(m: Float32Array, d: number, start: number, end: number): Float32Array {
  return m.subarray(start * d, end * d);
}

/** Gathers the given row indices of a row-major matrix into a new matrix. */
export function gatherRows(m: Float32Array, d: number, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * d);
  indices.forEach((r, i) => out.set(m.subarray(r * d, (r + 1) * d), i * d));
  return out;
}
