/**
 * Writes a scan's report next to its scores: report.json, report.html (self-contained) and
 * report.md, from the run's merged aggregate, with thumbnails (made by sharp) of the final top-K
 * most OOD and most typical images only, fetched after the merge.
 */
import sharp from 'sharp';
import type { Calibration } from '../calibration.js';
import type { ModelJson } from '../dlsr/model-json.js';
import type { ScoreType } from '../dlsr/config.js';
import { joinKey, putJson, type ObjectStore } from '../storage/object-store.js';
import { buildReport, type ReportInput, type ScanReport } from '../report/report.js';
import { renderHtml, renderMarkdown, type MdStyle } from '../report/render.js';
import { OodError } from '../errors.js';

export const REPORT_FILES = { json: 'report.json', html: 'report.html', md: 'report.md' } as const;

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

/** What the report needs besides the aggregate: passed through to buildReport unchanged. */
type RunFacts = Pick<ReportInput, 'modelUri' | 'runId' | 'startedAt' | 'backend' | 'encoderRuntimes' | 'aggregate' | 'delta' | 'scope' | 'accounting' | 'incremental' | 'missingShards' | 'partitionDepth' | 'topK' | 'previous' | 'history'>;

export interface ReportFilesParams extends RunFacts {
  readonly out: { readonly store: ObjectStore; readonly prefix: string };
  readonly input: { readonly store: ObjectStore; readonly prefix: string; readonly uri: string };
  /** The model's description and calibration. */
  readonly model: Pick<ModelJson, 'config' | 'fingerprint' | 'info' | 'conditions'>;
  readonly calibration: Calibration;
  /** Largest image read for a thumbnail. */
  readonly maxBytes: number;
  /** report.md as a table of partitions or as a plain list (for chat tools without tables). */
  readonly mdStyle: MdStyle;
  /** Whether the run writes the single file failures.csv (else only the failures/ parts). */
  readonly failuresFile: boolean;
  /** The score that decided `flagged` (scan --primary; default the model's own). */
  readonly primary?: ScoreType;
}

export async function writeReportFiles(p: ReportFilesParams): Promise<ScanReport> {
  const primary = p.primary ?? p.model.config.scoring.primary;
  const pc = p.calibration.scores[primary];
  if (pc === undefined) throw new OodError('MODEL_INVALID', `${p.modelUri}: the calibration has no ${primary} score`);
  const report = buildReport({
    runId: p.runId,
    startedAt: p.startedAt,
    finishedAt: Date.now(),
    backend: p.backend,
    ...(p.encoderRuntimes !== undefined ? { encoderRuntimes: p.encoderRuntimes } : {}),
    modelUri: p.modelUri,
    encoder: p.model.fingerprint.id,
    idImages: p.model.info.trainCount,
    ...(p.model.info.idSource !== undefined ? { idSource: p.model.info.idSource } : {}),
    primary,
    calibration: pc,
    tpr: p.calibration.tpr,
    inputUri: p.input.uri,
    aggregate: p.aggregate,
    ...(p.delta !== undefined ? { delta: p.delta } : {}),
    ...(p.scope !== undefined ? { scope: p.scope } : {}),
    ...(p.model.conditions !== undefined && p.calibration.scores.conditions !== undefined ? { conditions: { model: p.model.conditions, calibration: p.calibration.scores.conditions } } : {}),
    accounting: p.accounting,
    incremental: p.incremental,
    missingShards: p.missingShards,
    partitionDepth: p.partitionDepth,
    topK: p.topK,
    previous: p.previous,
    history: p.history,
  });
  const thumbs = new Map<string, string>();
  for (const e of [...report.mostOod, ...report.mostTypical, ...(report.newOrChanged?.mostOod ?? [])]) {
    if (thumbs.has(e.key)) continue;
    try {
      const t = await thumbnail(await p.input.store.get(joinKey(p.input.prefix, e.key), { maxBytes: p.maxBytes }));
      if (t !== undefined) thumbs.set(e.key, t);
    } catch {
      // The image may have been deleted since the scan: the report shows "no preview".
    }
  }
  const k = (name: string): string => joinKey(p.out.prefix, name);
  await putJson(p.out.store, k(REPORT_FILES.json), report);
  await p.out.store.put(k(REPORT_FILES.md), renderMarkdown(report, { style: p.mdStyle }));
  await p.out.store.put(k(REPORT_FILES.html), renderHtml(report, thumbs, { failures: p.failuresFile ? 'failures.csv' : 'failures/' }));
  return report;
}
