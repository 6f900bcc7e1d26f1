/**
 * One shard's scored rows as a JSON object in the run's work area: keys, content digests, one array
 * per computed score type, the images' properties (when measured), the primary score's calibrated
 * rank and flag, and the shard's failures.
 * Its group merges them into a part file; they are read back from storage, so they are validated
 * like job data.
 */
import { z } from 'zod';
import type { Flags } from '../calibration.js';
import { OodError } from '../errors.js';
import type { Failure } from '../feature-set.js';
import { ALL_SCORE_TYPES, type AnyScoreType } from '../dlsr/config.js';
import { PROPERTY_COUNT, PROPERTY_NAMES } from '../image/properties.js';
import { scoreTypesOf, type ScoreColumns, type ScoreTable } from '../score-table.js';

const failure = z.object({ key: z.string(), reason: z.string() });

export const shardScoresSchema = z
  .object({
    shard: z.number().int().min(0),
    keys: z.array(z.string()),
    digests: z.array(z.string()),
    scores: z.partialRecord(z.enum(ALL_SCORE_TYPES), z.array(z.number())),
    /** Image properties: names, row-major values (null for a missing value) and formats. */
    properties: z.object({ names: z.array(z.string()), values: z.array(z.number().nullable()), formats: z.array(z.string()) }).optional(),
    rank: z.array(z.number()),
    flagged: z.array(z.union([z.literal(0), z.literal(1)])),
    failures: z.array(failure),
  })
  .refine((s) => s.digests.length === s.keys.length && s.rank.length === s.keys.length && s.flagged.length === s.keys.length && Object.values(s.scores).every((c) => c.length === s.keys.length), 'every column must have one value per key')
  .refine((s) => s.properties === undefined || (s.properties.names.join() === PROPERTY_NAMES.join() && s.properties.formats.length === s.keys.length && s.properties.values.length === s.keys.length * PROPERTY_COUNT), `properties must be ${PROPERTY_NAMES.length} per key, named ${PROPERTY_NAMES.join(', ')}`);
export type ShardScores = z.infer<typeof shardScoresSchema>;

export function shardScores(shard: number, table: ScoreTable, flags: Flags, failures: readonly Failure[]): ShardScores {
  const scores: Partial<Record<AnyScoreType, number[]>> = {};
  for (const t of scoreTypesOf(table.scores)) scores[t] = Array.from(table.scores[t]!);
  const p = table.properties;
  return {
    shard,
    keys: [...table.keys],
    digests: [...table.digests],
    scores,
    ...(p !== undefined ? { properties: { names: [...PROPERTY_NAMES], values: Array.from(p.values, (v) => (Number.isFinite(v) ? v : null)), formats: [...p.formats] } } : {}),
    rank: Array.from(flags.rank),
    flagged: Array.from(flags.flagged, (f) => (f === 1 ? 1 : 0)),
    failures: [...failures],
  };
}

/** Concatenates shard scores (in shard order) into one table; a score type is kept if every non-empty shard has it. */
export function mergeShardScores(parts: readonly ShardScores[]): { table: ScoreTable; flags: Flags; failures: Failure[] } {
  const sorted = [...parts].sort((a, b) => a.shard - b.shard);
  const keys = sorted.flatMap((p) => p.keys);
  const digests = sorted.flatMap((p) => p.digests);
  const scores: ScoreColumns = {};
  for (const t of ALL_SCORE_TYPES) {
    if (!sorted.every((p) => p.scores[t] !== undefined || p.keys.length === 0)) continue;
    const col = Float32Array.from(sorted.flatMap((p) => p.scores[t] ?? []));
    if (col.length !== keys.length) throw new OodError('INTERNAL', `shard scores: ${t} has ${col.length} values for ${keys.length} keys`);
    scores[t] = col;
  }
  const flags: Flags = { rank: Float64Array.from(sorted.flatMap((p) => p.rank)), flagged: Uint8Array.from(sorted.flatMap((p) => p.flagged)) };
  // Properties are kept when every non-empty shard has them (shards extracted before them have none).
  const withRows = sorted.filter((p) => p.keys.length > 0);
  const properties =
    withRows.length > 0 && withRows.every((p) => p.properties !== undefined)
      ? { values: Float32Array.from(withRows.flatMap((p) => p.properties!.values), (v) => v ?? Number.NaN), formats: withRows.flatMap((p) => p.properties!.formats) }
      : undefined;
  return { table: { keys, digests, scores, ...(properties !== undefined ? { properties } : {}) }, flags, failures: sorted.flatMap((p) => p.failures) };
}
