/**
 * bench:frontier: can any fusion of DLSR's score parts beat the feature baselines on every near-OOD
 * protocol at once? Fits the far/covariate model and the three 5-vs-5 models (as bench:accuracy does,
 * on --train-limit training images), splits every reconstruction score into parts — MFsim-all, MSE,
 * LR and their per-stage means (each stage's score z-scored on the calibration holdout first) and the
 * first stage's cosine — and scores every weighted sum of one direction part, one error part and one
 * LR part on a small weight grid. Prints the baselines, the built-in scores and the fusions with the
 * largest worst-case margin over the best baseline (near mean over splits; covariate mean over kinds
 * per strength), and whether far-OOD (Fashion-MNIST) stays >= 99.9.
 *
 * Options: --train-limit N (default 10000), --taps imagenet4|both7|early5, --seed N, --epochs N,
 * --whiten-strength S (partial whitening in [0, 1], default 1), --input-size N (encoder input, default 224),
 * --print results.json (measure nothing: print the tables of a results file),
 * --dump columns.json (also write every per-image score column — built-ins, baselines, per-stage
 * cos/err/lr — of the holdout, the ID test set and every OOD set of every fit, for offline analysis).
 * Writes bench/results/frontier-<taps>-limit<N>[-whiten<S>][-seed<S>].json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/shared/backend.js';
import { defaultConfig, type DlsrConfig } from '../src/shared/dlsr/config.js';
import { fitDlsr, splitHoldout } from '../src/shared/dlsr/fit.js';
import { disposeModel, scoreFeatures, type DlsrModel, type StageScores } from '../src/shared/dlsr/model.js';
import { auroc } from '../src/shared/metrics.js';
import type { FeatureSet } from '../src/shared/feature-set.js';
import { FINETUNED_STAGES, IMAGENET_STAGES } from '../src/shared/encoder/mobilenet-v2.js';
import { ALL_CORRUPTIONS, corruptedDir, datasetDir, listKeys, REPO } from './lib/data.js';
import { featuresFor } from './lib/features.js';
import { zScore } from './lib/levers.js';
import { BASELINES, bestBaseline, BUILT_IN, tableHead, tableRow, tradeOff, worstMargin, type Summary } from './lib/frontier-table.js';
import { classRows, evenly, limitTrain, SPLITS, subset } from './lib/sets.js';

const { values: opt } = parseArgs({ options: { 'train-limit': { type: 'string', default: '10000' }, taps: { type: 'string', default: 'imagenet4' }, seed: { type: 'string', default: '0' }, epochs: { type: 'string' }, print: { type: 'string' }, 'whiten-strength': { type: 'string' }, dump: { type: 'string' }, 'input-size': { type: 'string' } } });

interface Result {
  readonly name: string;
  readonly summary: Record<string, number>;
  readonly worstMargin: number;
}
interface Frontier {
  readonly taps: string;
  readonly trainLimit: number;
  readonly seed: number;
  /** Absent in files written before partial whitening: 1. */
  readonly whitenStrength?: number;
  /** Absent in files written before the option: 224. */
  readonly inputSize?: number;
  readonly baselines: Record<string, Record<string, number>>;
  readonly best: Record<string, number>;
  readonly builtIn: Record<string, Record<string, number>>;
  /** Sorted by worst margin, best first. */
  readonly fusions: Result[];
}

function printFrontier(f: Frontier): void {
  console.log(`\n## Fusion frontier: ${f.taps}, input ${f.inputSize ?? 224}, whitening strength ${f.whitenStrength ?? 1}, ${f.trainLimit} training images, seed ${f.seed} (AUROC %; worst margin = lowest of score - best baseline over the four near-OOD summaries)\n`);
  const row = (name: string, s: Summary): string => tableRow(name, s, f.best);
  console.log([...tableHead(), ...BASELINES.map((b) => row(b, f.baselines[b]!)), ...BUILT_IN.map((s) => row(s, f.builtIn[s]!)), `| **top fusions of ${f.fusions.length}** | | | | | | |`, ...f.fusions.slice(0, 5).map((r) => row(r.name, r.summary)), ...tradeOff(f.fusions, f.best, 'fusions')].join('\n'));
}

if (opt.print !== undefined) {
  printFrontier(JSON.parse(readFileSync(opt.print, 'utf8')) as Frontier);
  process.exit(0);
}
// early5 adds the first convolution (32 channels: colour and edge energy) in front of the ImageNet stages.
const TAPS: Record<string, readonly string[]> = { imagenet4: IMAGENET_STAGES, both7: [...IMAGENET_STAGES, ...FINETUNED_STAGES], early5: ['Conv1_relu', ...IMAGENET_STAGES] };
const taps = TAPS[opt.taps!];
if (taps === undefined) throw new Error(`--taps: expected one of ${Object.keys(TAPS).join(', ')}, got ${opt.taps}`);
const backend = await initBackend('auto');
const base = defaultConfig();
const inputSize = opt['input-size'] !== undefined ? Number(opt['input-size']) : base.encoder.inputSize;
const enc = { ...base.encoder, taps: [...taps], inputSize };
const seed = Number(opt.seed);
const whitenStrength = opt['whiten-strength'] !== undefined ? Number(opt['whiten-strength']) : undefined;
const cfg: DlsrConfig = { ...base, encoder: enc, whitenStrength, train: { ...base.train, seed, epochs: opt.epochs !== undefined ? Number(opt.epochs) : base.train.epochs } };
const limit = Number(opt['train-limit']);

const get = async (name: string, dir: string): Promise<FeatureSet> => (await featuresFor(name, dir, listKeys(dir), enc, 2, console.log)).set;
// Below the full set, only the evenly spaced training images limitTrain would keep are extracted.
const trainDir = datasetDir('cifar10/train');
const trainKeys = listKeys(trainDir);
const train = limit >= trainKeys.length ? await get('cifar10-train', trainDir) : limitTrain((await featuresFor(`cifar10-train-even${limit}`, trainDir, evenly(trainKeys, limit), enc, 2, console.log)).set, limit);
const test = await get('cifar10-test', datasetDir('cifar10/test'));
const fmnist = await get('fashion-mnist-test', datasetDir('fashion-mnist/test'));
const corrupted = new Map<string, FeatureSet>();
for (const { kind, strength } of ALL_CORRUPTIONS) corrupted.set(`${kind}-${strength}`, await get(`cifar10-c100-${kind}-${strength}`, await corruptedDir(kind, strength, 100)));

type Cols = Record<string, Float32Array>;
const DIRECTION = ['mfsim_all', 'stage cos', 'stage-1 cos'] as const;
const ERROR = ['mse', 'stage mse'] as const;
const LR = ['lr', 'stage lr'] as const;

/** Raw built-in scores plus the fusion parts, z-scored on the holdout. */
function parts(model: DlsrModel, set: FeatureSet, holdout: { raw: Cols; stage: StageScores } | undefined): { raw: Cols; stage: StageScores; z: Cols } {
  const table = scoreFeatures(model, set.features, set.keys, { stages: true });
  const raw: Cols = { ...table.scores };
  const stage = table.stages!;
  const h = holdout ?? { raw, stage };
  const mean = (cols: Float32Array[]): Float32Array => Float32Array.from(cols[0]!, (_, i) => cols.reduce((s, c) => s + c[i]!, 0) / cols.length);
  const zs = (key: 'cos' | 'err' | 'lr'): Float32Array[] => stage[key].map((c, k) => zScore(c, h.stage[key][k]!));
  const z: Cols = {
    mfsim_all: zScore(raw['mfsim_all']!, h.raw['mfsim_all']!),
    mse: zScore(raw['mse']!, h.raw['mse']!),
    lr: zScore(raw['lr']!, h.raw['lr']!),
    'stage cos': mean(zs('cos')),
    'stage mse': mean(zs('err')),
    'stage lr': mean(zs('lr')),
    'stage-1 cos': zs('cos')[0]!,
  };
  return { raw, stage, z };
}

interface Case {
  readonly protocol: string;
  readonly id: Cols;
  readonly ood: Cols;
}
const cases: Case[] = [];
/** Per fit, every set's raw columns (written with --dump). */
const dumped: { label: string; sets: Record<string, Record<string, number[]>> }[] = [];
const rawColumns = (p: ReturnType<typeof parts>): Record<string, number[]> => ({
  ...Object.fromEntries(Object.entries(p.raw).map(([k, v]) => [k, Array.from(v)])),
  ...Object.fromEntries((['cos', 'err', 'lr'] as const).flatMap((key) => p.stage[key].map((c, k) => [`${key} ${k + 1}`, Array.from(c)]))),
});

/** Fits on `set`, then scores `evals`: the ID set first, then each OOD set with its protocol. */
async function fitAndScore(set: FeatureSet, label: string, evals: [string, FeatureSet][]): Promise<void> {
  const started = performance.now();
  const { model } = await fitDlsr(set, cfg, { backend: backend.provider, versions: {}, onEpoch: async () => undefined });
  console.log(`fitted ${label}: ${model.info.trainCount} images, ${((performance.now() - started) / 60000).toFixed(1)} min`);
  const hold = parts(model, subset(set, splitHoldout(set.keys, cfg.holdoutFraction, seed).holdout), undefined);
  const cols = (p: ReturnType<typeof parts>): Cols => ({ ...p.raw, ...Object.fromEntries(Object.entries(p.z).map(([k, v]) => [`z ${k}`, v])) });
  const [, idSet] = evals[0]!;
  const idParts = parts(model, idSet, hold);
  const id = cols(idParts);
  const dump: Record<string, Record<string, number[]>> = { holdout: rawColumns(hold), id: rawColumns(idParts) };
  for (const [name, s] of evals.slice(1)) {
    const p = parts(model, s, hold);
    cases.push({ protocol: name.startsWith('covariate-') ? `covariate-${name.split('-').at(-1)}` : name, id, ood: cols(p) });
    if (opt.dump !== undefined) dump[name] = rawColumns(p);
  }
  if (opt.dump !== undefined) dumped.push({ label, sets: dump });
  disposeModel(model);
}

await fitAndScore(train, 'far/covariate', [['id', test], ['far', fmnist], ...[...corrupted].map(([name, s]): [string, FeatureSet] => [`covariate-${name}`, s])]);
for (const [name, classes] of SPLITS) await fitAndScore(classRows(train, classes, true), `near ${name}`, [['id', classRows(test, classes, true)], ['near', classRows(test, classes, false)]]);

/** AUROC % of a score (a function of the columns) per protocol summary: near, far, covariate-1..3. */
function summary(score: (c: Cols) => Float32Array): Record<string, number> {
  const by = new Map<string, number[]>();
  for (const c of cases) by.set(c.protocol, [...(by.get(c.protocol) ?? []), 100 * auroc(score(c.id), score(c.ood))]);
  return Object.fromEntries([...by].map(([p, v]) => [p, v.reduce((a, b) => a + b, 0) / v.length]));
}

const baseline = Object.fromEntries(BASELINES.map((b) => [b, summary((c) => c[b]!)]));
const best = bestBaseline(baseline);

const results: Result[] = [];
const seen = new Set<string>();
const weights = { dir: [0, 0.5, 1, 1.5, 2], err: [0, 0.5, 1], lr: [0, 0.5, 1, 2, 3] };
for (const dp of DIRECTION) for (const ep of ERROR) for (const lp of LR) {
  for (const a of weights.dir) for (const b of weights.err) for (const c of weights.lr) {
    if (a + b + c === 0) continue;
    const terms: [string, number][] = ([[dp, a], [ep, b], [lp, c]] as [string, number][]).filter(([, w]) => w > 0);
    // Scale does not change a ranking: keep one of every set of proportional weights.
    const key = terms.map(([p, w]) => `${p}:${(w / terms.reduce((s, [, v]) => s + v, 0)).toFixed(4)}`).join();
    if (seen.has(key)) continue;
    seen.add(key);
    const name = terms.map(([p, w]) => `${w === 1 ? '' : `${w} `}${p}`).join(' + ');
    const s = summary((col) => Float32Array.from(col[`z ${terms[0]![0]}`]!, (_, i) => terms.reduce((sum, [p, w]) => sum + w * col[`z ${p}`]![i]!, 0)));
    results.push({ name, summary: s, worstMargin: worstMargin(s, best) });
  }
}
results.sort((x, y) => y.worstMargin - x.worstMargin);
if (opt.dump !== undefined) writeFileSync(opt.dump, JSON.stringify({ taps: opt.taps, inputSize, trainLimit: limit, seed, fits: dumped }));

const out = path.join(REPO, 'bench/results', `frontier-${opt.taps}-limit${limit}${whitenStrength === undefined ? '' : `-whiten${whitenStrength}`}${inputSize === base.encoder.inputSize ? '' : `-input${inputSize}`}${seed === 0 ? '' : `-seed${seed}`}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), backend: backend.provider, taps: opt.taps, trainLimit: limit, seed, whitenStrength: whitenStrength ?? 1, inputSize, epochs: cfg.train.epochs, baselines: baseline, best, builtIn: Object.fromEntries(BUILT_IN.map((s) => [s, summary((c) => c[s]!)])), fusions: results }, null, 2) + '\n');
printFrontier(JSON.parse(readFileSync(out, 'utf8')) as Frontier);
console.log(`wrote ${path.relative(REPO, out)}`);
