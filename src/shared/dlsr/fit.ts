/**
 * Fitting a DLSR model on ID features: split off the calibration holdout (by a seeded hash of the
 * key, so the split does not depend on listing order), standardise, train the LFDN with per-epoch
 * checkpoint hooks (resumable), fit the baselines and (when the images have properties) the
 * conditions statistics, and calibrate every score on the holdout.
 */
import { OodError } from '../errors.js';
import { seedFor } from '../rng.js';
import { selectRows, type FeatureSet } from '../feature-set.js';
import { gatherRows, standardiseStages } from '../features.js';
import { makeSchedule } from '../diffusion/schedule.js';
import { cloneParams, disposeParams, type LfdnParams } from '../diffusion/lfdn.js';
import type { LfdnConfig } from '../diffusion/config.js';
import { disposeTrainState, emaParams, newTrainState, trainEpoch, type EpochResult, type TrainState } from '../diffusion/train.js';
import { makeDenoiser } from '../diffusion/ddim.js';
import { fitKnn, fitMahalanobis } from '../baselines.js';
import { calibrate } from '../calibration.js';
import { applyWhitening, fitWhitening } from '../whitening.js';
import { fitFusion, fuseScores, FUSED_PARTS } from '../scores.js';
import { validateDlsrConfig, whitenModeOf, type DlsrConfig } from './config.js';
import { scoreFeatures, type DlsrModel } from './model.js';
import { scoreTypesOf } from '../score-table.js';
import { fitConditions } from '../conditions.js';
import { selectProperties } from '../image/properties.js';

export interface HoldoutSplit {
  readonly train: number[];
  readonly holdout: number[];
}

/** Deterministic split: the `fraction` of keys with the smallest seeded hash are held out. */
export function splitHoldout(keys: readonly string[], fraction: number, seed: number): HoldoutSplit {
  const order = keys.map((k, i) => ({ i, h: seedFor(seed ^ 0x40d0, k) })).sort((a, b) => a.h - b.h || a.i - b.i);
  const nHold = Math.round(keys.length * fraction);
  const holdout = order.slice(0, nHold).map((o) => o.i).sort((a, b) => a - b);
  const held = new Set(holdout);
  const train = keys.map((_, i) => i).filter((i) => !held.has(i));
  return { train, holdout };
}

export function lfdnConfigFor(cfg: DlsrConfig, featureSize: number): LfdnConfig {
  return { featureSize, width: cfg.lfdn.width, depth: cfg.lfdn.depth, timesteps: cfg.schedule.steps };
}

export interface FitHooks {
  /** After every epoch, with the full training state (persist it to resume). */
  readonly onEpoch?: (result: EpochResult, state: TrainState, firstEpochEma: LfdnParams) => Promise<void>;
  /** Progress inside an epoch. */
  readonly onBatch?: (done: number, total: number) => void;
  /** Resume from a checkpoint: the state and the first-epoch EMA weights (ownership passes to fit). */
  readonly resume?: { readonly state: TrainState; readonly firstEpochEma: LfdnParams };
  readonly signal?: AbortSignal;
  readonly backend: string;
  readonly versions: Readonly<Record<string, string>>;
  /** Where the ID images came from (recorded in the model). */
  readonly idSource?: string;
}

export interface FitResult {
  readonly model: DlsrModel;
  readonly log: readonly EpochResult[];
}

export async function fitDlsr(set: FeatureSet, cfg: DlsrConfig, hooks: FitHooks): Promise<FitResult> {
  validateDlsrConfig(cfg);
  const d = set.stageSizes.reduce((a, b) => a + b, 0);
  const split = splitHoldout(set.keys, cfg.holdoutFraction, cfg.train.seed);
  if (split.train.length < 2) throw new OodError('CONFIG_INVALID', `fit: need at least 2 training images after the holdout, got ${split.train.length} of ${set.keys.length}`);
  if (split.holdout.length < 1) throw new OodError('CONFIG_INVALID', `fit: the calibration holdout is empty (${set.keys.length} images x ${cfg.holdoutFraction}); add images or raise the holdout fraction`);
  const zTrain = standardiseStages(gatherRows(set.features, d, split.train), set.stageSizes);
  const whitening = fitWhitening(zTrain, set.stageSizes, whitenModeOf(cfg), cfg.whitenStrength);
  const uTrain = applyWhitening(whitening, zTrain, d);
  const lfdn = lfdnConfigFor(cfg, d);
  const schedule = makeSchedule(cfg.schedule);

  const state = hooks.resume?.state ?? newTrainState(lfdn, cfg.train.seed);
  let firstEma: LfdnParams | undefined = hooks.resume?.firstEpochEma;
  const log: EpochResult[] = [];
  const started = performance.now();
  try {
    while (state.epoch < cfg.train.epochs) {
      if (hooks.signal?.aborted === true) throw new OodError('ABORTED', `training aborted after epoch ${state.epoch}`);
      const result = trainEpoch(state, lfdn, schedule, cfg.train, uTrain, hooks.onBatch);
      log.push(result);
      if (firstEma === undefined) firstEma = emaParams(state);
      await hooks.onEpoch?.(result, state, firstEma);
      // Yield so signals and lock renewals are handled between epochs.
      await new Promise((r) => setImmediate(r));
    }
    if (firstEma === undefined) throw new OodError('INTERNAL', 'no first-epoch weights: resumed state has no epoch 1 checkpoint');
    const first = makeDenoiser(cloneParams(firstEma), lfdn);
    const final = makeDenoiser(emaParams(state), lfdn);
    const knnIdx = split.train.length > cfg.knn.bankMax ? split.train.filter((_, i) => i % Math.ceil(split.train.length / cfg.knn.bankMax) === 0) : split.train;
    let model: DlsrModel = {
      config: cfg,
      fingerprint: set.fingerprint,
      stageSizes: set.stageSizes,
      final,
      first,
      whitening,
      fusion: undefined,
      mahalanobis: fitMahalanobis(zTrain, d),
      knn: fitKnn(standardiseStages(gatherRows(set.features, d, knnIdx), set.stageSizes), d, Math.min(cfg.knn.k, knnIdx.length)),
      calibration: undefined,
      info: {
        backend: hooks.backend,
        versions: hooks.versions,
        trainCount: split.train.length,
        holdoutCount: split.holdout.length,
        epochs: state.epoch,
        trainSeconds: (performance.now() - started) / 1000,
        ...(hooks.idSource !== undefined ? { idSource: hooks.idSource } : {}),
        ...(set.backend !== undefined ? { encoderRuntime: set.backend } : {}),
      },
    };
    // The ID set's image properties: centre and scale from the training split, bins on the holdout.
    if (set.properties !== undefined) model = { ...model, conditions: fitConditions(selectProperties(set.properties, split.train), selectProperties(set.properties, split.holdout)) };
    // Without fusion statistics the holdout is scored on every other score; the fused score is then
    // normalised on the holdout's own part scores and calibrated like the rest.
    const table = scoreFeatures(model, selectRows(set, split.holdout));
    const fusion = fitFusion(table.scores, cfg.scoring.fusedParts ?? FUSED_PARTS);
    model = { ...model, fusion };
    const scores = { ...table.scores, fused: fuseScores(table.scores, fusion) };
    const calibration = calibrate(Object.fromEntries(scoreTypesOf(scores).map((t) => [t, scores[t]!])), cfg.scoring.tpr);
    return { model: { ...model, calibration }, log };
  } finally {
    if (firstEma !== undefined) disposeParams(firstEma);
    disposeTrainState(state);
  }
}
