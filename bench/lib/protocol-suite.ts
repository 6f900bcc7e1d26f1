/**
 * The protocol suite of bench:accuracy (issue 13): CIFAR-10 as ID, fitted with the product's fitDlsr,
 * every candidate score (candidates.ts) evaluated on every protocol family:
 *
 *   far         10 classes -> CIFAR-10 test vs Fashion-MNIST test
 *   corruption  the same model -> CIFAR-10 test vs 6 corruption kinds x 3 strengths (100 per class each)
 *   5v5         3 splits: 5 classes -> their test images vs the other 5 classes'
 *   loo         10 splits: 9 classes -> their test images vs the 10th class's (the held-out family)
 *
 * at two training-set sizes ("5000": 5,000 ID training images evenly spread over the ID classes;
 * "full": every training image of the ID classes) and several seeds (the LFDN's training seed and
 * holdout split). A unit (one fitted model) is recorded as soon as it is evaluated, in one JSON file
 * per size and seed range; a rerun skips the units already there, so a long run can be resumed.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultConfig, type DlsrConfig, type WhitenMode } from '../../src/shared/dlsr/config.js';
import { fitDlsr, splitHoldout } from '../../src/shared/dlsr/fit.js';
import { disposeModel } from '../../src/shared/dlsr/model.js';
import { selectRows, type FeatureSet } from '../../src/shared/feature-set.js';
import { auroc, fprAtTpr } from '../../src/shared/metrics.js';
import { decodeFrame, encodeFrame } from '../../src/shared/binary-frame.js';
import { baseColumns, normaliserOf, withFusions, type Columns } from './candidates.js';
import { classRows, limitTrain, SPLITS } from './sets.js';

export const FAMILIES = ['far', 'corruption', '5v5', 'loo'] as const;
export type Family = (typeof FAMILIES)[number];
export const SIZES = ['5000', 'full'] as const;
export type Size = (typeof SIZES)[number];
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

export interface SuiteRow {
  readonly family: Family;
  /** The OOD set within the family (fashion-mnist, blur-3, first5, loo-cat, ...). */
  readonly split: string;
  readonly size: Size;
  readonly seed: number;
  /** Whitening of the model (the candidate is `${mode}:${score}`). */
  readonly mode: WhitenMode;
  readonly score: string;
  readonly auroc: number;
  readonly fpr95: number;
}

export interface SuiteFile {
  readonly rows: SuiteRow[];
  /** Units done: `${size}/${seed}/${mode}/${unit}`. */
  readonly units: string[];
  readonly timings: { unit: string; trainImages: number; fitSeconds: number; scoreSeconds: number }[];
}

export interface SuiteSets {
  readonly train: FeatureSet;
  readonly test: FeatureSet;
  readonly fmnist: FeatureSet;
  readonly corrupt: ReadonlyMap<string, FeatureSet>;
}

export interface SuiteOptions {
  readonly sizes: readonly Size[];
  readonly seeds: readonly number[];
  readonly modes: readonly WhitenMode[];
  /** Which families to run ('corruption' rides on the 'far' model). */
  readonly families: readonly Family[];
  readonly out: string;
  /** Training epochs (default: the model default; fewer only for a quick look). */
  readonly epochs?: number;
  readonly backend: string;
  readonly log: (m: string) => void;
  /** Run only every n-th unit starting at i (one shard of a run split over processes; default 0 of 1). */
  readonly shard?: { readonly index: number; readonly count: number };
}

interface Unit {
  readonly name: string;
  readonly idClasses: readonly string[];
  /** OOD sets, by split name, with their family. */
  readonly oods: (sets: SuiteSets, idTest: FeatureSet) => [Family, string, FeatureSet][];
}

function unitsFor(families: readonly Family[]): Unit[] {
  const units: Unit[] = [];
  if (families.includes('far') || families.includes('corruption')) {
    units.push({
      name: 'all10',
      idClasses: CIFAR10_CLASSES,
      oods: (s) => [
        ...(families.includes('far') ? [['far', 'fashion-mnist', s.fmnist] as [Family, string, FeatureSet]] : []),
        ...(families.includes('corruption') ? [...s.corrupt].map(([k, v]) => ['corruption', k, v] as [Family, string, FeatureSet]) : []),
      ],
    });
  }
  if (families.includes('5v5')) for (const [name, classes] of SPLITS) units.push({ name: `5v5/${name}`, idClasses: classes, oods: (s) => [['5v5', name, classRows(s.test, classes, false)]] });
  if (families.includes('loo'))
    for (const out of CIFAR10_CLASSES) {
      const classes = CIFAR10_CLASSES.filter((c) => c !== out);
      units.push({ name: `loo/${out}`, idClasses: classes, oods: (s) => [['loo', `loo-${out}`, classRows(s.test, [out], true)]] });
    }
  return units;
}

const COLUMNS_MAGIC = 'OODCOL01';

/** Score columns of a unit's sets (holdout, id, each OOD set): one binary frame, float32 body. */
function saveColumns(file: string, sets: readonly [string, Columns][]): void {
  const names = Object.keys(sets[0]![1]).sort();
  const header = { columns: names, sets: sets.map(([name, cols]) => ({ name, n: cols[names[0]!]!.length })) };
  const total = header.sets.reduce((s, x) => s + x.n, 0) * names.length;
  const body = new Float32Array(total);
  let off = 0;
  for (const [, cols] of sets)
    for (const c of names) {
      body.set(cols[c]!, off);
      off += cols[c]!.length;
    }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, encodeFrame(COLUMNS_MAGIC, header, new Uint8Array(body.buffer)));
}

/** The columns saveColumns wrote: set name -> column name -> scores. */
export function loadColumns(file: string): Map<string, Columns> {
  const frame = decodeFrame(readFileSync(file), COLUMNS_MAGIC, file, 'a bench score-columns file');
  const h = frame.header as { columns: string[]; sets: { name: string; n: number }[] };
  // A copy, aligned (frame.body may be a Buffer, whose slice is a view into a larger buffer).
  const body = new Float32Array(frame.body.length / 4);
  new Uint8Array(body.buffer).set(frame.body);
  const out = new Map<string, Columns>();
  let off = 0;
  for (const s of h.sets) {
    const cols: Columns = {};
    for (const c of h.columns) {
      cols[c] = body.subarray(off, off + s.n);
      off += s.n;
    }
    out.set(s.name, cols);
  }
  return out;
}

function load(file: string): SuiteFile {
  if (!existsSync(file)) return { rows: [], units: [], timings: [] };
  return JSON.parse(readFileSync(file, 'utf8')) as SuiteFile;
}

/** Whether unit number `u` (in unitsFor's order) belongs to the shard. */
export function inShard(u: number, shard: SuiteOptions['shard']): boolean {
  return shard === undefined || u % shard.count === shard.index;
}

/** Parses `--shard i/n` (0 <= i < n). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || count < 1 || index >= count) throw new Error(`--shard: expected i/n with 0 <= i < n (e.g. 0/2), got ${text}`);
  return { index, count };
}

/** Runs every unit of the options not yet in `out` (of the shard, if one is given), writing after each. */
export async function runSuite(sets: SuiteSets, o: SuiteOptions): Promise<SuiteFile> {
  const file = load(o.out);
  const save = (): void => {
    mkdirSync(path.dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(file) + '\n');
  };
  const base = defaultConfig();
  for (const size of o.sizes)
    for (const seed of o.seeds)
      for (const mode of o.modes)
        for (const [u, unit] of unitsFor(o.families).entries()) {
          const id = `${size}/${seed}/${mode}/${unit.name}`;
          if (file.units.includes(id) || !inShard(u, o.shard)) continue;
          const idTrain = classRows(sets.train, unit.idClasses, true);
          const train = size === '5000' ? limitTrain(idTrain, 5_000) : idTrain;
          // The candidates' `fused` row is the earlier default (mfsim_all + mse in the LFDN's space), pinned
          // so rows of every run mean the same; today's default fused is the f:mse+knn row.
          const scoring = { ...base.scoring, fusedParts: ['mfsim_all', 'mse'] as const, cosineSpace: 'lfdn' as const };
          const cfg: DlsrConfig = { ...base, whiten: mode, scoring, train: { ...base.train, seed, ...(o.epochs !== undefined ? { epochs: o.epochs } : {}) } };
          const t0 = performance.now();
          const { model } = await fitDlsr(train, cfg, { backend: o.backend, versions: {} });
          const t1 = performance.now();
          try {
            const holdout = selectRows(train, splitHoldout(train.keys, cfg.holdoutFraction, seed).holdout);
            const holdoutCols = baseColumns(model, holdout);
            const norm = normaliserOf(holdoutCols);
            const idTest = classRows(sets.test, unit.idClasses, true);
            const idBase = baseColumns(model, idTest);
            const idCols = withFusions(idBase, norm);
            const kept: [string, Columns][] = [['holdout', holdoutCols], ['id', idBase]];
            for (const [family, split, set] of unit.oods(sets, idTest)) {
              const oodBase = baseColumns(model, set);
              kept.push([`${family}/${split}`, oodBase]);
              const oodCols: Columns = withFusions(oodBase, norm);
              for (const [score, a] of Object.entries(idCols)) {
                const b = oodCols[score];
                if (b !== undefined) file.rows.push({ family, split, size, seed, mode, score, auroc: auroc(a, b), fpr95: fprAtTpr(a, b) });
              }
            }
            // Every single-score column, so other fusions can be evaluated later without refitting.
            saveColumns(path.join(path.dirname(o.out), 'columns', `${id.replaceAll('/', '_')}.bin`), kept);
          } finally {
            disposeModel(model);
          }
          const t2 = performance.now();
          file.units.push(id);
          file.timings.push({ unit: id, trainImages: train.keys.length, fitSeconds: (t1 - t0) / 1000, scoreSeconds: (t2 - t1) / 1000 });
          save();
          o.log(`  ${id}: ${train.keys.length} images, fit ${((t1 - t0) / 1000).toFixed(0)} s, scored in ${((t2 - t1) / 1000).toFixed(0)} s`);
        }
  return file;
}
