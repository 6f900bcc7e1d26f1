/**
 * bench:accuracy: DLSR's scores next to the Mahalanobis and kNN baselines, on the shared datasets.
 *
 *   far        CIFAR-10 train (ID, 10% held out for calibration) -> CIFAR-10 test vs Fashion-MNIST test
 *   covariate  the same model -> CIFAR-10 test vs CIFAR-10 test images corrupted (blur, noise, JPEG,
 *              saturation, brightness, downscale) at 3 strengths, re-encoded like the originals
 *   near       CIFAR-10 5-vs-5 class splits: train on 5 classes, test their test images vs the other 5
 *   ablations  (--suite ablations) stage taps, input size, LFDN preset and epochs on a training subset
 *
 * Features are extracted once per encoder configuration (cached) with one process per core.
 * Prints tables and writes bench/results/accuracy-<suite>.json.
 *
 * Options: --suite default|ablations|all, --epochs N (default: the model default), --seeds N,
 * --near-splits N (1-3), --train-limit N (ID training images), --corrupt-per-class N (default 100),
 * --eval-limit N (ablations: test images per evaluation set), --only a,b (ablations: these labels only),
 * --taps imagenet4|finetuned3|both7 (default suite), --protocols far,covariate,near. The default suite also
 * reports the near-OOD levers of bench/lib/levers.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/shared/backend.js';
import { defaultConfig, type DlsrConfig, SCORE_TYPES } from '../src/shared/dlsr/config.js';
import { fitDlsr, splitHoldout } from '../src/shared/dlsr/fit.js';
import { disposeModel, scoreFeatures, type DlsrModel } from '../src/shared/dlsr/model.js';
import { detectionMetrics, type DetectionMetrics } from '../src/shared/metrics.js';
import { gatherRows } from '../src/shared/features.js';
import type { FeatureSet } from '../src/shared/feature-set.js';
import { FINETUNED_STAGES, IMAGENET_STAGES } from '../src/shared/encoder/mobilenet-v2.js';
import type { EncoderSpec } from '../src/shared/encoder/registry.js';
import { LFDN_PRESETS } from '../src/shared/diffusion/lfdn.js';
import { ALL_CORRUPTIONS, classOf, corruptedDir, datasetDir, listKeys, REPO } from './lib/data.js';
import { featuresFor } from './lib/features.js';
import { LEVER_NAMES, leverColumns, withFusions } from './lib/levers.js';

const { values: opt } = parseArgs({
  options: {
    suite: { type: 'string', default: 'default' },
    epochs: { type: 'string' },
    seeds: { type: 'string', default: '1' },
    'near-splits': { type: 'string', default: '3' },
    'train-limit': { type: 'string' },
    'corrupt-per-class': { type: 'string', default: '100' },
    'eval-limit': { type: 'string' },
    only: { type: 'string' },
    taps: { type: 'string', default: 'imagenet4' },
    protocols: { type: 'string', default: 'far,covariate,near' },
  },
});
const backend = await initBackend('auto');
const TAP_SETS: Record<string, readonly string[]> = { imagenet4: IMAGENET_STAGES, finetuned3: FINETUNED_STAGES, both7: [...IMAGENET_STAGES, ...FINETUNED_STAGES] };
if (TAP_SETS[opt.taps!] === undefined) throw new Error(`--taps: expected one of ${Object.keys(TAP_SETS).join(', ')}, got ${opt.taps}`);
const processes = cpus().length;
const log = (m: string): void => console.log(m);
const base = defaultConfig();
const seeds = Array.from({ length: Number(opt.seeds) }, (_, i) => i);
const perClass = Number(opt['corrupt-per-class']);

interface Row {
  readonly protocol: string;
  readonly ood: string;
  readonly config: string;
  readonly seed: number;
  readonly score: string;
  readonly metrics: DetectionMetrics;
}
const rows: Row[] = [];
const timings: Record<string, unknown>[] = [];

const SPLITS: [string, string[]][] = [
  ['first5', ['airplane', 'automobile', 'bird', 'cat', 'deer']],
  ['even', ['airplane', 'bird', 'deer', 'frog', 'ship']],
  ['animals', ['bird', 'cat', 'deer', 'dog', 'frog']],
];

function subset(set: FeatureSet, idx: readonly number[]): FeatureSet {
  const d = set.stageSizes.reduce((a, b) => a + b, 0);
  return { ...set, keys: idx.map((i) => set.keys[i]!), features: gatherRows(set.features, d, idx) };
}
const indicesWhere = (set: FeatureSet, pred: (k: string) => boolean): number[] => set.keys.flatMap((k, i) => (pred(k) ? [i] : []));

async function loadSets(spec: EncoderSpec, withCorruptions: boolean, trainSubset?: number, evalSubset?: number): Promise<{ train: FeatureSet; test: FeatureSet; fmnist: FeatureSet; corrupt: Map<string, FeatureSet>; extractImgPerS: number }> {
  let images = 0;
  let seconds = 0;
  const get = async (name: string, dir: string, keys = listKeys(dir)): Promise<FeatureSet> => {
    const r = await featuresFor(name, dir, keys, spec, processes, log);
    if (!r.stats.cached) {
      images += r.stats.images;
      seconds += r.stats.seconds;
    }
    return r.set;
  };
  // A training subset (the ablations) is extracted on its own: other input sizes need no full pass.
  const trainDir = datasetDir('cifar10/train');
  const train = trainSubset === undefined ? await get('cifar10-train', trainDir) : await get(`cifar10-train-n${trainSubset}`, trainDir, evenly(listKeys(trainDir), trainSubset));
  const evalSet = (name: string, dir: string): Promise<FeatureSet> => (evalSubset === undefined ? get(name, dir) : get(`${name}-n${evalSubset}`, dir, evenly(listKeys(dir), evalSubset)));
  const test = await evalSet('cifar10-test', datasetDir('cifar10/test'));
  const fmnist = await evalSet('fashion-mnist-test', datasetDir('fashion-mnist/test'));
  const corrupt = new Map<string, FeatureSet>();
  if (withCorruptions) {
    for (const { kind, strength } of ALL_CORRUPTIONS) corrupt.set(`${kind}-${strength}`, await get(`cifar10-c${perClass}-${kind}-${strength}`, await corruptedDir(kind, strength, perClass)));
  }
  return { train, test, fmnist, corrupt, extractImgPerS: seconds > 0 ? images / seconds : Number.NaN };
}

interface Fitted {
  readonly model: DlsrModel;
  /** The calibration holdout the fit kept out of training (for the fusions' normalisation). */
  readonly holdout: FeatureSet;
}

async function fitOn(set: FeatureSet, cfg: DlsrConfig, label: string): Promise<Fitted> {
  const started = performance.now();
  const { model, log: epochs } = await fitDlsr(set, cfg, {
    backend: backend.provider,
    versions: {},
    onEpoch: async (r) => {
      if (r.epoch % 5 === 0) log(`  ${label}: epoch ${r.epoch}/${cfg.train.epochs} loss ${r.loss.toFixed(5)}`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  timings.push({ label, images: set.keys.length, epochs: cfg.train.epochs, seconds, finalLoss: epochs[epochs.length - 1]?.loss });
  log(`  fitted ${label}: ${model.info.trainCount} training images, ${cfg.train.epochs} epochs, ${(seconds / 60).toFixed(1)} min, final loss ${epochs[epochs.length - 1]?.loss.toFixed(5)}`);
  return { model, holdout: subset(set, splitHoldout(set.keys, cfg.holdoutFraction, cfg.train.seed).holdout) };
}

function evaluate(fitted: Fitted, protocol: string, config: string, seed: number, id: FeatureSet, oods: Map<string, FeatureSet>, levers = suite !== 'ablations'): void {
  const { model } = fitted;
  const t = performance.now();
  const sId = scoreFeatures(model, id.features, id.keys);
  timings.push({ label: `score ${protocol}/${config}`, images: id.keys.length, seconds: (performance.now() - t) / 1000 });
  for (const [name, set] of oods) {
    const sO = scoreFeatures(model, set.features, set.keys);
    for (const score of SCORE_TYPES) rows.push({ protocol, ood: name, config, seed, score, metrics: detectionMetrics(sId.scores[score], sO.scores[score]) });
  }
  if (!levers) return;
  const hold = leverColumns(model, fitted.holdout);
  const idCols = withFusions(leverColumns(model, id), hold);
  for (const [name, set] of oods) {
    const oCols = withFusions(leverColumns(model, set), hold);
    for (const score of LEVER_NAMES) rows.push({ protocol, ood: name, config, seed, score, metrics: detectionMetrics(idCols[score]!, oCols[score]!) });
  }
}

function withTaps(spec: EncoderSpec, taps: readonly string[], inputSize = spec.inputSize): EncoderSpec {
  return { ...spec, taps: [...taps], inputSize };
}

function configFor(overrides: Partial<{ epochs: number; seed: number; width: number; depth: number; preset: 'cpu' | 'paper' | 'custom' }>, encoder: EncoderSpec = base.encoder): DlsrConfig {
  return {
    ...base,
    encoder,
    lfdn: { preset: overrides.preset ?? base.lfdn.preset, width: overrides.width ?? base.lfdn.width, depth: overrides.depth ?? base.lfdn.depth },
    train: { ...base.train, epochs: overrides.epochs ?? (opt.epochs !== undefined ? Number(opt.epochs) : base.train.epochs), seed: overrides.seed ?? 0 },
  };
}

function evenly<T>(items: readonly T[], limit: number): T[] {
  if (items.length <= limit) return [...items];
  const step = items.length / limit;
  return Array.from({ length: limit }, (_, i) => items[Math.floor(i * step)]!);
}

function limitTrain(set: FeatureSet, limit: number | undefined): FeatureSet {
  if (limit === undefined || set.keys.length <= limit) return set;
  return subset(set, evenly(set.keys.map((_, i) => i), limit));
}

const suite = opt.suite!;
const trainLimit = opt['train-limit'] !== undefined ? Number(opt['train-limit']) : undefined;
const summary: Record<string, unknown> = { date: new Date().toISOString(), backend: backend.provider, suite, processes };

if (suite === 'default' || suite === 'all') {
  log('== default configuration: far, covariate and near OOD ==');
  const enc = withTaps(base.encoder, TAP_SETS[opt.taps!]!);
  const label = opt.taps === 'imagenet4' ? 'default' : `taps=${opt.taps}`;
  const sets = await loadSets(enc, true);
  summary['extractImgPerS'] = sets.extractImgPerS;
  log(`features ready: ${sets.train.keys.length} train, ${sets.test.keys.length} test, ${sets.fmnist.keys.length} Fashion-MNIST, ${sets.corrupt.size} corrupted sets`);
  const train = limitTrain(sets.train, trainLimit);
  const protocols = new Set(opt.protocols!.split(','));
  for (const seed of seeds) {
    if (protocols.has('far') || protocols.has('covariate')) {
      const fitted = await fitOn(train, configFor({ seed }, enc), `${label} seed ${seed}`);
      if (protocols.has('far')) evaluate(fitted, 'far', label, seed, sets.test, new Map([['fashion-mnist', sets.fmnist]]));
      if (protocols.has('covariate')) evaluate(fitted, 'covariate', label, seed, sets.test, sets.corrupt);
      disposeModel(fitted.model);
    }
    if (!protocols.has('near')) continue;
    for (const [name, classes] of SPLITS.slice(0, Number(opt['near-splits']))) {
      const inId = (k: string): boolean => classes.includes(classOf(k));
      const m = await fitOn(subset(train, indicesWhere(train, inId)), configFor({ seed }, enc), `near ${name} seed ${seed}`);
      evaluate(m, 'near-5v5', `${label}/${name}`, seed, subset(sets.test, indicesWhere(sets.test, inId)), new Map([[`5v5-${name}`, subset(sets.test, indicesWhere(sets.test, (k) => !inId(k)))]]));
      disposeModel(m.model);
    }
  }
}

if (suite === 'ablations' || suite === 'all') {
  const limit = trainLimit ?? 10_000;
  const epochs = opt.epochs !== undefined ? Number(opt.epochs) : 30;
  log(`== ablations on ${limit} CIFAR-10 training images, ${epochs} epochs (far: Fashion-MNIST; near: the "even" split; ${opt['eval-limit'] ?? 'all'} test images per set) ==`);
  const only = opt.only?.split(',');
  const run = async (label: string, spec: EncoderSpec, cfg: DlsrConfig): Promise<void> => {
    if (only !== undefined && !only.includes(label)) return;
    // Far and near only: the corruptions would need their own extraction at every input size.
    const sets = await loadSets(spec, false, limit, opt['eval-limit'] !== undefined ? Number(opt['eval-limit']) : undefined);
    const train = sets.train;
    const fitted = await fitOn(train, cfg, label);
    evaluate(fitted, 'far', label, 0, sets.test, new Map([['fashion-mnist', sets.fmnist]]), false);
    disposeModel(fitted.model);
    const [, classes] = SPLITS[1]!;
    const inId = (k: string): boolean => classes.includes(classOf(k));
    const m = await fitOn(subset(train, indicesWhere(train, inId)), cfg, `${label} near`);
    evaluate(m, 'near-5v5', label, 0, subset(sets.test, indicesWhere(sets.test, inId)), new Map([['5v5-even', subset(sets.test, indicesWhere(sets.test, (k) => !inId(k)))]]), false);
    disposeModel(m.model);
  };
  const enc = base.encoder;
  for (const [name, taps] of [['taps=imagenet4', IMAGENET_STAGES], ['taps=finetuned3', FINETUNED_STAGES], ['taps=both7', [...IMAGENET_STAGES, ...FINETUNED_STAGES]]] as const) {
    await run(name, withTaps(enc, taps), configFor({ epochs }, withTaps(enc, taps)));
  }
  for (const size of [128, 96]) await run(`input=${size}`, withTaps(enc, enc.taps, size), configFor({ epochs }, withTaps(enc, enc.taps, size)));
  for (const [w, dpt] of [[256, 4], [1024, 4]] as const) await run(`lfdn=${w}x${dpt}`, enc, configFor({ epochs, width: w, depth: dpt, preset: 'custom' }));
  await run('lfdn=paper', enc, configFor({ epochs: Math.max(3, Math.round(epochs / 6)), ...LFDN_PRESETS.paper, preset: 'paper' }));
  for (const e of [10, 100]) await run(`epochs=${e}`, enc, configFor({ epochs: e }));
}

// ---- report ------------------------------------------------------------------------------------
const pct = (x: number): string => (x * 100).toFixed(2);
function cell(v: readonly number[]): string {
  if (v.length === 0) return '';
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, v.length - 1));
  return v.length > 1 ? `${pct(mean)} ± ${pct(sd)}` : pct(mean);
}
// One group per table row: the rows of each protocol/OOD set/config, then summaries (the mean over
// the 5-vs-5 splits, and over the corruption kinds at each strength) whose spread is over splits or
// kinds and seeds.
const groups = new Map<string, Row[]>();
const add = (k: string, r: Row): void => void groups.set(k, [...(groups.get(k) ?? []), r]);
for (const r of rows) add(`${r.protocol}|${r.ood}|${r.config}`, r);
for (const r of rows) {
  if (r.protocol === 'near-5v5') add(`near-5v5|all splits|${r.config.split('/')[0]}`, r);
  const strength = /-(\d+)$/.exec(r.ood)?.[1];
  if (r.protocol === 'covariate' && strength !== undefined) add(`covariate|all kinds, strength ${strength}|${r.config}`, r);
}
function printTable(title: string, scores: readonly string[]): void {
  console.log(`\n${title} (AUROC %, mean ± sd where there are several splits, kinds or seeds)`);
  console.log(`| protocol | OOD set | config | ${scores.join(' | ')} |`);
  console.log(`|---|---|---|${scores.map(() => '---').join('|')}|`);
  for (const [k, rs] of groups) {
    const [protocol, ood, config] = k.split('|');
    const cells = scores.map((sc) => cell(rs.filter((r) => r.score === sc).map((r) => r.metrics.auroc)));
    if (cells.every((c) => c === '')) continue;
    console.log(`| ${protocol} | ${ood} | ${config} | ${cells.join(' | ')} |`);
  }
}
printTable('Built-in scores', SCORE_TYPES);
if (rows.some((r) => LEVER_NAMES.includes(r.score))) printTable('Near-OOD levers on the same models (x4 = mean of 4 noise draws; z(a+b) = mean of holdout-normalised scores)', ['mfsim', 'mahalanobis', 'knn', ...LEVER_NAMES]);
summary['rows'] = rows;
summary['timings'] = timings;
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
const out = path.join(REPO, 'bench/results', `accuracy-${suite}${opt['eval-limit'] !== undefined ? `-eval${opt['eval-limit']}` : ''}${opt.protocols === 'far,covariate,near' ? '' : `-${opt.protocols!.replaceAll(',', '-')}`}${opt.taps === 'imagenet4' ? '' : `-${opt.taps}`}${trainLimit !== undefined ? `-limit${trainLimit}` : ''}.json`);
writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
console.log(`wrote ${path.relative(REPO, out)}`);
