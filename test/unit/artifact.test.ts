import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, SCORE_TYPES, validateDlsrConfig, type DlsrConfig } from '../../src/shared/dlsr/config.js';
import { fitDlsr, splitHoldout } from '../../src/shared/dlsr/fit.js';
import { decodeCheckpoint, encodeCheckpoint, loadModel, saveModel } from '../../src/shared/dlsr/artifact.js';
import { disposeModel, reconstructRows, scoreFeatures } from '../../src/shared/dlsr/model.js';
import { reconstructionScores } from '../../src/shared/scores.js';
import { unapplyWhitening } from '../../src/shared/whitening.js';
import { scoreTypesOf } from '../../src/shared/score-table.js';
import { LocalStore } from '../../src/shared/storage/local-store.js';
import { makeFingerprint } from '../../src/shared/encoder/encoder.js';
import type { FeatureSet } from '../../src/shared/feature-set.js';
import { decodeFeatureSet, encodeFeatureSet } from '../../src/shared/feature-set.js';
import type { LfdnParams } from '../../src/shared/diffusion/lfdn.js';
import type { TrainState } from '../../src/shared/diffusion/train.js';
import { Rng } from '../../src/shared/rng.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { useWasm } from '../helpers/tf.js';

useWasm();

const stageSizes = [4, 6, 6];
const d = 16;
function synthetic(n: number, seed: number, shift = 0): FeatureSet {
  const rng = new Rng(seed);
  const features = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const a = rng.normal();
    for (let j = 0; j < d; j++) features[i * d + j] = Math.sin(j + a) * 3 + shift * (j % 3) + 0.3 * rng.normal();
  }
  return {
    fingerprint: makeFingerprint({ encoder: 'synthetic', weightsSha256: sha256Hex('synthetic weights'), taps: ['a', 'b', 'c'], inputSize: 32, preprocessing: { kind: 'unit' }, pooling: 'gap' }),
    stageSizes,
    keys: Array.from({ length: n }, (_, i) => `img/${seed}-${i}.jpg`),
    digests: Array.from({ length: n }, (_, i) => sha256Hex(`${seed}-${i}`)),
    features,
    failures: [{ key: 'img/bad.jpg', reason: 'premature end of JPEG image' }],
  };
}

function smallConfig(epochs: number): DlsrConfig {
  const base = defaultConfig();
  return { ...base, lfdn: { preset: 'custom', width: 32, depth: 2 }, train: { ...base.train, epochs, batchSize: 32, lr: 3e-3 }, scoring: { ...base.scoring, batchSize: 64 } };
}

describe('holdout split', () => {
  it('is deterministic, disjoint, and independent of listing order', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    const a = splitHoldout(keys, 0.1, 3);
    expect(a.holdout).toHaveLength(100);
    expect(a.train).toHaveLength(900);
    expect(new Set([...a.train, ...a.holdout]).size).toBe(1000);
    const rev = [...keys].reverse();
    const b = splitHoldout(rev, 0.1, 3);
    expect(new Set(b.holdout.map((i) => rev[i]))).toEqual(new Set(a.holdout.map((i) => keys[i])));
  });
});

describe('feature sets', () => {
  it('round-trip through bytes, failures included', () => {
    const s = synthetic(5, 1);
    const back = decodeFeatureSet(encodeFeatureSet(s));
    expect(back.keys).toEqual(s.keys);
    expect(Array.from(back.features)).toEqual(Array.from(s.features));
    expect(back.failures).toEqual(s.failures);
    expect(() => decodeFeatureSet(new Uint8Array(20))).toThrow(/bad magic/);
  });
});

describe('model artifact', () => {
  it.each(['none', 'stage', 'global'] as const)('saves and loads a model that scores identically, without leaking tensors (whitening %s)', async (whiten) => {
    const set = synthetic(300, 2);
    const { model, log } = await fitDlsr(set, { ...smallConfig(3), whiten }, { backend: 'wasm', versions: { test: '1' } });
    expect(model.whitening === undefined).toBe(whiten === 'none');
    expect(log).toHaveLength(3);
    expect(model.calibration?.scores['mfsim']?.threshold).toBeTypeOf('number');
    const dir = mkdtempSync(path.join(tmpdir(), 'ood-artifact-'));
    const store = new LocalStore(dir);
    await saveModel(store, 'models/m1', model, log);
    const loaded = await loadModel(store, 'models/m1');
    expect(loaded.whitening).toEqual(model.whitening);
    const probe = synthetic(40, 9, 2);
    const a = scoreFeatures(model, probe);
    const before = tf.memory().numTensors;
    const b = scoreFeatures(loaded, probe);
    expect(tf.memory().numTensors).toBe(before);
    expect(scoreTypesOf(a.scores)).toEqual([...SCORE_TYPES]);
    for (const t of SCORE_TYPES) expect(Array.from(b.scores[t]!)).toEqual(Array.from(a.scores[t]!));
    expect(loaded.calibration).toEqual(model.calibration);
    expect(loaded.fusion).toEqual(model.fusion);
    // The fused score is calibrated on the holdout it was normalised on: mean 0 there.
    expect(Math.abs(model.calibration!.scores['fused']!.mean)).toBeLessThan(1e-5);
    // A subset of scores is computed on its own, equal to the full computation's columns.
    const some = scoreFeatures(loaded, probe, { types: new Set(['mfsim', 'fused'] as const) });
    expect(scoreTypesOf(some.scores)).toEqual(['fused', 'mfsim']);
    expect(Array.from(some.scores.mfsim!)).toEqual(Array.from(a.scores.mfsim!));
    expect(Array.from(some.scores.fused!)).toEqual(Array.from(a.scores.fused!));
    expect(loaded.fingerprint).toEqual(model.fingerprint);
    disposeModel(model);
    disposeModel(loaded);
    await expect(loadModel(store, 'models/none')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('fuses the configured parts and takes MFsim in the configured space, through save and load', async () => {
    const set = synthetic(300, 2);
    const base = smallConfig(3);
    const cfg: DlsrConfig = { ...base, whiten: 'stage', scoring: { ...base.scoring, fusedParts: ['mse', 'mahalanobis'], cosineSpace: 'standardised' } };
    const { model, log } = await fitDlsr(set, cfg, { backend: 'wasm', versions: {} });
    expect(model.fusion?.parts).toEqual(['mse', 'mahalanobis']);
    const probe = synthetic(40, 9, 2);
    const all = scoreFeatures(model, probe);
    // fused = mean of the parts, each z-scored with the holdout's mean and std.
    const f = model.fusion!;
    for (let i = 0; i < 40; i++) {
      const want = ((all.scores.mse![i]! - f.mean[0]!) / f.std[0]! + (all.scores.mahalanobis![i]! - f.mean[1]!) / f.std[1]!) / 2;
      expect(all.scores.fused![i]!).toBeCloseTo(want, 4);
    }
    // Only the asked types come back, even when the fused score needed others.
    expect(scoreTypesOf(scoreFeatures(model, probe, { types: new Set(['fused'] as const) }).scores)).toEqual(['fused']);
    // MFsim in the standardised space: the cosine of z and the reconstruction mapped back.
    const r = reconstructRows(model, probe, false);
    const back = reconstructionScores(r.z, unapplyWhitening(model.whitening, r.final, d), stageSizes);
    const inLfdn = reconstructionScores(r.u, r.final, stageSizes);
    expect(Array.from(all.scores.mfsim!)).toEqual(Array.from(back.mfsim));
    expect(Array.from(all.scores.mfsim!)).not.toEqual(Array.from(inLfdn.mfsim));
    const store = new LocalStore(mkdtempSync(path.join(tmpdir(), 'ood-artifact-')));
    await saveModel(store, 'm', model, log);
    const loaded = await loadModel(store, 'm');
    expect(loaded.config.scoring).toMatchObject({ fusedParts: ['mse', 'mahalanobis'], cosineSpace: 'standardised' });
    expect(Array.from(scoreFeatures(loaded, probe).scores.fused!)).toEqual(Array.from(all.scores.fused!));
    // A model.json whose fusion statistics do not match its parts is refused (else every fused score is NaN).
    const file = path.join(store.root, 'm', 'model.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as { fusion: { mean: number[]; parts: string[] } };
    writeFileSync(file, JSON.stringify({ ...json, fusion: { ...json.fusion, mean: [0] } }));
    await expect(loadModel(store, 'm')).rejects.toThrow(/fusion: must have one mean and one std per part/);
    writeFileSync(file, JSON.stringify({ ...json, fusion: { ...json.fusion, parts: ['mse', 'mse'] } }));
    await expect(loadModel(store, 'm')).rejects.toThrow(/fusion: parts must be distinct/);
    disposeModel(model);
    disposeModel(loaded);
    expect(() => validateDlsrConfig({ ...cfg, scoring: { ...cfg.scoring, fusedParts: ['mse', 'mse'] } })).toThrow(/invalid fused parts: expected distinct scores of mse, mfsim, mfsim_all, lr, mahalanobis, knn, got \["mse","mse"\]/);
  });

  it('resumes from a checkpoint to exactly the weights of an uninterrupted run', async () => {
    const set = synthetic(200, 3);
    const cfg = smallConfig(4);
    const full = await fitDlsr(set, cfg, { backend: 'wasm', versions: {} });
    // Interrupted run: checkpoint after epoch 2, then "crash".
    let saved: Uint8Array | undefined;
    const crash = new AbortController();
    await expect(
      fitDlsr(set, cfg, {
        backend: 'wasm',
        versions: {},
        signal: crash.signal,
        onEpoch: async (r, state: TrainState, first: LfdnParams) => {
          if (r.epoch === 2) {
            saved = await encodeCheckpoint(state, first, { config: cfg, fingerprintId: set.fingerprint.id, dataId: 'd' });
            crash.abort();
          }
        },
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const ck = decodeCheckpoint(saved!, 'test', d);
    expect(ck.state.epoch).toBe(2);
    expect(ck.dataId).toBe('d');
    const resumed = await fitDlsr(set, cfg, { backend: 'wasm', versions: {}, resume: { state: ck.state, firstEpochEma: ck.firstEpochEma } });
    expect(resumed.log.map((l) => l.epoch)).toEqual([3, 4]);
    expect(resumed.log.map((l) => l.loss)).toEqual(full.log.slice(2).map((l) => l.loss));
    const probe = synthetic(20, 4);
    expect(Array.from(scoreFeatures(resumed.model, probe).scores.lr!)).toEqual(Array.from(scoreFeatures(full.model, probe).scores.lr!));
    disposeModel(full.model);
    disposeModel(resumed.model);
  });
});
