/**
 * history.json in a prefix's scan state folder (<model>/scans/<hash of the input URI>/): the trend
 * of its last TREND_RUNS completed scans (report/trend.ts). Read back like everything else from
 * storage (validated), written in one put (atomic in both stores) after the scan state by the report
 * job. Only scans that record state (scan, schedule; not eval) append to it.
 *
 * Two scans of the same prefix finishing at the same moment may each append to the history they
 * read: one point may then be lost, never the file (the scan state has the same last-writer rule).
 */
import { z } from 'zod';
import { appendRun, TREND_RUNS, trendRunSchema, type TrendRun } from '../report/trend.js';
import { getValidJson, joinKey, type ObjectStore } from '../storage/object-store.js';

export const HISTORY_KEY = 'history.json';

export const scanHistorySchema = z.object({
  format: z.literal('ood-audit-scan-history@1'),
  runs: z.array(trendRunSchema).max(TREND_RUNS),
});
export type ScanHistory = z.infer<typeof scanHistorySchema>;

/** The runs of a prefix's history, oldest first (none before its first scan). */
export async function readScanHistory(store: ObjectStore, prefix: string): Promise<TrendRun[]> {
  const key = joinKey(prefix, HISTORY_KEY);
  if ((await store.head(key)) === undefined) return [];
  return (await getValidJson(store, key, scanHistorySchema)).runs;
}

/**
 * Appends a completed scan to the history (re-read now, so a scan that finished meanwhile keeps its
 * point; a retried report replaces its own, or with `once` keeps it) and writes it.
 */
export async function appendScanHistory(store: ObjectStore, prefix: string, run: TrendRun, options: { readonly once?: boolean } = {}): Promise<ScanHistory> {
  const runs = await readScanHistory(store, prefix);
  // once: a run already there keeps its point and place (nothing is written).
  if (options.once === true && runs.some((r) => r.runId === run.runId)) return { format: 'ood-audit-scan-history@1', runs };
  const history: ScanHistory = { format: 'ood-audit-scan-history@1', runs: appendRun(runs, run) };
  await store.put(joinKey(prefix, HISTORY_KEY), JSON.stringify(history));
  return history;
}
