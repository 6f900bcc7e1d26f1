/**
 * bench:accuracy: DLSR's scores next to the Mahalanobis and kNN baselines, on the shared datasets.
 *
 * --suite protocols (the default; bench/lib/protocol-suite.ts, selection.ts): every candidate score
 * on the protocol families far, corruption, 5v5 and leave-one-class-out, at --sizes 5000,full, for
 * --seeds, with --whiten stage,none models; resumable (one JSON per invocation under bench/out); ends
 * with the selection rule's ranking and the held-out family's check. --print a.json,b.json merges
 * runs (e.g. one process per seed) and prints the tables again.
 *
 * --suite default (the earlier suite, kept for its tables):
 *   far        CIFAR-10 train (ID, 10% held out for calibration) -> CIFAR-10 test vs Fashion-MNIST test
 *   covariate  the same model -> CIFAR-10 test vs CIFAR-10 test images corrupted (blur, noise, JPEG,
 *              saturation, brightness, downscale) at 3 strengths, re-encoded like the originals
 *   near       CIFAR-10 5-vs-5 class splits: train on 5 classes, test their test images vs the other 5
 *   ablations  (--suite ablations) stage taps, input size, LFDN preset and epochs on a training subset
 *
 * Features come from the product's extraction and feature cache (bench/lib/features.ts), one process
 * per core. Prints Markdown tables and writes every measured row to bench/out/accuracy-<label>.json
 * (ignored by git); --print a.json,b.json reprints the tables of several runs together, and
 * --summary <file> also writes them to a file (bench/results/accuracy.md is the one the README quotes).
 *
 * Options: --suite default|ablations, --epochs N (default: the model default), --seeds N,
 * --first-seed N (seeds N .. N+seeds-1; to split a run over processes), --train-limit N (ID training
 * images, evenly spread), --corrupt-per-class N (default 100), --taps imagenet4|finetuned3|both7,
 * --protocols far,covariate,near, --whiten none,stage,global (one model per listed mode),
 * --extract-only (fill the feature cache and stop), --shard i/n (protocol suite: only every n-th unit
 * from the i-th, to split one seed's units over n processes; the file name says the shard),
 * --bootstrap a.bin,b.bin [--pairs mahalanobis/knn,f:mse+knn/knn,...] [--reps 400] (paired bootstrap interval of
 * each pair's family margin over the images of saved units, bench/lib/bootstrap.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/shared/backend.js';
import { defaultConfig, SCORE_TYPES, WHITEN_MODES, whitenModeOf, type DlsrConfig, type WhitenMode } from '../src/shared/dlsr/config.js';
import { LFDN_PRESETS } from '../src/shared/diffusion/config.js';
import { fitDlsr } from '../src/shared/dlsr/fit.js';
import { disposeModel, scoreFeatures, type DlsrModel } from '../src/shared/dlsr/model.js';
import { FINETUNED_STAGES, IMAGENET_STAGES, type EncoderSpec } from '../src/shared/encoder/spec.js';
import type { FeatureSet } from '../src/shared/feature-set.js';
import { detectionMetrics } from '../src/shared/metrics.js';
import { ALL_CORRUPTIONS, corruptedDir, datasetDir, REPO } from './lib/data.js';
import { featuresFor } from './lib/features.js';
import { classRows, limitTrain, SPLITS } from './lib/sets.js';
import { formatTables, type Row } from './lib/tables.js';
import { combineUnits, familyMargins, type MarginInterval } from './lib/bootstrap.js';
import { FAMILIES, loadColumns, parseShard, runSuite, SIZES, type Family, type Size, type SuiteFile } from './lib/protocol-suite.js';
import { selectionReport } from './lib/selection.js';

const { values: opt } = parseArgs({
  options: {
    suite: { type: 'string', default: 'protocols' },
    sizes: { type: 'string', default: '5000,full' },
    epochs: { type: 'string' },
    seeds: { type: 'string', default: '1' },
    'first-seed': { type: 'string', default: '0' },
    'train-limit': { type: 'string' },
    'corrupt-per-class': { type: 'string', default: '100' },
    taps: { type: 'string', default: 'imagenet4' },
    protocols: { type: 'string' },
    whiten: { type: 'string' },
    print: { type: 'string' },
    summary: { type: 'string' },
    'extract-only': { type: 'boolean', default: false },
    shard: { type: 'string' },
    bootstrap: { type: 'string' },
    pairs: { type: 'string', default: 'mahalanobis/knn' },
    reps: { type: 'string', default: '400' },
  },
});

function report(text: string): void {
  process.stdout.write(text);
  if (opt.summary !== undefined) {
    writeFileSync(opt.summary, text);
    console.log(`wrote ${opt.summary}`);
  }
}

if (opt.bootstrap !== undefined) {
  // Paired bootstrap of score margins over the images of saved units (bench/out/columns/*.bin).
  const pairs = opt.pairs!.split(',').map((p) => p.split('/') as [string, string]);
  const lines = ['| unit | family | margin a - b | 95% interval | outside the interval? |', '|---|---|---|---|---|'];
  const pts = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}`;
  const line = (unit: string, a: string, b: string, m: MarginInterval): string =>
    `| ${unit} | ${m.family} (${m.sets} sets) | ${a} - ${b}: ${pts(m.margin)} | [${pts(m.lo)}, ${pts(m.hi)}] | ${m.lo > 0 || m.hi < 0 ? 'yes: 0 is outside' : 'no: 0 is inside'} |`;
  const files = opt.bootstrap.split(',');
  for (const [a, b] of pairs) {
    const byFamily = new Map<string, MarginInterval[]>();
    // Each unit its own resampling stream: units of the same sizes must not draw the same indices.
    for (const [u, file] of files.entries())
      for (const m of familyMargins(loadColumns(file), a, b, Number(opt.reps), u + 1)) {
        lines.push(line(path.basename(file, '.bin'), a, b, m));
        byFamily.set(m.family, [...(byFamily.get(m.family) ?? []), m]);
      }
    for (const [family, units] of byFamily) if (units.length > 1) lines.push(line(`**all ${units.length} units**`, a, b, combineUnits(family, units)));
  }
  report(`Paired bootstrap (${opt.reps} replicates; ID and every OOD set resampled, both scores on the same images), AUROC points:\n\n${lines.join('\n')}\n`);
  process.exit(0);
}
if (opt.print !== undefined && opt.suite === 'protocols') {
  report(selectionReport(opt.print.split(',').flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as SuiteFile).rows)));
  process.exit(0);
}
if (opt.print !== undefined) {
  report(formatTables(opt.print.split(',').flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as { rows: Row[] }).rows)));
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
const trainLimit = opt['train-limit'] !== undefined ? Number(opt['train-limit']) : undefined;
const suite = opt.suite!;
const protocolList = opt.protocols ?? (suite === 'protocols' ? FAMILIES.join(',') : 'far,covariate,near');

const rows: Row[] = [];
const timings: Record<string, unknown>[] = [];
const label = [suite, protocolList === 'far,covariate,near' ? '' : protocolList.replaceAll(',', '-'), opt.taps === 'imagenet4' ? '' : opt.taps, opt.whiten !== undefined ? `whiten-${opt.whiten.replaceAll(',', '-')}` : '', trainLimit !== undefined ? `limit${trainLimit}` : '', opt.epochs !== undefined ? `epochs${opt.epochs}` : '', seeds.length > 1 || seeds[0] !== 0 ? `seeds${seeds.join('-')}` : '']
  .filter((x) => x !== '')
  .join('-');
const out = path.join(REPO, 'bench/out', `accuracy-${label}.json`);
const summary: Record<string, unknown> = { date: new Date().toISOString(), backend: backend.provider, suite, processes };
/** Writes what has been measured so far (after every evaluation: a crash late in a long run keeps the rest). */
function writeResults(): void {
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ ...summary, rows, timings }, null, 2) + '\n');
}

interface Sets {
  readonly train: FeatureSet;
  readonly test: FeatureSet;
  readonly fmnist: FeatureSet;
  readonly corrupt: Map<string, FeatureSet>;
}

async function loadSets(spec: EncoderSpec, withCorruptions: boolean): Promise<Sets> {
  const get = async (dir: string): Promise<FeatureSet> => (await featuresFor(dir, spec, processes, log)).set;
  const train = await get(datasetDir('cifar10/train'));
  const test = await get(datasetDir('cifar10/test'));
  const fmnist = await get(datasetDir('fashion-mnist/test'));
  const corrupt = new Map<string, FeatureSet>();
  if (withCorruptions) for (const { kind, strength } of ALL_CORRUPTIONS) corrupt.set(`${kind}-${strength}`, await get(await corruptedDir(kind, strength, perClass)));
  return { train, test, fmnist, corrupt };
}

async function fitOn(set: FeatureSet, cfg: DlsrConfig, what: string): Promise<DlsrModel> {
  const started = performance.now();
  const { model, log: epochs } = await fitDlsr(set, cfg, {
    backend: backend.provider,
    versions: {},
    onEpoch: async (r) => {
      if (r.epoch % 5 === 0) log(`  ${what}: epoch ${r.epoch}/${cfg.train.epochs} loss ${r.loss.toFixed(5)}`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  timings.push({ label: what, images: set.keys.length, epochs: cfg.train.epochs, seconds, finalLoss: epochs[epochs.length - 1]?.loss });
  log(`  fitted ${what}: ${model.info.trainCount} training images, ${cfg.train.epochs} epochs, ${(seconds / 60).toFixed(1)} min`);
  return model;
}

function evaluate(model: DlsrModel, protocol: string, config: string, seed: number, id: FeatureSet, oods: ReadonlyMap<string, FeatureSet>): void {
  const t = performance.now();
  const sId = scoreFeatures(model, id);
  timings.push({ label: `score ${protocol}/${config}`, images: id.keys.length, seconds: (performance.now() - t) / 1000 });
  for (const [name, set] of oods) {
    const sO = scoreFeatures(model, set);
    for (const score of SCORE_TYPES) {
      const a = sId.scores[score];
      const b = sO.scores[score];
      if (a !== undefined && b !== undefined) rows.push({ protocol, ood: name, config, seed, score, metrics: detectionMetrics(a, b) });
    }
  }
  writeResults();
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

if (suite === 'protocols') {
  const families = protocolList.split(',') as Family[];
  const sizes = opt.sizes!.split(',') as Size[];
  const modes = (opt.whiten?.split(',') ?? ['stage', 'none']) as WhitenMode[];
  for (const f of families) if (!FAMILIES.includes(f)) throw new Error(`--protocols: expected some of ${FAMILIES.join(', ')}, got ${f}`);
  for (const z of sizes) if (!SIZES.includes(z)) throw new Error(`--sizes: expected some of ${SIZES.join(', ')}, got ${z}`);
  for (const m of modes) if (!WHITEN_MODES.includes(m)) throw new Error(`--whiten: expected some of ${WHITEN_MODES.join(', ')}, got ${m}`);
  const shard = opt.shard !== undefined ? parseShard(opt.shard) : undefined;
  log(`== protocol suite: ${families.join(', ')}; sizes ${sizes.join(', ')}; seeds ${seeds.join(', ')}; whitening ${modes.join(', ')} ==`);
  const sets = await loadSets(base.encoder, families.includes('corruption'));
  if (opt['extract-only']) process.exit(0);
  const epochs = opt.epochs !== undefined ? Number(opt.epochs) : undefined;
  const file = path.join(REPO, 'bench/out', `protocols-${[sizes.join('-'), `seeds${seeds.join('-')}`, modes.join('-'), families.length === FAMILIES.length ? '' : families.join('-'), epochs !== undefined ? `epochs${epochs}` : '', shard !== undefined ? `shard${shard.index}of${shard.count}` : ''].filter((x) => x !== '').join('-')}.json`);
  const result = await runSuite(sets, { sizes, seeds, modes, families, out: file, backend: backend.provider, log, ...(epochs !== undefined ? { epochs } : {}), ...(shard !== undefined ? { shard } : {}) });
  log(`results in ${file}`);
  if (shard !== undefined) {
    log(`shard ${shard.index}/${shard.count} only: merge the shards' files with --print a.json,b.json for the selection tables`);
    process.exit(0);
  }
  report(selectionReport(result.rows));
  process.exit(0);
} else if (suite === 'default') {
  log('== default configuration: far, covariate and near OOD ==');
  const enc = { ...base.encoder, taps: [...TAP_SETS[opt.taps!]!] };
  const modes = (opt.whiten?.split(',') ?? [whitenModeOf(base)]) as WhitenMode[];
  for (const m of modes) if (!WHITEN_MODES.includes(m)) throw new Error(`--whiten: expected some of ${WHITEN_MODES.join(', ')}, got ${m}`);
  const protocols = new Set(protocolList.split(','));
  const sets = await loadSets(enc, protocols.has('covariate'));
  log(`features ready: ${sets.train.keys.length} train, ${sets.test.keys.length} test, ${sets.fmnist.keys.length} Fashion-MNIST, ${sets.corrupt.size} corrupted sets`);
  if (opt['extract-only']) process.exit(0);
  const train = limitTrain(sets.train, trainLimit);
  for (const [seed, whiten] of seeds.flatMap((s) => modes.map((m) => [s, m] as const))) {
    const config = [opt.taps === 'imagenet4' ? '' : `taps=${opt.taps}`, opt.whiten === undefined ? '' : `whiten=${whiten}`, opt.epochs === undefined ? '' : `epochs=${opt.epochs}`].filter((x) => x !== '').join(',') || 'default';
    if (protocols.has('far') || protocols.has('covariate')) {
      const model = await fitOn(train, configFor({ seed, whiten }, enc), `${config} seed ${seed}`);
      if (protocols.has('far')) evaluate(model, 'far', config, seed, sets.test, new Map([['fashion-mnist', sets.fmnist]]));
      if (protocols.has('covariate')) evaluate(model, 'covariate', config, seed, sets.test, sets.corrupt);
      disposeModel(model);
    }
    if (!protocols.has('near')) continue;
    for (const [name, classes] of SPLITS) {
      const model = await fitOn(classRows(train, classes, true), configFor({ seed, whiten }, enc), `near ${name} ${config} seed ${seed}`);
      evaluate(model, 'near-5v5', `${config}/${name}`, seed, classRows(sets.test, classes, true), new Map([[`5v5-${name}`, classRows(sets.test, classes, false)]]));
      disposeModel(model);
    }
  }
} else if (suite === 'ablations') {
  const limit = trainLimit ?? 2_500;
  const epochs = opt.epochs !== undefined ? Number(opt.epochs) : 30;
  log(`== ablations on ${limit} CIFAR-10 training images, ${epochs} epochs (far: Fashion-MNIST; near: the "even" split) ==`);
  const run = async (what: string, spec: EncoderSpec, cfg: DlsrConfig): Promise<void> => {
    const sets = await loadSets(spec, false);
    const train = limitTrain(sets.train, limit);
    const far = await fitOn(train, cfg, what);
    evaluate(far, 'far', what, 0, sets.test, new Map([['fashion-mnist', sets.fmnist]]));
    disposeModel(far);
    const [, classes] = SPLITS[1]!;
    const near = await fitOn(classRows(train, classes, true), cfg, `${what} near`);
    evaluate(near, 'near-5v5', what, 0, classRows(sets.test, classes, true), new Map([['5v5-even', classRows(sets.test, classes, false)]]));
    disposeModel(near);
  };
  const enc = base.encoder;
  for (const [name, taps] of Object.entries(TAP_SETS)) await run(`taps=${name}`, { ...enc, taps: [...taps] }, configFor({ epochs }, { ...enc, taps: [...taps] }));
  for (const size of [128, 96]) await run(`input=${size}`, { ...enc, inputSize: size }, configFor({ epochs }, { ...enc, inputSize: size }));
  for (const [w, dpt] of [[256, 4], [1024, 4]] as const) await run(`lfdn=${w}x${dpt}`, enc, configFor({ epochs, width: w, depth: dpt, preset: 'custom' }));
  await run('lfdn=paper', enc, configFor({ epochs: Math.max(3, Math.round(epochs / 6)), ...LFDN_PRESETS.paper, preset: 'paper' }));
  for (const e of [10, 100]) await run(`epochs=${e}`, enc, configFor({ epochs: e }));
} else {
  throw new Error(`--suite: expected protocols, default or ablations, got ${suite}`);
}

report(formatTables(rows));
writeResults();
console.log(`wrote ${path.relative(REPO, out)}`);
