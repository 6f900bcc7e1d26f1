/**
 * Job: the features of one shard (its extract job's result) -> every score type of the model ->
 * the shard's scores in the run's work area.
 */
import { assertSameEncoder } from '../encoder/encoder.js';
import { scoreFeatures } from '../dlsr/model.js';
import { shardScores } from '../outputs/shard-scores.js';
import { workKeys, type ExtractResult, type ScorePayload, type ScoreResult } from '../queue/contract.js';
import { joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';
import { readExtracted } from './extract-shard.js';

export async function scoreShard(p: ScorePayload, extracted: ExtractResult, ctx: JobContext): Promise<ScoreResult> {
  const started = performance.now();
  const features = await readExtracted(extracted, ctx);
  const model = await ctx.model(p.model);
  assertSameEncoder(model.fingerprint, features.fingerprint, `scoring shard ${p.shard.index}`);
  const bar = ctx.progress('score', features.keys.length, 'img');
  const table = scoreFeatures(model, features, { onProgress: (done) => bar.update(done) });
  bar.done();
  const work = ctx.open(p.work);
  const key = joinKey(work.prefix, workKeys.scores(p.shard.index));
  await work.store.put(key, JSON.stringify(shardScores(p.shard.index, table, features.failures)));
  return {
    shard: p.shard.index,
    scoresKey: key,
    images: features.keys.length,
    failed: features.failures.length,
    extractSeconds: extracted.seconds,
    scoreSeconds: (performance.now() - started) / 1000,
    cached: extracted.cached,
  };
}
