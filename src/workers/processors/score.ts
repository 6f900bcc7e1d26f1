/**
 * Sandboxed processor of the score queue: the features of one shard (from its extract child) ->
 * every score type -> the shard's scores in the run's work area.
 */
import type { SandboxedJob } from 'bullmq';
import { assertSameEncoder } from '../../shared/encoder/encoder.js';
import { decodeFeatureSet } from '../../shared/feature-set.js';
import { scoreFeatures } from '../../shared/dlsr/model.js';
import { shardScores } from '../../shared/app/shard-scores.js';
import { joinKey } from '../../shared/storage/object-store.js';
import { OodError } from '../../shared/errors.js';
import { extractResult, parsePayload, workKeys, type ScoreResult } from '../../shared/queue/contract.js';
import { modelFor, open, runJob } from '../runtime.js';

export default async function score(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ScoreResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = parsePayload('score', job.data);
    const children = Object.values(await job.getChildrenValues());
    if (children.length !== 1) throw new OodError('INTERNAL', `score shard ${p.shard.index}: expected one extract result, got ${children.length}`);
    const ex = extractResult.parse(children[0]);
    const started = performance.now();
    const cache = open(ex.cache);
    const features = decodeFeatureSet(await cache.store.get(ex.featuresKey), ex.featuresKey);
    const model = await modelFor(p.model);
    assertSameEncoder(model.fingerprint, features.fingerprint, `scoring shard ${p.shard.index}`);
    const bar = ctx.progress('score', features.keys.length, 'img');
    const table = scoreFeatures(model, features.features, features.keys, { onProgress: (done) => bar.update(done) });
    bar.done();
    const work = open(p.work);
    const key = joinKey(work.prefix, workKeys.scores(p.shard.index));
    await work.store.put(key, JSON.stringify(shardScores(p.shard.index, table, features.failures)));
    return { shard: p.shard.index, scoresKey: key, images: features.keys.length, failed: features.failures.length, extractSeconds: ex.seconds, scoreSeconds: (performance.now() - started) / 1000, cached: ex.cached };
  });
}
