/**
 * The encoder contract: images in, multi-layer pooled features out. An encoder is frozen; its
 * fingerprint (weights hash, taps, input size, preprocessing) travels with every feature set and model
 * so features from different encoders are never mixed.
 */
import { OodError } from '../errors.js';
import { sha256Hex } from '../hash.js';

/** How uint8 RGB pixels become the encoder's input. */
export type Preprocessing =
  | { readonly kind: 'symmetric' } // x / 127.5 - 1 (Keras MobileNet, Inception)
  | { readonly kind: 'unit' } // x / 255
  | { readonly kind: 'imagenet' } // (x / 255 - mean) / std, torchvision convention
  | { readonly kind: 'raw' }; // x as float in [0, 255]

export interface StageInfo {
  /** Layer (or graph node) name. */
  readonly name: string;
  readonly channels: number;
}

export interface EncoderFingerprint {
  readonly encoder: string;
  readonly weightsSha256: string;
  readonly taps: readonly string[];
  readonly inputSize: number;
  readonly preprocessing: Preprocessing;
  readonly pooling: 'gap';
  /** sha256 over the fields above: the identity used for caching and compatibility checks. */
  readonly id: string;
}

export interface Encoder {
  readonly fingerprint: EncoderFingerprint;
  readonly stages: readonly StageInfo[];
  /** Total feature length, the sum of stage channels. */
  readonly featureSize: number;
  readonly inputSize: number;
  /** Preferred batch size for `encode`. */
  readonly batchSize: number;
  /** What runs it, for logs and artifacts (e.g. `onnxruntime-node 1.30.0 cpu, 1 thread`, `tfjs wasm`). Not part of the fingerprint. */
  readonly runtime: string;
  /**
   * Encodes `images` (each inputSize * inputSize * 3 RGB bytes) into globally average-pooled stage
   * features, concatenated in stage order: a row-major [images.length, featureSize] array. Not
   * standardised (see features.ts). Batches are encoded one at a time: await one before the next.
   */
  encode(images: readonly Uint8Array[]): Promise<Float32Array>;
  dispose(): void;
}

/**
 * Encodes `count` images in runs of at most `runBatch`: `runSlice(from, to, write)` runs images
 * [from, to) and hands their pooled rows to `write`, which places them at row `from` of the result.
 * On CPU runtimes small runs keep the activations in cache (4-8 images at 224 px, docs/encoder-runtimes.md).
 */
export async function encodeInSlices(
  count: number,
  runBatch: number,
  featureSize: number,
  runSlice: (from: number, to: number, write: (rows: Float32Array) => void) => Promise<void> | void,
): Promise<Float32Array> {
  const out = new Float32Array(count * featureSize);
  for (let from = 0; from < count; from += runBatch) {
    const to = Math.min(count, from + runBatch);
    await runSlice(from, to, (rows) => {
      if (rows.length !== (to - from) * featureSize) throw new OodError('SHAPE_MISMATCH', `encoder output for images ${from}-${to - 1}: expected ${(to - from) * featureSize} values, got ${rows.length}`);
      out.set(rows, from * featureSize);
    });
  }
  return out;
}

export function makeFingerprint(fields: Omit<EncoderFingerprint, 'id'>): EncoderFingerprint {
  const canonical = JSON.stringify({
    encoder: fields.encoder,
    weightsSha256: fields.weightsSha256,
    taps: fields.taps,
    inputSize: fields.inputSize,
    preprocessing: fields.preprocessing,
    pooling: fields.pooling,
  });
  const id = sha256Hex(canonical).slice(0, 16);
  return { ...fields, id };
}

/** Refuses to combine features or models made by different encoders. */
export function assertSameEncoder(expected: EncoderFingerprint, actual: EncoderFingerprint, context: string): void {
  if (expected.id === actual.id) return;
  const diffs: string[] = [];
  if (expected.encoder !== actual.encoder) diffs.push(`encoder ${expected.encoder} vs ${actual.encoder}`);
  if (expected.weightsSha256 !== actual.weightsSha256) diffs.push('different weights');
  if (JSON.stringify(expected.taps) !== JSON.stringify(actual.taps)) diffs.push(`taps [${expected.taps.join(',')}] vs [${actual.taps.join(',')}]`);
  if (expected.inputSize !== actual.inputSize) diffs.push(`input size ${expected.inputSize} vs ${actual.inputSize}`);
  if (JSON.stringify(expected.preprocessing) !== JSON.stringify(actual.preprocessing)) diffs.push(`preprocessing ${expected.preprocessing.kind} vs ${actual.preprocessing.kind}`);
  throw new OodError(
    'ENCODER_MISMATCH',
    `encoder mismatch in ${context}: expected ${expected.id}, got ${actual.id} (${diffs.join('; ') || 'fingerprint differs'})`,
  );
}
