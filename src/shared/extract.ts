/**
 * Feature extraction over a list of images: read (this thread) -> hash, decode (sharp) and measure
 * the image's properties (image/properties.ts) in the process's decode thread (image/decode-pool.ts)
 * -> encode (tensor work, on this thread, blocking it for a batch). The next batch is read before and
 * decoded during the current one's encode. One bad image never sinks a batch: an image that cannot be
 * read (deleted since the listing, permission denied, I/O error, over the size limit) or decoded
 * becomes a `failure` with the reason, and the rest goes on; only transient storage faults propagate
 * (the job is retried).
 *
 * Memory is bounded: every read is capped (`maxBytes`, refused before reading), and the bytes read
 * but not yet decoded are capped too (`byteBudget`), so a few huge files read at once cannot push a
 * worker to gigabytes.
 */
import { coerceError, OodError, type ErrorCode } from './errors.js';
import type { Encoder } from './encoder/encoder.js';
import type { FeatureSet, Failure } from './feature-set.js';
import { sha256Hex } from './hash.js';
import { decodeImage, decodeWithProperties, type DecodeResult } from './image/decode.js';
import { sharedDecodePool } from './image/decode-pool.js';
import { propertyTable, type ImageProperties, type PropertyTable } from './image/properties.js';
import type { GetOptions } from './storage/object-store.js';

/** An image to extract: its key and, when known, its size in bytes (from the listing). */
export interface ExtractItem {
  readonly key: string;
  readonly size?: number;
}

export interface ExtractOptions {
  /** Called after every batch with images done (decoded or failed) and the total. */
  readonly onProgress?: (done: number, total: number, failed: number) => void;
  /** Called after every batch with its latency (read + decode wait + encode), seconds, and where the time went. */
  readonly onBatch?: (seconds: number, images: number, stages: BatchStages) => void;
  readonly signal?: AbortSignal;
  /** Largest accepted input in pixels. */
  readonly limitInputPixels?: number;
  /** Largest accepted file in bytes (larger ones are failures, never read). */
  readonly maxBytes?: number;
  /** Most bytes read but not yet decoded at once. Default 256 MiB. */
  readonly byteBudget?: number;
  readonly backend?: string;
  /** Measure each image's properties at decode time (image/properties.ts). Default true. */
  readonly properties?: boolean;
  /** Decode in the process's decode thread (image/decode-pool.ts) instead of this one. Default true. */
  readonly decodeThread?: boolean;
}

/**
 * Where one batch's wall time went, milliseconds: `wait` for its reads and decodes (the part the
 * prefetch during the previous encode did not hide), then `encode`. Reads and decodes of one batch
 * run concurrently and overlap the previous encode, so their own durations are not additive here;
 * bench:speed measures them alone.
 */
export interface BatchStages {
  readonly wait: number;
  readonly encode: number;
}

export type ReadFn = (key: string, options: GetOptions) => Promise<Uint8Array>;

/** Codes of a read that fail one image, not the job. */
const IMAGE_LEVEL: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['NOT_FOUND', 'OBJECT_UNREADABLE', 'OBJECT_TOO_LARGE', 'KEY_UNSAFE']);

export const DEFAULT_BYTE_BUDGET = 256 * 1024 * 1024;

/** A counting semaphore over bytes: one acquisition larger than the budget runs alone. */
class ByteBudget {
  private used = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly budget: number) {}

  async acquire(n: number): Promise<void> {
    while (this.used > 0 && this.used + n > this.budget) await new Promise<void>((r) => this.waiters.push(r));
    this.used += n;
  }

  release(n: number): void {
    this.used -= n;
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Work in flight: `read` settles when its bytes are read (or the read failed), `done` when decoded. */
interface InFlight<T> {
  readonly read: Promise<void>;
  readonly done: Promise<T>;
}

interface Prepared {
  readonly result: DecodeResult;
  readonly digest?: string;
}

/** How an image is read: refused past --max-bytes (when set) before reading. */
function imageGetOptions(maxBytes: number | undefined): GetOptions {
  return maxBytes !== undefined ? { maxBytes, limit: '(--max-bytes)' } : {};
}

/**
 * The image properties of a feature set made before they were measured: its images read and decoded
 * again (no encoding: about a third of extraction's cost), `concurrency` at a time. Undefined when an
 * image can no longer be read or decoded (then extract it again as a whole, which itemises failures).
 */
export async function backfillProperties(set: Pick<FeatureSet, 'keys' | 'fingerprint'>, read: ReadFn, options: Pick<ExtractOptions, 'maxBytes' | 'limitInputPixels' | 'signal'> & { readonly concurrency?: number } = {}): Promise<PropertyTable | undefined> {
  const out: ImageProperties[] = [];
  const bs = options.concurrency ?? 16;
  const getOpts = imageGetOptions(options.maxBytes);
  const decodeOpts = { size: set.fingerprint.inputSize, ...(options.limitInputPixels !== undefined ? { limitInputPixels: options.limitInputPixels } : {}) };
  for (let start = 0; start < set.keys.length; start += bs) {
    if (options.signal?.aborted === true) throw new OodError('ABORTED', 'property backfill aborted');
    const batch = await Promise.all(
      set.keys.slice(start, start + bs).map(async (key) => {
        let bytes: Uint8Array;
        try {
          bytes = await read(key, getOpts);
        } catch (err) {
          const e = coerceError(err);
          if (!IMAGE_LEVEL.has(e.code)) throw e;
          return undefined;
        }
        const r = await decodeWithProperties(key, bytes, decodeOpts);
        return r.ok ? r.properties : undefined;
      }),
    );
    for (const p of batch) {
      if (p === undefined) return undefined;
      out.push(p);
    }
  }
  return propertyTable(out);
}

export async function extractFeatures(encoder: Encoder, items: readonly ExtractItem[], read: ReadFn, options: ExtractOptions = {}): Promise<FeatureSet> {
  const bs = encoder.batchSize;
  const d = encoder.featureSize;
  const okKeys: string[] = [];
  const digests: string[] = [];
  const failures: Failure[] = [];
  const chunks: Float32Array[] = [];
  const withProperties = options.properties ?? true;
  const props: ImageProperties[] = [];
  const decode = withProperties ? decodeWithProperties : decodeImage;
  const decodeOpts = { size: encoder.inputSize, ...(options.limitInputPixels !== undefined ? { limitInputPixels: options.limitInputPixels } : {}) };
  const getOpts = imageGetOptions(options.maxBytes);
  const budget = new ByteBudget(options.byteBudget ?? DEFAULT_BYTE_BUDGET);

  const pool = (options.decodeThread ?? true) ? sharedDecodePool() : undefined;

  /** Reads one image (on this thread) and decodes it (in the decode thread when there is one). */
  const prepareOne = (item: ExtractItem): InFlight<Prepared> => {
    let readDone!: () => void;
    const readSettled = new Promise<void>((resolve) => (readDone = resolve));
    const done = (async (): Promise<Prepared> => {
      const claim = Math.max(1, item.size ?? 0);
      await budget.acquire(claim);
      try {
        let bytes: Uint8Array;
        try {
          bytes = await read(item.key, getOpts);
        } catch (err) {
          const e = coerceError(err);
          if (!IMAGE_LEVEL.has(e.code)) throw e;
          return { result: { ok: false, key: item.key, reason: e.message } };
        } finally {
          readDone();
        }
        if (pool !== undefined) return await pool.decode(item.key, bytes, decodeOpts, withProperties);
        const digest = sha256Hex(bytes);
        return { result: await decode(item.key, bytes, decodeOpts), digest };
      } finally {
        budget.release(claim);
      }
    })();
    return { read: readSettled, done };
  };
  const prepare = (start: number): InFlight<Prepared[]> | undefined => {
    if (start >= items.length) return undefined;
    const batch = items.slice(start, start + bs).map(prepareOne);
    const done = Promise.all(batch.map((b) => b.done));
    // Keep a rejected look-ahead from becoming an unhandled rejection while we encode.
    done.catch(() => undefined);
    return { read: Promise.all(batch.map((b) => b.read)).then(() => undefined), done };
  };

  // Two batches ahead of the encoder: the next one decoding (in the decode thread, while this thread
  // encodes) and the one after it reading. An encode blocks this thread, so before it starts, the
  // next batch's reads are waited for: its bytes are then with the decode thread for the whole encode.
  let current = prepare(0);
  let next = prepare(bs);
  let batchStart = performance.now();
  for (let start = 0; current !== undefined; start += bs) {
    if (options.signal?.aborted === true) throw new OodError('ABORTED', 'feature extraction aborted');
    const waitStart = performance.now();
    const prepared = await current.done;
    if (pool !== undefined) await next?.read;
    const wait = performance.now() - waitStart;
    current = next;
    next = prepare(start + 2 * bs);
    const good: { pixels: Uint8Array; key: string; digest: string; properties: ImageProperties | undefined }[] = [];
    for (const p of prepared) {
      if (p.result.ok) good.push({ pixels: p.result.pixels, key: p.result.key, digest: p.digest!, properties: p.result.properties });
      else failures.push({ key: p.result.key, reason: p.result.reason });
    }
    const encodeStart = performance.now();
    if (good.length > 0) {
      chunks.push(await encoder.encode(good.map((g) => g.pixels)));
      for (const g of good) {
        okKeys.push(g.key);
        digests.push(g.digest);
        if (g.properties !== undefined) props.push(g.properties);
      }
    }
    const now = performance.now();
    options.onBatch?.((now - batchStart) / 1000, prepared.length, { wait, encode: now - encodeStart });
    batchStart = now;
    options.onProgress?.(Math.min(items.length, start + bs), items.length, failures.length);
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
    digests,
    features,
    failures,
    ...(withProperties ? { properties: propertyTable(props) } : {}),
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
  };
}
