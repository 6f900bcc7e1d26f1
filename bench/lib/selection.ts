/**
 * The selection rule of the default score (issue 13), applied to the protocol suite's rows, and its
 * tables. Stated before the results were seen, and printed with them:
 *
 *   1. A family's value for a candidate, size and seed is its mean AUROC over the family's OOD sets.
 *   2. Margin = candidate - best baseline (Mahalanobis or kNN, the better of the two by mean over
 *      seeds), each averaged over seeds; spread = the larger seed sd of the two, at least 0.2 points.
 *   3. A candidate is eligible if its margin >= -spread on every selection family at every size.
 *   4. The default is the eligible candidate with the largest worst-case margin (ties: fewer parts);
 *      when none is eligible, the candidate with the largest worst-case margin, and the rule is
 *      reported as not met.
 *   5. The held-out family (leave-one-class-out) takes no part in 1-4; it is reported afterwards as
 *      the check, with the same margins, and the choice is not changed after seeing it.
 */
import type { Family, Size, SuiteRow } from './protocol-suite.js';

export const SELECTION_FAMILIES: readonly Family[] = ['far', 'corruption', '5v5'];
export const HELD_OUT: Family = 'loo';
export const BASELINES = ['mahalanobis', 'knn'] as const;
export const MIN_SPREAD = 0.002;

const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: readonly number[]): number => {
  if (v.length < 2) return 0;
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
};
const pct = (x: number): string => (x * 100).toFixed(2);
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}`;

/** Candidate name: whitening mode and score; the baselines do not depend on the whitening. */
export const candidateOf = (r: Pick<SuiteRow, 'mode' | 'score'>): string => ((BASELINES as readonly string[]).includes(r.score) ? r.score : `${r.mode}:${r.score}`);

export interface Cell {
  /** Per seed: the family mean. */
  readonly perSeed: ReadonlyMap<number, number>;
  readonly mean: number;
  readonly sd: number;
}

/** candidate -> `${family}|${size}` -> cell. */
export function cells(rows: readonly SuiteRow[]): Map<string, Map<string, Cell>> {
  const acc = new Map<string, Map<string, Map<number, number[]>>>();
  for (const r of rows) {
    const c = candidateOf(r);
    const k = `${r.family}|${r.size}`;
    const byKey = acc.get(c) ?? new Map<string, Map<number, number[]>>();
    acc.set(c, byKey);
    const bySeed = byKey.get(k) ?? new Map<number, number[]>();
    byKey.set(k, bySeed);
    bySeed.set(r.seed, [...(bySeed.get(r.seed) ?? []), r.auroc]);
  }
  const out = new Map<string, Map<string, Cell>>();
  for (const [c, byKey] of acc) {
    const m = new Map<string, Cell>();
    for (const [k, bySeed] of byKey) {
      // A baseline appears once per whitening mode with identical values: one value per (set, seed).
      const perSeed = new Map([...bySeed].map(([s, v]) => [s, mean(v)] as const));
      const vals = [...perSeed.values()];
      m.set(k, { perSeed, mean: mean(vals), sd: sd(vals) });
    }
    out.set(c, m);
  }
  return out;
}

export interface Margin {
  readonly margin: number;
  readonly spread: number;
  readonly baseline: string;
}

export function marginOf(all: Map<string, Map<string, Cell>>, candidate: string, key: string): Margin | undefined {
  const c = all.get(candidate)?.get(key);
  const bases = BASELINES.map((b) => [b, all.get(b)?.get(key)] as const).filter((x): x is readonly [(typeof BASELINES)[number], Cell] => x[1] !== undefined);
  if (c === undefined || bases.length === 0) return undefined;
  const [baseline, best] = bases.reduce((a, b) => (b[1].mean > a[1].mean ? b : a));
  return { margin: c.mean - best.mean, spread: Math.max(c.sd, best.sd, MIN_SPREAD), baseline };
}

export interface Selection {
  /** The selection families x sizes measured (the rule needs them all: `complete`). */
  readonly keys: readonly string[];
  readonly complete: boolean;
  readonly ranked: readonly { candidate: string; worst: number; eligible: boolean }[];
  readonly chosen: string | undefined;
  /** Whether the chosen candidate meets the rule (else it is only the best worst case). */
  readonly eligible: boolean;
}

/** Applies the rule on the selection families at the sizes present. */
export function select(all: Map<string, Map<string, Cell>>, sizes: readonly Size[]): Selection {
  const wanted = SELECTION_FAMILIES.flatMap((f) => sizes.map((s) => `${f}|${s}`));
  const keys = wanted.filter((k) => all.get(BASELINES[0])?.has(k) === true);
  const parts = (c: string): number => (c.startsWith('f:') || c.includes(':f:') ? c.split('+').length : 1);
  const ranked = [...all.keys()]
    .map((candidate) => {
      const ms = keys.map((k) => marginOf(all, candidate, k));
      const complete = ms.every((m) => m !== undefined);
      const worst = complete ? Math.min(...ms.map((m) => m!.margin)) : Number.NEGATIVE_INFINITY;
      return { candidate, worst, eligible: complete && ms.every((m) => m!.margin >= -m!.spread), parts: parts(candidate) };
    })
    .filter((r) => r.worst > Number.NEGATIVE_INFINITY)
    .sort((a, b) => Number(b.eligible) - Number(a.eligible) || b.worst - a.worst || a.parts - b.parts);
  const complete = keys.length === wanted.length;
  const best = ranked.find((r) => r.eligible) ?? ranked[0];
  return { keys, complete, ranked, chosen: best?.candidate, eligible: best?.eligible === true };
}

/** The suite's tables and the selection, as Markdown. */
export function selectionReport(rows: readonly SuiteRow[]): string {
  const all = cells(rows);
  const sizes = (['5000', 'full'] as const).filter((s) => rows.some((r) => r.size === s));
  const seeds = [...new Set(rows.map((r) => r.seed))].sort((a, b) => a - b);
  const families = (['far', 'corruption', '5v5', 'loo'] as const).filter((f) => rows.some((r) => r.family === f));
  const keys = families.flatMap((f) => sizes.map((s) => `${f}|${s}`)).filter((k) => [...all.values()].some((m) => m.has(k)));
  const sel = select(all, sizes);
  const out: string[] = [];
  out.push(`Protocol suite, CIFAR-10 as ID (AUROC %, mean ± sd over seeds ${seeds.join(', ')}; a family's value is the mean over its OOD sets). Candidates are \`<whitening>:<score>\`; f:a+b is the mean of holdout z-scored parts.`);
  out.push('', `| candidate | ${keys.map((k) => k.replace('|', ' @ ')).join(' | ')} |`, `|---|${keys.map(() => '---').join('|')}|`);
  const order = [...BASELINES, ...sel.ranked.map((r) => r.candidate).filter((c) => !(BASELINES as readonly string[]).includes(c))];
  for (const c of order) {
    const m = all.get(c);
    if (m === undefined) continue;
    out.push(`| ${c} | ${keys.map((k) => (m.has(k) ? `${pct(m.get(k)!.mean)} ± ${pct(m.get(k)!.sd)}` : '')).join(' | ')} |`);
  }
  if (sel.keys.length === 0) {
    // Only the held-out family (or none) in these rows: nothing to choose from; its margins alone.
    out.push('', `No selection family (${SELECTION_FAMILIES.join(', ')}) in these rows: nothing is chosen. Margins over the best baseline in points, ✗ where below -spread:`, '');
    out.push(`| candidate | ${keys.map((k) => k.replace('|', ' @ ')).join(' | ')} |`, `|---|${keys.map(() => '---').join('|')}|`);
    for (const c of order) {
      const ms = keys.map((k) => marginOf(all, c, k)).map((m) => (m === undefined ? '—' : `${signed(m.margin)}${m.margin < -m.spread ? ' ✗' : ''}`));
      out.push(`| ${c} | ${ms.join(' | ')} |`);
    }
    return out.join('\n') + '\n';
  }
  out.push('', `Selection (families ${SELECTION_FAMILIES.join(', ')} at sizes ${sizes.join(', ')}; held out: ${HELD_OUT}). Margin over the best baseline in points, ✗ where it is below -spread:`);
  out.push('', `| rank | candidate | worst margin | eligible | ${sel.keys.map((k) => k.replace('|', ' @ ')).join(' | ')} | held out ${HELD_OUT} (${sizes.join(', ')}) |`, `|---|---|---|---|${sel.keys.map(() => '---').join('|')}|---|`);
  sel.ranked.slice(0, 25).forEach((r, i) => {
    const ms = sel.keys.map((k) => {
      const m = marginOf(all, r.candidate, k)!;
      return `${signed(m.margin)}${m.margin < -m.spread ? ' ✗' : ''}`;
    });
    const held = sizes.map((s) => marginOf(all, r.candidate, `${HELD_OUT}|${s}`)).map((m) => (m === undefined ? '—' : `${signed(m.margin)}${m.margin < -m.spread ? ' ✗' : ''}`));
    out.push(`| ${i + 1} | ${r.candidate} | ${signed(r.worst)} | ${r.eligible ? 'yes' : 'no'} | ${ms.join(' | ')} | ${held.join(', ')} |`);
  });
  const scope = sel.complete ? '' : ` (incomplete: the rule needs every selection family at every size; ranked on ${sel.keys.join(', ').replaceAll('|', ' @ ')} only)`;
  if (sel.chosen === undefined) out.push('', `No candidate measured${scope}.`);
  else if (sel.eligible) out.push('', `Chosen by the rule: **${sel.chosen}**${scope}.`);
  else out.push('', `No candidate meets the rule on every selection family and size; the largest worst-case margin is **${sel.chosen}**${scope}.`);
  return out.join('\n') + '\n';
}
