/**
 * Job: a scan's shard scores -> the run's outputs (scores.parquet, scores.csv, failures.csv,
 * summary.json, report.json/html/md) and the prefix's scan state. A shard whose score job failed is
 * not fatal: each of its images is listed in failures.csv with the shard's failure reason, and the
 * shard number in summary.json's run.missingShards (the next incremental scan retries it).
 */
import type { Failure } from '../feature-set.js';
import { readCalibration, readModelJson } from '../dlsr/model-json.js';
import { flagTable, OUTPUT_FILES, writeScoreFiles } from '../outputs/score-files.js';
import { writeReportFiles } from '../outputs/report-files.js';
import { readScanState, type ScanState } from '../outputs/scan-state.js';
import { mergeShardScores, shardScoresSchema, type ShardScores } from '../outputs/shard-scores.js';
import { runListing, runSkipped, shardManifest, workKeys, type ReportPayload, type ReportResult } from '../queue/contract.js';
import { accounting } from '../outputs/accounting.js';
import { getValidJson, joinKey } from '../storage/object-store.js';
import type { JobContext } from './context.js';

/** What the report job knows of its shards besides their files. */
export interface ShardOutcomes {
  /** Shards whose score job failed, with the reason. */
  readonly failed: ReadonlyMap<number, string>;
  /** Seconds spent extracting and scoring, summed over the shards. */
  readonly extractSeconds: number;
  readonly scoreSeconds: number;
}

export async function reportRun(p: ReportPayload, outcomes: ShardOutcomes, ctx: JobContext): Promise<ReportResult> {
  const work = ctx.open(p.work);
  const parts: ShardScores[] = [];
  const missing: number[] = [];
  const shardFailures: Failure[] = [];
  for (let shard = 0; shard < p.shards; shard++) {
    const key = joinKey(work.prefix, workKeys.scores(shard));
    const failedReason = outcomes.failed.get(shard);
    if (failedReason === undefined && (await work.store.head(key)) !== undefined) {
      parts.push(await getValidJson(work.store, key, shardScoresSchema));
      continue;
    }
    missing.push(shard);
    const manifest = await getValidJson(work.store, joinKey(work.prefix, workKeys.manifest(shard)), shardManifest);
    const reason = `shard ${shard} failed: ${failedReason ?? 'no scores were written'}`;
    for (const o of manifest.objects) shardFailures.push({ key: o.key, reason });
  }
  const merged = mergeShardScores(parts);
  const table = merged.table;
  const failures = [...merged.failures, ...shardFailures];
  const tally = accounting(p.listed, table.keys.length, failures.length, p.skippedByReason, `run ${p.runId}`);
  const skipped = await getValidJson(work.store, joinKey(work.prefix, workKeys.skipped), runSkipped);
  const modelLoc = ctx.open(p.model);
  const model = await readModelJson(modelLoc.store, modelLoc.prefix);
  const calibration = await readCalibration(modelLoc.store, modelLoc.prefix, model);
  const primary = model.config.scoring.primary;
  const flags = flagTable(table, calibration, primary);
  const out = ctx.open(p.out);
  const summary = await writeScoreFiles({
    store: out.store,
    prefix: out.prefix,
    modelUri: p.model,
    encoder: model.fingerprint.id,
    calibration,
    primary,
    inputUri: p.input,
    table,
    flags,
    failures,
    skipped,
    accounting: tally,
    extractSeconds: outcomes.extractSeconds,
    scoreSeconds: outcomes.scoreSeconds,
    totalSeconds: (Date.now() - p.startedAt) / 1000,
    backend: ctx.backend.provider,
    run: { id: p.runId, missingShards: missing },
  });
  const input = ctx.open(p.input);
  const stateLoc = p.state !== undefined ? ctx.open(p.state.uri) : undefined;
  const stateKey = p.state !== undefined && stateLoc !== undefined ? joinKey(stateLoc.prefix, p.state.name) : undefined;
  const previous = stateLoc !== undefined && stateKey !== undefined ? await readScanState(stateLoc.store, stateKey) : undefined;
  const report = await writeReportFiles({
    out,
    input: { store: input.store, prefix: input.prefix, uri: p.input },
    model,
    calibration,
    modelUri: p.model,
    runId: p.runId,
    startedAt: p.startedAt,
    backend: ctx.backend.provider,
    table,
    flags,
    failures,
    accounting: tally,
    incremental: p.incremental,
    maxBytes: p.maxBytes,
    missingShards: missing,
    partitionDepth: p.partitionDepth,
    topK: p.topK,
    previous: previous === undefined ? null : { runId: previous.runId, finishedAt: previous.finishedAt, flaggedFraction: previous.flaggedFraction, scored: previous.scored },
  });
  if (stateLoc !== undefined && stateKey !== undefined) {
    // Everything listed at planning time counts as scanned, except the images of shards that failed
    // (the next incremental scan retries them).
    const objects = await getValidJson(work.store, joinKey(work.prefix, workKeys.listing), runListing);
    for (const f of shardFailures) delete objects[f.key];
    const state: ScanState = { runId: p.runId, finishedAt: report.run.finishedAt, out: p.out, flaggedFraction: report.verdict.flaggedFraction, scored: report.verdict.scored, objects };
    await stateLoc.store.put(stateKey, JSON.stringify(state));
  }
  ctx.log(`run ${p.runId}: ${summary.input.scored} scored, ${summary.input.failed} failed, ${summary.flagged} flagged, ${missing.length} shards missing; ${report.verdict.text}`);
  return {
    summaryKey: joinKey(out.prefix, OUTPUT_FILES.summary),
    scored: summary.input.scored,
    failed: summary.input.failed,
    flagged: summary.flagged,
    flaggedFraction: summary.flaggedFraction,
    expectedFraction: summary.expectedFraction,
    verdict: report.verdict.level,
    missingShards: missing,
  };
}
