/**
 * Sandboxed processor of the report queue: merges the shard scores of a scan into the run's outputs
 * (scores.parquet, scores.csv, failures.csv, summary.json). A shard whose score job failed is not
 * fatal: each of its images is listed in failures.csv with the shard's failure reason, and the
 * shard number in summary.json's run.missingShards.
 */
import type { SandboxedJob } from 'bullmq';
import { mergeShardScores, type ShardScores } from '../../shared/app/shard-scores.js';
import { writeRunOutputs } from '../../shared/app/outputs.js';
import { readScanState, writeScanReport, type ScanState } from '../../shared/app/scan-report.js';
import { getJson, joinKey } from '../../shared/storage/object-store.js';
import { parsePayload, workKeys, type ReportResult } from '../../shared/queue/contract.js';
import type { ShardManifest } from '../../producers/plan.js';
import type { Failure } from '../../shared/feature-set.js';
import { modelFor, open, runJob } from '../runtime.js';

export default async function report(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<ReportResult> {
  return runJob(job, token, signal, async (ctx) => {
    const p = parsePayload('report', job.data);
    const work = open(p.work);
    const ignored = await job.getIgnoredChildrenFailures();
    const reasonByShard = new Map<number, string>();
    for (const [jobKey, reason] of Object.entries(ignored)) {
      const m = /\.score\.(\d+)$/.exec(jobKey);
      if (m !== null) reasonByShard.set(Number(m[1]), String(reason));
    }
    const parts: ShardScores[] = [];
    const missing: number[] = [];
    const shardFailures: Failure[] = [];
    let extractSeconds = 0;
    const values = await job.getChildrenValues();
    for (const v of Object.values(values)) extractSeconds += Number((v as { extractSeconds?: number }).extractSeconds ?? 0);
    for (let shard = 0; shard < p.shards; shard++) {
      const key = joinKey(work.prefix, workKeys.scores(shard));
      if ((await work.store.head(key)) !== undefined && !reasonByShard.has(shard)) {
        parts.push(await getJson<ShardScores>(work.store, key));
        continue;
      }
      missing.push(shard);
      const manifest = await getJson<ShardManifest>(work.store, joinKey(work.prefix, workKeys.manifest(shard)));
      const reason = `shard ${shard} failed: ${reasonByShard.get(shard) ?? 'no scores were written'}`;
      for (const o of manifest.objects) shardFailures.push({ key: o.key, reason });
    }
    const { table, failures } = mergeShardScores(parts);
    const model = await modelFor(p.model);
    const out = open(p.out);
    const scoreSeconds = Object.values(values).reduce((s: number, v) => s + Number((v as { scoreSeconds?: number }).scoreSeconds ?? 0), 0);
    const summary = await writeRunOutputs({
      store: out.store,
      prefix: out.prefix,
      model,
      modelUri: p.model,
      inputUri: p.input,
      table,
      failures: [...failures, ...shardFailures],
      skippedNonImages: p.skippedNonImages,
      extractSeconds,
      scoreSeconds,
      totalSeconds: (Date.now() - p.startedAt) / 1000,
      backend: ctx.backend.provider,
      run: { id: p.runId, missingShards: missing },
    });
    const input = open(p.input);
    const stateLoc = p.state !== undefined ? open(p.state.uri) : undefined;
    const stateKey = p.state !== undefined && stateLoc !== undefined ? joinKey(stateLoc.prefix, p.state.name) : undefined;
    const previous = stateLoc !== undefined && stateKey !== undefined ? await readScanState(stateLoc.store, stateKey) : undefined;
    const report = await writeScanReport({
      out,
      input: { store: input.store, prefix: input.prefix, uri: p.input },
      model,
      modelUri: p.model,
      runId: p.runId,
      startedAt: p.startedAt,
      backend: ctx.backend.provider,
      table,
      failures: [...failures, ...shardFailures],
      skippedNonImages: p.skippedNonImages,
      skippedUnchanged: p.skippedUnchanged,
      incremental: p.incremental,
      missingShards: missing,
      partitionDepth: p.partitionDepth,
      topK: p.topK,
      previous: previous === undefined ? null : { runId: previous.runId, finishedAt: previous.finishedAt, flaggedFraction: previous.flaggedFraction, scored: previous.scored },
    });
    if (stateLoc !== undefined && stateKey !== undefined) {
      // Everything listed at enqueue time counts as scanned, except the images of shards that failed
      // (the next incremental scan retries them).
      const objects = await getJson<Record<string, string>>(work.store, joinKey(work.prefix, workKeys.listing));
      for (const f of shardFailures) delete objects[f.key];
      const state: ScanState = { runId: p.runId, finishedAt: report.run.finishedAt, out: p.out, flaggedFraction: report.verdict.flaggedFraction, scored: report.verdict.scored, objects };
      await stateLoc.store.put(stateKey, JSON.stringify(state));
    }
    ctx.log(`run ${p.runId}: ${summary.input.scored} scored, ${summary.input.failed} failed, ${summary.flagged} flagged, ${missing.length} shards missing; ${report.verdict.text}`);
    return { summaryKey: joinKey(out.prefix, 'summary.json'), scored: summary.input.scored, failed: summary.input.failed, flagged: summary.flagged, missingShards: missing };
  });
}
