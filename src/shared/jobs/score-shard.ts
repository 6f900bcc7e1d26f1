/**
 * Job: the features of one shard (its extract job's result) -> every score type of the model, the
 * primary score's calibrated rank and flag -> the shard's score rows and its report aggregate in the
 * run's work area (its group merges them).
 */
import { assertSameEncoder } from '../encoder/encoder.js';
import { scoreFeatures } from '../dlsr/model.js';
import { OodError } from '../errors.js';
import { flagTable } from '../outputs/score-files.js';
import { shardScores } from '../outputs/shard-scores.js';
import { workKeys, type ExtractResult, type ScorePayload, type ScoreResult } from '../queue/contract.js';
import { aggregateShard, encodeAggregate } from '../report/aggregate.js';
import { joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';
import { readExtracted } from './extract-shard.js';

export async function scoreShard(p: ScorePayload, extracted: ExtractResult, ctx: JobContext): Promise<ScoreResult> {
  const started = performance.now();
  const features = await readExtracted(extracted, ctx);
  const model = await ctx.model(p.model);
  assertSameEncoder(model.fingerprint, features.fingerprint, `scoring shard ${p.shard.index}`);
  if (model.calibration === undefined) throw new OodError('MODEL_INVALID', `${p.model}: the model has no calibration`);
  const primary = model.config.scoring.primary;
  const bar = ctx.progress('score', features.keys.length, 'img');
  const table = scoreFeatures(model, features, { onProgress: (done) => bar.update(done) });
  bar.done();
  const flags = flagTable(table, model.calibration, primary);
  const work = ctx.open(p.work);
  await work.store.put(joinKey(work.prefix, workKeys.shardScores(p.shard.id)), JSON.stringify(shardScores(p.shard.index, table, flags, features.failures)));
  await work.store.put(joinKey(work.prefix, workKeys.shardAggregate(p.shard.id)), encodeAggregate(aggregateShard(table, flags, primary, p.partitionDepth, p.topK, features.failures)));
  return {
    shard: p.shard.index,
    images: features.keys.length,
    failed: features.failures.length,
    extractSeconds: extracted.seconds,
    scoreSeconds: (performance.now() - started) / 1000,
    cached: extracted.cached,
  };
}
