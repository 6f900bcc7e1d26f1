/**
 * Feature extraction over a list of image keys: read -> decode (sharp, off the main thread) ->
 * encode (tensor work, on the main thread). The next batch is read and decoded while the current one
 * is encoded. Images that fail to decode become `failures` with the decoder's reason; the rest of the
 * batch goes on. Read errors are the storage adapter's business and propagate.
 */
import { OodError } from './errors.js';
import type { Encoder } from './encoder/encoder.js';
import type { FeatureSet, Failure } from './feature-set.js';
import { decodeImage, type DecodeResult } from './image/decode.js';

export interface ExtractOptions {
  /** Called after every batch with images done (decoded or failed) and the total. */
  readonly onProgress?: (done: number, total: number, failed: number) => void;
  /** Called after every batch with its latency (read + decode wait + encode), seconds. */
  readonly onBatch?: (seconds: number, images: number) => void;
  readonly signal?: AbortSignal;
  /** Largest accepted input in pixels. */
  readonly limitInputPixels?: number;
  readonly backend?: string;
}

export type ReadFn = (key: string) => Promise<Uint8Array>;

export async function extractFeatures(encoder: Encoder, keys: readonly string[], read: ReadFn, options: ExtractOptions = {}): Promise<FeatureSet> {
  const bs = encoder.batchSize;
  const d = encoder.featureSize;
  const okKeys: string[] = [];
  const failures: Failure[] = [];
  const chunks: Float32Array[] = [];
  const decodeOpts = { size: encoder.inputSize, ...(options.limitInputPixels !== undefined ? { limitInputPixels: options.limitInputPixels } : {}) };
  const prepare = (start: number): Promise<DecodeResult[]> =>
    Promise.all(keys.slice(start, start + bs).map(async (key) => decodeImage(key, await read(key), decodeOpts)));

  let pending = keys.length > 0 ? prepare(0) : undefined;
  let batchStart = performance.now();
  for (let start = 0; pending !== undefined; start += bs) {
    if (options.signal?.aborted === true) throw new OodError('ABORTED', 'feature extraction aborted');
    const decoded = await pending;
    pending = start + bs < keys.length ? prepare(start + bs) : undefined;
    // Keep a rejected look-ahead from becoming an unhandled rejection while we encode.
    pending?.catch(() => undefined);
    const good = decoded.filter((r): r is Extract<DecodeResult, { ok: true }> => r.ok);
    for (const r of decoded) if (!r.ok) failures.push({ key: r.key, reason: r.reason });
    if (good.length > 0) {
      chunks.push(encoder.encode(good.map((g) => g.pixels)));
      okKeys.push(...good.map((g) => g.key));
    }
    const now = performance.now();
    options.onBatch?.((now - batchStart) / 1000, decoded.length);
    batchStart = now;
    options.onProgress?.(Math.min(keys.length, start + bs), keys.length, failures.length);
  }
  const features = new Float32Array(okKeys.length * d);
  let off = 0;
  for (const c of chunks) {
    features.set(c, off);
    off += c.length;
  }
  return {
    fingerprint: encoder.fingerprint,
    stageSizes: encoder.stages.map((s) => s.channels),
    keys: okKeys,
    features,
    failures,
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
  };
}
