/**
 * Per-image score tables: the keys, one column per computed score type and, when measured, the
 * images' properties (plain arrays, no tfjs;
 * the model computes them, outputs and eval read them).
 */
import { ALL_SCORE_TYPES, type AnyScoreType } from './dlsr/config.js';
import type { PropertyTable } from './image/properties.js';

/** The computed score columns (the conditions score included): a type is present exactly when it was computed. */
export type ScoreColumns = Partial<Record<AnyScoreType, Float32Array>>;

/** Which score types to compute. */
export type ScoreSelection = ReadonlySet<AnyScoreType>;

/** The score types present in `scores`, in the canonical ALL_SCORE_TYPES order. */
export function scoreTypesOf(scores: ScoreColumns): AnyScoreType[] {
  return ALL_SCORE_TYPES.filter((t) => scores[t] !== undefined);
}

export interface ScoreTable {
  readonly keys: readonly string[];
  /** Hex sha256 of each image's bytes (its content identity), in key order. */
  readonly digests: readonly string[];
  readonly scores: ScoreColumns;
  /** Each row's image properties (absent when the features had none). */
  readonly properties?: PropertyTable;
}

