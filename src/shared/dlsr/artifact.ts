/**
 * The model artifact, a folder (or object-store prefix):
 *
 *   model.json          format, config, encoder fingerprint, stage sizes, backend, versions, the
 *                       tfjs weights manifests of the final and first-epoch LFDN (EMA weights), and
 *                       the ID set's image-property statistics (conditions score, property drift)
 *   weights.bin         final LFDN weights (tfjs format)
 *   weights-first.bin   first-epoch LFDN weights, for LR
 *   baselines.bin       Mahalanobis mean/precision and the kNN bank (tensor bundle)
 *   calibration.json    ID-holdout score statistics and thresholds (the conditions score's too)
 *   training-log.json   loss per epoch
 *   checkpoints/epoch-0001.ckpt, checkpoints/latest.ckpt   full training state (resumable)
 *
 * model.json is written last, so a folder without it is an unfinished fit.
 */
import * as tf from '@tensorflow/tfjs';
import { OodError } from '../errors.js';
import { Rng } from '../rng.js';
import { paramSpecs, type LfdnParams } from '../diffusion/lfdn.js';
import { makeDenoiser } from '../diffusion/ddim.js';
import { stateFromTensors, type EpochResult, type TrainState } from '../diffusion/train.js';
import { joinKey, objectUri, putJson, type ObjectStore } from '../storage/object-store.js';
import { decodeBundle, decodeWeights, encodeBundle, encodeWeights } from './bundle.js';
import { whitenModeOf, type DlsrConfig } from './config.js';
import { lfdnConfigFor } from './fit.js';
import type { DlsrModel } from './model.js';
import { fileRecord, MODEL_FILES, MODEL_FORMAT, MODEL_FORMAT_VERSION, readCalibration, readModelFile, readModelJson, type ModelJson } from './model-json.js';

export async function saveModel(store: ObjectStore, prefix: string, model: DlsrModel, log: readonly EpochResult[]): Promise<void> {
  const k = (name: string): string => joinKey(prefix, name);
  const final = await encodeWeights(model.final.params);
  const first = await encodeWeights(model.first.params);
  const d = model.stageSizes.reduce((a, b) => a + b, 0);
  const baselineTensors = new Map<string, tf.Tensor>([
    ['mahalanobis.mean', tf.tensor1d(model.mahalanobis.mean)],
    ['mahalanobis.precision', tf.tensor2d(model.mahalanobis.precision, [d, d])],
    ['knn.bank', tf.tensor2d(model.knn.bank, [model.knn.bank.length / d, d])],
  ]);
  if (model.whitening !== undefined) {
    baselineTensors.set('whitening.mean', tf.tensor1d(model.whitening.mean));
    baselineTensors.set('whitening.matrix', tf.tensor2d(model.whitening.matrix, [d, d]));
  }
  let baselines: Uint8Array;
  try {
    baselines = await encodeBundle({ kind: 'baselines' }, baselineTensors);
  } finally {
    tf.dispose([...baselineTensors.values()]);
  }
  if (model.calibration === undefined) throw new OodError('INTERNAL', 'saveModel: the model has no calibration');
  const calibration = JSON.stringify(model.calibration, null, 2) + '\n';
  await store.put(k(MODEL_FILES.weights), final.data);
  await store.put(k(MODEL_FILES.weightsFirst), first.data);
  await store.put(k(MODEL_FILES.baselines), baselines);
  await store.put(k(MODEL_FILES.calibration), calibration);
  await putJson(store, k(MODEL_FILES.trainingLog), { epochs: log });
  const json: ModelJson = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    config: model.config,
    fingerprint: model.fingerprint,
    stageSizes: model.stageSizes,
    info: model.info,
    weightsManifest: [{ paths: [MODEL_FILES.weights], weights: final.specs }],
    firstEpochWeightsManifest: [{ paths: [MODEL_FILES.weightsFirst], weights: first.specs }],
    baselines: { path: MODEL_FILES.baselines, shrinkage: model.mahalanobis.shrinkage, knnK: model.knn.k },
    ...(model.fusion !== undefined ? { fusion: model.fusion } : {}),
    ...(model.conditions !== undefined ? { conditions: model.conditions } : {}),
    files: {
      [MODEL_FILES.weights]: fileRecord(final.data),
      [MODEL_FILES.weightsFirst]: fileRecord(first.data),
      [MODEL_FILES.baselines]: fileRecord(baselines),
      [MODEL_FILES.calibration]: fileRecord(calibration),
    },
  };
  // model.json last: a folder without it is an unfinished fit.
  await putJson(store, k(MODEL_FILES.model), json);
}

function checkParams(params: LfdnParams, json: ModelJson, what: string): void {
  const d = json.stageSizes.reduce((a, b) => a + b, 0);
  for (const spec of paramSpecs(lfdnConfigFor(json.config, d))) {
    const t = params.get(spec.name);
    if (t === undefined || t.shape.join('x') !== spec.shape.join('x')) {
      throw new OodError('MODEL_INVALID', `${what}: parameter ${spec.name} expected shape [${spec.shape.join(', ')}], got ${t === undefined ? 'none' : `[${t.shape.join(', ')}]`}`);
    }
  }
}

export async function loadModel(store: ObjectStore, prefix: string): Promise<DlsrModel> {
  const json = await readModelJson(store, prefix);
  const k = (name: string): string => joinKey(prefix, name);
  const d = json.stageSizes.reduce((a, b) => a + b, 0);
  const lfdn = lfdnConfigFor(json.config, d);
  const readWeights = async (manifest: tf.io.WeightsManifestConfig, what: string): Promise<LfdnParams> => {
    const group = manifest[0];
    if (group === undefined) throw new OodError('MODEL_INVALID', `${what}: empty weights manifest`);
    const name = group.paths[0]!;
    const data = await readModelFile(store, prefix, json, name);
    const expected = group.weights.reduce((s, spec) => s + 4 * spec.shape.reduce((a, b) => a * b, 1), 0);
    if (data.byteLength !== expected) throw new OodError('MODEL_INVALID', `${objectUri(store, k(name))}: ${data.byteLength} bytes, the weights manifest describes ${expected}`);
    const params = decodeWeights({ specs: group.weights, data });
    checkParams(params, json, what);
    return params;
  };
  const final = makeDenoiser(await readWeights(json.weightsManifest, 'final weights'), lfdn);
  const first = makeDenoiser(await readWeights(json.firstEpochWeightsManifest, 'first-epoch weights'), lfdn);
  const { tensors } = decodeBundle(await readModelFile(store, prefix, json, json.baselines.path), objectUri(store, k(json.baselines.path)));
  const take = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (t === undefined) throw new OodError('MODEL_INVALID', `${k(json.baselines.path)}: ${name} missing`);
    const v = t.dataSync() as Float32Array;
    t.dispose();
    return v;
  };
  const calibration = await readCalibration(store, prefix, json);
  return {
    config: json.config,
    fingerprint: json.fingerprint,
    stageSizes: json.stageSizes,
    final,
    first,
    fusion: json.fusion,
    whitening: whitenModeOf(json.config) === 'none' ? undefined : { mean: take('whitening.mean'), matrix: take('whitening.matrix') },
    mahalanobis: { mean: take('mahalanobis.mean'), precision: take('mahalanobis.precision'), shrinkage: json.baselines.shrinkage },
    knn: { bank: take('knn.bank'), k: json.baselines.knnK },
    calibration,
    ...(json.conditions !== undefined ? { conditions: json.conditions } : {}),
    info: json.info,
  };
}

// ---- training checkpoints ------------------------------------------------------------------------

interface CheckpointHeader {
  readonly kind: 'train-state';
  readonly epoch: number;
  readonly step: number;
  readonly rng: (number | null)[];
  readonly fingerprintId: string;
  /** Identity of the training data (absent in checkpoints made before it: never resumed). */
  readonly dataId?: string;
  readonly config: DlsrConfig;
}

/** What a checkpoint was made from: resuming is only right for the same configuration, encoder and data. */
export interface CheckpointOrigin {
  readonly config: DlsrConfig;
  readonly fingerprintId: string;
  readonly dataId: string;
}

export async function encodeCheckpoint(state: TrainState, firstEma: LfdnParams, origin: CheckpointOrigin): Promise<Uint8Array> {
  const tensors = new Map<string, tf.Tensor>();
  for (const [group, map] of [['params', state.params], ['ema', state.ema], ['m', state.m], ['v', state.v], ['first', firstEma]] as const) {
    for (const [name, t] of map) tensors.set(`${group}/${name}`, t);
  }
  const header: CheckpointHeader = { kind: 'train-state', epoch: state.epoch, step: state.step, rng: state.rng.state(), fingerprintId: origin.fingerprintId, dataId: origin.dataId, config: origin.config };
  return encodeBundle({ ...header }, tensors);
}

export interface DecodedCheckpoint {
  readonly state: TrainState;
  readonly firstEpochEma: LfdnParams;
  readonly config: DlsrConfig;
  readonly fingerprintId: string;
  readonly dataId: string | undefined;
}

export function decodeCheckpoint(bytes: Uint8Array, source: string, featureSize: number): DecodedCheckpoint {
  const { header, tensors } = decodeBundle<CheckpointHeader>(bytes, source);
  if (header.kind !== 'train-state') throw new OodError('MODEL_INVALID', `${source}: not a training checkpoint`);
  const groups: Record<string, LfdnParams> = { params: new Map(), ema: new Map(), m: new Map(), v: new Map(), first: new Map() };
  for (const [name, t] of tensors) {
    const slash = name.indexOf('/');
    const g = groups[name.slice(0, slash)];
    if (g === undefined) throw new OodError('MODEL_INVALID', `${source}: unexpected tensor ${name}`);
    g.set(name.slice(slash + 1), t);
  }
  const lfdn = lfdnConfigFor(header.config, featureSize);
  const state = stateFromTensors(lfdn, { params: groups['params']!, ema: groups['ema']!, m: groups['m']!, v: groups['v']! }, header.epoch, header.step, Rng.fromState(header.rng));
  return { state, firstEpochEma: groups['first']!, config: header.config, fingerprintId: header.fingerprintId, dataId: header.dataId };
}
