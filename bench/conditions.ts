/**
 * bench:conditions: does the conditions score see imaging-condition shift, and does the conditions
 * verdict stay quiet on clean data? Thin over the product: images are decoded with their properties
 * by the product's decoder at the default encoder's input size, the conditions statistics are fitted
 * and calibrated as `fit` does (the same seeded 10% holdout split, 95% ID kept), and partitions are
 * judged by the report's conditions verdict from the same histograms a scan aggregates. The encoder
 * is not needed: the conditions score does not depend on the features.
 *
 *   ID            CIFAR-10 training images, --per-class per class (default 500: 5,000 images)
 *   corruptions   each kind and strength of bench/lib/corrupt.ts on --corrupt-per-class test
 *                 images per class (default 100: 1,000 per partition): per-image AUROC of
 *                 `conditions` against the same images uncorrupted, and the partition's verdict
 *   false alarms  --partitions random partitions (default 200) of 300-1,000 clean CIFAR-10 test
 *                 images: the fraction whose conditions verdict is not "no shift detected"
 *                 (target at most 5%); the ten class folders are reported too, for information
 * Writes bench/results/conditions.md and bench/out/conditions.json; the images' properties are cached
 * under the bench cache (a rerun only recomputes the statistics). Run it under `nice -n 19`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { calibrateScore } from '../src/shared/calibration.js';
import { conditionsScores, fitConditions, type ConditionsModel } from '../src/shared/conditions.js';
import { splitHoldout } from '../src/shared/dlsr/fit.js';
import { DEFAULT_ENCODER } from '../src/shared/encoder/spec.js';
import { decodeWithProperties } from '../src/shared/image/decode.js';
import { propertyTable, selectProperties, type ImageProperties, type PropertyTable } from '../src/shared/image/properties.js';
import { auroc } from '../src/shared/metrics.js';
import { addConditionsRows, conditionsVerdict, emptyPartitionConditions, type ConditionsVerdict } from '../src/shared/report/drift.js';
import { Rng } from '../src/shared/rng.js';
import { ALL_CORRUPTIONS, CACHE, classOf, corruptedDir, corruptionSource, datasetDir, listKeys, REPO } from './lib/data.js';
import { stableHash } from '../src/shared/hash.js';
import { corruptionParam } from './lib/corrupt.js';

const { values } = parseArgs({
  options: { 'per-class': { type: 'string', default: '500' }, 'corrupt-per-class': { type: 'string', default: '100' }, partitions: { type: 'string', default: '200' }, seed: { type: 'string', default: '0' } },
});
const perClass = Number(values['per-class']);
const corruptPerClass = Number(values['corrupt-per-class']);
const nPartitions = Number(values.partitions);
const seed = Number(values.seed);
const size = DEFAULT_ENCODER.inputSize;
const TPR = 0.95;

/** Properties of every image under `dir`, decoded as the product decodes them (8 in flight); cached under the bench cache. */
async function propertiesOf(dir: string, keys: readonly string[]): Promise<PropertyTable> {
  const cacheFile = path.join(CACHE, 'properties', `${stableHash(dir, size, keys)}.json`);
  if (existsSync(cacheFile)) {
    const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as { values: (number | null)[]; formats: string[] };
    return { values: Float32Array.from(c.values, (v) => v ?? Number.NaN), formats: c.formats };
  }
  const t = await measure(dir, keys);
  mkdirSync(path.dirname(cacheFile), { recursive: true });
  writeFileSync(cacheFile, JSON.stringify({ values: Array.from(t.values, (v) => (Number.isFinite(v) ? v : null)), formats: t.formats }));
  return t;
}

async function measure(dir: string, keys: readonly string[]): Promise<PropertyTable> {
  const out: ImageProperties[] = new Array<ImageProperties>(keys.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const i = next++;
      const r = await decodeWithProperties(keys[i]!, new Uint8Array(await readFile(path.join(dir, keys[i]!))), { size });
      if (!r.ok || r.properties === undefined) throw new Error(`${keys[i]}: ${r.ok ? 'no properties' : r.reason}`);
      out[i] = r.properties;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return propertyTable(out);
}

function verdictOf(model: ConditionsModel, t: PropertyTable, threshold: number): ConditionsVerdict {
  const score = conditionsScores(model, t).score;
  const pc = emptyPartitionConditions();
  addConditionsRows(pc, model, t, score, threshold, Array.from({ length: t.formats.length }, (_, i) => i));
  return conditionsVerdict(pc, model, 1 - TPR);
}

const started = performance.now();
const log = (s: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${s}`);

// ID: fit as `fit` does (seeded holdout split), calibrate on the holdout.
const trainDir = datasetDir('cifar10/train');
const seen = new Map<string, number>();
const idKeys = listKeys(trainDir).filter((k) => {
  const n = seen.get(classOf(k)) ?? 0;
  seen.set(classOf(k), n + 1);
  return n < perClass;
});
log(`ID: ${idKeys.length} CIFAR-10 training images, decoded at ${size} px`);
const idProps = await propertiesOf(trainDir, idKeys);
const split = splitHoldout(idKeys, 0.1, seed);
const model = fitConditions(selectProperties(idProps, split.train), selectProperties(idProps, split.holdout));
const cal = calibrateScore(conditionsScores(model, selectProperties(idProps, split.holdout)).score, TPR);
log(`fitted on ${split.train.length}, calibrated on ${split.holdout.length}: threshold ${cal.threshold.toFixed(2)}`);

// Clean test images: the corruption sources (uncorrupted) and the whole test set.
const testDir = datasetDir('cifar10/test');
const testKeys = listKeys(testDir);
const testProps = await propertiesOf(testDir, testKeys);
const testScores = conditionsScores(model, testProps).score;
const sourceKeys = corruptionSource(corruptPerClass);
const index = new Map(testKeys.map((k, i) => [k, i]));
const cleanSource = Float32Array.from(sourceKeys, (k) => testScores[index.get(k)!]!);
const cleanFlagged = Array.from(testScores).filter((v) => v > cal.threshold).length / testScores.length;
log(`clean test set: ${testKeys.length} images, ${(cleanFlagged * 100).toFixed(1)}% above the threshold (expected ${((1 - TPR) * 100).toFixed(0)}%)`);

// Corruptions.
interface CorruptionRow {
  kind: string;
  strength: number;
  param: number;
  images: number;
  auroc: number;
  flagged: number;
  level: string;
  properties: string[];
  text: string;
}
const corruptions: CorruptionRow[] = [];
for (const { kind, strength } of ALL_CORRUPTIONS) {
  const dir = await corruptedDir(kind, strength, corruptPerClass);
  const t = await propertiesOf(dir, sourceKeys);
  const scores = conditionsScores(model, t).score;
  const v = verdictOf(model, t, cal.threshold);
  const row = { kind, strength, param: corruptionParam(kind, strength), images: sourceKeys.length, auroc: auroc(cleanSource, scores), flagged: v.flaggedFraction, level: v.level, properties: v.shiftedProperties, text: v.text };
  corruptions.push(row);
  log(`${kind}-${strength}: AUROC ${(row.auroc * 100).toFixed(1)}, ${(row.flagged * 100).toFixed(0)}% flagged, ${v.level} (${v.shiftedProperties.join(', ')})`);
}

// False alarms on clean partitions: random subsets of the test set, 300-1,000 images each.
const rng = new Rng(seed + 1);
const levels: Record<string, number> = {};
const alarms: { size: number; level: string; properties: string[] }[] = [];
for (let p = 0; p < nPartitions; p++) {
  const n = 300 + Math.floor(rng.uniform() * 701);
  const rows: number[] = [];
  const taken = new Set<number>();
  while (rows.length < n) {
    const i = Math.floor(rng.uniform() * testKeys.length);
    if (!taken.has(i)) {
      taken.add(i);
      rows.push(i);
    }
  }
  const v = verdictOf(model, selectProperties(testProps, rows), cal.threshold);
  levels[v.level] = (levels[v.level] ?? 0) + 1;
  if (v.level !== 'no shift detected') alarms.push({ size: n, level: v.level, properties: v.shiftedProperties });
}
const falseAlarmRate = alarms.length / nPartitions;
const shiftedRate = alarms.filter((a) => a.level === 'shifted').length / nPartitions;
log(`false alarms: ${alarms.length} of ${nPartitions} clean partitions (${(falseAlarmRate * 100).toFixed(1)}%; "shifted" ${(shiftedRate * 100).toFixed(1)}%)`);
const byClass = [...new Set(testKeys.map(classOf))].map((c) => {
  const v = verdictOf(model, selectProperties(testProps, testKeys.flatMap((k, i) => (classOf(k) === c ? [i] : []))), cal.threshold);
  return { class: c, level: v.level, properties: v.shiftedProperties, text: v.text };
});

const result = { date: new Date().toISOString(), size, idImages: idKeys.length, holdout: split.holdout.length, threshold: cal.threshold, cleanTestFlagged: cleanFlagged, corruptions, falseAlarms: { partitions: nPartitions, rate: falseAlarmRate, shiftedRate, levels, alarms }, byClass };
mkdirSync(path.join(REPO, 'bench/out'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/out/conditions.json'), JSON.stringify(result, null, 2) + '\n');
const pct = (x: number): string => (x * 100).toFixed(1);
const md = [
  `# bench:conditions (${result.date.slice(0, 10)})`,
  '',
  `ID: ${idKeys.length} CIFAR-10 training images (${split.train.length} fit, ${split.holdout.length} holdout), decoded at ${size} px; conditions threshold ${cal.threshold.toFixed(2)} (95% of the holdout kept); ${pct(cleanFlagged)}% of the 10,000 clean test images above it.`,
  '',
  `Corruptions (${sourceKeys.length} test images each, AUROC % of \`conditions\` against the same images uncorrupted; verdict of the partition):`,
  '',
  '| corruption | strength | parameter | AUROC | flagged % | verdict | shifted properties |',
  '|---|---|---|---|---|---|---|',
  ...corruptions.map((r) => `| ${r.kind} | ${r.strength} | ${r.param} | ${pct(r.auroc)} | ${pct(r.flagged)} | ${r.level} | ${r.properties.join(', ')} |`),
  '',
  `False alarms: ${alarms.length} of ${nPartitions} random clean partitions of 300-1,000 CIFAR-10 test images are not "no shift detected" (${pct(falseAlarmRate)}%; "shifted": ${pct(shiftedRate)}%; target at most 5%).`,
  '',
  `Class folders of the clean test set (1,000 each; a class is a semantic subpopulation, so a condition difference there can be real): ${byClass.map((c) => `${c.class} ${c.level}${c.properties.length > 0 ? ` (${c.properties.join(', ')})` : ''}`).join('; ')}.`,
  '',
];
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
writeFileSync(path.join(REPO, 'bench/results/conditions.md'), md.join('\n'));
console.log(md.join('\n'));
