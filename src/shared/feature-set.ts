/**
 * A feature set: pooled (unstandardised) encoder features for a list of image keys, their image
 * properties (image/properties.ts; absent in sets made before them), the sha256 of
 * each image's bytes (the scores' per-image randomness is seeded by it, so identical bytes score
 * identically wherever they live), the encoder fingerprint that made them, and the images that could
 * not be read or decoded with their reasons. Serialised as one binary frame (binary-frame.ts, magic
 * "OODFEAT2"): the header JSON, then float32 LE rows, then (when the header names properties) each
 * image's property vector as float32 LE rows. The header is validated when read back.
 */
import { z } from 'zod';
import { OodError } from './errors.js';
import { assertSameEncoder, type EncoderFingerprint } from './encoder/encoder.js';
import { decodeFrame, encodeFrame } from './binary-frame.js';
import { gatherRows } from './features.js';
import { concatProperties, PROPERTY_COUNT, PROPERTY_NAMES, selectProperties, type PropertyTable } from './image/properties.js';
import { concatFloat32 } from './typed-arrays.js';

export interface Failure {
  readonly key: string;
  readonly reason: string;
}

export interface FeatureSet {
  readonly fingerprint: EncoderFingerprint;
  readonly stageSizes: readonly number[];
  readonly keys: readonly string[];
  /** Hex sha256 of each image's bytes, in key order. */
  readonly digests: readonly string[];
  /** Row-major [keys.length, featureSize]. */
  readonly features: Float32Array;
  readonly failures: readonly Failure[];
  /**
   * Each image's properties (image/properties.ts), in key order; absent in feature sets made before
   * them (such rows get no conditions score).
   */
  readonly properties?: PropertyTable;
  /** What computed the features (the encoder's runtime label, e.g. `tfjs wasm`; informational, not part of their identity). */
  readonly backend?: string;
}

/** The rows a model scores: keys, their content digests and their features. */
export type FeatureRows = Pick<FeatureSet, 'keys' | 'digests' | 'features' | 'properties'>;

const MAGIC = 'OODFEAT2';

const preprocessing = z.object({ kind: z.enum(['symmetric', 'unit', 'imagenet', 'raw']) });
const header = z.object({
  fingerprint: z.object({
    encoder: z.string(),
    weightsSha256: z.string(),
    taps: z.array(z.string()),
    inputSize: z.number().int().positive(),
    preprocessing,
    pooling: z.literal('gap'),
    id: z.string(),
  }),
  stageSizes: z.array(z.number().int().positive()).min(1),
  keys: z.array(z.string()),
  digests: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  failures: z.array(z.object({ key: z.string(), reason: z.string() })),
  properties: z.object({ names: z.array(z.string()), formats: z.array(z.string()) }).optional(),
  backend: z.string().optional(),
});

export function featureSize(set: Pick<FeatureSet, 'stageSizes'>): number {
  return set.stageSizes.reduce((a, b) => a + b, 0);
}

export function encodeFeatureSet(set: FeatureSet): Uint8Array {
  const d = featureSize(set);
  if (set.features.length !== set.keys.length * d || set.digests.length !== set.keys.length) {
    throw new OodError('SHAPE_MISMATCH', `feature set: expected ${set.keys.length}x${d} values and ${set.keys.length} digests, got ${set.features.length} and ${set.digests.length}`);
  }
  const p = set.properties;
  if (p !== undefined && (p.formats.length !== set.keys.length || p.values.length !== set.keys.length * PROPERTY_COUNT)) {
    throw new OodError('SHAPE_MISMATCH', `feature set: expected ${set.keys.length}x${PROPERTY_COUNT} property values and ${set.keys.length} formats, got ${p.values.length} and ${p.formats.length}`);
  }
  const head = { fingerprint: set.fingerprint, stageSizes: set.stageSizes, keys: set.keys, digests: set.digests, failures: set.failures, ...(p !== undefined ? { properties: { names: PROPERTY_NAMES, formats: p.formats } } : {}), backend: set.backend };
  const body = new Uint8Array(set.features.byteLength + (p?.values.byteLength ?? 0));
  body.set(new Uint8Array(set.features.buffer, set.features.byteOffset, set.features.byteLength));
  if (p !== undefined) body.set(new Uint8Array(p.values.buffer, p.values.byteOffset, p.values.byteLength), set.features.byteLength);
  return encodeFrame(MAGIC, head, body);
}

export function decodeFeatureSet(bytes: Uint8Array, source = 'feature set'): FeatureSet {
  const frame = decodeFrame(bytes, MAGIC, source, 'an ood-audit feature set');
  const parsed = header.safeParse(frame.header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OodError('MODEL_INVALID', `${source}: header ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const h = parsed.data;
  if (h.digests.length !== h.keys.length) throw new OodError('MODEL_INVALID', `${source}: ${h.keys.length} keys but ${h.digests.length} digests`);
  const expected = h.keys.length * featureSize(h) * 4;
  const hp = h.properties;
  if (hp !== undefined && (hp.names.join() !== PROPERTY_NAMES.join() || hp.formats.length !== h.keys.length)) {
    throw new OodError('MODEL_INVALID', `${source}: properties: expected ${h.keys.length} formats of ${PROPERTY_NAMES.join(', ')}, got ${hp.formats.length} of ${hp.names.join(', ')}`);
  }
  const propBytes = hp !== undefined ? h.keys.length * PROPERTY_COUNT * 4 : 0;
  if (frame.body.length !== expected + propBytes) throw new OodError('MODEL_INVALID', `${source}: expected ${expected + propBytes} bytes of features${hp !== undefined ? ' and properties' : ''}, got ${frame.body.length}`);
  // Copy so the result is aligned and independent of the input buffer.
  const features = new Float32Array(expected / 4);
  new Uint8Array(features.buffer).set(frame.body.subarray(0, expected));
  const { properties: _names, ...rest } = h;
  if (hp === undefined) return { ...rest, features };
  const values = new Float32Array(propBytes / 4);
  new Uint8Array(values.buffer).set(frame.body.subarray(expected));
  return { ...rest, features, properties: { values, formats: hp.formats } };
}

/** The given rows of a set, in that order (the failures stay with the set). */
export function selectRows(set: FeatureSet, rows: readonly number[]): FeatureSet {
  return {
    ...set,
    keys: rows.map((i) => set.keys[i]!),
    digests: rows.map((i) => set.digests[i]!),
    features: gatherRows(set.features, featureSize(set), rows),
    ...(set.properties !== undefined ? { properties: selectProperties(set.properties, rows) } : {}),
  };
}

/** Concatenates feature sets made by the same encoder (shards of one run). */
export function concatFeatureSets(sets: readonly FeatureSet[]): FeatureSet {
  const first = sets[0];
  if (first === undefined) throw new OodError('INTERNAL', 'concatFeatureSets: no sets');
  for (const s of sets.slice(1)) assertSameEncoder(first.fingerprint, s.fingerprint, 'merging feature sets');
  // Shards may come from workers on different runtimes (the fingerprint is the same): keep each name once.
  const backends = [...new Set(sets.flatMap((s) => s.backend?.split(' + ') ?? []))].sort();
  const features = concatFloat32(sets.map((s) => s.features));
  return {
    fingerprint: first.fingerprint,
    stageSizes: first.stageSizes,
    keys: sets.flatMap((s) => s.keys),
    digests: sets.flatMap((s) => s.digests),
    features,
    failures: sets.flatMap((s) => s.failures),
    // Properties are kept when every set has them (caches made before them have none).
    ...(sets.every((s) => s.properties !== undefined) ? { properties: concatProperties(sets.map((s) => s.properties!)) } : {}),
    ...(backends.length > 0 ? { backend: backends.join(' + ') } : {}),
  };
}
