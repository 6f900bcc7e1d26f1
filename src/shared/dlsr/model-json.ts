/**
 * model.json, the description of a model folder: format, configuration, encoder fingerprint, stage
 * sizes, provenance, the weights manifests, and the size and sha256 of every other file of the
 * model. Read without loading tfjs (the CLI plans scans from it); artifact.ts loads the rest.
 *
 * A model folder is input like any other: model.json and calibration.json are validated against
 * their schemas on load, the encoder fingerprint must match its own fields, and every file must have
 * the size and sha256 model.json records. A bad file is refused with one line naming it and the field.
 */
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { OodError } from '../errors.js';
import { makeFingerprint, type EncoderFingerprint } from '../encoder/encoder.js';
import { FUSABLE_SCORES, type FusionStats } from '../scores.js';
import type { Calibration } from '../calibration.js';
import { sha256Hex } from '../hash.js';
import { getJson, joinKey, JSON_GET, objectUri, parseJson, type ObjectStore } from '../storage/object-store.js';
import { ALL_SCORE_TYPES, parseDlsrConfig, type DlsrConfig } from './config.js';
import { PROPERTY_BINS, type ConditionsModel } from '../conditions.js';
import { PROPERTY_NAMES } from '../image/properties.js';
import type { ModelInfo } from './model.js';

export const MODEL_FORMAT = 'ood-audit-dlsr-model';
/** 2: model.json records the size and sha256 of the model's other files. */
export const MODEL_FORMAT_VERSION = 2;

/** Size and content hash of one file of the model folder. */
export interface FileRecord {
  readonly bytes: number;
  readonly sha256: string;
}

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
  /**
   * The ID set's image-property statistics for the conditions score and the report's property drift
   * (conditions.ts; absent in models made before them). NaN is written as null.
   */
  readonly conditions?: ConditionsModel;
  /** Every other file of the model, by name. */
  readonly files: Readonly<Record<string, FileRecord>>;
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

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
/** A number that may be NaN, written as null in JSON. */
const nanable = z.union([finite, z.null()]).transform((v) => v ?? Number.NaN);
const manifest = z.array(z.object({ paths: z.array(z.string()).length(1), weights: z.array(z.object({ name: z.string(), shape: z.array(z.number().int().min(0)), dtype: z.literal('float32') })) })).length(1);
const fileRecordSchema = z.object({ bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

const modelJsonSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  formatVersion: z.number().int().min(1).max(MODEL_FORMAT_VERSION),
  config: z.unknown(),
  fingerprint: z.object({
    encoder: z.string(),
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256'),
    taps: z.array(z.string()).min(1),
    inputSize: z.number().int().positive(),
    preprocessing: z.object({ kind: z.enum(['symmetric', 'unit', 'imagenet', 'raw']) }),
    pooling: z.literal('gap'),
    id: z.string(),
  }),
  stageSizes: z.array(z.number().int().min(2)).min(1),
  info: z.object({ backend: z.string(), versions: z.record(z.string(), z.string()), trainCount: z.number().int().min(2), holdoutCount: z.number().int().min(1), epochs: z.number().int().min(1), trainSeconds: finite, idSource: z.string().optional(), encoderRuntime: z.string().optional() }),
  weightsManifest: manifest,
  firstEpochWeightsManifest: manifest,
  baselines: z.object({ path: z.literal(MODEL_FILES.baselines), shrinkage: finite, knnK: z.number().int().min(1) }),
  fusion: z
    .object({ parts: z.array(z.enum(FUSABLE_SCORES)).min(1), mean: z.array(finite), std: z.array(finite.refine((x) => x > 0, 'must be positive')) })
    .refine((f) => new Set(f.parts).size === f.parts.length, 'parts must be distinct')
    .refine((f) => f.mean.length === f.parts.length && f.std.length === f.parts.length, 'must have one mean and one std per part')
    .optional(),
  files: z.record(z.string(), fileRecordSchema).optional(),
  conditions: z
    .object({
      version: z.literal(1),
      properties: z
        .array(
          z.object({
            name: z.enum(PROPERTY_NAMES),
            centre: nanable,
            scale: finite.refine((x) => x > 0, 'must be positive'),
            present: finite,
            edges: z.array(finite).length(PROPERTY_BINS + 1),
            idCounts: z.array(z.number().int().min(0)).length(PROPERTY_BINS + 3),
            idMedian: nanable,
            idMean: nanable,
          }),
        )
        .refine((ps) => ps.map((p) => p.name).join() === PROPERTY_NAMES.join(), `must be the properties ${PROPERTY_NAMES.join(', ')} in that order (a model made by another ood-audit version: refit it)`),
      idFormats: z.record(z.string(), z.number().int().min(0)),
      holdoutCount: z.number().int().min(1),
    })
    .optional(),
});

const scoreCalibration = z.object({
  n: z.number().int().min(1),
  mean: finite,
  std: finite,
  quantiles: z.record(z.string(), finite),
  threshold: finite,
  sorted: z.array(finite).min(1),
});

const calibrationSchema = z.object({
  tpr: finite.refine((x) => x > 0 && x < 1, 'must be a fraction in (0, 1)'),
  holdoutCount: z.number().int().min(1),
  scores: z.partialRecord(z.enum(ALL_SCORE_TYPES), scoreCalibration),
});

function invalid(uri: string, issue: z.core.$ZodIssue | undefined): OodError {
  return new OodError('MODEL_INVALID', `${uri}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
}

export async function readModelJson(store: ObjectStore, prefix: string): Promise<ModelJson> {
  const key = joinKey(prefix, MODEL_FILES.model);
  const uri = objectUri(store, key);
  if ((await store.head(key)) === undefined) {
    throw new OodError('NOT_FOUND', `no model at ${joinKey(store.uri, prefix)}: ${MODEL_FILES.model} is missing (run ood-audit fit first)`);
  }
  const raw = await getJson<{ formatVersion?: unknown }>(store, key);
  if (typeof raw?.formatVersion === 'number' && raw.formatVersion > MODEL_FORMAT_VERSION) throw new OodError('MODEL_INVALID', `${uri}: model format ${raw.formatVersion} is newer than this ood-audit (${MODEL_FORMAT_VERSION})`);
  const r = modelJsonSchema.safeParse(raw);
  if (!r.success) throw invalid(uri, r.error.issues[0]);
  const json = r.data;
  const config = parseDlsrConfig(json.config, uri);
  const { id, ...fields } = json.fingerprint;
  if (makeFingerprint(fields).id !== id) throw new OodError('MODEL_INVALID', `${uri}: fingerprint.id does not match the fingerprint's fields (edited model.json?)`);
  if (json.formatVersion >= 2 && json.files === undefined) throw new OodError('MODEL_INVALID', `${uri}: files: required`);
  return { ...json, config, files: json.files ?? {} } as ModelJson;
}

/**
 * Reads one file of a model folder, checked against the size and sha256 model.json records
 * (models made before format 2 record none: only their structure is checked).
 */
export async function readModelFile(store: ObjectStore, prefix: string, json: Pick<ModelJson, 'files'>, name: string): Promise<Uint8Array> {
  const bytes = await store.get(joinKey(prefix, name));
  checkRecord(store, prefix, json, name, bytes);
  return bytes;
}

function checkRecord(store: ObjectStore, prefix: string, json: Pick<ModelJson, 'files'>, name: string, bytes: Uint8Array): void {
  const key = joinKey(prefix, name);
  const rec = json.files[name];
  if (rec === undefined) {
    if (Object.keys(json.files).length > 0) throw new OodError('MODEL_INVALID', `${objectUri(store, joinKey(prefix, MODEL_FILES.model))}: files.${name}: missing`);
    return;
  }
  if (bytes.byteLength !== rec.bytes) throw new OodError('MODEL_INVALID', `${objectUri(store, key)}: ${bytes.byteLength} bytes, model.json records ${rec.bytes}`);
  if (sha256Hex(bytes) !== rec.sha256) throw new OodError('MODEL_INVALID', `${objectUri(store, key)}: sha256 differs from the one model.json records (the file was changed)`);
}

/** The record model.json keeps of a file's bytes. */
export function fileRecord(bytes: Uint8Array | string): FileRecord {
  const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  return { bytes: b.byteLength, sha256: sha256Hex(b) };
}

/** calibration.json of a model folder (fitted by the fit job on the ID holdout), validated. */
export async function readCalibration(store: ObjectStore, prefix: string, json: Pick<ModelJson, 'files' | 'config'>): Promise<Calibration> {
  const key = joinKey(prefix, MODEL_FILES.calibration);
  const uri = objectUri(store, key);
  if ((await store.head(key)) === undefined) throw new OodError('MODEL_INVALID', `${joinKey(store.uri, prefix)}: the model has no ${MODEL_FILES.calibration} (refit it)`);
  const bytes = await store.get(key, JSON_GET);
  const r = calibrationSchema.safeParse(parseJson<unknown>(bytes, uri));
  if (!r.success) throw invalid(uri, r.error.issues[0]);
  const primary = json.config.scoring.primary;
  if (r.data.scores[primary] === undefined) throw new OodError('MODEL_INVALID', `${uri}: scores.${primary}: missing (the primary score)`);
  // The schema first (its errors name the field), then the bytes against model.json's record.
  checkRecord(store, prefix, json, MODEL_FILES.calibration, bytes);
  return r.data as Calibration;
}

/**
 * Checks a whole model folder before a run relies on it: model.json, calibration.json, and every
 * file model.json records (size and sha256, read and hashed one at a time), and that each weights
 * file has the size its manifest describes. No tfjs: the CLI runs this when it plans a scan.
 */
export async function verifyModel(store: ObjectStore, prefix: string): Promise<ModelJson> {
  const json = await readModelJson(store, prefix);
  await readCalibration(store, prefix, json);
  for (const name of Object.keys(json.files)) await readModelFile(store, prefix, json, name);
  for (const m of [json.weightsManifest, json.firstEpochWeightsManifest]) {
    const group = m[0]!;
    const name = group.paths[0]!;
    const described = group.weights.reduce((sum, spec) => sum + 4 * spec.shape.reduce((a, b) => a * b, 1), 0);
    const rec = json.files[name];
    if (rec !== undefined && rec.bytes !== described) throw new OodError('MODEL_INVALID', `${objectUri(store, joinKey(prefix, MODEL_FILES.model))}: files.${name}: ${rec.bytes} bytes recorded, the weights manifest describes ${described}`);
  }
  return json;
}
