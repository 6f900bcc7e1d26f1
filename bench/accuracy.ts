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
 * --first-seed N (seeds N .. N+seeds-1; to split a run over processes), --near-splits N (1-3), --train-limit N (ID training images), --corrupt-per-class N (default 100),
 * --eval-limit N (ablations: test images per evaluation set), --only a,b (ablations: these labels only),
 * --taps imagenet4|finetuned3|both7 (default suite), --protocols far,covariate,near, --whiten none,stage,global
 * (default suite: one model per listed mode; default: the model default), --print a.json,b.json (measure
 * nothing: print the tables of these result files together, e.g. seeds run in parallel processes),
 * --extract-only (default suite: fill the feature cache for the listed protocols and stop).
 * The default suite also
 * reports the near-OOD levers of bench/lib/levers.ts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/shared/backend.js';
import { defaultConfig, whitenModeOf, type DlsrConfig, SCORE_TYPES } from '../src/shared/dlsr/config.js';
import { fitDlsr, splitHoldout } from '../src/shared/dlsr/fit.js';
import { disposeModel, scoreFeatures, type DlsrModel } from '../src/shared/dlsr/model.js';
import { detectionMetrics } from '../src/shared/metrics.js';
import type { FeatureSet } from '../src/shared/feature-set.js';
import { FINETUNED_STAGES, IMAGENET_STAGES } from '../src/shared/encoder/mobilenet-v2.js';
import type { EncoderSpec } from '../src/shared/encoder/registry.js';
import { LFDN_PRESETS } from '../src/shared/diffusion/lfdn.js';
import { WHITEN_MODES, type WhitenMode } from '../src/shared/whitening.js';
import { ALL_CORRUPTIONS, corruptedDir, datasetDir, listKeys, REPO } from './lib/data.js';
import { featuresFor } from './lib/features.js';
import { classRows, evenly, limitTrain, SPLITS, subset } from './lib/sets.js';
import { LEVER_NAMES, leverColumns, withFusions } from './lib/levers.js';
import { printTables, type Row } from './lib/tables.js';

const { values: opt } = parseArgs({
  options: {
    suite: { type: 'string', default: 'default' },
    epochs: { type: 'string' },
    seeds: { type: 'string', default: '1' },
    'first-seed': { type: 'string', default: '0' },
    'near-splits': { type: 'string', default: '3' },
    'train-limit': { type: 'string' },
    'corrupt-per-class': { type: 'string', default: '100' },
    'eval-limit': { type: 'string' },
    only: { type: 'string' },
    taps: { type: 'string', default: 'imagenet4' },
    protocols: { type: 'string', default: 'far,covariate,near' },
    whiten: { type: 'string' },
    print: { type: 'string' },
    'extract-only': { type: 'boolean', default: false },
  },
});
if (opt.print !== undefined) {
  printTables(opt.print.split(',').flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as { rows: Row[] }).rows));
  process.exit(0);
}
const backend = await initBackend('auto');
const TAP_SETS: Record<string, readonly string[]> = { imagenet4: IMAGENET_STAGES, finetuned3: FINETUNED_STAGES, both7: [...IMAGENET_STAGES, ...FINETUNED_STAGES] };
if (TAP_SETS[opt.taps!] === undefined) throw new Error(`--taps: expected one of ${Object.keys(TAP_SETS).join(', ')}, got ${opt.taps}`);
const processes = cpus().length;
const log = (m: string): void => console.log(m);
const base = defaultConfig();
const seeds = Array.from({ length: Number(opt.seeds) }, (_, i) => Number(opt['first-seed']) + i);
const perClass = Number(opt['corrupt-per-class']);

const rows: Row[] = [];
const timings: Record<string, unknown>[] = [];

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
  writeResults();
  if (!levers) return;
  const hold = leverColumns(model, fitted.holdout);
  const idCols = withFusions(leverColumns(model, id), hold);
  for (const [name, set] of oods) {
    const oCols = withFusions(leverColumns(model, set), hold);
    for (const score of LEVER_NAMES) rows.push({ protocol, ood: name, config, seed, score, metrics: detectionMetrics(idCols[score]!, oCols[score]!) });
  }
  writeResults();
}

function withTaps(spec: EncoderSpec, taps: readonly string[], inputSize = spec.inputSize): EncoderSpec {
  return { ...spec, taps: [...taps], inputSize };
}

function configFor(overrides: Partial<{ epochs: number; seed: number; width: number; depth: number; preset: 'cpu' | 'paper' | 'custom'; whiten: WhitenMode }>, encoder: EncoderSpec = base.encoder): DlsrConfig {
  return {
    ...base,
    encoder,
    whiten: overrides.whiten ?? base.whiten,
    lfdn: { preset: overrides.preset ?? base.lfdn.preset, width: overrides.width ?? base.lfdn.width, depth: overrides.depth ?? base.lfdn.depth },
    train: { ...base.train, epochs: overrides.epochs ?? (opt.epochs !== undefined ? Number(opt.epochs) : base.train.epochs), seed: overrides.seed ?? 0 },
  };
}

const suite = opt.suite!;
const trainLimit = opt['train-limit'] !== undefined ? Number(opt['train-limit']) : undefined;
const summary: Record<string, unknown> = { date: new Date().toISOString(), backend: backend.provider, suite, processes };
const out = path.join(REPO, 'bench/results', `accuracy-${suite}${opt['eval-limit'] !== undefined ? `-eval${opt['eval-limit']}` : ''}${opt.protocols === 'far,covariate,near' ? '' : `-${opt.protocols!.replaceAll(',', '-')}`}${opt.taps === 'imagenet4' ? '' : `-${opt.taps}`}${opt.whiten !== undefined ? `-whiten-${opt.whiten.replaceAll(',', '-')}` : ''}${trainLimit !== undefined ? `-limit${trainLimit}` : ''}${opt.epochs !== undefined ? `-epochs${opt.epochs}` : ''}${seeds.length > 1 || seeds[0] !== 0 ? `-seeds${seeds.join('-')}` : ''}.json`);
/** Writes what has been measured so far (after every evaluation: a crash late in a long run keeps the rest). */
function writeResults(): void {
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ ...summary, rows, timings }, null, 2) + '\n');
}

if (suite === 'default' || suite === 'all') {
  log('== default configuration: far, covariate and near OOD ==');
  const enc = withTaps(base.encoder, TAP_SETS[opt.taps!]!);
  const modes = (opt.whiten?.split(',') ?? [whitenModeOf(base)]) as WhitenMode[];
  for (const m of modes) if (!WHITEN_MODES.includes(m)) throw new Error(`--whiten: expected some of ${WHITEN_MODES.join(', ')}, got ${m}`);
  const sets = await loadSets(enc, opt.protocols!.includes('covariate'));
  summary['extractImgPerS'] = sets.extractImgPerS;
  log(`features ready: ${sets.train.keys.length} train, ${sets.test.keys.length} test, ${sets.fmnist.keys.length} Fashion-MNIST, ${sets.corrupt.size} corrupted sets`);
  if (opt['extract-only']) process.exit(0);
  const train = limitTrain(sets.train, trainLimit);
  const protocols = new Set(opt.protocols!.split(','));
  for (const [seed, whiten] of seeds.flatMap((s) => modes.map((m) => [s, m] as const))) {
    const label = [opt.taps === 'imagenet4' ? '' : `taps=${opt.taps}`, opt.whiten === undefined ? '' : `whiten=${whiten}`, opt.epochs === undefined ? '' : `epochs=${opt.epochs}`].filter((x) => x !== '').join(',') || 'default';
    if (protocols.has('far') || protocols.has('covariate')) {
      const fitted = await fitOn(train, configFor({ seed, whiten }, enc), `${label} seed ${seed}`);
      if (protocols.has('far')) evaluate(fitted, 'far', label, seed, sets.test, new Map([['fashion-mnist', sets.fmnist]]));
      if (protocols.has('covariate')) evaluate(fitted, 'covariate', label, seed, sets.test, sets.corrupt);
      disposeModel(fitted.model);
    }
    if (!protocols.has('near')) continue;
    for (const [name, classes] of SPLITS.slice(0, Number(opt['near-splits']))) {
      const m = await fitOn(classRows(train, classes, true), configFor({ seed, whiten }, enc), `near ${name} ${label} seed ${seed}`);
      evaluate(m, 'near-5v5', `${label}/${name}`, seed, classRows(sets.test, classes, true), new Map([[`5v5-${name}`, classRows(sets.test, classes, false)]]));
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
    const m = await fitOn(classRows(train, classes, true), cfg, `${label} near`);
    evaluate(m, 'near-5v5', label, 0, classRows(sets.test, classes, true), new Map([['5v5-even', classRows(sets.test, classes, false)]]), false);
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

printTables(rows);
writeResults();
console.log(`wrote ${path.relative(REPO, out)}`);
