/**
 * Job: one shard of a scan -> its features (extracted, or from the feature cache) -> every score type
 * of the model (the conditions score too, when the model has image-property statistics), the primary
 * score's calibrated rank and flag -> the shard's score rows and its report
 * aggregate in the run's work area (its group merges them).
 */
import { assertSameEncoder } from '../encoder/encoder.js';
import { scoreFeatures } from '../dlsr/model.js';
import { OodError } from '../errors.js';
import { flagTable } from '../outputs/score-files.js';
import { shardScores } from '../outputs/shard-scores.js';
import { workKeys, type ScorePayload, type ScoreResult } from '../queue/contract.js';
import { aggregateShard, encodeAggregate } from '../report/aggregate.js';
import { joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';
import { extractShard, readExtracted } from './extract-shard.js';
import { settingsOf } from './settings.js';

export async function scoreShard(p: ScorePayload, ctx: JobContext): Promise<ScoreResult> {
  const settings = await settingsOf(p, 'scan', ctx);
  if (settings.model === undefined) throw new OodError('PAYLOAD_INVALID', `run ${p.runId}: its settings name no model`);
  const extracted = await extractShard(p, ctx, settings);
  const started = performance.now();
  const features = await readExtracted(extracted, ctx);
  const model = await ctx.model(settings.model);
  assertSameEncoder(model.fingerprint, features.fingerprint, `scoring shard ${p.shard.index}`);
  if (model.calibration === undefined) throw new OodError('MODEL_INVALID', `${settings.model}: the model has no calibration`);
  const primary = settings.primary ?? model.config.scoring.primary;
  const bar = ctx.progress('score', features.keys.length, 'img');
  const table = scoreFeatures(model, features, { onProgress: (done) => bar.update(done) });
  bar.done();
  const flags = flagTable(table, model.calibration, primary);
  const condThreshold = model.calibration.scores.conditions?.threshold;
  const conditions = model.conditions !== undefined && condThreshold !== undefined ? { model: model.conditions, threshold: condThreshold } : undefined;
  const work = ctx.open(p.work);
  await work.store.put(joinKey(work.prefix, workKeys.shardScores(p.shard.id)), JSON.stringify(shardScores(p.shard.index, table, flags, features.failures)));
  await work.store.put(joinKey(work.prefix, workKeys.shardAggregate(p.shard.id)), encodeAggregate(aggregateShard(table, flags, primary, settings.partitionDepth, settings.topK, features.failures, conditions)));
  return {
    shard: p.shard.index,
    images: features.keys.length,
    failed: features.failures.length,
    extractSeconds: extracted.seconds,
    scoreSeconds: (performance.now() - started) / 1000,
    cached: extracted.cached,
    ...(extracted.failuresByReason !== undefined ? { failuresByReason: extracted.failuresByReason } : {}),
    ...(extracted.batchSeconds !== undefined ? { batchSeconds: extracted.batchSeconds } : {}),
    ...(extracted.encoderRuntime !== undefined ? { encoderRuntime: extracted.encoderRuntime } : {}),
  };
}
