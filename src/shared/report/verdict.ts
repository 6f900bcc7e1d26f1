/**
 * Dataset-level shift verdicts: is a scanned set (or a partition of it) flagged more often than the
 * (1 - tpr) expected of in-distribution data, and is its score distribution shifted against the ID
 * calibration scores? Plain words for people, numbers for machines.
 *
 * Under `minImages` scored images the distribution tests say little, but the exact binomial test of
 * the flagged count still holds: 10 of 12 images flagged is shifted, not "too few images". The
 * headline of a report is the worst of the whole scan's verdict and its partitions', so a small
 * shifted partition never hides behind a green banner.
 */
import { binomialUpperP, ks, mannWhitney } from '../stats.js';

export type VerdictLevel = 'shifted' | 'possibly shifted' | 'no shift detected' | 'too few images';

/** The levels by rank, worst last: the number machines see (metrics: ood_audit_last_verdict_level). */
export const VERDICT_RANK: Readonly<Record<VerdictLevel, number>> = { 'too few images': 0, 'no shift detected': 1, 'possibly shifted': 2, shifted: 3 };

/** The rank of a level read back from a job result or a file (-1 when it is not a level). */
export function verdictRank(level: string): number {
  return Object.hasOwn(VERDICT_RANK, level) ? VERDICT_RANK[level as VerdictLevel] : -1;
}

/**
 * `scan --fail-on`: which verdicts make the command exit non-zero. The exit statuses are distinct
 * from errors (1, and 2 for bad options or configuration): 3 = shifted, 4 = possibly shifted.
 */
export const FAIL_ON = ['shifted', 'possibly', 'never'] as const;
export type FailOn = (typeof FAIL_ON)[number];
export const VERDICT_EXIT = { shifted: 3, possiblyShifted: 4 } as const;

/** The exit status of a scan whose dataset verdict is `level`, under `--fail-on`. */
export function verdictExitCode(level: string, failOn: FailOn): number {
  if (failOn === 'never') return 0;
  if (level === 'shifted') return VERDICT_EXIT.shifted;
  if (level === 'possibly shifted' && failOn === 'possibly') return VERDICT_EXIT.possiblyShifted;
  return 0;
}

export interface Verdict {
  readonly level: VerdictLevel;
  readonly scored: number;
  readonly flagged: number;
  readonly flaggedFraction: number;
  readonly expectedFraction: number;
  /** One-sided exact binomial test of the flagged count against expectedFraction. */
  readonly binomialP: number;
  /** Mann-Whitney: AUC = P(scanned image scores above an ID holdout image); 0.5 = no shift. */
  readonly auc: number;
  readonly mannWhitneyP: number;
  /** Kolmogorov-Smirnov distance and p-value against the ID holdout scores. */
  readonly ksD: number;
  readonly ksP: number;
  /** Sort key: higher = worse. */
  readonly severity: number;
  /** Fewer than `minImages` scored: the level rests on the exact binomial test alone. */
  readonly fewImages: boolean;
  readonly text: string;
}

export interface VerdictOptions {
  /** Significance level for "shifted". Default 0.001. */
  readonly alpha?: number;
  /** Fewer scored images than this give "too few images". Default 20. */
  readonly minImages?: number;
}

const pct = (x: number): string => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
export function formatP(p: number): string {
  if (p < 1e-12) return 'p < 1e-12';
  if (p < 0.001) return `p = ${p.toExponential(1)}`;
  return `p = ${p.toFixed(3)}`;
}

/** The verdict of a set of scanned images: their primary scores and how many of them are flagged. */
export function verdict(scores: ArrayLike<number>, flagged: number, idScores: ArrayLike<number>, expectedFraction: number, options: VerdictOptions = {}): Verdict {
  const alpha = options.alpha ?? 0.001;
  const n = scores.length;
  const k = flagged;
  const frac = n > 0 ? k / n : 0;
  const binomialP = binomialUpperP(k, n, expectedFraction);
  const mw = mannWhitney(scores, idScores);
  const k2 = ks(scores, idScores);
  const few = n < (options.minImages ?? 20);
  let level: VerdictLevel;
  if (n === 0) level = 'too few images';
  else if (binomialP < alpha && frac >= 1.5 * expectedFraction) level = 'shifted';
  else if (binomialP < 0.01 || (!few && k2.p < alpha && mw.auc > 0.55)) level = 'possibly shifted';
  else if (few) level = 'too few images';
  else level = 'no shift detected';
  const excess = frac - expectedFraction;
  const rank = VERDICT_RANK[level];
  const text =
    level === 'too few images'
      ? `too few images to tell (${n} scored, ${k} flagged)`
      : few
        ? `${level} (only ${n} images): ${pct(frac)} flagged vs ${pct(expectedFraction)} expected (${k} of ${n}, ${formatP(binomialP)})`
        : `${level}: ${pct(frac)} flagged vs ${pct(expectedFraction)} expected (${k} of ${n}, ${formatP(binomialP)}); ` +
          `score shift AUC ${mw.auc.toFixed(2)}, KS ${k2.d.toFixed(2)} (${formatP(k2.p)})`;
  return { level, scored: n, flagged: k, flaggedFraction: frac, expectedFraction, binomialP, auc: mw.auc, mannWhitneyP: mw.p, ksD: k2.d, ksP: k2.p, severity: rank * 10 + excess, fewImages: few, text };
}

/** What a report leads with: the worst of the whole scan's verdict and its partitions'. */
export interface Headline {
  readonly level: VerdictLevel;
  /** The whole scan's verdict text, preceded by the partitions that are worse than it. */
  readonly text: string;
  /** Partitions at a worse level than the whole scan, worst first (at most HEADLINE_PARTITIONS). */
  readonly partitions: readonly string[];
}

/** Partitions named in a headline. */
export const HEADLINE_PARTITIONS = 5;

export function headline(overall: Verdict, partitions: readonly (Verdict & { readonly name: string })[]): Headline {
  const worse = partitions.filter((p) => VERDICT_RANK[p.level] > VERDICT_RANK[overall.level] && (p.level === 'shifted' || p.level === 'possibly shifted'));
  if (worse.length === 0) return { level: overall.level, text: overall.text, partitions: [] };
  const sorted = [...worse].sort((a, b) => b.severity - a.severity || a.name.localeCompare(b.name));
  const level = sorted[0]!.level;
  const named = sorted.slice(0, HEADLINE_PARTITIONS);
  const list = named.map((p) => `${p.name} (${p.flagged} of ${p.scored} flagged${p.fewImages ? ', few images' : ''})`).join(', ');
  const more = sorted.length > named.length ? ` and ${sorted.length - named.length} more` : '';
  const what = `${sorted.length === 1 ? 'partition' : 'partitions'} ${level}: ${list}${more}`;
  return { level, text: `${what}; whole scan: ${overall.text}`, partitions: named.map((p) => p.name) };
}

/** The partition of an object key: its first `depth` path segments below `prefix` ("(root)" for files directly in it). */
export function partitionOf(key: string, prefix: string, depth = 1): string {
  const rel = key.startsWith(prefix) ? key.slice(prefix.length) : key;
  const segs = rel.replace(/^\/+/, '').split('/');
  if (segs.length <= 1) return '(root)';
  return segs.slice(0, Math.min(depth, segs.length - 1)).join('/');
}
