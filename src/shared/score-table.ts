/**
 * Per-image score tables: the keys and one column per computed score type (plain arrays, no tfjs;
 * the model computes them, outputs and eval read them).
 */
import { SCORE_TYPES, type ScoreType } from './dlsr/config.js';

/** The computed score columns: a type is present exactly when it was computed. */
export type ScoreColumns = Partial<Record<ScoreType, Float32Array>>;

/** Which score types to compute. */
export type ScoreSelection = ReadonlySet<ScoreType>;

/** The score types present in `scores`, in the canonical SCORE_TYPES order. */
export function scoreTypesOf(scores: ScoreColumns): ScoreType[] {
  return SCORE_TYPES.filter((t) => scores[t] !== undefined);
}

export interface ScoreTable {
  readonly keys: readonly string[];
  /** Hex sha256 of each image's bytes (its content identity), in key order. */
  readonly digests: readonly string[];
  readonly scores: ScoreColumns;
}

