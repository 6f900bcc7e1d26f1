/**
 * The tables bench:accuracy prints, as Markdown, from its result rows (of one run or merged from
 * several files):
 *
 *   per protocol / OOD set / config, every score (mean ± sd where there are several splits, kinds or seeds);
 *   over seeds: each protocol summary (mean over the 5-vs-5 splits, mean over the corruption kinds of a
 *   strength) computed per seed, then mean ± sd over seeds, and each DLSR score's margin over the best
 *   baseline (Mahalanobis or kNN) of the same models.
 */
import type { DetectionMetrics } from '../../src/shared/metrics.js';
import { SCORE_TYPES } from '../../src/shared/dlsr/config.js';
import { DLSR_SCORES } from '../../src/shared/scores.js';

export interface Row {
  readonly protocol: string;
  readonly ood: string;
  readonly config: string;
  readonly seed: number;
  readonly score: string;
  readonly metrics: DetectionMetrics;
}

const pct = (x: number): string => (x * 100).toFixed(2);
const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: readonly number[]): number => {
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, v.length - 1));
};
function cell(all: readonly number[]): string {
  const v = all.filter((x) => !Number.isNaN(x));
  if (v.length === 0) return '';
  return v.length > 1 ? `${pct(mean(v))} ± ${pct(sd(v))}` : pct(mean(v));
}

/** The summary a row belongs to besides its own: all 5-vs-5 splits, or all corruption kinds of a strength. */
function summaryOf(r: Row): { ood: string; config: string } | undefined {
  if (r.protocol === 'near-5v5') return { ood: 'all splits', config: r.config.split('/')[0]! };
  const strength = /-(\d+)$/.exec(r.ood)?.[1];
  if (r.protocol === 'covariate' && strength !== undefined) return { ood: `all kinds, strength ${strength}`, config: r.config };
  return undefined;
}

function groupRows(rows: readonly Row[]): Map<string, Row[]> {
  const groups = new Map<string, Row[]>();
  const add = (k: string, r: Row): void => void groups.set(k, [...(groups.get(k) ?? []), r]);
  for (const r of rows) add(`${r.protocol}|${r.ood}|${r.config}`, r);
  for (const r of rows) {
    const s = summaryOf(r);
    if (s !== undefined) add(`${r.protocol}|${s.ood}|${s.config}`, r);
  }
  return groups;
}

function scoreTable(groups: Map<string, Row[]>, title: string, scores: readonly string[]): string[] {
  const out = [`\n${title} (AUROC %, mean ± sd where there are several splits, kinds or seeds)`, `| protocol | OOD set | config | ${scores.join(' | ')} |`, `|---|---|---|${scores.map(() => '---').join('|')}|`];
  for (const [k, rs] of groups) {
    const [protocol, ood, config] = k.split('|');
    const cells = scores.map((sc) => cell(rs.filter((r) => r.score === sc).map((r) => r.metrics.auroc)));
    if (cells.every((c) => c === '')) continue;
    out.push(`| ${protocol} | ${ood} | ${config} | ${cells.join(' | ')} |`);
  }
  return out;
}

/** Per group and score: the group's mean AUROC for each seed, in seed order. */
function perSeed(rs: readonly Row[], score: string, seeds: readonly number[]): number[] {
  return seeds.map((s) => mean(rs.filter((r) => r.score === score && r.seed === s).map((r) => r.metrics.auroc)));
}

function seedTable(groups: Map<string, Row[]>): string[] {
  const baselines = ['mahalanobis', 'knn'];
  const out = [
    '\nOver seeds: each summary computed per seed (mean over splits or kinds), then mean ± sd over seeds (AUROC %); margin = score - best baseline, with its sd over seeds',
    `| protocol | OOD set | config | seeds | ${SCORE_TYPES.join(' | ')} | best baseline | ${DLSR_SCORES.map((s) => `margin ${s}`).join(' | ')} |`,
    `|---|---|---|---|${SCORE_TYPES.map(() => '---').join('|')}|---|${DLSR_SCORES.map(() => '---').join('|')}|`,
  ];
  for (const [k, rs] of groups) {
    const [protocol, ood, config] = k.split('|');
    if (protocol === 'near-5v5' && ood !== 'all splits') continue;
    if (protocol === 'covariate' && !ood!.startsWith('all kinds')) continue;
    const seeds = [...new Set(rs.map((r) => r.seed))].sort((a, b) => a - b);
    const bySeed = Object.fromEntries(SCORE_TYPES.map((s) => [s, perSeed(rs, s, seeds)]));
    const best = baselines.reduce((a, b) => (mean(bySeed[b]!) > mean(bySeed[a]!) ? b : a));
    // Margin per seed against the best baseline of the same seed's models.
    const margins = DLSR_SCORES.map((s) => cell(bySeed[s]!.map((v, i) => v - Math.max(...baselines.map((b) => bySeed[b]![i]!)))));
    out.push(`| ${protocol} | ${ood} | ${config} | ${seeds.length} | ${SCORE_TYPES.map((s) => cell(bySeed[s]!)).join(' | ')} | ${best} | ${margins.join(' | ')} |`);
  }
  return out;
}

/** Every table of the rows, as Markdown. */
export function formatTables(rows: readonly Row[]): string {
  const groups = groupRows(rows);
  return [...scoreTable(groups, 'Built-in scores', SCORE_TYPES), ...seedTable(groups)].join('\n') + '\n';
}
