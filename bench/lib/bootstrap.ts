/**
 * How much of a margin between two scores is the test sets' own sampling error: a paired bootstrap
 * over the images of one protocol-suite unit (its saved score columns, protocol-suite.ts). Each
 * replicate resamples the ID test images and every OOD set's images with replacement, and evaluates
 * both scores on the same resample, so what the two share (the images) cancels in the difference.
 * The family's value is the mean AUROC over its OOD sets, as in the selection rule.
 */
import { auroc } from '../../src/shared/metrics.js';
import { Rng } from '../../src/shared/rng.js';
import { normaliserOf, withFusions, type Columns } from './candidates.js';

export interface MarginInterval {
  readonly family: string;
  /** OOD sets of the family in the unit. */
  readonly sets: number;
  /** a - b on the images as they are (AUROC, as a fraction). */
  readonly margin: number;
  /** The 2.5% and 97.5% quantiles of the replicates' margins. */
  readonly lo: number;
  readonly hi: number;
  /** Each replicate's margin, in replicate order (to combine units: see combineUnits). */
  readonly replicates: readonly number[];
}

function withInterval(family: string, sets: number, margin: number, replicates: readonly number[]): MarginInterval {
  const sorted = [...replicates].sort((x, y) => x - y);
  const n = sorted.length;
  return { family, sets, margin, lo: sorted[Math.floor(0.025 * n)]!, hi: sorted[Math.min(n - 1, Math.ceil(0.975 * n) - 1)]!, replicates };
}

/**
 * One family's margin over several units (e.g. the ten leave-one-out splits, each its own model and
 * ID set): the set-weighted mean of the units' margins, replicate by replicate (units resample
 * independently), so the interval is the family value's as the selection rule computes it.
 */
export function combineUnits(family: string, units: readonly MarginInterval[]): MarginInterval {
  const sets = units.reduce((a, u) => a + u.sets, 0);
  const reps = Math.min(...units.map((u) => u.replicates.length));
  const at = (f: (u: MarginInterval) => number): number => units.reduce((a, u) => a + f(u) * u.sets, 0) / sets;
  return withInterval(family, sets, at((u) => u.margin), Array.from({ length: reps }, (_, r) => at((u) => u.replicates[r]!)));
}

function resample(v: Float32Array, idx: Uint32Array): Float32Array {
  return Float32Array.from(idx, (i) => v[i]!);
}

function draw(n: number, rng: Rng): Uint32Array {
  return Uint32Array.from({ length: n }, () => rng.int(n));
}

/** The per-family margin of score `a` over score `b` and its 95% paired-bootstrap interval. */
export function familyMargins(unit: ReadonlyMap<string, Columns>, a: string, b: string, reps = 400, seed = 0): MarginInterval[] {
  const holdout = unit.get('holdout');
  const idBase = unit.get('id');
  if (holdout === undefined || idBase === undefined) throw new Error('bootstrap: a unit needs its holdout and id columns');
  const norm = normaliserOf(holdout);
  const id = withFusions(idBase, norm);
  const families = new Map<string, Columns[]>();
  for (const [name, cols] of unit) {
    const slash = name.indexOf('/');
    if (slash < 0) continue;
    const f = name.slice(0, slash);
    families.set(f, [...(families.get(f) ?? []), withFusions(cols, norm)]);
  }
  const col = (c: Columns, s: string): Float32Array => {
    const v = c[s];
    if (v === undefined) throw new Error(`bootstrap: no column ${s} (have ${Object.keys(c).join(', ')})`);
    return v;
  };
  const pick = (v: Float32Array, ix: Uint32Array | undefined): Float32Array => (ix === undefined ? v : resample(v, ix));
  const diff = (idx: Uint32Array | undefined, oods: Columns[], oodIdx: (Uint32Array | undefined)[]): number => {
    // The ID images once per replicate, shared by every OOD set of the family.
    const idA = pick(col(id, a), idx);
    const idB = pick(col(id, b), idx);
    let sum = 0;
    for (const [j, o] of oods.entries()) sum += auroc(idA, pick(col(o, a), oodIdx[j])) - auroc(idB, pick(col(o, b), oodIdx[j]));
    return sum / oods.length;
  };
  const rng = new Rng(seed);
  const out: MarginInterval[] = [];
  for (const [family, oods] of families) {
    const margin = diff(undefined, oods, oods.map(() => undefined));
    const replicates: number[] = [];
    for (let r = 0; r < reps; r++) {
      const idIdx = draw(col(id, a).length, rng);
      replicates.push(diff(idIdx, oods, oods.map((o) => draw(col(o, a).length, rng))));
    }
    out.push(withInterval(family, oods.length, margin, replicates));
  }
  return out;
}
