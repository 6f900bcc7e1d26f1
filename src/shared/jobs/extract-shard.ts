/**
 * Job (and the first half of a scan's score job): one shard of images -> a feature set in the feature cache, keyed by the encoder fingerprint
 * and the shard's content (keys + ETags), so an unchanged shard is never encoded twice (a re-scan,
 * an eval of the same set, a fit that is run again).
 */
import { backfillProperties, extractFeatures } from '../extract.js';
import { OodError } from '../errors.js';
import { decodeFeatureSet, encodeFeatureSet, type FeatureSet } from '../feature-set.js';
import { cacheKey, shardContentHash, shardManifest, workKeys, type ExtractPayload, type ExtractResult, type RunSettings } from '../queue/contract.js';
import { reasonCategory } from '../report/aggregate.js';
import { getValidJson, joinKey, objectUri, type GetOptions } from '../storage/object-store.js';
import type { JobContext } from './context.js';
import { settingsOf } from './settings.js';

export async function extractShard(p: ExtractPayload, ctx: JobContext, settings?: RunSettings): Promise<ExtractResult> {
  const started = performance.now();
  const s = settings ?? (await settingsOf(p, 'fit', ctx));
  const encoder = await ctx.encoder(s.encoder);
  const cache = ctx.open(s.cache);
  const key = joinKey(cache.prefix, cacheKey(encoder.fingerprint.id, p.shard.contentHash));
  const base = { shard: p.shard.index, cache: s.cache, featuresKey: key };
  const input = ctx.open(s.input);
  const read = (k: string, opts: GetOptions): Promise<Uint8Array> => input.store.get(joinKey(input.prefix, k), opts);
  if ((await cache.store.head(key)) !== undefined) {
    let set = decodeFeatureSet(await cache.store.get(key), key);
    // A set cached before image properties were measured gets them once: its images are decoded
    // again (not encoded) and the cache entry is rewritten, so scans get the conditions score.
    if (set.properties === undefined && set.keys.length > 0) {
      const properties = await backfillProperties(set, read, { maxBytes: s.maxBytes, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) });
      if (properties !== undefined) {
        set = { ...set, properties };
        await cache.store.put(key, encodeFeatureSet(set));
        ctx.log(`shard ${p.shard.index}: image properties added to ${set.keys.length} cached features`);
      }
    }
    if (set.properties !== undefined || set.keys.length === 0) {
      ctx.log(`shard ${p.shard.index}: ${set.keys.length} features from the cache`);
      // The cached set keeps its failures: they are failures of this run too (metrics count them).
      return { ...base, cached: true, images: set.keys.length, failed: set.failures.length, seconds: (performance.now() - started) / 1000, failuresByReason: failuresByReason(set), ...(set.backend !== undefined ? { encoderRuntime: set.backend } : {}) };
    }
    ctx.log(`shard ${p.shard.index}: an image of the cached features can no longer be decoded: extracting again`);
  }
  const work = ctx.open(p.work);
  const manifestKey = joinKey(work.prefix, workKeys.manifest(p.shard.id));
  const manifest = await getValidJson(work.store, manifestKey, shardManifest);
  // The features are cached under the payload's content hash: the manifest must be that content.
  if (manifest.shard !== p.shard.index || manifest.objects.length !== p.shard.count || shardContentHash(s.input, s.maxBytes, manifest.objects) !== p.shard.contentHash) {
    throw new OodError('PAYLOAD_INVALID', `${objectUri(work.store, manifestKey)}: does not match shard ${p.shard.id} of the job (its content hash differs)`);
  }
  const bar = ctx.progress('extract', manifest.objects.length, 'img');
  const batchSeconds: number[] = [];
  const set = await extractFeatures(encoder, manifest.objects, read, {
    maxBytes: s.maxBytes,
    onProgress: (done, _total, failed) => bar.update(done, failed > 0 ? `${failed} failed` : undefined),
    onBatch: (seconds) => batchSeconds.push(Math.round(seconds * 1000) / 1000),
    backend: encoder.runtime,
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
  });
  bar.done(set.failures.length > 0 ? `${set.failures.length} failed` : undefined);
  await cache.store.put(key, encodeFeatureSet(set));
  return { ...base, cached: false, images: set.keys.length, failed: set.failures.length, seconds: (performance.now() - started) / 1000, failuresByReason: failuresByReason(set), batchSeconds, encoderRuntime: encoder.runtime };
}

/** A feature set's failed images, counted by reason category. */
function failuresByReason(set: FeatureSet): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of set.failures) out[reasonCategory(f.reason)] = (out[reasonCategory(f.reason)] ?? 0) + 1;
  return out;
}

/** Reads the features an extract job cached (its result comes back through Redis: the key must be in the cache). */
export async function readExtracted(r: ExtractResult, ctx: JobContext): Promise<FeatureSet> {
  const cache = ctx.open(r.cache);
  if (!r.featuresKey.startsWith(cache.prefix)) throw new OodError('PAYLOAD_INVALID', `extract result of shard ${r.shard}: features key ${JSON.stringify(r.featuresKey)} is not in the cache ${r.cache}`);
  return decodeFeatureSet(await cache.store.get(r.featuresKey), r.featuresKey);
}
