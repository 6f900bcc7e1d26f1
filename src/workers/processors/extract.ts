/**
 * Sandboxed processor of the extract queue: one shard of images -> a feature set in the feature
 * cache, keyed by encoder fingerprint and shard content (keys + ETags), so an unchanged shard is
 * never encoded twice.
 */
import type { SandboxedJob } from 'bullmq';
import { extractFeatures } from '../../shared/extract.js';
import { decodeFeatureSet, encodeFeatureSet } from '../../shared/feature-set.js';
import { getJson, joinKey } from '../../shared/storage/object-store.js';
import { cacheKey, parsePayload, type ExtractResult } from '../../shared/queue/contract.js';
import type { ShardManifest } from '../../producers/plan.js';
import { reasonCategory } from '../../shared/report/report.js';
import { encoderFor, open, runJob } from '../runtime.js';

export default async function extract(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ExtractResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = parsePayload('extract', job.data);
    const started = performance.now();
    const encoder = await encoderFor(p.encoder);
    const cache = open(p.cache);
    const key = joinKey(cache.prefix, cacheKey(encoder.fingerprint.id, p.shard.contentHash));
    const base = { shard: p.shard.index, cache: p.cache, featuresKey: key };
    if ((await cache.store.head(key)) !== undefined) {
      const set = decodeFeatureSet(await cache.store.get(key), key);
      ctx.log(`shard ${p.shard.index}: ${set.keys.length} features from the cache`);
      return { ...base, cached: true, images: set.keys.length, failed: set.failures.length, seconds: (performance.now() - started) / 1000 };
    }
    const work = open(p.work);
    const manifest = await getJson<ShardManifest>(work.store, p.shard.manifestKey);
    const input = open(p.input);
    const bar = ctx.progress('extract', manifest.objects.length, 'img');
    const batchSeconds: number[] = [];
    const set = await extractFeatures(encoder, manifest.objects.map((o) => o.key), (k) => input.store.get(k), {
      onProgress: (done) => bar.update(done),
      onBatch: (seconds) => batchSeconds.push(Math.round(seconds * 1000) / 1000),
      backend: ctx.backend.provider,
      ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    });
    bar.done();
    await cache.store.put(key, encodeFeatureSet(set));
    const failuresByReason: Record<string, number> = {};
    for (const f of set.failures) failuresByReason[reasonCategory(f.reason)] = (failuresByReason[reasonCategory(f.reason)] ?? 0) + 1;
    return { ...base, cached: false, images: set.keys.length, failed: set.failures.length, seconds: (performance.now() - started) / 1000, failuresByReason, batchSeconds };
  });
}
