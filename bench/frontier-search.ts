/**
 * bench:frontier-search: a wider search than bench:frontier, on the per-image columns it wrote with
 * --dump (no fitting here). Every column — the built-in scores and each stage's cosine, error and LR —
 * is z-scored on its fit's calibration holdout, and the search scores:
 *   - two-sided (typicality) versions of the built-in scores: |z| around the holdout median, scaled by
 *     its MAD, so an image reconstructed "too well" counts as atypical too;
 *   - score-space typicality: the Mahalanobis distance (Ledoit-Wolf, fitted on the holdout) of each
 *     image's layer-wise profile (per stage: cosine, log error, LR; and subsets of those);
 *   - every weighted sum of two or three columns (weights 1 and 0.5 / 1 / 2) and the max of two.
 * Prints the baselines and built-ins, the candidates with the largest worst-case margin over the best
 * baseline (near mean over splits; covariate mean over kinds per strength), the best covariate margin
 * at a near margin of at least 0 / 1 / 2, and how many candidates beat every near-OOD summary with
 * far >= 99.9.
 *
 * Usage: npm run bench:frontier-search -- --dump columns.json [--top 15] (8-19 minutes on 2 cores)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/shared/backend.js';
import { fitMahalanobis, mahalanobisScores } from '../src/shared/baselines.js';
import { quantileSorted } from '../src/shared/calibration.js';
import { auroc } from '../src/shared/metrics.js';
import { meanStd } from '../src/shared/scores.js';
import { zScore } from './lib/levers.js';
import { BASELINES, bestBaseline, BUILT_IN, tableHead, tableRow, tradeOff, worstMargin as marginOver, type Candidate, type Summary } from './lib/frontier-table.js';

const { values: opt } = parseArgs({ options: { dump: { type: 'string' }, top: { type: 'string', default: '15' } } });
if (opt.dump === undefined) throw new Error('--dump: the columns file bench:frontier --dump wrote is required');

type Cols = Record<string, Float32Array>;
interface DumpFile {
  readonly taps: string;
  /** Absent in dumps written before the option: 224. */
  readonly inputSize?: number;
  readonly trainLimit: number;
  readonly seed: number;
  readonly fits: { label: string; sets: Record<string, Record<string, number[]>> }[];
}

await initBackend('auto');
const dump = JSON.parse(readFileSync(opt.dump, 'utf8')) as DumpFile;
const stages = Object.keys(dump.fits[0]!.sets['id']!).filter((k) => k.startsWith('cos ')).length;

const median = (v: ArrayLike<number>): number => quantileSorted(Float64Array.from(v).sort(), 0.5);

/** A set's columns: raw, holdout-z-scored ("z <name>") and per-stage log errors ("logerr <k>"). */
interface Fit {
  readonly holdout: Cols;
  readonly sets: Map<string, Cols>;
}
const fits: Fit[] = dump.fits.map((f) => {
  const raw = (c: Record<string, number[]>): Cols => {
    const out: Cols = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Float32Array.from(v)]));
    for (let k = 1; k <= stages; k++) out[`logerr ${k}`] = Float32Array.from(out[`err ${k}`]!, (x) => Math.log(Math.max(x, 1e-12)));
    return out;
  };
  const holdout = raw(f.sets['holdout']!);
  const withZ = (c: Cols): Cols => ({ ...c, ...Object.fromEntries(Object.entries(c).map(([k, v]) => [`z ${k}`, zScore(v, holdout[k]!)])) });
  return { holdout: withZ(holdout), sets: new Map(Object.entries(f.sets).filter(([n]) => n !== 'holdout').map(([n, c]) => [n, withZ(raw(c))])) };
});

type Score = (c: Cols, fit: Fit) => Float32Array;
const summaryName = (set: string): string => (set.startsWith('covariate-') ? `covariate-${set.split('-').at(-1)}` : set);

/** AUROC % per protocol summary: each fit's ID set against each of its OOD sets, averaged per summary. */
function evaluate(score: Score): Record<string, number> {
  const by = new Map<string, number[]>();
  for (const fit of fits) {
    const id = score(fit.sets.get('id')!, fit);
    for (const [name, c] of fit.sets) {
      if (name === 'id') continue;
      const p = summaryName(name);
      by.set(p, [...(by.get(p) ?? []), 100 * auroc(id, score(c, fit))]);
    }
  }
  return Object.fromEntries([...by].map(([p, v]) => [p, meanStd(v).mean]));
}

const baseline = Object.fromEntries(BASELINES.map((b) => [b, evaluate((c) => c[b]!)]));
const best = bestBaseline(baseline);
const worstMargin = (s: Summary): number => marginOver(s, best);

const candidates: (Candidate & { readonly family: string })[] = [];
const add = (family: string, name: string, score: Score): void => void candidates.push({ family, name, summary: evaluate(score) });

// Two-sided typicality of the built-in scores.
for (const s of BUILT_IN) {
  const center = fits.map((f) => median(f.holdout[s]!));
  const mad = fits.map((f, i) => 1.4826 * median(Float64Array.from(f.holdout[s]!, (x) => Math.abs(x - center[i]!))) || 1);
  add('two-sided', `|${s}|`, (c, f) => {
    const i = fits.indexOf(f);
    return Float32Array.from(c[s]!, (x) => Math.abs(x - center[i]!) / mad[i]!);
  });
}

// Score-space typicality of the layer-wise profile.
const PROFILES: Record<string, readonly string[]> = { cos: ['z cos'], err: ['z logerr'], lr: ['z lr'], 'cos+err': ['z cos', 'z logerr'], 'cos+err+lr': ['z cos', 'z logerr', 'z lr'] };
for (const [label, prefixes] of Object.entries(PROFILES)) {
  const cols = prefixes.flatMap((p) => Array.from({ length: stages }, (_, k) => `${p} ${k + 1}`));
  const matrix = (c: Cols): Float32Array => {
    const n = c[cols[0]!]!.length;
    const x = new Float32Array(n * cols.length);
    cols.forEach((name, j) => c[name]!.forEach((v, i) => void (x[i * cols.length + j] = v)));
    return x;
  };
  const models = fits.map((f) => fitMahalanobis(matrix(f.holdout), cols.length));
  add('profile typicality', `profile(${label})`, (c, f) => mahalanobisScores(models[fits.indexOf(f)]!, matrix(c), cols.length));
}

// Weighted sums of two or three holdout-z-scored columns, and the max of two.
const PARTS = [...BUILT_IN.filter((s) => s !== 'mfsim'), ...['cos', 'err', 'lr'].flatMap((p) => Array.from({ length: stages }, (_, k) => `${p} ${k + 1}`))];
const sum = (terms: readonly (readonly [string, number])[]): Score => (c) => {
  const cols = terms.map(([p, w]) => [c[`z ${p}`]!, w] as const);
  return Float32Array.from(cols[0]![0], (_, i) => cols.reduce((acc, [col, w]) => acc + w * col[i]!, 0));
};
const label = (terms: readonly (readonly [string, number])[]): string => terms.map(([p, w]) => `${w === 1 ? '' : `${w} `}${p}`).join(' + ');
for (let a = 0; a < PARTS.length; a++) {
  for (let b = a + 1; b < PARTS.length; b++) {
    for (const w of [0.5, 1, 2]) add('sum', label([[PARTS[a]!, 1], [PARTS[b]!, w]]), sum([[PARTS[a]!, 1], [PARTS[b]!, w]]));
    add('max', `max(${PARTS[a]}, ${PARTS[b]})`, (c) => Float32Array.from(c[`z ${PARTS[a]}`]!, (x, i) => Math.max(x, c[`z ${PARTS[b]}`]![i]!)));
    for (let e = b + 1; e < PARTS.length; e++) {
      for (const w2 of [0.5, 1, 2]) {
        for (const w3 of [0.5, 1, 2]) {
          const terms = [[PARTS[a]!, 1], [PARTS[b]!, w2], [PARTS[e]!, w3]] as const;
          add('sum', label(terms), sum(terms));
        }
      }
    }
  }
}

const row = (name: string, s: Summary): string => tableRow(name, s, best);
console.log(`\n## Frontier search: ${dump.taps}, input ${dump.inputSize ?? 224}, ${dump.trainLimit} training images, seed ${dump.seed}, ${candidates.length} candidates (AUROC %; worst margin = lowest of score - best baseline over the four near-OOD summaries)\n`);
console.log(tableHead().join('\n'));
for (const b of BASELINES) console.log(row(b, baseline[b]!));
for (const s of BUILT_IN) console.log(row(s, evaluate((c) => c[s]!)));
for (const family of ['two-sided', 'profile typicality']) {
  const top = candidates.filter((c) => c.family === family).sort((x, y) => worstMargin(y.summary) - worstMargin(x.summary));
  console.log(`| **${family}** | | | | | | |`);
  for (const c of top) console.log(row(c.name, c.summary));
}
const ranked = [...candidates].sort((x, y) => worstMargin(y.summary) - worstMargin(x.summary));
console.log(`| **top ${opt.top} of all** | | | | | | |`);
for (const c of ranked.slice(0, Number(opt.top))) console.log(row(c.name, c.summary));
console.log(tradeOff(candidates, best, 'candidates').join('\n'));
