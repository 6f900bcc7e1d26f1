/**
 * A feature set: pooled (unstandardised) encoder features for a list of image keys, the encoder
 * fingerprint that made them, and the images that failed to decode with their reasons. Serialised as
 * one binary frame (binary-frame.ts, magic "OODFEAT1"): the header JSON, then float32 LE rows.
 */
import { OodError } from './errors.js';
import { assertSameEncoder, type EncoderFingerprint } from './encoder/encoder.js';
import { decodeFrame, encodeFrame } from './binary-frame.js';

export interface Failure {
  readonly key: string;
  readonly reason: string;
}

export interface FeatureSet {
  readonly fingerprint: EncoderFingerprint;
  readonly stageSizes: readonly number[];
  readonly keys: readonly string[];
  /** Row-major [keys.length, featureSize]. */
  readonly features: Float32Array;
  readonly failures: readonly Failure[];
  /** Backend that computed the features (informational). */
  readonly backend?: string;
}

const MAGIC = 'OODFEAT1';

export function featureSize(set: Pick<FeatureSet, 'stageSizes'>): number {
  return set.stageSizes.reduce((a, b) => a + b, 0);
}

export function encodeFeatureSet(set: FeatureSet): Uint8Array {
  const d = featureSize(set);
  if (set.features.length !== set.keys.length * d) {
    throw new OodError('SHAPE_MISMATCH', `feature set: expected ${set.keys.length}x${d} values, got ${set.features.length}`);
  }
  const header = { fingerprint: set.fingerprint, stageSizes: set.stageSizes, keys: set.keys, failures: set.failures, backend: set.backend };
  return encodeFrame(MAGIC, header, new Uint8Array(set.features.buffer, set.features.byteOffset, set.features.byteLength));
}

export function decodeFeatureSet(bytes: Uint8Array, source = 'feature set'): FeatureSet {
  const { header: raw, body } = decodeFrame(bytes, MAGIC, source, 'an ood-audit feature set');
  const header = raw as Omit<FeatureSet, 'features'>;
  const expected = header.keys.length * featureSize(header) * 4;
  if (body.length !== expected) throw new OodError('MODEL_INVALID', `${source}: expected ${expected} bytes of features, got ${body.length}`);
  // Copy so the result is aligned and independent of the input buffer.
  const features = new Float32Array(expected / 4);
  new Uint8Array(features.buffer).set(body);
  return { ...header, features };
}

/** Concatenates feature sets made by the same encoder (shards of one run). */
export function concatFeatureSets(sets: readonly FeatureSet[]): FeatureSet {
  const first = sets[0];
  if (first === undefined) throw new OodError('INTERNAL', 'concatFeatureSets: no sets');
  for (const s of sets.slice(1)) assertSameEncoder(first.fingerprint, s.fingerprint, 'merging feature sets');
  const total = sets.reduce((n, s) => n + s.features.length, 0);
  const features = new Float32Array(total);
  let off = 0;
  for (const s of sets) {
    features.set(s.features, off);
    off += s.features.length;
  }
  return {
    fingerprint: first.fingerprint,
    stageSizes: first.stageSizes,
    keys: sets.flatMap((s) => s.keys),
    features,
    failures: sets.flatMap((s) => s.failures),
    ...(first.backend !== undefined ? { backend: first.backend } : {}),
  };
}
