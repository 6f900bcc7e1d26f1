/**
 * Job: a scan's groups -> the run's outputs under --out: the score, failure and skipped parts
 * (single files too for small runs) and summary.json, which hold what this run scanned; the prefix's
 * state pages rebuilt where the run changed them (jobs/whole-prefix.ts); report.json/html/md, which
 * describe the whole prefix as of the scan (the unchanged images' scores carried forward), with the
 * run's own images new or changed in a section of their own; summary.json (written last: the outputs
 * are complete), then the prefix's scan state index and its trend (history.json); then the run's
 * work area is removed.
 *
 * A group that failed is not fatal: each of its images is listed in failures/ with the group's
 * failure reason, and its shards in summary.json's run.missingShards; failed images are left out of
 * the scan state, so the next incremental scan retries them. Memory: the run's aggregate and the
 * prefix's (4 bytes per scored image each, the galleries, the summary sample) and one group or page
 * at a time.
 */
import { z } from 'zod';
import { readCalibration, readModelJson } from '../dlsr/model-json.js';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { accounting, SKIP_REASONS } from '../outputs/accounting.js';
import { REPORT_FILES, writeReportFiles } from '../outputs/report-files.js';
import type { ScanReport } from '../report/report.js';
import { trendRunSchema } from '../report/trend.js';
import { concatCsvParts, concatTables, OUTPUT_DIRS, OUTPUT_FILES, readScoresParquet, REASONS_HEADER, reasonsToCsv, scoresToCsv, scoresToParquet, scoreSummary, type RunSummary } from '../outputs/score-files.js';
import { readStateIndex, writeScanState } from '../outputs/scan-state.js';
import { appendScanHistory, readScanHistory } from '../outputs/scan-history.js';
import { groupOutcome, partKeys, runRecord, stateIntent, stateOutcome, workKeys, type GroupPlan, type ReportPayload, type ReportResult } from '../queue/contract.js';
import { addFailures, decodeAggregate, emptyAggregate, mergeAggregates, type Aggregate } from '../report/aggregate.js';
import type { Location } from '../storage/locate.js';
import { getJson, getValidJson, joinKey, objectUri, putJson, validJson } from '../storage/object-store.js';
import { joinUri } from '../storage/locate.js';
import type { JobContext } from './context.js';
import { shardFailures } from './merge-group.js';
import { groupPlanOf } from './settings.js';
import { buildWholePrefix, type WholePrefix } from './whole-prefix.js';

/** Shards listed in a report result (the report and summary.json list them all). */
const RESULT_SHARDS = 100;

/** A part file's name as the report writes them (scores/part-00003-1a2b3c4d.parquet). */
const PART_NAME = /^part-[0-9a-f-]+\.(parquet|csv)$/;

/**
 * Deletes the part files directly under `dir` that this run did not write (a previous run's, into the
 * same output). Anything else there (a user's file, a sub-folder) is left alone.
 */
async function removeStaleParts(out: Location, dir: string, keep: ReadonlySet<string>): Promise<void> {
  const folder = `${joinKey(out.prefix, dir)}/`;
  const stale: string[] = [];
  for await (const e of out.store.list(folder)) {
    const name = e.key.slice(folder.length);
    if (!keep.has(e.key) && PART_NAME.test(name)) stale.push(e.key);
  }
  for (const k of stale) await out.store.delete(k);
}

async function removeIfPresent(loc: Location, name: string): Promise<void> {
  const key = joinKey(loc.prefix, name);
  if ((await loc.store.head(key)) !== undefined) await loc.store.delete(key);
}

/** What completed() reads of a run's summary.json and report.json (the rest is not checked). */
const completedSummary = z.looseObject({
  run: z.looseObject({ id: z.string(), missingShards: z.array(z.number().int().min(0)) }),
  input: z.looseObject({ scored: z.number(), failed: z.number() }),
  flagged: z.number(),
  flaggedFraction: z.number(),
  expectedFraction: z.number(),
});
const completedReport = z.looseObject({
  run: z.looseObject({ id: z.string() }),
  verdict: z.looseObject({ level: z.string(), scored: z.number(), flagged: z.number(), flaggedFraction: z.number(), expectedFraction: z.number() }),
});

/** The result of a run whose outputs are complete (summary.json names it), if it is, and its report.json. */
async function completed(out: Location, runId: string): Promise<{ result: ReportResult; report: ScanReport } | undefined> {
  const summaryKey = joinKey(out.prefix, OUTPUT_FILES.summary);
  if ((await out.store.head(summaryKey)) === undefined) return undefined;
  const raw = await getJson<unknown>(out.store, summaryKey);
  if ((raw as { run?: { id?: unknown } } | null)?.run?.id !== runId) return undefined;
  // This run's outputs: what is read of them must be there (they may have been edited since).
  const checked = validJson(raw, completedSummary, objectUri(out.store, summaryKey));
  const summary = raw as RunSummary;
  const reportKey = joinKey(out.prefix, REPORT_FILES.json);
  const report = (await getValidJson(out.store, reportKey, completedReport)) as unknown as ScanReport;
  if (report.run.id !== runId) throw new OodError('MODEL_INVALID', `${objectUri(out.store, reportKey)}: is the report of run ${report.run.id}, but summary.json names run ${runId}`);
  const missing = checked.run.missingShards;
  // Outputs written before reports had a scope (the whole prefix) or a headline: the run's own counts.
  const r = report as Partial<ScanReport> & Pick<ScanReport, 'verdict'>;
  if (r.scope !== undefined && r.headline !== undefined && r.newOrChanged !== undefined) return { result: resultOf(report, summaryKey, missing), report };
  const result: ReportResult = {
    summaryKey,
    scored: summary.input.scored,
    failed: summary.input.failed,
    flagged: summary.flagged,
    flaggedFraction: summary.flaggedFraction,
    expectedFraction: summary.expectedFraction,
    verdict: report.verdict.level,
    ...(r.headline !== undefined ? { headline: r.headline.level } : {}),
    missingShards: missing.slice(0, RESULT_SHARDS),
    missingShardCount: missing.length,
  };
  return { result, report };
}

/** `failedGroups`: groups whose job failed (by group index), with the reason. */
export async function reportRun(p: ReportPayload, failedGroups: ReadonlyMap<number, string>, ctx: JobContext): Promise<ReportResult> {
  const work = ctx.open(p.work);
  const out = ctx.open(p.out);
  const w = (key: string): string => joinKey(work.prefix, key);
  const o = (key: string): string => joinKey(out.prefix, key);
  // The run's work area below --out, removed (run.json first) once the outputs and scan state are
  // written. Only its own: another run may be planning into the same output.
  const ownWork = joinUri(p.out, '.work', p.runId) === p.work ? `${joinKey(out.prefix, '.work', p.runId)}/` : undefined;
  const removeWork = async (): Promise<void> => {
    if (ownWork === undefined) return;
    await removeIfPresent(work, workKeys.run);
    await out.store.deletePrefix(ownWork);
  };
  // A retry after the report tried to record the scan state: its outputs are complete, and the state
  // may have moved on since (another scan recorded, deleting what this one's index retired): nothing
  // is built again; only the history point and the work area's removal may be left.
  if ((await work.store.head(w(workKeys.stateOutcome))) !== undefined) return finishRecorded(p, out, await getValidJson(work.store, w(workKeys.stateOutcome), stateOutcome), ctx, removeWork);
  if ((await work.store.head(w(workKeys.run))) === undefined) {
    // A retry after the outputs were complete, while the work area was being removed: done.
    const done = await completed(out, p.runId);
    if (done !== undefined) {
      await removeWork();
      return done.result;
    }
  }
  const record = await getValidJson(work.store, w(workKeys.run), runRecord);
  /** A part file from the work area to its place under --out (a copy within the store when it can). */
  const moveIn = async (key: string): Promise<void> => {
    if (ownWork !== undefined) await out.store.copy(joinKey(out.prefix, '.work', p.runId, workKeys.part(key)), o(key));
    else await out.store.put(o(key), await work.store.get(w(workKeys.part(key))));
  };
  // Nothing is written under --out before the run's accounting holds: the parts are collected first.
  const toMove: string[] = [];
  if (record.runId !== p.runId) throw new OodError('PAYLOAD_INVALID', `${p.work}: run.json is of run ${record.runId}, not ${p.runId}`);
  const modelLoc = ctx.open(p.model);
  const model = await readModelJson(modelLoc.store, modelLoc.prefix);
  const calibration = await readCalibration(modelLoc.store, modelLoc.prefix, model);

  // Merge the groups' aggregates in key order; a failed group's images become failures.
  const agg = emptyAggregate();
  const missing: number[] = [];
  const groupRows: string[] = [];
  const scoreParts: string[] = [];
  const failureParts: string[] = [];
  let extractSeconds = 0;
  let scoreSeconds = 0;
  const encoderRuntimes = new Set<string>();
  for (const g of record.groups) {
    const plan = async (): Promise<GroupPlan> => groupPlanOf({ work: p.work, group: g }, ctx);
    const outcomeKey = w(workKeys.groupOutcome(g.id));
    const failedReason = failedGroups.get(g.index);
    if (failedReason === undefined && (await work.store.head(outcomeKey)) !== undefined) {
      const outcome = await getValidJson(work.store, outcomeKey, groupOutcome);
      const aggKey = w(workKeys.groupAggregate(g.id));
      mergeAggregates(agg, decodeAggregate(await work.store.get(aggKey), aggKey), p.topK);
      groupRows.push(workKeys.groupRows(g.id));
      for (const m of outcome.missingShards) missing.push(m.shard);
      extractSeconds += outcome.extractSeconds;
      scoreSeconds += outcome.scoreSeconds;
      for (const r of outcome.encoderRuntimes ?? []) encoderRuntimes.add(r);
      for (const [key, list] of [
        [partKeys.scores(g.id), scoreParts],
        [partKeys.failures(g.id), failureParts],
      ] as const) {
        toMove.push(key);
        list.push(o(key));
      }
      continue;
    }
    const reason = `group ${g.index} failed: ${failedReason ?? 'its outputs were not written'}`;
    const lost: Failure[] = [];
    for (const s of (await plan()).shards) {
      lost.push(...(await shardFailures(work, s, reason)));
      missing.push(s.index);
    }
    await work.store.put(w(workKeys.part(partKeys.failures(g.id))), reasonsToCsv(lost, p.input));
    toMove.push(partKeys.failures(g.id));
    failureParts.push(o(partKeys.failures(g.id)));
    const a = emptyAggregate();
    addFailures(a, lost);
    mergeAggregates(agg, a, p.topK);
  }
  const tally = accounting(record.listed, agg.scored, agg.failed, record.skippedByReason, `run ${p.runId}`);
  const stateLoc = p.state !== undefined ? ctx.open(p.state) : undefined;
  const stateNow = stateLoc !== undefined ? await readStateIndex(stateLoc.store, stateLoc.prefix) : undefined;
  const history = stateLoc !== undefined ? { runs: await readScanHistory(stateLoc.store, stateLoc.prefix), out: p.out } : null;
  // A retried report whose earlier attempt recorded the state and stopped before writing its outcome
  // (above): the index is this run's own (its planned pages are still there, the ones it retired
  // too); the scan before is the history's last other point.
  const recordedBefore = stateNow?.runId === p.runId;
  // An earlier attempt that got as far as the state write left the state it planned on: if the
  // state is now neither that nor this run's, another scan recorded since (perhaps over this run's
  // index): this run records nothing, and outputs already complete are not built again.
  const intentKey = w(workKeys.stateIntent);
  const intent = stateLoc !== undefined && (await work.store.head(intentKey)) !== undefined ? await getValidJson(work.store, intentKey, stateIntent) : undefined;
  const overtaken = intent !== undefined && !recordedBefore && (stateNow?.runId ?? null) !== intent.base ? `scan ${stateNow?.runId ?? '(none)'} recorded the state of this prefix after this run's first report attempt; its state stands, and the next scan plans on it` : undefined;
  if (overtaken !== undefined && (await completed(out, p.runId)) !== undefined) return finishRecorded(p, out, { recorded: false, reason: overtaken }, ctx, removeWork);
  const previous = recordedBefore ? undefined : stateNow;
  const previousRun = recordedBefore ? history?.runs.filter((r) => r.runId !== p.runId).at(-1) : previous;
  const primary = p.primary ?? model.config.scoring.primary;
  // The whole prefix, before anything is written under --out (a corrupt state fails the run first):
  // the state's pages (kept, or rebuilt from carried and new rows), and this run's failures.
  let prefix: WholePrefix | undefined;
  if (stateLoc !== undefined) {
    if (p.carry === undefined) throw new OodError('PAYLOAD_INVALID', `run ${p.runId}: records scan state without a carry binding`);
    const condThreshold = calibration.scores.conditions?.threshold;
    prefix = await buildWholePrefix({
      state: stateLoc,
      work,
      pages: record.statePages,
      plannedKey: (id) => workKeys.statePage(id),
      groupRows,
      scoring: {
        carry: p.carry,
        calibration,
        primary,
        partitionDepth: p.partitionDepth,
        topK: p.topK,
        ...(model.conditions !== undefined && condThreshold !== undefined ? { conditions: { model: model.conditions, threshold: condThreshold } } : {}),
      },
      moved: !recordedBefore && (previous?.runId ?? null) !== record.stateBase,
    });
    withFailures(prefix.aggregate, agg);
    // Complete or loudly failed: the prefix holds every image this run scored and every one it carried.
    const unchanged = tally.skippedByReason[SKIP_REASONS.unchanged] ?? 0;
    if (prefix.aggregate.scored !== agg.scored + unchanged || prefix.carried !== unchanged) {
      throw new OodError('INTERNAL', `run ${p.runId}: the whole prefix holds ${prefix.aggregate.scored} scored images (${prefix.carried} carried forward), expected ${agg.scored} scored now + ${unchanged} unchanged`);
    }
    ctx.log(`run ${p.runId}: whole prefix from ${prefix.pages.length} state pages (${prefix.kept} kept, ${prefix.rebuilt} rebuilt, ${prefix.io.rebuilt} aggregates rebuilt from rows), ${prefix.io.reads} state files read (${prefix.io.bytes} bytes)`);
  }
  for (const key of toMove) await moveIn(key);

  // skipped/ from the planner's pages; then the parts of earlier runs into this output go.
  const skippedParts: string[] = [];
  for (let page = 0; page < record.skippedPages; page++) {
    const text = new TextDecoder().decode(await work.store.get(w(workKeys.skippedPage(page))));
    await out.store.put(o(partKeys.skipped(page)), REASONS_HEADER + text);
    skippedParts.push(o(partKeys.skipped(page)));
  }
  await removeStaleParts(out, OUTPUT_DIRS.scores, new Set(scoreParts));
  await removeStaleParts(out, OUTPUT_DIRS.failures, new Set(failureParts));
  await removeStaleParts(out, OUTPUT_DIRS.skipped, new Set(skippedParts));

  // The single files, for runs small enough to hold them.
  const outputs: Record<string, string> = { scores: o(OUTPUT_DIRS.scores), failures: o(OUTPUT_DIRS.failures), skipped: o(OUTPUT_DIRS.skipped) };
  if (agg.scored <= p.singleFileMax) {
    const tables = [];
    for (const k of scoreParts) tables.push(await readScoresParquet(await out.store.get(k)));
    const all = concatTables(tables);
    const rows = { inputUri: p.input, runId: p.runId, partitionDepth: p.partitionDepth };
    await out.store.put(o(OUTPUT_FILES.parquet), scoresToParquet(all.table, all.flags, rows, { model: p.model, encoder: model.fingerprint.id, primary }));
    await out.store.put(o(OUTPUT_FILES.csv), scoresToCsv(all.table, all.flags, rows));
    outputs['parquet'] = o(OUTPUT_FILES.parquet);
    outputs['csv'] = o(OUTPUT_FILES.csv);
  } else {
    await removeIfPresent(out, OUTPUT_FILES.parquet);
    await removeIfPresent(out, OUTPUT_FILES.csv);
  }
  for (const [name, parts, count] of [
    ['failures', failureParts, agg.failed],
    ['skipped', skippedParts, tally.skipped],
  ] as const) {
    const file = OUTPUT_FILES[name];
    if (count <= p.singleFileMax) {
      await concatCsvParts(out.store, parts, REASONS_HEADER, o(file));
      outputs[`${name}Csv`] = o(file);
    } else await removeIfPresent(out, file);
  }

  const input = ctx.open(p.input);
  const whole = prefix?.aggregate ?? agg;
  const report = await writeReportFiles({
    out,
    input: { store: input.store, prefix: input.prefix, uri: p.input },
    model,
    calibration,
    modelUri: p.model,
    runId: p.runId,
    startedAt: p.startedAt,
    backend: ctx.backend.provider,
    encoderRuntimes: [...encoderRuntimes],
    aggregate: whole,
    ...(prefix !== undefined && p.incremental ? { delta: { aggregate: agg, since: record.stateBase } } : {}),
    ...(prefix !== undefined ? { scope: { carried: prefix.carried, rescan: p.rescan ?? null } } : {}),
    accounting: tally,
    incremental: p.incremental,
    maxBytes: p.maxBytes,
    missingShards: missing,
    partitionDepth: p.partitionDepth,
    topK: p.topK,
    previous: previousRun === undefined ? null : { runId: previousRun.runId, finishedAt: previousRun.finishedAt, flaggedFraction: previousRun.flaggedFraction, scored: previousRun.scored },
    history,
    mdStyle: p.mdStyle,
    ...(p.primary !== undefined ? { primary: p.primary } : {}),
    failuresFile: agg.failed <= p.singleFileMax,
  });
  // summary.json holds this run's own rows (those of scores/ and failures/); `prefix` the report's whole prefix.
  const flagged = flaggedOf(agg);
  const summary: RunSummary = {
    model: { uri: p.model, encoder: model.fingerprint.id, primary, threshold: calibration.scores[primary]!.threshold, tpr: calibration.tpr },
    input: { uri: p.input, images: agg.scored + agg.failed, scored: agg.scored, failed: agg.failed, skippedNonImages: tally.skippedByReason[SKIP_REASONS.notImage] ?? 0 },
    accounting: tally,
    flagged,
    flaggedFraction: agg.scored > 0 ? flagged / agg.scored : 0,
    expectedFraction: 1 - calibration.tpr,
    scores: scoreSummary(agg, calibration),
    throughput: {
      extractImgPerS: (agg.scored + agg.failed) / Math.max(extractSeconds, 1e-9),
      scoreImgPerS: agg.scored / Math.max(scoreSeconds, 1e-9),
      seconds: (Date.now() - p.startedAt) / 1000,
    },
    backend: ctx.backend.provider,
    encoderRuntimes: [...encoderRuntimes].sort(),
    run: { id: p.runId, missingShards: missing },
    parts: { scores: scoreParts.length, failures: failureParts.length, skipped: skippedParts.length },
    outputs: { ...outputs, report: o('report.html'), summary: o(OUTPUT_FILES.summary) },
    ...(prefix !== undefined ? { prefix: { scored: report.verdict.scored, failed: whole.failed, carried: prefix.carried, flagged: report.verdict.flagged, flaggedFraction: report.verdict.flaggedFraction } } : {}),
  };
  await putJson(out.store, o(OUTPUT_FILES.summary), summary);
  let stateNotRecorded: string | undefined;
  if (overtaken !== undefined) {
    stateNotRecorded = overtaken;
    ctx.log(`run ${p.runId}: its report is complete, but its scan state was not recorded: ${overtaken}`);
  } else if (stateLoc !== undefined && prefix !== undefined) {
    if (intent === undefined) await putJson(work.store, intentKey, { base: previous?.runId ?? null });
    const state = await writeScanState({
      state: stateLoc,
      previous,
      pages: prefix.pages,
      run: { runId: p.runId, finishedAt: report.run.finishedAt, out: p.out, flaggedFraction: report.verdict.flaggedFraction, scored: report.verdict.scored, carry: p.carry! },
    });
    // The trend's point of this scan (the report's last), after the state it describes.
    const point = report.trend?.runs[report.trend.runs.length - 1];
    await putJson(work.store, w(workKeys.stateOutcome), state.recorded ? { recorded: true } : { recorded: false, reason: state.reason });
    if (!state.recorded) {
      stateNotRecorded = state.reason;
      ctx.log(`run ${p.runId}: its report is complete, but its scan state was not recorded: ${state.reason}`);
    } else if (point !== undefined) await appendScanHistory(stateLoc.store, stateLoc.prefix, point);
  }
  await removeWork();
  ctx.log(`run ${p.runId}: ${agg.scored} scored, ${agg.failed} failed, ${flagged} flagged, ${missing.length} shards missing; ${report.scope.text}; ${report.verdict.text}`);
  return { ...resultOf(report, o(OUTPUT_FILES.summary), missing), ...(stateNotRecorded !== undefined ? { stateNotRecorded } : {}) };
}

/** A retried report whose state outcome was written: the history point if the state was recorded, then the work area goes. */
async function finishRecorded(p: ReportPayload, out: Location, outcome: { recorded: boolean; reason?: string | undefined }, ctx: JobContext, removeWork: () => Promise<void>): Promise<ReportResult> {
  const done = await completed(out, p.runId);
  if (done === undefined) throw new OodError('INTERNAL', `run ${p.runId}: its report tried to record the scan state, but its outputs under ${p.out} are not complete`);
  if (outcome.recorded && p.state !== undefined) {
    const point = done.report.trend?.runs.at(-1);
    if (point !== undefined) {
      const parsed = trendRunSchema.safeParse(point);
      if (!parsed.success) throw new OodError('MODEL_INVALID', `${joinUri(p.out, REPORT_FILES.json)}: its trend's last run is not a trend run (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      if (parsed.data.runId !== p.runId) throw new OodError('MODEL_INVALID', `${joinUri(p.out, REPORT_FILES.json)}: its trend's last run is ${parsed.data.runId}, not this run (${p.runId})`);
      const loc = ctx.open(p.state);
      // Once only: a point already there stays where it is (a later scan's may follow it).
      await appendScanHistory(loc.store, loc.prefix, parsed.data, { once: true });
    }
  }
  await removeWork();
  ctx.log(`run ${p.runId}: retried after its scan state was ${outcome.recorded ? 'recorded' : 'refused'}: outputs complete`);
  return { ...done.result, ...(outcome.reason !== undefined ? { stateNotRecorded: outcome.reason } : {}) };
}

/** The run's result: the report's whole-prefix counts and verdicts, and its new-or-changed section's. */
function resultOf(report: ScanReport, summaryKey: string, missing: readonly number[]): ReportResult {
  const v = report.verdict;
  const n = report.newOrChanged;
  return {
    summaryKey,
    scored: v.scored,
    failed: report.scope.failed,
    flagged: v.flagged,
    flaggedFraction: v.flaggedFraction,
    expectedFraction: v.expectedFraction,
    verdict: v.level,
    headline: report.headline.level,
    missingShards: missing.slice(0, RESULT_SHARDS),
    missingShardCount: missing.length,
    ...(n !== null ? { newOrChanged: { scored: n.scored, failed: n.failed, flagged: n.verdict.flagged, flaggedFraction: n.verdict.flaggedFraction, verdict: n.verdict.level, headline: n.headline.level } } : {}),
  };
}

/** Flagged images of an aggregate. */
function flaggedOf(agg: Aggregate): number {
  let n = 0;
  for (const p of agg.partitions.values()) n += p.flagged;
  return n;
}

/** The run's failures (all of the prefix's: failed images are retried by every scan) added to the prefix's aggregate. */
function withFailures(prefix: Aggregate, run: Aggregate): void {
  prefix.failed += run.failed;
  for (const [r, n] of run.failuresByReason) prefix.failuresByReason.set(r, (prefix.failuresByReason.get(r) ?? 0) + n);
  prefix.failureExamples.push(...run.failureExamples);
}
