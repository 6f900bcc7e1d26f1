/**
 * Writing a scored run: scores.parquet, scores.csv, failures.csv and summary.json under one prefix.
 * summary.json is written last: its presence marks the run's outputs as complete.
 */
import { joinKey, putJson, type ObjectStore } from '../storage/object-store.js';
import { deriveFlags, failuresToCsv, scoresToCsv, scoresToParquet } from '../score-output.js';
import type { Failure } from '../feature-set.js';
import type { DlsrModel, ScoreTable } from '../dlsr/model.js';
import { SCORE_TYPES, type ScoreType } from '../dlsr/config.js';
import { OodError } from '../errors.js';

export const OUTPUT_FILES = {
  parquet: 'scores.parquet',
  csv: 'scores.csv',
  failures: 'failures.csv',
  summary: 'summary.json',
} as const;

export interface RunSummary {
  readonly model: { readonly uri: string; readonly encoder: string; readonly primary: ScoreType; readonly threshold: number; readonly tpr: number };
  readonly input: { readonly uri: string; readonly images: number; readonly scored: number; readonly failed: number; readonly skippedNonImages: number };
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

export interface WriteRunParams {
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly model: DlsrModel;
  readonly modelUri: string;
  readonly inputUri: string;
  readonly table: ScoreTable;
  readonly failures: readonly Failure[];
  readonly skippedNonImages: number;
  readonly extractSeconds: number;
  readonly scoreSeconds: number;
  readonly totalSeconds: number;
  readonly backend: string;
  /** The queue run that produced the outputs, and shards whose images could not be scored. */
  readonly run?: { readonly id: string; readonly missingShards: readonly number[] };
}

function median(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!;
}

export async function writeRunOutputs(p: WriteRunParams): Promise<RunSummary> {
  const cal = p.model.calibration;
  if (cal === undefined) throw new OodError('MODEL_INVALID', `${p.modelUri}: the model has no calibration.json (refit it)`);
  const primary = p.model.config.scoring.primary;
  const computed = SCORE_TYPES.filter((t) => p.table.scores[t].length === p.table.keys.length);
  const scores = Object.fromEntries(computed.map((t) => [t, p.table.scores[t]])) as Partial<Record<ScoreType, Float32Array>>;
  const rows = { keys: p.table.keys, scores, primary, calibration: cal };
  const derived = deriveFlags(rows);
  const k = (name: string): string => joinKey(p.prefix, name);
  await p.store.put(k(OUTPUT_FILES.parquet), scoresToParquet(rows, derived, { model: p.modelUri, encoder: p.model.fingerprint.id, primary }));
  await p.store.put(k(OUTPUT_FILES.csv), scoresToCsv(rows, derived));
  await p.store.put(k(OUTPUT_FILES.failures), failuresToCsv(p.failures));
  const flagged = derived.flagged.reduce((s, f) => s + f, 0);
  const n = p.table.keys.length;
  const summary: RunSummary = {
    model: { uri: p.modelUri, encoder: p.model.fingerprint.id, primary, threshold: cal.scores[primary]!.threshold, tpr: cal.tpr },
    input: { uri: p.inputUri, images: n + p.failures.length, scored: n, failed: p.failures.length, skippedNonImages: p.skippedNonImages },
    flagged,
    flaggedFraction: n > 0 ? flagged / n : 0,
    expectedFraction: 1 - cal.tpr,
    scores: Object.fromEntries(
      computed.map((t) => {
        const s = Float64Array.from(p.table.scores[t]).sort();
        let mean = 0;
        for (const v of s) mean += v / Math.max(1, s.length);
        return [t, { mean, median: median(s, 0.5), p95: median(s, 0.95), idThreshold: cal.scores[t]?.threshold ?? Number.NaN }];
      }),
    ),
    throughput: {
      extractImgPerS: (n + p.failures.length) / Math.max(p.extractSeconds, 1e-9),
      scoreImgPerS: n / Math.max(p.scoreSeconds, 1e-9),
      seconds: p.totalSeconds,
    },
    backend: p.backend,
    ...(p.run !== undefined ? { run: p.run } : {}),
    outputs: Object.fromEntries(Object.entries(OUTPUT_FILES).map(([name, file]) => [name, k(file)])),
  };
  await putJson(p.store, k(OUTPUT_FILES.summary), summary);
  return summary;
}
