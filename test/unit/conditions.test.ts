import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { binCounts, conditionsScores, fitConditions, PROPERTY_BINS, propertyZ, Z_CAP, Z_MISMATCH } from '../../src/shared/conditions.js';
import { loadModel, saveModel } from '../../src/shared/dlsr/artifact.js';
import { defaultConfig, type DlsrConfig } from '../../src/shared/dlsr/config.js';
import { fitDlsr } from '../../src/shared/dlsr/fit.js';
import { readModelJson } from '../../src/shared/dlsr/model-json.js';
import { disposeModel, scoreFeatures } from '../../src/shared/dlsr/model.js';
import { makeFingerprint } from '../../src/shared/encoder/encoder.js';
import { decodeFeatureSet, encodeFeatureSet, selectRows, concatFeatureSets, type FeatureSet } from '../../src/shared/feature-set.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { PROPERTY_COUNT, PROPERTY_NAMES, propertyColumn, propertyTable, type ImageProperties, type PropertyTable } from '../../src/shared/image/properties.js';
import { readScoresParquet, scoresToCsv, scoresToParquet } from '../../src/shared/outputs/score-files.js';
import { mergeShardScores, shardScores, shardScoresSchema } from '../../src/shared/outputs/shard-scores.js';
import { Rng } from '../../src/shared/rng.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';
import { cifarLikeProperties } from '../helpers/properties.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

/** CIFAR-like properties, `over` replacing some. */
function props(rng: Rng, over: Partial<ImageProperties> = {}): ImageProperties {
  return cifarLikeProperties(rng, () => over);
}
const table = (n: number, seed: number, over: Partial<ImageProperties> = {}): PropertyTable => {
  const rng = new Rng(seed);
  return propertyTable(Array.from({ length: n }, () => props(rng, over)));
};

describe('conditions score', () => {
  const model = fitConditions(table(900, 1), table(100, 2));

  it('centres on the training medians with robust scales floored where the ID set never varies', () => {
    const at = (n: string) => model.properties.find((p) => p.name === n)!;
    expect(at('width').centre).toBeCloseTo(Math.log(32), 9);
    expect(at('width').scale).toBe(0.05);
    expect(at('jpegQuality').centre).toBe(75);
    expect(at('jpegQuality').scale).toBe(2);
    expect(at('brightness').scale).toBeGreaterThan(0.08);
    expect(at('brightness').scale).toBeLessThan(0.12);
    expect(at('grayscale').centre).toBe(0);
    expect(at('jpegQuality').idMedian).toBe(75);
    for (const p of model.properties) expect(p.idCounts.reduce((a, b) => a + b, 0)).toBe(100);
  });

  it('is small for ID images and names the shifted property of a shifted one', () => {
    const id = conditionsScores(model, table(200, 3)).score;
    const sorted = Float32Array.from(id).sort();
    expect(sorted[Math.floor(0.5 * sorted.length)]).toBeLessThan(2.5);
    const cases: [Partial<ImageProperties>, string][] = [
      [{ jpegQuality: 20 }, 'jpegQuality'],
      [{ brightness: 0.05 }, 'brightness'],
      [{ width: 64, height: 64 }, 'width'],
      [{ grayscale: 1, saturation: 0.3 }, 'grayscale'],
    ];
    for (const [over, name] of cases) {
      const s = conditionsScores(model, table(1, 9, over));
      expect(s.score[0], name).toBeGreaterThan(3.5);
      expect(PROPERTY_NAMES[s.worst[0]!], name).toBe(name);
    }
  });

  it('counts a missing JPEG quality among JPEGs as a mismatch and caps |z|', () => {
    const q = model.properties[PROPERTY_NAMES.indexOf('jpegQuality')]!;
    expect(propertyZ(q, Number.NaN)).toBe(Z_MISMATCH);
    expect(propertyZ(q, 75)).toBe(0);
    expect(propertyZ(q, 1e9)).toBe(Z_CAP);
    // An ID set of PNGs has no JPEG quality: a JPEG among them is the mismatch.
    const png = fitConditions(table(50, 4, { jpegQuality: Number.NaN, format: 'png' }), table(20, 5, { jpegQuality: Number.NaN, format: 'png' }));
    const pq = png.properties[PROPERTY_NAMES.indexOf('jpegQuality')]!;
    expect(propertyZ(pq, Number.NaN)).toBe(0);
    expect(propertyZ(pq, 90)).toBe(Z_MISMATCH);
    expect(png.idFormats).toEqual({ png: 20 });
  });

  it('bins into underflow, inner bins, overflow and missing', () => {
    expect(binCounts([0, 1, 2], [-1, 0, 0.5, 1, 1.99, 2, 5, Number.NaN])).toEqual([1, 2, 2, 2, 1]);
    expect(model.properties[0]!.edges).toHaveLength(PROPERTY_BINS + 1);
  });
});

const stageSizes = [4, 6, 6];
const d = 16;
function features(n: number, seed: number, withProps: boolean, over: Partial<ImageProperties> = {}): FeatureSet {
  const rng = new Rng(seed);
  const f = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const a = rng.normal();
    for (let j = 0; j < d; j++) f[i * d + j] = Math.sin(j + a) * 3 + 0.3 * rng.normal();
  }
  return {
    fingerprint: makeFingerprint({ encoder: 'synthetic', weightsSha256: sha256Hex('synthetic weights'), taps: ['a', 'b', 'c'], inputSize: 32, preprocessing: { kind: 'unit' }, pooling: 'gap' }),
    stageSizes,
    keys: Array.from({ length: n }, (_, i) => `p${seed}/img-${i}.jpg`),
    digests: Array.from({ length: n }, (_, i) => sha256Hex(`${seed}-${i}`)),
    features: f,
    failures: [],
    ...(withProps ? { properties: table(n, seed + 100, over) } : {}),
  };
}

describe('properties through feature sets, models and score tables', () => {
  it('feature sets carry properties through bytes, row selection and concatenation; old sets have none', () => {
    const s = features(6, 1, true);
    s.properties!.values[3] = Number.NaN;
    const back = decodeFeatureSet(encodeFeatureSet(s));
    expect(Array.from(back.properties!.values)).toEqual(Array.from(s.properties!.values));
    expect(back.properties!.formats).toEqual(s.properties!.formats);
    expect(Array.from(back.features)).toEqual(Array.from(s.features));
    expect(Array.from(propertyColumn(selectRows(back, [4, 1]).properties!, 'brightness'))).toEqual([4, 1].map((i) => s.properties!.values[i * PROPERTY_COUNT + 4]!));
    expect(concatFeatureSets([s, s]).properties!.formats).toHaveLength(12);
    const old = features(3, 2, false);
    expect(decodeFeatureSet(encodeFeatureSet(old)).properties).toBeUndefined();
    expect(concatFeatureSets([s, old]).properties).toBeUndefined();
  });

  const cfg = (): DlsrConfig => {
    const base = defaultConfig();
    return { ...base, lfdn: { preset: 'custom', width: 32, depth: 2 }, train: { ...base.train, epochs: 1, batchSize: 32, lr: 3e-3 }, scoring: { ...base.scoring, batchSize: 64 } };
  };

  it('fit stores the property statistics, calibrates the conditions score, and a saved model scores the same; models without them load and have no conditions score', async () => {
    const before = tf.memory().numTensors;
    const { model, log } = await fitDlsr(features(300, 3, true), cfg(), { backend: 'wasm', versions: {} });
    expect(model.conditions?.holdoutCount).toBe(30);
    expect(model.calibration?.scores['conditions']?.threshold).toBeGreaterThan(0);
    const dir = mkdtempSync(path.join(tmpdir(), 'ood-conditions-'));
    const store = new LocalStore(dir);
    await saveModel(store, 'm', model, log);
    expect((await readModelJson(store, 'm')).conditions?.properties).toHaveLength(PROPERTY_COUNT);
    const loaded = await loadModel(store, 'm');
    expect(loaded.conditions).toEqual(model.conditions);
    const probe = { ...features(40, 4, true), keys: features(40, 4, true).keys };
    const shifted = features(40, 5, true, { jpegQuality: 20, brightness: 0.1 });
    const a = scoreFeatures(model, probe);
    const b = scoreFeatures(loaded, probe);
    expect(Array.from(b.scores.conditions!)).toEqual(Array.from(a.scores.conditions!));
    expect(a.properties).toBe(probe.properties);
    const thr = model.calibration!.scores['conditions']!.threshold;
    const flaggedShift = Array.from(scoreFeatures(loaded, shifted).scores.conditions!).filter((v) => v > thr).length;
    expect(flaggedShift).toBe(40);
    // Rows without properties get no conditions column.
    expect(scoreFeatures(loaded, features(5, 6, false)).scores.conditions).toBeUndefined();
    disposeModel(loaded);

    const { model: plain, log: plainLog } = await fitDlsr(features(300, 3, false), cfg(), { backend: 'wasm', versions: {} });
    expect(plain.conditions).toBeUndefined();
    await saveModel(store, 'plain', plain, plainLog);
    const plainLoaded = await loadModel(store, 'plain');
    expect(plainLoaded.conditions).toBeUndefined();
    expect(scoreFeatures(plainLoaded, probe).scores.conditions).toBeUndefined();
    for (const m of [model, plain, plainLoaded]) disposeModel(m);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('score tables write property columns to shard scores, parquet and CSV, and read them back', async () => {
    const probe = features(4, 7, true);
    probe.properties!.values[PROPERTY_NAMES.indexOf('jpegQuality')] = Number.NaN;
    const t = { keys: probe.keys, digests: probe.digests, scores: { mse: Float32Array.from([1, 2, 3, 4]), conditions: Float32Array.from([0.5, 1, 9, 2]) }, properties: probe.properties! };
    const flags = { rank: Float64Array.from([0.1, 0.2, 0.99, 0.5]), flagged: Uint8Array.from([0, 0, 1, 0]) };
    const json = shardScoresSchema.parse(JSON.parse(JSON.stringify(shardScores(0, t, flags, []))));
    const merged = mergeShardScores([json, { ...json, shard: 1 }]);
    expect(merged.table.properties!.formats).toHaveLength(8);
    expect(merged.table.properties!.values[PROPERTY_NAMES.indexOf('jpegQuality')]).toBeNaN();
    expect(Array.from(merged.table.scores.conditions!)).toEqual([0.5, 1, 9, 2, 0.5, 1, 9, 2]);
    const back = await readScoresParquet(scoresToParquet(t, flags, { inputUri: 's3://b/', runId: 'scan-0000000000000001', partitionDepth: 1 }));
    expect(Array.from(back.table.scores.conditions!)).toEqual([0.5, 1, 9, 2]);
    expect(back.table.properties!.formats).toEqual(probe.properties!.formats);
    expect(Array.from(back.table.properties!.values).map((v) => (Number.isNaN(v) ? null : Math.fround(v)))).toEqual(Array.from(t.properties.values).map((v) => (Number.isNaN(v) ? null : v)));
    const csv = scoresToCsv(t, flags, { inputUri: 's3://b/', runId: 'scan-0000000000000001', partitionDepth: 1 }).split('\n');
    expect(csv[0]).toBe(['key', 'uri', 'run_id', 'partition', 'sha256', 'mse', 'conditions', 'rank', 'flagged', ...PROPERTY_NAMES, 'format'].join(','));
    expect(csv[1]!.split(',')[9 + PROPERTY_NAMES.indexOf('jpegQuality')]).toBe('');
  });
});
