/**
 * A scored run's files under one prefix: scores.parquet and scores.csv (one row per image: `key`
 * relative to the scanned location, its full `uri`, `sha256` of its bytes, every computed score,
 * `rank` = the primary score's calibrated rank among the ID holdout scores, `flagged` = primary score
 * above the calibrated threshold), failures.csv (every image that could not be scored, with the
 * reason), skipped.csv (listed entries that were not images or could not be listed as objects, with
 * the reason) and summary.json with the accounting. summary.json is written last: its presence marks
 * the run's outputs as complete.
 *
 * CSV text cells (keys, URIs, reasons) that a spreadsheet would run as a formula (starting with =,
 * +, -, @, tab or carriage return) are written with a leading apostrophe (OWASP's advice for CSV
 * injection); numbers are written as they are.
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import { flagScores, type Calibration, type Flags } from '../calibration.js';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import type { ScoreType } from '../dlsr/config.js';
import { scoreTypesOf, type ScoreTable } from '../score-table.js';
import { meanStd, quantileSorted } from '../stats.js';
import { joinUri } from '../storage/locate.js';
import { joinKey, putJson, type ObjectStore } from '../storage/object-store.js';
import { SKIP_REASONS, type Accounting } from './accounting.js';

export const OUTPUT_FILES = {
  parquet: 'scores.parquet',
  csv: 'scores.csv',
  failures: 'failures.csv',
  skipped: 'skipped.csv',
  summary: 'summary.json',
} as const;

export interface RunSummary {
  readonly model: { readonly uri: string; readonly encoder: string; readonly primary: ScoreType; readonly threshold: number; readonly tpr: number };
  readonly input: { readonly uri: string; readonly images: number; readonly scored: number; readonly failed: number; readonly skippedNonImages: number };
  /** Every listed entry is scored, failed or skipped: listed = scored + failed + skipped. */
  readonly accounting: Accounting;
  readonly flagged: number;
  readonly flaggedFraction: number;
  /** Fraction expected to be flagged if the input were in-distribution (1 - tpr). */
  readonly expectedFraction: number;
  readonly scores: Readonly<Record<string, { mean: number; median: number; p95: number; idThreshold: number }>>;
  readonly throughput: { readonly extractImgPerS: number; readonly scoreImgPerS: number; readonly seconds: number };
  readonly backend: string;
  readonly outputs: Readonly<Record<string, string>>;
  readonly run?: { readonly id: string; readonly missingShards: readonly number[] };
}

/** The primary score's flags of a table, from the model's calibration (the one place they are computed). */
export function flagTable(table: ScoreTable, calibration: Calibration, primary: ScoreType): Flags {
  const column = table.scores[primary];
  const cal = calibration.scores[primary];
  if (column === undefined || cal === undefined) throw new OodError('MODEL_INVALID', `the primary score ${primary} is missing from the scores or the model's calibration`);
  return flagScores(cal, column);
}

/** A CSV text cell: formula-like text neutralised (leading apostrophe), then quoted when needed. */
export function csvText(s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The full location of an object listed under `inputUri` with `key`. */
export function uriOf(inputUri: string, key: string): string {
  return joinUri(inputUri, key);
}

function formatNumber(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(7))) : String(v);
}

export function scoresToCsv(table: ScoreTable, flags: Flags, inputUri: string): string {
  const types = scoreTypesOf(table.scores);
  const lines = [['key', 'uri', 'sha256', ...types, 'rank', 'flagged'].join(',')];
  table.keys.forEach((key, i) => {
    const vals = types.map((t) => formatNumber(table.scores[t]![i]!));
    lines.push([csvText(key), csvText(uriOf(inputUri, key)), table.digests[i]!, ...vals, flags.rank[i]!.toFixed(6), flags.flagged[i] === 1 ? 'true' : 'false'].join(','));
  });
  return lines.join('\n') + '\n';
}

export function scoresToParquet(table: ScoreTable, flags: Flags, inputUri: string, metadata: Record<string, string> = {}): Uint8Array {
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'key', data: [...table.keys], type: 'STRING', nullable: false },
      { name: 'uri', data: table.keys.map((k) => uriOf(inputUri, k)), type: 'STRING', nullable: false },
      { name: 'sha256', data: [...table.digests], type: 'STRING', nullable: false },
      ...scoreTypesOf(table.scores).map((t) => ({ name: t, data: table.scores[t]!, type: 'FLOAT' as const, nullable: false })),
      { name: 'rank', data: flags.rank, type: 'DOUBLE' as const, nullable: false },
      { name: 'flagged', data: Array.from(flags.flagged, (f) => f === 1), type: 'BOOLEAN' as const, nullable: false },
    ],
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    createdBy: 'ood-audit',
  });
  return new Uint8Array(buf);
}

/** failures.csv and skipped.csv: key, uri, reason. */
export function reasonsToCsv(rows: readonly Failure[], inputUri: string): string {
  return ['key,uri,reason', ...rows.map((f) => `${csvText(f.key)},${csvText(uriOf(inputUri, f.key))},${csvText(f.reason)}`)].join('\n') + '\n';
}

export interface WriteScoreFilesParams {
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly modelUri: string;
  readonly encoder: string;
  readonly calibration: Calibration;
  readonly primary: ScoreType;
  readonly inputUri: string;
  readonly table: ScoreTable;
  readonly flags: Flags;
  readonly failures: readonly Failure[];
  /** The skipped entries named in skipped.csv. */
  readonly skipped: readonly Failure[];
  readonly accounting: Accounting;
  readonly extractSeconds: number;
  readonly scoreSeconds: number;
  readonly totalSeconds: number;
  readonly backend: string;
  /** The run that produced the outputs, and shards whose images could not be scored. */
  readonly run: { readonly id: string; readonly missingShards: readonly number[] };
}

export async function writeScoreFiles(p: WriteScoreFilesParams): Promise<RunSummary> {
  const k = (name: string): string => joinKey(p.prefix, name);
  const types = scoreTypesOf(p.table.scores);
  await p.store.put(k(OUTPUT_FILES.parquet), scoresToParquet(p.table, p.flags, p.inputUri, { model: p.modelUri, encoder: p.encoder, primary: p.primary }));
  await p.store.put(k(OUTPUT_FILES.csv), scoresToCsv(p.table, p.flags, p.inputUri));
  await p.store.put(k(OUTPUT_FILES.failures), reasonsToCsv(p.failures, p.inputUri));
  await p.store.put(k(OUTPUT_FILES.skipped), reasonsToCsv(p.skipped, p.inputUri));
  const flagged = p.flags.flagged.reduce((s, f) => s + f, 0);
  const n = p.table.keys.length;
  const summary: RunSummary = {
    model: { uri: p.modelUri, encoder: p.encoder, primary: p.primary, threshold: p.calibration.scores[p.primary]!.threshold, tpr: p.calibration.tpr },
    input: { uri: p.inputUri, images: n + p.failures.length, scored: n, failed: p.failures.length, skippedNonImages: p.accounting.skippedByReason[SKIP_REASONS.notImage] ?? 0 },
    accounting: p.accounting,
    flagged,
    flaggedFraction: n > 0 ? flagged / n : 0,
    expectedFraction: 1 - p.calibration.tpr,
    scores: Object.fromEntries(
      types.map((t) => {
        const sorted = Float64Array.from(p.table.scores[t]!).sort();
        const some = sorted.length > 0;
        return [t, { mean: some ? meanStd(sorted).mean : Number.NaN, median: some ? quantileSorted(sorted, 0.5) : Number.NaN, p95: some ? quantileSorted(sorted, 0.95) : Number.NaN, idThreshold: p.calibration.scores[t]?.threshold ?? Number.NaN }];
      }),
    ),
    throughput: {
      extractImgPerS: (n + p.failures.length) / Math.max(p.extractSeconds, 1e-9),
      scoreImgPerS: n / Math.max(p.scoreSeconds, 1e-9),
      seconds: p.totalSeconds,
    },
    backend: p.backend,
    run: p.run,
    outputs: Object.fromEntries(Object.entries(OUTPUT_FILES).map(([name, file]) => [name, k(file)])),
  };
  await putJson(p.store, k(OUTPUT_FILES.summary), summary);
  return summary;
}
