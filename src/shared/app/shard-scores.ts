/**
 * One shard's scores as a JSON object in the run's work area: keys, one array per computed score
 * type, and the shard's failures. The report job merges them.
 */
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { SCORE_TYPES, type ScoreType } from '../dlsr/config.js';
import type { ScoreTable } from '../dlsr/model.js';

export interface ShardScores {
  readonly shard: number;
  readonly keys: readonly string[];
  readonly scores: Partial<Record<ScoreType, number[]>>;
  readonly failures: readonly Failure[];
}

export function shardScores(shard: number, table: ScoreTable, failures: readonly Failure[]): ShardScores {
  const scores: Partial<Record<ScoreType, number[]>> = {};
  for (const t of SCORE_TYPES) if (table.scores[t].length === table.keys.length) scores[t] = Array.from(table.scores[t]);
  return { shard, keys: table.keys, scores, failures };
}

/** Concatenates shard scores (in shard order) into one table. */
export function mergeShardScores(parts: readonly ShardScores[]): { table: ScoreTable; failures: Failure[] } {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  const keys = sorted.flatMap((p) => p.keys);
  const types = SCORE_TYPES.filter((t) => sorted.every((p) => p.scores[t] !== undefined || p.keys.length === 0));
  const scores = Object.fromEntries(SCORE_TYPES.map((t) => [t, types.includes(t) ? Float32Array.from(sorted.flatMap((p) => p.scores[t] ?? [])) : new Float32Array(0)])) as ScoreTable['scores'];
  for (const t of types) if (scores[t].length !== keys.length) throw new OodError('INTERNAL', `shard scores: ${t} has ${scores[t].length} values for ${keys.length} keys`);
  return { table: { keys, scores }, failures: sorted.flatMap((p) => p.failures) };
}
