/**
 * Writes a scan's report next to its scores: report.json, report.html (self-contained) and
 * report.md, with thumbnails of the most OOD and most typical images made by sharp. Also keeps the
 * per-prefix scan state (what was scanned, with ETags) that incremental scans and the
 * "previous scan" comparison read.
 */
import sharp from 'sharp';
import type { DlsrModel, ScoreTable } from '../dlsr/model.js';
import { SCORE_TYPES, type ScoreType } from '../dlsr/config.js';
import { calibratedRank } from '../calibration.js';
import { getJson, joinKey, putJson, type ObjectInfo, type ObjectStore } from '../storage/object-store.js';
import { buildReport, type ReportInput, type ScanReport } from '../report/report.js';
import { renderHtml, renderMarkdown } from '../report/render.js';
import { OodError } from '../errors.js';

export const REPORT_FILES = { json: 'report.json', html: 'report.html', md: 'report.md' } as const;

/** What the last completed scan of a prefix with a model saw. */
export interface ScanState {
  readonly runId: string;
  readonly finishedAt: string;
  readonly out: string;
  readonly flaggedFraction: number;
  readonly scored: number;
  /** key -> ETag of every image scanned then (including those carried over from earlier scans). */
  readonly objects: Readonly<Record<string, string>>;
}

export async function readScanState(store: ObjectStore, key: string): Promise<ScanState | undefined> {
  if ((await store.head(key)) === undefined) return undefined;
  return getJson<ScanState>(store, key);
}

/** The objects of `listing` that are new or changed since `state`. */
export function changedSince(listing: readonly ObjectInfo[], state: ScanState | undefined): { changed: ObjectInfo[]; unchanged: number } {
  if (state === undefined) return { changed: [...listing], unchanged: 0 };
  const changed = listing.filter((o) => state.objects[o.key] !== o.etag);
  return { changed, unchanged: listing.length - changed.length };
}

export async function thumbnail(data: Uint8Array, size = 96): Promise<string | undefined> {
  try {
    const buf = await sharp(data, { limitInputPixels: 268_402_689, failOn: 'none' })
      .rotate()
      .removeAlpha()
      .resize(size, size, { fit: 'contain', background: { r: 255, g: 255, b: 255 }, kernel: 'nearest' })
      .jpeg({ quality: 82 })
      .toBuffer();
    return `data:image/jpeg;base64,${buf.toString('base64')}`;
  } catch {
    return undefined;
  }
}

/** What the report needs besides the scores: passed through to buildReport unchanged. */
type RunFacts = Pick<ReportInput, 'modelUri' | 'runId' | 'startedAt' | 'backend' | 'failures' | 'skippedNonImages' | 'skippedUnchanged' | 'incremental' | 'missingShards' | 'partitionDepth' | 'topK' | 'previous'>;

export interface ScanReportParams extends RunFacts {
  readonly out: { readonly store: ObjectStore; readonly prefix: string };
  readonly input: { readonly store: ObjectStore; readonly prefix: string; readonly uri: string };
  readonly model: DlsrModel;
  readonly table: ScoreTable;
}

export async function writeScanReport(p: ScanReportParams): Promise<ScanReport> {
  const cal = p.model.calibration;
  if (cal === undefined) throw new OodError('MODEL_INVALID', `${p.modelUri}: the model has no calibration`);
  const primary = p.model.config.scoring.primary;
  const pc = cal.scores[primary];
  const col = p.table.scores[primary];
  if (pc === undefined || col.length !== p.table.keys.length) throw new OodError('INTERNAL', `report: primary score ${primary} missing`);
  const scores: Partial<Record<ScoreType, Float32Array>> = {};
  for (const t of SCORE_TYPES) if (p.table.scores[t].length === p.table.keys.length) scores[t] = p.table.scores[t];
  const report = buildReport({
    runId: p.runId,
    startedAt: p.startedAt,
    finishedAt: Date.now(),
    backend: p.backend,
    modelUri: p.modelUri,
    encoder: p.model.fingerprint.id,
    idImages: p.model.info.trainCount,
    ...(p.model.info.idSource !== undefined ? { idSource: p.model.info.idSource } : {}),
    primary,
    calibration: pc,
    tpr: cal.tpr,
    inputUri: p.input.uri,
    inputPrefix: p.input.prefix,
    keys: p.table.keys,
    scores,
    flagged: Uint8Array.from(col, (v) => (v > pc.threshold ? 1 : 0)),
    rank: Float64Array.from(col, (v) => calibratedRank(pc, v)),
    failures: p.failures,
    skippedNonImages: p.skippedNonImages,
    skippedUnchanged: p.skippedUnchanged,
    incremental: p.incremental,
    missingShards: p.missingShards,
    partitionDepth: p.partitionDepth,
    topK: p.topK,
    previous: p.previous,
  });
  const thumbs = new Map<string, string>();
  for (const e of [...report.mostOod, ...report.mostTypical]) {
    if (thumbs.has(e.key)) continue;
    try {
      const t = await thumbnail(await p.input.store.get(e.key));
      if (t !== undefined) thumbs.set(e.key, t);
    } catch {
      // The image may have been deleted since the scan: the report shows "no preview".
    }
  }
  const k = (name: string): string => joinKey(p.out.prefix, name);
  await putJson(p.out.store, k(REPORT_FILES.json), report);
  await p.out.store.put(k(REPORT_FILES.md), renderMarkdown(report));
  await p.out.store.put(k(REPORT_FILES.html), renderHtml(report, thumbs));
  return report;
}
