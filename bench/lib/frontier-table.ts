/**
 * The tables bench:frontier and bench:frontier-search print: every candidate score's AUROC summaries
 * (near = mean over the 5-vs-5 splits; covariate-S = mean over the corruption kinds at strength S;
 * far = Fashion-MNIST) and its worst margin over the best baseline on the near-OOD summaries.
 */
export const BASELINES = ['mahalanobis', 'knn'] as const;
export const BUILT_IN = ['fused', 'mfsim', 'mfsim_all', 'mse', 'lr'] as const;
export const PROTOCOLS = ['near', 'covariate-1', 'covariate-2', 'covariate-3'] as const;

/** AUROC % per protocol summary. */
export type Summary = Record<string, number>;

export interface Candidate {
  readonly name: string;
  readonly summary: Summary;
}

/** Per near-OOD summary, the better baseline's AUROC: the bar every candidate is measured against. */
export const bestBaseline = (baselines: Record<string, Summary>): Summary => Object.fromEntries(PROTOCOLS.map((p) => [p, Math.max(...BASELINES.map((b) => baselines[b]![p]!))]));

/** The lowest margin of a score's summaries over the best baseline's, over the near-OOD summaries. */
export const worstMargin = (s: Summary, best: Summary): number => Math.min(...PROTOCOLS.map((p) => s[p]! - best[p]!));

const fmt = (v: number | undefined): string => (v === undefined ? '' : v.toFixed(2));

export const tableHead = (): string[] => [`| score | ${PROTOCOLS.join(' | ')} | far | worst margin |`, `|---|${PROTOCOLS.map(() => '---').join('|')}|---|---|`];

export const tableRow = (name: string, s: Summary, best: Summary): string => `| ${name} | ${PROTOCOLS.map((p) => fmt(s[p])).join(' | ')} | ${fmt(s['far'])} | ${fmt(worstMargin(s, best))} |`;

/**
 * The trade-off rows (among candidates keeping far >= 99.9: the best covariate margin with a near
 * margin of at least 0, 1, 2, 3) and the count of candidates that beat the best baseline everywhere.
 */
export function tradeOff(candidates: readonly Candidate[], best: Summary, noun: string): string[] {
  const farOk = candidates.filter((c) => (c.summary['far'] ?? 0) >= 99.9);
  const covMargin = (s: Summary): number => Math.min(...PROTOCOLS.slice(1).map((p) => s[p]! - best[p]!));
  const lines: string[] = [];
  for (const m of [0, 1, 2, 3]) {
    const pick = farOk.filter((c) => c.summary['near']! - best['near']! >= m).sort((x, y) => covMargin(y.summary) - covMargin(x.summary))[0];
    if (pick !== undefined) lines.push(tableRow(`best with near margin >= ${m}: ${pick.name}`, pick.summary, best));
  }
  const passing = farOk.filter((c) => worstMargin(c.summary, best) > 0);
  lines.push('', `${passing.length} of ${candidates.length} ${noun} beat the best baseline on every near-OOD summary with far >= 99.9.`);
  return lines;
}
