/**
 * One shard's scored rows as a JSON object in the run's work area: keys, content digests, one array
 * per computed score type, the primary score's calibrated rank and flag, and the shard's failures.
 * Its group merges them into a part file; they are read back from storage, so they are validated
 * like job data.
 */
import { z } from 'zod';
import type { Flags } from '../calibration.js';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { SCORE_TYPES, type ScoreType } from '../dlsr/config.js';
import { scoreTypesOf, type ScoreColumns, type ScoreTable } from '../score-table.js';

const failure = z.object({ key: z.string(), reason: z.string() });

export const shardScoresSchema = z
  .object({
    shard: z.number().int().min(0),
    keys: z.array(z.string()),
    digests: z.array(z.string()),
    scores: z.partialRecord(z.enum(SCORE_TYPES), z.array(z.number())),
    rank: z.array(z.number()),
    flagged: z.array(z.union([z.literal(0), z.literal(1)])),
    failures: z.array(failure),
  })
  .refine((s) => s.digests.length === s.keys.length && s.rank.length === s.keys.length && s.flagged.length === s.keys.length && Object.values(s.scores).every((c) => c.length === s.keys.length), 'every column must have one value per key');
export type ShardScores = z.infer<typeof shardScoresSchema>;

export function shardScores(shard: number, table: ScoreTable, flags: Flags, failures: readonly Failure[]): ShardScores {
  const scores: Partial<Record<ScoreType, number[]>> = {};
  for (const t of scoreTypesOf(table.scores)) scores[t] = Array.from(table.scores[t]!);
  return { shard, keys: [...table.keys], digests: [...table.digests], scores, rank: Array.from(flags.rank), flagged: Array.from(flags.flagged, (f) => (f === 1 ? 1 : 0)), failures: [...failures] };
}

/** Concatenates shard scores (in shard order) into one table; a score type is kept if every non-empty shard has it. */
export function mergeShardScores(parts: readonly ShardScores[]): { table: ScoreTable; flags: Flags; failures: Failure[] } {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  const keys = sorted.flatMap((p) => p.keys);
  const digests = sorted.flatMap((p) => p.digests);
  const scores: ScoreColumns = {};
  for (const t of SCORE_TYPES) {
    if (!sorted.every((p) => p.scores[t] !== undefined || p.keys.length === 0)) continue;
    const col = Float32Array.from(sorted.flatMap((p) => p.scores[t] ?? []));
    if (col.length !== keys.length) throw new OodError('INTERNAL', `shard scores: ${t} has ${col.length} values for ${keys.length} keys`);
    scores[t] = col;
  }
  const flags: Flags = { rank: Float64Array.from(sorted.flatMap((p) => p.rank)), flagged: Uint8Array.from(sorted.flatMap((p) => p.flagged)) };
  return { table: { keys, digests, scores }, flags, failures: sorted.flatMap((p) => p.failures) };
}
