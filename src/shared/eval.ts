/**
 * The paper's evaluation protocol over scored sets: metrics of every computed score type for each OOD
 * set against the ID set, with set sizes and throughput, as the `eval` JSON and a printable table.
 */
import { detectionMetrics } from './metrics.js';
import type { AnyScoreType } from './dlsr/config.js';
import { scoreTypesOf, type ScoreTable } from './score-table.js';

/** One evaluated set: its scores, how many images failed, and the time spent on it. */
export interface EvalSet {
  readonly table: ScoreTable;
  readonly failed: number;
  readonly extractSeconds: number;
  readonly scoreSeconds: number;
}

export interface EvalResult {
  readonly ood: string;
  readonly score: AnyScoreType;
  readonly auroc: number;
  readonly fpr95: number;
  readonly aupr_in: number;
  readonly aupr_out: number;
}

export interface EvalReport {
  readonly results: EvalResult[];
  readonly sets: Record<string, { count: number; failed: number }>;
  readonly throughput: { extract_img_per_s: number; score_img_per_s: number };
}

export function evaluateScores(id: EvalSet, oods: Readonly<Record<string, EvalSet>>): EvalReport {
  const results: EvalResult[] = [];
  for (const [name, set] of Object.entries(oods)) {
    for (const score of scoreTypesOf(id.table.scores)) {
      const ood = set.table.scores[score];
      if (ood === undefined || ood.length === 0 || id.table.keys.length === 0) continue;
      results.push({ ood: name, score, ...detectionMetrics(id.table.scores[score]!, ood) });
    }
  }
  const all = [id, ...Object.values(oods)];
  const images = all.reduce((s, x) => s + x.table.keys.length + x.failed, 0);
  const scored = all.reduce((s, x) => s + x.table.keys.length, 0);
  return {
    results,
    sets: Object.fromEntries(
      ([['id', id], ...Object.entries(oods)] as [string, EvalSet][]).map(([n, s]) => [n, { count: s.table.keys.length, failed: s.failed }]),
    ),
    throughput: {
      extract_img_per_s: images / Math.max(1e-9, all.reduce((s, x) => s + x.extractSeconds, 0)),
      score_img_per_s: scored / Math.max(1e-9, all.reduce((s, x) => s + x.scoreSeconds, 0)),
    },
  };
}

const pct = (x: number): string => (x * 100).toFixed(2).padStart(6);

export function formatEvalTable(report: EvalReport): string {
  const lines = [`${'ood'.padEnd(16)} ${'score'.padEnd(12)}  AUROC   FPR95  AUPRin AUPRout`];
  for (const r of report.results) lines.push(`${r.ood.padEnd(16)} ${r.score.padEnd(12)} ${pct(r.auroc)} ${pct(r.fpr95)} ${pct(r.aupr_in)} ${pct(r.aupr_out)}`);
  const sets = Object.entries(report.sets).map(([n, s]) => `${n}: ${s.count}${s.failed > 0 ? ` (+${s.failed} failed)` : ''}`);
  lines.push(`sets: ${sets.join(', ')}`);
  lines.push(`throughput: extract ${report.throughput.extract_img_per_s.toFixed(1)} img/s, score ${report.throughput.score_img_per_s.toFixed(0)} img/s`);
  return lines.join('\n') + '\n';
}
