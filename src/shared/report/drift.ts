/**
 * Property drift: how a set's imaging conditions differ from the ID set's, per image property, from
 * fixed-bin histograms that merge associatively across shards (the bins are the model's, fitted on
 * the ID holdout: conditions.ts), so a report never holds every image's properties.
 *
 *   per property   the set's and the ID holdout's typical value (mean of the transformed values:
 *                  a geometric mean for sizes, sharpness and noise) in plain words ("42% darker
 *                  than the ID set", "JPEG quality 20 vs 75", "half the ID set's sharpness");
 *                  Earth Mover's distance in robust ID standard deviations (the effect size, worst
 *                  first) and a two-sample Kolmogorov-Smirnov test, both from the histograms
 *   bin error      KS: the histogram D is a lower bound of the exact D, short by at most the largest
 *                  single-bin mass (reported as ksDError); EMD: each set is placed at its per-bin
 *                  means (the scan) or bin centres (the ID holdout), within one bin width of the
 *                  exact value for values inside the bins' range (reported as emdError)
 *   verdict        "shifted" when the conditions score flags significantly more than the expected
 *                  (1 - tpr) of images (one-sided two-proportion test against the calibration
 *                  holdout, whose threshold is itself estimated; alpha 0.001, at least 1.5x
 *                  expected) or a property
 *                  moved by at least EFFECT robust SDs with KS p < alpha; "possibly shifted" on
 *                  weaker evidence (binomial p < 0.01, or a significant but small property move)
 */
import { binCounts, PROPERTY_BINS, transformValue, untransformValue, type ConditionsModel, type PropertyStats } from '../conditions.js';
import { PROPERTY_COUNT, PROPERTY_NAMES, type PropertyName, type PropertyTable } from '../image/properties.js';
import { binomialUpperP, ksPValue, normalUpper } from '../stats.js';
import { formatP, type VerdictLevel } from './verdict.js';

/** Smallest EMD, in robust ID standard deviations, for a property to count as shifted. */
export const EFFECT = 0.5;
const SLOTS = PROPERTY_BINS + 3;

/** A partition's conditions aggregate: mergeable counts and sums. */
export interface PartitionConditions {
  /** Images with properties and a conditions score. */
  n: number;
  /** Of them, conditions score above the calibrated threshold. */
  flagged: number;
  /** Per property (PROPERTY_NAMES order): counts [under, inner bins, over, missing]. */
  readonly counts: number[][];
  /** Per property: sums of the transformed values per slot (missing: 0). */
  readonly sums: number[][];
  readonly formats: Record<string, number>;
}

export function emptyPartitionConditions(): PartitionConditions {
  return { n: 0, flagged: 0, counts: PROPERTY_NAMES.map(() => new Array<number>(SLOTS).fill(0)), sums: PROPERTY_NAMES.map(() => new Array<number>(SLOTS).fill(0)), formats: {} };
}

/** Adds rows (indices into the table) to a partition's conditions aggregate. */
export function addConditionsRows(pc: PartitionConditions, model: ConditionsModel, props: PropertyTable, score: ArrayLike<number>, threshold: number, rows: readonly number[]): void {
  for (const i of rows) {
    pc.n += 1;
    if (score[i]! > threshold) pc.flagged += 1;
    pc.formats[props.formats[i]!] = (pc.formats[props.formats[i]!] ?? 0) + 1;
  }
  PROPERTY_NAMES.forEach((name, j) => {
    const stats = model.properties[j]!;
    const t = rows.map((i) => transformValue(name, props.values[i * PROPERTY_COUNT + j]!));
    const c = binCounts(stats.edges, t);
    const slot = slotsOf(stats.edges, t);
    for (let s = 0; s < SLOTS; s++) pc.counts[j]![s]! += c[s]!;
    t.forEach((v, k) => {
      if (!Number.isNaN(v)) pc.sums[j]![slot[k]!]! += v;
    });
  });
}

function slotsOf(edges: readonly number[], t: readonly number[]): number[] {
  const lo = edges[0]!;
  const hi = edges[PROPERTY_BINS]!;
  const w = (hi - lo) / PROPERTY_BINS;
  return t.map((v) => (Number.isNaN(v) ? PROPERTY_BINS + 2 : v < lo ? 0 : v >= hi ? PROPERTY_BINS + 1 : 1 + Math.min(PROPERTY_BINS - 1, Math.floor((v - lo) / w))));
}

/** Merges `b` into `a`. */
export function mergePartitionConditions(a: PartitionConditions, b: PartitionConditions): PartitionConditions {
  a.n += b.n;
  a.flagged += b.flagged;
  for (let j = 0; j < PROPERTY_COUNT; j++) {
    for (let s = 0; s < SLOTS; s++) {
      a.counts[j]![s]! += b.counts[j]![s]!;
      a.sums[j]![s]! += b.sums[j]![s]!;
    }
  }
  for (const [f, n] of Object.entries(b.formats)) a.formats[f] = (a.formats[f] ?? 0) + n;
  return a;
}

export function clonePartitionConditions(p: PartitionConditions): PartitionConditions {
  return mergePartitionConditions(emptyPartitionConditions(), p);
}

// ---- statistics from histograms -------------------------------------------------------------------

/** KS distance between two histograms over the same slots [under, inner..., over] (missing excluded). */
export function histogramKs(a: readonly number[], b: readonly number[]): { d: number; dError: number; na: number; nb: number } {
  const k = PROPERTY_BINS + 2;
  const na = a.slice(0, k).reduce((s, v) => s + v, 0);
  const nb = b.slice(0, k).reduce((s, v) => s + v, 0);
  if (na === 0 || nb === 0) return { d: 0, dError: 0, na, nb };
  let fa = 0;
  let fb = 0;
  let d = 0;
  let dError = 0;
  for (let s = 0; s < k; s++) {
    fa += a[s]! / na;
    fb += b[s]! / nb;
    d = Math.max(d, Math.abs(fa - fb));
    dError = Math.max(dError, a[s]! / na, b[s]! / nb);
  }
  return { d, dError, na, nb };
}

/**
 * Earth Mover's distance (transformed units) between a scan histogram, placed at its per-slot means,
 * and the ID histogram, placed at bin centres (underflow and overflow at the outer edges).
 */
export function histogramEmd(edges: readonly number[], scanCounts: readonly number[], scanSums: readonly number[], idCounts: readonly number[]): number {
  const k = PROPERTY_BINS + 2;
  const w = (edges[PROPERTY_BINS]! - edges[0]!) / PROPERTY_BINS;
  const idPos = (s: number): number => (s === 0 ? edges[0]! : s === k - 1 ? edges[PROPERTY_BINS]! : edges[0]! + (s - 0.5) * w);
  const ns = scanCounts.slice(0, k).reduce((a, b) => a + b, 0);
  const ni = idCounts.slice(0, k).reduce((a, b) => a + b, 0);
  if (ns === 0 || ni === 0) return 0;
  const atoms: { x: number; m: number }[] = [];
  for (let s = 0; s < k; s++) {
    if (scanCounts[s]! > 0) atoms.push({ x: scanSums[s]! / scanCounts[s]!, m: scanCounts[s]! / ns });
    if (idCounts[s]! > 0) atoms.push({ x: idPos(s), m: -idCounts[s]! / ni });
  }
  atoms.sort((p, q) => p.x - q.x);
  let cdf = 0;
  let emd = 0;
  for (let i = 0; i < atoms.length - 1; i++) {
    cdf += atoms[i]!.m;
    emd += Math.abs(cdf) * (atoms[i + 1]!.x - atoms[i]!.x);
  }
  return emd;
}

// ---- plain words ----------------------------------------------------------------------------------

function factorWords(r: number): string {
  const near = (x: number): boolean => Math.abs(r - x) <= 0.08 * x;
  if (near(0.5)) return 'half';
  if (near(1 / 3)) return 'a third of';
  if (near(0.25)) return 'a quarter of';
  if (near(2)) return 'twice';
  return `${r < 0.1 ? r.toFixed(2) : r.toFixed(1)}x`;
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;
const num = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** The property's change in plain words, `scan` against `id`, both in the property's own units. */
export function describeShift(name: PropertyName, id: number, scan: number): string {
  const r = scan / id;
  const moreLess = (more: string, less: string): string => (r >= 1 ? `${pct(r - 1)} ${more} than the ID set` : `${pct(1 - r)} ${less} than the ID set`);
  switch (name) {
    case 'brightness':
      return `${moreLess('brighter', 'darker')} (mean brightness ${num(scan, 2)} vs ${num(id, 2)})`;
    case 'contrast':
      return `${moreLess('more contrast', 'less contrast')} (RMS contrast ${num(scan, 3)} vs ${num(id, 3)})`;
    case 'saturation':
      return `${moreLess('more saturated', 'less saturated')} (${num(scan, 2)} vs ${num(id, 2)})`;
    case 'colourfulness':
      return `${moreLess('more colourful', 'less colourful')} (${num(scan, 1)} vs ${num(id, 1)})`;
    case 'sharpness':
      return `${factorWords(r)} the ID set's sharpness${r < 1 ? ' (blurrier)' : ''}`;
    case 'noise':
      return `${factorWords(r)} the ID set's noise level (${num(scan, 1)} vs ${num(id, 1)})`;
    case 'entropy':
      return `entropy ${num(scan, 1)} vs ${num(id, 1)} bits`;
    case 'jpegQuality':
      return Number.isFinite(scan) && Number.isFinite(id) ? `JPEG quality ${Math.round(scan)} vs ${Math.round(id)}` : Number.isFinite(id) ? `no JPEG quality (not JPEG) vs ${Math.round(id)} in the ID set` : `JPEG quality ${Math.round(scan)}, the ID set is not JPEG`;
    case 'width':
    case 'height':
      return `${name} ${Math.round(scan)} vs ${Math.round(id)} px`;
    case 'aspect':
      return `aspect ratio ${num(scan, 2)} vs ${num(id, 2)}`;
    case 'bytesPerPixel':
      return `${num(scan, 2)} vs ${num(id, 2)} bytes per pixel`;
    case 'grayscale':
      return `${pct(scan)} greyscale vs ${pct(id)} in the ID set`;
  }
}

// ---- verdicts -------------------------------------------------------------------------------------

export interface PropertyHistogram {
  /** Inner bin edges in the property's own units. */
  readonly edges: number[];
  /** Fractions [under, inner bins..., over] of the set and of the ID holdout (missing excluded). */
  readonly scan: number[];
  readonly id: number[];
}

export interface PropertyDrift {
  readonly name: PropertyName;
  /** Typical value (mean of transformed values, back in the property's units) of the ID holdout and of the set. */
  readonly id: number | null;
  readonly scan: number | null;
  /** Earth Mover's distance in robust ID standard deviations, and its bin error. */
  readonly emd: number;
  readonly emdError: number;
  readonly ksD: number;
  readonly ksDError: number;
  readonly ksP: number;
  /** Fraction of the set without the property (e.g. JPEG quality of PNGs), and of the ID holdout. */
  readonly missing: number;
  readonly idMissing: number;
  readonly shifted: boolean;
  readonly text: string;
  readonly histogram?: PropertyHistogram;
}

export interface ConditionsVerdict {
  readonly level: VerdictLevel;
  readonly scored: number;
  /** Images whose conditions score is above the calibrated threshold. */
  readonly flagged: number;
  readonly flaggedFraction: number;
  readonly expectedFraction: number;
  /** One-sided p-value of the flagged fraction against the holdout's (two-proportion z-test). */
  readonly flaggedP: number;
  /** Properties that count as shifted, worst first. */
  readonly shiftedProperties: PropertyName[];
  /** Every property, worst (largest EMD) first. */
  readonly properties: PropertyDrift[];
  /** Image formats of the set and of the ID holdout. */
  readonly formats: { readonly scan: Record<string, number>; readonly id: Record<string, number> };
  readonly text: string;
}

export interface DriftOptions {
  readonly alpha?: number;
  readonly minImages?: number;
  /** Include each property's histograms (for plots). */
  readonly histograms?: boolean;
}

function meanOf(stats: PropertyStats, counts: readonly number[], sums: readonly number[]): number {
  const n = counts.slice(0, PROPERTY_BINS + 2).reduce((a, b) => a + b, 0);
  if (n === 0) return Number.NaN;
  return untransformValue(stats.name, sums.slice(0, PROPERTY_BINS + 2).reduce((a, b) => a + b, 0) / n);
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** One-sided p-value that a set's flagged fraction k/n exceeds the holdout's `p0` (of m images), pooled z-test. */
export function twoProportionP(k: number, n: number, p0: number, m: number): number {
  if (n === 0) return 1;
  const pooled = (k + p0 * m) / (n + m);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m));
  if (!(se > 0)) return k / n > p0 ? 0 : 1;
  return normalUpper((k / n - p0) / se);
}

/**
 * A value computed from per-bin sums, to 10 significant digits: the sums are added in the order the
 * shards' aggregates merge, so their last bits depend on how a run was cut into shards and groups;
 * the report (and the order of its properties) must not.
 */
function stable(x: number): number {
  return Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(10)) : x;
}

/** The conditions verdict of a set from its conditions aggregate and the model's ID statistics. */
export function conditionsVerdict(pc: PartitionConditions, model: ConditionsModel, expectedFraction: number, options: DriftOptions = {}): ConditionsVerdict {
  const alpha = options.alpha ?? 0.001;
  const n = pc.n;
  const frac = n > 0 ? pc.flagged / n : 0;
  // The threshold keeps `1 - expectedFraction` of a finite holdout: its true exceedance rate on ID
  // data is itself uncertain (about 1% at 500 holdout images), so the flagged fraction is compared
  // with the holdout's as two samples (one-sided pooled z-test), not with an exact rate.
  const flaggedP = twoProportionP(pc.flagged, n, expectedFraction, model.holdoutCount);
  const properties = model.properties.map((stats, j): PropertyDrift => {
    const counts = pc.counts[j]!;
    const idCounts = stats.idCounts;
    const k = histogramKs(counts, idCounts);
    const width = (stats.edges[PROPERTY_BINS]! - stats.edges[0]!) / PROPERTY_BINS;
    const emd = stable(histogramEmd(stats.edges, counts, pc.sums[j]!, idCounts) / stats.scale);
    const ksP = k.na > 0 && k.nb > 0 ? ksPValue(k.d, k.na, k.nb) : 1;
    const missing = n > 0 ? counts[PROPERTY_BINS + 2]! / n : 0;
    const idTotal = idCounts.reduce((a, b) => a + b, 0);
    const idMissing = idTotal > 0 ? idCounts[PROPERTY_BINS + 2]! / idTotal : 0;
    const idValue = Number.isNaN(stats.idMean) ? Number.NaN : untransformValue(stats.name, stats.idMean);
    const scanValue = stable(meanOf(stats, counts, pc.sums[j]!));
    // A property present in one set and missing in the other (PNGs among JPEGs) is a shift by itself.
    const missingShift = Math.abs(missing - idMissing) >= 0.1 && binomialUpperP(Math.round(Math.abs(missing - idMissing) * n), n, 0.01) < alpha;
    const shifted = n >= (options.minImages ?? 20) && ((ksP < alpha && emd >= EFFECT) || missingShift);
    const text = missingShift && !(ksP < alpha && emd >= EFFECT) ? `${pct(missing)} without ${stats.name} vs ${pct(idMissing)} in the ID set` : describeShift(stats.name, idValue, scanValue);
    const frac = (c: readonly number[]): number[] => {
      const tot = c.slice(0, PROPERTY_BINS + 2).reduce((a, b) => a + b, 0);
      return c.slice(0, PROPERTY_BINS + 2).map((v) => (tot > 0 ? v / tot : 0));
    };
    return {
      name: stats.name,
      id: finiteOrNull(idValue),
      scan: finiteOrNull(scanValue),
      emd,
      emdError: width / stats.scale,
      ksD: k.d,
      ksDError: k.dError,
      ksP,
      missing,
      idMissing,
      shifted,
      text,
      ...(options.histograms === true ? { histogram: { edges: stats.edges.map((e) => untransformValue(stats.name, e)), scan: frac(counts), id: frac(idCounts) } } : {}),
    };
  });
  properties.sort((a, b) => Number(b.shifted) - Number(a.shifted) || b.emd - a.emd || a.name.localeCompare(b.name));
  const shiftedProperties = properties.filter((p) => p.shifted).map((p) => p.name);
  const weak = properties.some((p) => p.ksP < alpha);
  let level: VerdictLevel;
  if (n < (options.minImages ?? 20)) level = 'too few images';
  else if ((flaggedP < alpha && frac >= 1.5 * expectedFraction) || shiftedProperties.length > 0) level = 'shifted';
  else if (flaggedP < 0.01 || weak) level = 'possibly shifted';
  else level = 'no shift detected';
  const named = shiftedProperties.length > 0 ? ` (${shiftedProperties.join(', ')})` : '';
  const words = properties.filter((p) => p.shifted).slice(0, 3).map((p) => p.text);
  const text =
    level === 'too few images'
      ? `too few images with properties to tell (${n})`
      : `${level}${named}${words.length > 0 ? `: ${words.join('; ')}` : ''}; ${pct(frac)} off in conditions vs ${pct(expectedFraction)} expected (${pc.flagged} of ${n}, ${formatP(flaggedP)})`;
  return { level, scored: n, flagged: pc.flagged, flaggedFraction: frac, expectedFraction, flaggedP, shiftedProperties, properties, formats: { scan: { ...pc.formats }, id: { ...model.idFormats } }, text };
}

/** The two verdicts in one line: "semantic: no shift detected; conditions: shifted (brightness, sharpness)". */
export function twoVerdicts(semantic: VerdictLevel, conditions: ConditionsVerdict | null): string {
  const c = conditions === null ? 'not measured (the model has no image-property statistics)' : `${conditions.level}${conditions.shiftedProperties.length > 0 ? ` (${conditions.shiftedProperties.join(', ')})` : ''}`;
  return `semantic: ${semantic}; conditions: ${c}`;
}
