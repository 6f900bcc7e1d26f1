/**
 * Per-image score tables as CSV and Parquet, plus the run summary. Columns: key, one column per score
 * type computed, `rank` (the primary score's calibrated rank among ID holdout scores, 0..1) and
 * `flagged` (primary score above the calibrated threshold).
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import { calibratedRank, type Calibration } from './calibration.js';
import { OodError } from './errors.js';
import type { Failure } from './feature-set.js';
import type { ScoreType } from './dlsr/config.js';

export interface ScoreRows {
  readonly keys: readonly string[];
  /** Only the computed score types. */
  readonly scores: Partial<Record<ScoreType, Float32Array>>;
  readonly primary: ScoreType;
  readonly calibration: Calibration;
}

export interface ScoreRowsDerived {
  readonly rank: Float64Array;
  readonly flagged: Uint8Array;
}

export function deriveFlags(rows: ScoreRows): ScoreRowsDerived {
  const primary = rows.scores[rows.primary];
  const cal = rows.calibration.scores[rows.primary];
  if (primary === undefined || cal === undefined) throw new OodError('INTERNAL', `primary score ${rows.primary} missing from scores or calibration`);
  const rank = Float64Array.from(primary, (v) => calibratedRank(cal, v));
  const flagged = Uint8Array.from(primary, (v) => (v > cal.threshold ? 1 : 0));
  return { rank, flagged };
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function scoresToCsv(rows: ScoreRows, derived: ScoreRowsDerived): string {
  const types = Object.keys(rows.scores) as ScoreType[];
  const lines = [['key', ...types, 'rank', 'flagged'].join(',')];
  rows.keys.forEach((key, i) => {
    const vals = types.map((t) => formatNumber(rows.scores[t]![i]!));
    lines.push([csvField(key), ...vals, derived.rank[i]!.toFixed(6), derived.flagged[i] === 1 ? 'true' : 'false'].join(','));
  });
  return lines.join('\n') + '\n';
}

function formatNumber(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(7))) : String(v);
}

export function scoresToParquet(rows: ScoreRows, derived: ScoreRowsDerived, metadata: Record<string, string> = {}): Uint8Array {
  const types = Object.keys(rows.scores) as ScoreType[];
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'key', data: [...rows.keys], type: 'STRING', nullable: false },
      ...types.map((t) => ({ name: t, data: rows.scores[t]!, type: 'FLOAT' as const, nullable: false })),
      { name: 'rank', data: derived.rank, type: 'DOUBLE' as const, nullable: false },
      { name: 'flagged', data: Array.from(derived.flagged, (f) => f === 1), type: 'BOOLEAN' as const, nullable: false },
    ],
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    createdBy: 'ood-audit',
  });
  return new Uint8Array(buf);
}

export function failuresToCsv(failures: readonly Failure[]): string {
  return ['key,reason', ...failures.map((f) => `${csvField(f.key)},${csvField(f.reason)}`)].join('\n') + '\n';
}
