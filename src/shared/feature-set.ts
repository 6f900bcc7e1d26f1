/**
 * A feature set: pooled (unstandardised) encoder features for a list of image keys, the encoder
 * fingerprint that made them, and the images that failed to decode with their reasons. Serialised as
 * one binary object so it is written atomically:
 *
 *   "OODFEAT1" | uint32 LE header length | header JSON (utf-8) | pad to 4 bytes | float32 LE rows
 */
import { OodError } from './errors.js';
import { assertSameEncoder, type EncoderFingerprint } from './encoder/encoder.js';

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
  const header = new TextEncoder().encode(
    JSON.stringify({ fingerprint: set.fingerprint, stageSizes: set.stageSizes, keys: set.keys, failures: set.failures, backend: set.backend }),
  );
  const headerEnd = 8 + 4 + header.length;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  const out = new Uint8Array(dataStart + set.features.byteLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(new Uint8Array(set.features.buffer, set.features.byteOffset, set.features.byteLength), dataStart);
  return out;
}

export function decodeFeatureSet(bytes: Uint8Array, source = 'feature set'): FeatureSet {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new OodError('MODEL_INVALID', `${source}: not an ood-audit feature set (bad magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getUint32(8, true);
  if (12 + headerLen > bytes.length) throw new OodError('MODEL_INVALID', `${source}: truncated header`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLen))) as Omit<FeatureSet, 'features'>;
  const dataStart = Math.ceil((12 + headerLen) / 4) * 4;
  const d = featureSize(header);
  const expected = header.keys.length * d * 4;
  if (bytes.length - dataStart !== expected) {
    throw new OodError('MODEL_INVALID', `${source}: expected ${expected} bytes of features, got ${bytes.length - dataStart}`);
  }
  // Copy so the result is aligned and independent of the input buffer.
  const features = new Float32Array(expected / 4);
  new Uint8Array(features.buffer).set(bytes.subarray(dataStart));
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
