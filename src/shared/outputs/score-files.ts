/**
 * A scored run's files under one prefix:
 *
 *   scores/part-<group>.parquet   one row per scored image: `key` relative to the scanned location,
 *                                 its full `uri`, the `run_id` and the image's report `partition`
 *                                 (so the tables of many runs can be queried as one), `sha256` of its
 *                                 bytes, every computed score, `rank`
 *                                 = the primary score's calibrated rank among the ID holdout scores,
 *                                 `flagged` = primary score above the calibrated threshold, then
 *                                 (when measured) the image properties: `width`, ..., `grayscale`
 *                                 (PROPERTY_NAMES, null where missing) and `format`
 *   failures/part-<group>.csv     every image that could not be scored, with the reason
 *   skipped/part-NNNNN.csv        listed entries that were not scanned, with the reason
 *   summary.json                  the accounting and score summary; written last, its presence marks
 *                                 the outputs as complete
 *
 * Each folder is one dataset (DuckDB: read_parquet('<out>/scores/*.parquet')). Runs of at most
 * DEFAULTS.singleFileMax rows also get the single files scores.parquet, scores.csv, failures.csv
 * and skipped.csv, with the same rows in the same (key) order.
 *
 * CSV text cells (keys, URIs, reasons) that a spreadsheet would run as a formula (starting with =,
 * +, -, @, tab or carriage return) are written with a leading apostrophe (OWASP's advice for CSV
 * injection); numbers are written as they are.
 */
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { flagScores, type Calibration, type Flags } from '../calibration.js';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { ALL_SCORE_TYPES, type AnyScoreType, type ScoreType } from '../dlsr/config.js';
import { PROPERTY_COUNT, PROPERTY_NAMES, type PropertyTable } from '../image/properties.js';
import { scoreTypesOf, type ScoreColumns, type ScoreTable } from '../score-table.js';
import type { Aggregate } from '../report/aggregate.js';
import { partitionOf } from '../report/verdict.js';
import { quantileSorted } from '../stats.js';
import { joinUri } from '../storage/locate.js';
import { joinKey, type ObjectStore } from '../storage/object-store.js';
import type { Accounting } from './accounting.js';

export const OUTPUT_FILES = {
  parquet: 'scores.parquet',
  csv: 'scores.csv',
  failures: 'failures.csv',
  skipped: 'skipped.csv',
  summary: 'summary.json',
} as const;

/** The part folders of a run's outputs. */
export const OUTPUT_DIRS = { scores: 'scores/', failures: 'failures/', skipped: 'skipped/' } as const;

/** The header of failures.csv and skipped.csv (and their parts). */
export const REASONS_HEADER = 'key,uri,reason\n';

export interface RunSummary {
  readonly model: { readonly uri: string; readonly encoder: string; readonly primary: ScoreType; readonly threshold: number; readonly tpr: number };
  readonly input: { readonly uri: string; readonly images: number; readonly scored: number; readonly failed: number; readonly skippedNonImages: number };
  /** Every listed entry is scored, failed or skipped: listed = scored + failed + skipped. */
  readonly accounting: Accounting;
  readonly flagged: number;
  readonly flaggedFraction: number;
  /** Fraction expected to be flagged if the input were in-distribution (1 - tpr). */
  readonly expectedFraction: number;
  /**
   * Per score type: the exact mean; the median and 95th percentile of the scored images, exact up to
   * the report aggregate's SAMPLE images, above that of a sample of SAMPLE images chosen by key hash.
   */
  readonly scores: Readonly<Record<string, { mean: number; median: number; p95: number; idThreshold: number; exact: boolean }>>;
  readonly throughput: { readonly extractImgPerS: number; readonly scoreImgPerS: number; readonly seconds: number };
  /** The tfjs tensor backend of the report's process. */
  readonly backend: string;
  /** What computed the run's features (every encoder runtime among its shards, cached ones included). */
  readonly encoderRuntimes: readonly string[];
  readonly outputs: Readonly<Record<string, string>>;
  readonly run?: { readonly id: string; readonly missingShards: readonly number[] };
  /**
   * What the report describes (scans that record state): the whole prefix as of the scan, the
   * unchanged images' scores carried forward. Everything else in summary.json is this run's own.
   */
  readonly prefix?: { readonly scored: number; readonly failed: number; readonly carried: number; readonly flagged: number; readonly flaggedFraction: number };
  /** Part files written, per folder. */
  readonly parts: { readonly scores: number; readonly failures: number; readonly skipped: number };
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

/** What every row of a run's score table shares: the run, and how its keys map to partitions. */
export interface RowContext {
  readonly inputUri: string;
  readonly runId: string;
  /** Report partitions: the first N path segments of the key (partitionOf). */
  readonly partitionDepth: number;
}

/** The columns after `key` that every score table has, in order: uri, run_id, partition. */
function rowColumns(table: ScoreTable, ctx: RowContext): { uri: string[]; runId: string[]; partition: string[] } {
  return {
    uri: table.keys.map((k) => uriOf(ctx.inputUri, k)),
    runId: table.keys.map(() => ctx.runId),
    partition: table.keys.map((k) => partitionOf(k, '', ctx.partitionDepth)),
  };
}

function formatNumber(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(7))) : String(v);
}

export function scoresToCsv(table: ScoreTable, flags: Flags, ctx: RowContext): string {
  const types = scoreTypesOf(table.scores);
  const p = table.properties;
  const cols = rowColumns(table, ctx);
  const lines = [['key', 'uri', 'run_id', 'partition', 'sha256', ...types, 'rank', 'flagged', ...(p !== undefined ? [...PROPERTY_NAMES, 'format'] : [])].join(',')];
  table.keys.forEach((key, i) => {
    const vals = types.map((t) => formatNumber(table.scores[t]![i]!));
    const props = p !== undefined ? [...Array.from(p.values.subarray(i * PROPERTY_COUNT, (i + 1) * PROPERTY_COUNT), (v) => (Number.isFinite(v) ? formatNumber(v) : '')), csvText(p.formats[i]!)] : [];
    lines.push([csvText(key), csvText(cols.uri[i]!), cols.runId[i]!, csvText(cols.partition[i]!), table.digests[i]!, ...vals, flags.rank[i]!.toFixed(6), flags.flagged[i] === 1 ? 'true' : 'false', ...props].join(','));
  });
  return lines.join('\n') + '\n';
}

export function scoresToParquet(table: ScoreTable, flags: Flags, ctx: RowContext, metadata: Record<string, string> = {}): Uint8Array {
  const cols = rowColumns(table, ctx);
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'key', data: [...table.keys], type: 'STRING', nullable: false },
      { name: 'uri', data: cols.uri, type: 'STRING', nullable: false },
      { name: 'run_id', data: cols.runId, type: 'STRING', nullable: false },
      { name: 'partition', data: cols.partition, type: 'STRING', nullable: false },
      { name: 'sha256', data: [...table.digests], type: 'STRING', nullable: false },
      ...scoreTypesOf(table.scores).map((t) => ({ name: t, data: table.scores[t]!, type: 'FLOAT' as const, nullable: false })),
      { name: 'rank', data: flags.rank, type: 'DOUBLE' as const, nullable: false },
      { name: 'flagged', data: Array.from(flags.flagged, (f) => f === 1), type: 'BOOLEAN' as const, nullable: false },
      ...propertyColumns(table.properties),
    ],
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    createdBy: 'ood-audit',
  });
  return new Uint8Array(buf);
}

/** The parquet columns of the image properties (none when the table has no properties). */
function propertyColumns(p: PropertyTable | undefined): { name: string; data: (number | null)[] | string[]; type: 'FLOAT' | 'STRING'; nullable: boolean }[] {
  if (p === undefined) return [];
  const n = p.formats.length;
  return [
    ...PROPERTY_NAMES.map((name, j) => ({
      name,
      data: Array.from({ length: n }, (_, i) => {
        const v = p.values[i * PROPERTY_COUNT + j]!;
        return Number.isFinite(v) ? v : null;
      }),
      type: 'FLOAT' as const,
      nullable: true,
    })),
    { name: 'format', data: [...p.formats], type: 'STRING' as const, nullable: false },
  ];
}

/** One row of failures.csv or skipped.csv. */
export function reasonRow(key: string, reason: string, inputUri: string): string {
  return `${csvText(key)},${csvText(uriOf(inputUri, key))},${csvText(reason)}\n`;
}

/** failures.csv and skipped.csv: key, uri, reason. */
export function reasonsToCsv(rows: readonly Failure[], inputUri: string): string {
  return REASONS_HEADER + rows.map((f) => reasonRow(f.key, f.reason, inputUri)).join('');
}

/** Reads a scores parquet file (a part or scores.parquet) back into a table and its flags. */
export async function readScoresParquet(bytes: Uint8Array): Promise<{ table: ScoreTable; flags: Flags }> {
  const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
  const scores: ScoreColumns = {};
  for (const t of ALL_SCORE_TYPES) if (rows.length > 0 && rows[0]![t] !== undefined) scores[t] = Float32Array.from(rows, (r) => Number(r[t]));
  const hasProps = rows.length > 0 && rows[0]!['format'] !== undefined;
  const properties: PropertyTable | undefined = hasProps
    ? { values: Float32Array.from(rows.flatMap((r) => PROPERTY_NAMES.map((n) => (r[n] === null || r[n] === undefined ? Number.NaN : Number(r[n]))))), formats: rows.map((r) => String(r['format'])) }
    : undefined;
  return {
    table: { keys: rows.map((r) => String(r['key'])), digests: rows.map((r) => String(r['sha256'])), scores, ...(properties !== undefined ? { properties } : {}) },
    flags: { rank: Float64Array.from(rows, (r) => Number(r['rank'])), flagged: Uint8Array.from(rows, (r) => (r['flagged'] === true ? 1 : 0)) },
  };
}

/** Concatenates tables (and their flags) in order; a score type is kept if every non-empty part has it. */
export function concatTables(parts: readonly { table: ScoreTable; flags: Flags }[]): { table: ScoreTable; flags: Flags } {
  const nonEmpty = parts.filter((p) => p.table.keys.length > 0);
  const scores: ScoreColumns = {};
  for (const t of ALL_SCORE_TYPES) {
    if (nonEmpty.length === 0 || !nonEmpty.every((p) => p.table.scores[t] !== undefined)) continue;
    scores[t] = Float32Array.from(nonEmpty.flatMap((p) => Array.from(p.table.scores[t]!)));
  }
  const withProps = nonEmpty.length > 0 && nonEmpty.every((p) => p.table.properties !== undefined);
  const properties = withProps ? { values: Float32Array.from(nonEmpty.flatMap((p) => Array.from(p.table.properties!.values))), formats: nonEmpty.flatMap((p) => p.table.properties!.formats) } : undefined;
  return {
    table: { keys: nonEmpty.flatMap((p) => p.table.keys), digests: nonEmpty.flatMap((p) => p.table.digests), scores, ...(properties !== undefined ? { properties } : {}) },
    flags: { rank: Float64Array.from(nonEmpty.flatMap((p) => Array.from(p.flags.rank))), flagged: Uint8Array.from(nonEmpty.flatMap((p) => Array.from(p.flags.flagged))) },
  };
}

/** Every part of a scores dataset (<prefix>/scores/part-*.parquet, in key order) as one table. */
export async function readScoreParts(store: ObjectStore, prefix: string): Promise<{ table: ScoreTable; flags: Flags }> {
  const parts: { table: ScoreTable; flags: Flags }[] = [];
  for await (const e of store.list(joinKey(prefix, OUTPUT_DIRS.scores))) {
    if ('skipped' in e || !/\/part-[^/]+\.parquet$/.test(e.key)) continue;
    parts.push(await readScoresParquet(await store.get(e.key)));
  }
  return concatTables(parts);
}

/** Concatenates CSV parts (each with the header) into one file with one header. */
export async function concatCsvParts(store: ObjectStore, keys: readonly string[], header: string, outKey: string): Promise<void> {
  const chunks = [header];
  for (const k of keys) {
    const text = new TextDecoder().decode(await store.get(k));
    chunks.push(text.startsWith(header) ? text.slice(header.length) : text);
  }
  await store.put(outKey, chunks.join(''));
}

/** The per-score-type summary of summary.json, from a run's aggregate. */
export function scoreSummary(agg: Aggregate, calibration: Calibration): RunSummary['scores'] {
  const exact = agg.sample.length >= agg.scored;
  return Object.fromEntries(
    [...agg.sums].map(([t, sum]) => {
      const sorted = Float64Array.from(agg.sample, (e) => e.scores[t] ?? Number.NaN).sort();
      const some = sorted.length > 0;
      return [t, { mean: agg.scored > 0 ? sum / agg.scored : Number.NaN, median: some ? quantileSorted(sorted, 0.5) : Number.NaN, p95: some ? quantileSorted(sorted, 0.95) : Number.NaN, idThreshold: calibration.scores[t as AnyScoreType]?.threshold ?? Number.NaN, exact }];
    }),
  );
}

