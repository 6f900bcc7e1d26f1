/**
 * Job: a group of shards -> one part of the run's outputs.
 *
 *   scan: the shards' score rows -> parts/scores/part-<group>.parquet, their failures (and every
 *         image of a shard that could not be scored, with the shard's reason) ->
 *         parts/failures/part-<group>.csv (in the work area: the report moves them under --out),
 *         their report aggregates merged -> groups/<group>.agg, their rows in binary ->
 *         groups/<group>.rows (the report carries them into the prefix's scan state), and
 *         groups/<group>.json, written last, with what the group found.
 *   fit:  the shards' extract results -> groups/<group>.extracts.json (the train job reads them).
 *
 * Memory is bounded by a group (GROUP_SHARDS shards or GROUP_IMAGES images).
 */
import type { Failure } from '../feature-set.js';
import { readModelJson } from '../dlsr/model-json.js';
import { OodError } from '../errors.js';
import { reasonsToCsv, scoresToParquet } from '../outputs/score-files.js';
import { encodeScoreRows } from '../outputs/score-rows.js';
import { mergeShardScores, shardScoresSchema, type ShardScores } from '../outputs/shard-scores.js';
import { partKeys, shardManifest, workKeys, type ExtractResult, type GroupOutcome, type GroupPayload, type ScoreResult } from '../queue/contract.js';
import { addFailures, decodeAggregate, emptyAggregate, encodeAggregate, mergeAggregates } from '../report/aggregate.js';
import type { Location } from '../storage/locate.js';
import { getValidJson, joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';
import { groupPlanOf, settingsOf } from './settings.js';

/** What the driver knows of a scan group's shards: their score results, and the failed ones' reasons. */
export interface ShardOutcomes {
  readonly results: readonly ScoreResult[];
  readonly failed: ReadonlyMap<number, string>;
}

/** The objects of a shard that could not be scored, as failures with the shard's reason. */
export async function shardFailures(work: Location, shard: { index: number; id: string }, reason: string): Promise<Failure[]> {
  const manifest = await getValidJson(work.store, joinKey(work.prefix, workKeys.manifest(shard.id)), shardManifest);
  return manifest.objects.map((o) => ({ key: o.key, reason: `shard ${shard.index} failed: ${reason}` }));
}

export async function mergeScanGroup(p: GroupPayload, outcomes: ShardOutcomes, ctx: JobContext): Promise<GroupOutcome> {
  const settings = await settingsOf(p, 'scan', ctx);
  if (settings.out === undefined || settings.model === undefined) throw new OodError('PAYLOAD_INVALID', `run ${p.runId}: its settings name no output or model`);
  const { shards } = await groupPlanOf(p, ctx);
  const work = ctx.open(p.work);
  const modelLoc = ctx.open(settings.model);
  const model = await readModelJson(modelLoc.store, modelLoc.prefix);
  const parts: ShardScores[] = [];
  const failures: Failure[] = [];
  const missingShards: GroupOutcome['missingShards'] = [];
  const agg = emptyAggregate();
  for (const shard of shards) {
    const reason = outcomes.failed.get(shard.index);
    const scoresKey = joinKey(work.prefix, workKeys.shardScores(shard.id));
    if (reason === undefined && (await work.store.head(scoresKey)) !== undefined) {
      const part = await getValidJson(work.store, scoresKey, shardScoresSchema);
      if (part.shard !== shard.index) throw new OodError('MODEL_INVALID', `${scoresKey}: holds shard ${part.shard}, not ${shard.index}`);
      parts.push(part);
      failures.push(...part.failures);
      const aggKey = joinKey(work.prefix, workKeys.shardAggregate(shard.id));
      mergeAggregates(agg, decodeAggregate(await work.store.get(aggKey), aggKey), settings.topK);
      continue;
    }
    const why = reason ?? 'no scores were written';
    missingShards.push({ shard: shard.index, reason: why });
    const lost = await shardFailures(work, shard, why);
    failures.push(...lost);
    const a = emptyAggregate();
    addFailures(a, lost);
    mergeAggregates(agg, a, settings.topK);
  }
  const merged = mergeShardScores(parts);
  const primary = settings.primary ?? model.config.scoring.primary;
  // Into the work area: the report moves them under --out once the run is complete.
  await work.store.put(joinKey(work.prefix, workKeys.part(partKeys.scores(p.group.id))), scoresToParquet(merged.table, merged.flags, { inputUri: settings.input, runId: p.runId, partitionDepth: settings.partitionDepth }, { model: settings.model, encoder: model.fingerprint.id, primary }));
  await work.store.put(joinKey(work.prefix, workKeys.part(partKeys.failures(p.group.id))), reasonsToCsv(failures, settings.input));
  await work.store.put(joinKey(work.prefix, workKeys.groupAggregate(p.group.id)), encodeAggregate(agg));
  await work.store.put(joinKey(work.prefix, workKeys.groupRows(p.group.id)), encodeScoreRows({ table: merged.table }));
  const outcome: GroupOutcome = {
    group: p.group.index,
    scored: merged.table.keys.length,
    failed: failures.length,
    missingShards,
    extractSeconds: outcomes.results.reduce((s, r) => s + r.extractSeconds, 0),
    scoreSeconds: outcomes.results.reduce((s, r) => s + r.scoreSeconds, 0),
    encoderRuntimes: distinct(outcomes.results.map((r) => r.encoderRuntime)),
  };
  await work.store.put(joinKey(work.prefix, workKeys.groupOutcome(p.group.id)), JSON.stringify(outcome));
  return outcome;
}

/** A fit group: records its shards' extract results for the train job. */
export async function collectFitGroup(p: GroupPayload, extracted: readonly ExtractResult[], ctx: JobContext): Promise<GroupOutcome> {
  const { shards } = await groupPlanOf(p, ctx);
  const byShard = new Map(extracted.map((r) => [r.shard, r]));
  const missing = shards.filter((s) => !byShard.has(s.index));
  if (missing.length > 0) throw new OodError('INTERNAL', `fit group ${p.group.id}: no extract result for shard ${missing[0]!.index}`);
  const work = ctx.open(p.work);
  const results = shards.map((s) => byShard.get(s.index)!);
  await work.store.put(joinKey(work.prefix, workKeys.groupExtracts(p.group.id)), JSON.stringify(results));
  return {
    group: p.group.index,
    scored: results.reduce((s, r) => s + r.images, 0),
    failed: results.reduce((s, r) => s + r.failed, 0),
    missingShards: [],
    extractSeconds: results.reduce((s, r) => s + r.seconds, 0),
    scoreSeconds: 0,
    encoderRuntimes: distinct(results.map((r) => r.encoderRuntime)),
  };
}

/** The distinct defined values, sorted. */
export function distinct(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined))].sort();
}
