/**
 * Statistics for dataset-level shift verdicts. Plain numbers in, plain numbers out.
 *   binomialUpperP   P(X >= k) for X ~ Binomial(n, p): is the flagged count above what ID data gives?
 *   mannWhitney      AUC = P(scan score > ID score) (ties half) and its two-sided normal p-value
 *                    (tie-corrected): the effect size and significance of a score shift.
 *   ks               two-sample Kolmogorov-Smirnov statistic and asymptotic p-value.
 */

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
  const all: { v: number; s: boolean }[] = [];
  for (let i = 0; i < n1; i++) all.push({ v: scan[i]!, s: true });
  for (let i = 0; i < n2; i++) all.push({ v: reference[i]!, s: false });
  all.sort((a, b) => a.v - b.v);
  let rankSum = 0;
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.v === all[i]!.v) j++;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    const mid = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k]!.s) rankSum += mid;
    i = j + 1;
  }
  const u = rankSum - (n1 * (n1 + 1)) / 2;
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
  const en = Math.sqrt((n * m) / (n + m));
  const lambda = (en + 0.12 + 0.11 / en) * d;
  // Kolmogorov distribution tail: 2 sum (-1)^(k-1) exp(-2 k^2 lambda^2).
  let p = 0;
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    p += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return { d, p: Math.max(0, Math.min(1, lambda < 1e-3 ? 1 : p)) };
}
