/**
 * The project's statistics, one implementation each. Plain numbers in, plain numbers out.
 *   meanStd          mean and sample standard deviation (N - 1)
 *   quantileSorted   linear-interpolated quantile of an ascending sample
 *   rankSum          mid-rank sum of one sample within the pooled sample, and the tie term
 *   binomialUpperP   P(X >= k) for X ~ Binomial(n, p): is the flagged count above what ID data gives?
 *   mannWhitney      AUC = P(scan score > ID score) (ties half) and its two-sided normal p-value
 *                    (tie-corrected): the effect size and significance of a score shift.
 *   ks               two-sample Kolmogorov-Smirnov statistic and asymptotic p-value (ksPValue: the
 *                    p-value of a given distance, for distances computed from histograms).
 */

import { OodError } from './errors.js';

/** Mean and sample standard deviation (N - 1); NaN for an empty sample. */
export function meanStd(v: ArrayLike<number>): { mean: number; std: number } {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i]!;
  mean /= v.length;
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / Math.max(1, v.length - 1)) };
}

/** Linear-interpolated quantile (type 7, as numpy's default) of an ascending array. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new OodError('CONFIG_INVALID', 'quantile of an empty sample');
  const pos = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface RankSum {
  /** Sum of the mid-ranks (1-based) of sample `a` within the pooled sample of `a` and `b`. */
  readonly rankSum: number;
  /** Sum over tie groups of t^3 - t (for the tie-corrected variance). */
  readonly tieTerm: number;
}

/** Mid-rank sum of `a` in the pooled, sorted sample (ties share their mean rank). */
export function rankSum(a: ArrayLike<number>, b: ArrayLike<number>): RankSum {
  const n1 = a.length;
  const all = new Float64Array(n1 + b.length);
  const fromA = new Uint8Array(n1 + b.length);
  const order = new Uint32Array(n1 + b.length);
  for (let i = 0; i < n1; i++) all[i] = a[i]!;
  for (let i = 0; i < b.length; i++) all[n1 + i] = b[i]!;
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((x, y) => all[x]! - all[y]!);
  for (let i = 0; i < n1; i++) fromA[i] = 1;
  let sum = 0;
  let tieTerm = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && all[order[j + 1]!] === all[order[i]!]) j++;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    const mid = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (fromA[order[k]!] === 1) sum += mid;
    i = j + 1;
  }
  return { rankSum: sum, tieTerm };
}

/** log Gamma (Lanczos, g = 7). */
export function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const xx = x - 1;
  let a = c[0]!;
  const t = xx + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (xx + i);
  return 0.5 * Math.log(2 * Math.PI) + (xx + 0.5) * Math.log(t) - t + Math.log(a);
}

function logBinomPmf(k: number, n: number, p: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/** Exact upper tail P(X >= k), summed in log space (fine for n up to millions). */
export function binomialUpperP(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  // Sum from k upward until terms are negligible.
  const first = logBinomPmf(k, n, p);
  let sum = 0;
  for (let i = k; i <= n; i++) {
    const term = Math.exp(logBinomPmf(i, n, p) - first);
    sum += term;
    if (term < 1e-16 * sum && i > n * p) break;
  }
  return Math.min(1, Math.exp(first + Math.log(sum)));
}

/** Standard normal upper tail. */
export function normalUpper(z: number): number {
  // erfc via Numerical Recipes' Chebyshev approximation (relative error < 1.2e-7).
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const y = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  const upper = y / 2;
  return z >= 0 ? upper : 1 - upper;
}

export interface MannWhitney {
  /** P(scan > reference) + P(equal) / 2. 0.5 = no shift. */
  readonly auc: number;
  readonly z: number;
  /** Two-sided p-value. */
  readonly p: number;
}

export function mannWhitney(scan: ArrayLike<number>, reference: ArrayLike<number>): MannWhitney {
  const n1 = scan.length;
  const n2 = reference.length;
  if (n1 === 0 || n2 === 0) return { auc: 0.5, z: 0, p: 1 };
  const { rankSum: r1, tieTerm } = rankSum(scan, reference);
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const n = n1 + n2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const z = sigma > 0 ? (u - (n1 * n2) / 2) / sigma : 0;
  return { auc: u / (n1 * n2), z, p: Math.min(1, 2 * normalUpper(Math.abs(z))) };
}

export interface KolmogorovSmirnov {
  readonly d: number;
  readonly p: number;
}

export function ks(a: ArrayLike<number>, b: ArrayLike<number>): KolmogorovSmirnov {
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  const n = x.length;
  const m = y.length;
  if (n === 0 || m === 0) return { d: 0, p: 1 };
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < n && x[i]! <= v) i++;
    while (j < m && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  return { d, p: ksPValue(d, n, m) };
}

/** Asymptotic p-value of a two-sample KS distance `d` between samples of sizes n and m. */
export function ksPValue(d: number, n: number, m: number): number {
  const en = Math.sqrt((n * m) / (n + m));
  const lambda = (en + 0.12 + 0.11 / en) * d;
  // Kolmogorov distribution tail: 2 sum (-1)^(k-1) exp(-2 k^2 lambda^2).
  let p = 0;
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    p += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.max(0, Math.min(1, lambda < 1e-3 ? 1 : p));
}
