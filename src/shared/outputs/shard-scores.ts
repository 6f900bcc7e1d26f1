/**
 * One shard's scores as a JSON object in the run's work area: keys, one array per computed score
 * type, and the shard's failures. The report job merges them; they are read back from storage, so
 * they are validated like job data.
 */
import { z } from 'zod';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { SCORE_TYPES, type ScoreType } from '../dlsr/config.js';
import { scoreTypesOf, type ScoreColumns, type ScoreTable } from '../score-table.js';

const failure = z.object({ key: z.string(), reason: z.string() });

export const shardScoresSchema = z.object({
  shard: z.number().int().min(0),
  keys: z.array(z.string()),
  digests: z.array(z.string()),
  scores: z.partialRecord(z.enum(SCORE_TYPES), z.array(z.number())),
  failures: z.array(failure),
});
export type ShardScores = z.infer<typeof shardScoresSchema>;

export function shardScores(shard: number, table: ScoreTable, failures: readonly Failure[]): ShardScores {
  const scores: Partial<Record<ScoreType, number[]>> = {};
  for (const t of scoreTypesOf(table.scores)) scores[t] = Array.from(table.scores[t]!);
  return { shard, keys: [...table.keys], digests: [...table.digests], scores, failures: [...failures] };
}

/** Concatenates shard scores (in shard order) into one table; a score type is kept if every non-empty shard has it. */
export function mergeShardScores(parts: readonly ShardScores[]): { table: ScoreTable; failures: Failure[] } {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  const keys = sorted.flatMap((p) => p.keys);
  const digests = sorted.flatMap((p) => p.digests);
  if (digests.length !== keys.length) throw new OodError('INTERNAL', `shard scores: ${digests.length} digests for ${keys.length} keys`);
  const scores: ScoreColumns = {};
  for (const t of SCORE_TYPES) {
    if (!sorted.every((p) => p.scores[t] !== undefined || p.keys.length === 0)) continue;
    const col = Float32Array.from(sorted.flatMap((p) => p.scores[t] ?? []));
    if (col.length !== keys.length) throw new OodError('INTERNAL', `shard scores: ${t} has ${col.length} values for ${keys.length} keys`);
    scores[t] = col;
  }
  return { table: { keys, digests, scores }, failures: sorted.flatMap((p) => p.failures) };
}
