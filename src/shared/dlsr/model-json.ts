/**
 * model.json, the description of a model folder: format, configuration, encoder fingerprint, stage
 * sizes, provenance and the weights manifests. Read without loading tfjs (the CLI plans scans from
 * it); artifact.ts loads the rest.
 */
import type * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import type { EncoderFingerprint } from '../encoder/encoder.js';
import type { FusionStats } from '../scores.js';
import type { Calibration } from '../calibration.js';
import { getJson, joinKey, type ObjectStore } from '../storage/object-store.js';
import type { DlsrConfig } from './config.js';
import type { ModelInfo } from './model.js';

export const MODEL_FORMAT = 'ood-audit-dlsr-model';
export const MODEL_FORMAT_VERSION = 1;

export interface ModelJson {
  readonly format: typeof MODEL_FORMAT;
  readonly formatVersion: number;
  readonly config: DlsrConfig;
  readonly fingerprint: EncoderFingerprint;
  readonly stageSizes: readonly number[];
  readonly info: ModelInfo;
  /** tfjs weights manifest of the final LFDN (conventional name). */
  readonly weightsManifest: tf.io.WeightsManifestConfig;
  readonly firstEpochWeightsManifest: tf.io.WeightsManifestConfig;
  readonly baselines: { readonly path: string; readonly shrinkage: number; readonly knnK: number };
  /** Holdout normalisation of the fused score's parts (absent in models made before it). */
  readonly fusion?: FusionStats;
}

export const MODEL_FILES = {
  model: 'model.json',
  weights: 'weights.bin',
  weightsFirst: 'weights-first.bin',
  baselines: 'baselines.bin',
  calibration: 'calibration.json',
  trainingLog: 'training-log.json',
  firstCheckpoint: 'checkpoints/epoch-0001.ckpt',
  latestCheckpoint: 'checkpoints/latest.ckpt',
} as const;

export async function readModelJson(store: ObjectStore, prefix: string): Promise<ModelJson> {
  const key = joinKey(prefix, MODEL_FILES.model);
  if ((await store.head(key)) === undefined) {
    throw new OodError('NOT_FOUND', `no model at ${joinKey(store.uri, prefix)}: ${MODEL_FILES.model} is missing (run ood-audit fit first)`);
  }
  const json = await getJson<ModelJson>(store, key);
  if (json.format !== MODEL_FORMAT) throw new OodError('MODEL_INVALID', `${key}: not an ood-audit model (format ${JSON.stringify(json.format)})`);
  if (json.formatVersion > MODEL_FORMAT_VERSION) throw new OodError('MODEL_INVALID', `${key}: model format ${json.formatVersion} is newer than this ood-audit (${MODEL_FORMAT_VERSION})`);
  return json;
}


/** calibration.json of a model folder (fitted by the fit job on the ID holdout). */
export async function readCalibration(store: ObjectStore, prefix: string): Promise<Calibration> {
  const key = joinKey(prefix, MODEL_FILES.calibration);
  if ((await store.head(key)) === undefined) throw new OodError('MODEL_INVALID', `${joinKey(store.uri, prefix)}: the model has no ${MODEL_FILES.calibration} (refit it)`);
  return getJson<Calibration>(store, key);
}
