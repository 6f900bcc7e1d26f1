/**
 * Score rows in a compact binary frame (magic "OODROWS1"): what a scan keeps of each scored image so
 * that a later scan can carry it forward without scanning it again. A group writes its scored rows in
 * this form to the run's work area; the report cuts them into the prefix's state pages and writes
 * each page's rows next to it (outputs/prefix-pages.ts).
 *
 *   header  { n, types, keys, digests, etags?, formats|null, page?, binding? }
 *   body    float32: one column of n values per score type (in `types` order), then, when
 *           `formats` is not null, n x PROPERTY_COUNT image properties (row-major, NaN = missing)
 *
 * Rank and flag are not stored: they follow from the primary score and the model's calibration
 * (flagTable), so a carried row flags exactly as it did when it was scored. Read back like job data:
 * the header is validated and every length checked, and errors name the file.
 */
import { z } from 'zod';
import { decodeFrame, encodeFrame } from '../binary-frame.js';
import { ALL_SCORE_TYPES, type AnyScoreType } from '../dlsr/config.js';
import { OodError } from '../errors.js';
import { PROPERTY_COUNT } from '../image/properties.js';
import { scoreTypesOf, type ScoreColumns, type ScoreTable } from '../score-table.js';

const MAGIC = 'OODROWS1';

/** Rows in one frame (a group holds at most a few tens of thousands; a state page at most 4 x STATE_PAGE). */
export const MAX_ROWS = 1_000_000;

/** Rows read back: the table, and what the frame says they belong to. */
export interface ScoreRows {
  readonly table: ScoreTable;
  /** Each key's ETag when the rows were recorded (state pages). */
  readonly etags?: readonly string[];
  /** The state page the rows are of. */
  readonly page?: string;
  /** What the scores were computed under (model identity and scoring settings). */
  readonly binding?: string;
}

const headerSchema = z
  .object({
    n: z.number().int().min(0).max(MAX_ROWS),
    types: z.array(z.enum(ALL_SCORE_TYPES)),
    keys: z.array(z.string()),
    digests: z.array(z.string()),
    etags: z.array(z.string()).optional(),
    formats: z.array(z.string()).nullable(),
    page: z.string().optional(),
    binding: z.string().optional(),
  })
  .refine((h) => h.keys.length === h.n && h.digests.length === h.n && (h.etags === undefined || h.etags.length === h.n) && (h.formats === null || h.formats.length === h.n), 'keys, digests, etags and formats must have one entry per row')
  .refine((h) => new Set(h.types).size === h.types.length, 'score types must be distinct');

export function encodeScoreRows(rows: ScoreRows): Uint8Array {
  const t = rows.table;
  const n = t.keys.length;
  const types = scoreTypesOf(t.scores);
  if (rows.etags !== undefined && rows.etags.length !== n) throw new OodError('INTERNAL', `score rows: ${rows.etags.length} ETags for ${n} keys`);
  const props = t.properties;
  const body = new Float32Array(n * (types.length + (props !== undefined ? PROPERTY_COUNT : 0)));
  types.forEach((type, j) => body.set(t.scores[type]!, j * n));
  if (props !== undefined) body.set(props.values, types.length * n);
  const header = {
    n,
    types,
    keys: t.keys,
    digests: t.digests,
    ...(rows.etags !== undefined ? { etags: rows.etags } : {}),
    formats: props !== undefined ? props.formats : null,
    ...(rows.page !== undefined ? { page: rows.page } : {}),
    ...(rows.binding !== undefined ? { binding: rows.binding } : {}),
  };
  return encodeFrame(MAGIC, header, new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
}

export function decodeScoreRows(bytes: Uint8Array, source: string): ScoreRows {
  const frame = decodeFrame(bytes, MAGIC, source, 'an ood-audit score rows file');
  const parsed = headerSchema.safeParse(frame.header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new OodError('MODEL_INVALID', `${source}: header ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const h = parsed.data;
  const width = h.types.length + (h.formats !== null ? PROPERTY_COUNT : 0);
  if (frame.body.length !== h.n * width * 4) throw new OodError('MODEL_INVALID', `${source}: expected ${h.n * width * 4} bytes of scores, got ${frame.body.length}`);
  const values = new Float32Array(h.n * width);
  new Uint8Array(values.buffer).set(frame.body);
  const scores: ScoreColumns = {};
  h.types.forEach((type, j) => (scores[type] = values.subarray(j * h.n, (j + 1) * h.n)));
  const table: ScoreTable = {
    keys: h.keys,
    digests: h.digests,
    scores,
    ...(h.formats !== null ? { properties: { values: values.subarray(h.types.length * h.n), formats: h.formats } } : {}),
  };
  return { table, ...(h.etags !== undefined ? { etags: h.etags } : {}), ...(h.page !== undefined ? { page: h.page } : {}), ...(h.binding !== undefined ? { binding: h.binding } : {}) };
}

/** One row of a table. */
export interface RowRef {
  readonly table: ScoreTable;
  readonly row: number;
}

/**
 * A table of the given rows, in that order. A score type (and the image properties) is kept when
 * every table the rows come from has it: rows scored from features cached before a score type or
 * the properties existed contribute none (as when shard tables are concatenated).
 */
export function gatherRows(rows: readonly RowRef[]): ScoreTable {
  const tables = [...new Set(rows.map((r) => r.table))];
  const types: AnyScoreType[] = ALL_SCORE_TYPES.filter((t) => tables.length > 0 && tables.every((tb) => tb.scores[t] !== undefined));
  const scores: ScoreColumns = {};
  for (const t of types) scores[t] = Float32Array.from(rows, (r) => r.table.scores[t]![r.row]!);
  const withProps = tables.length > 0 && tables.every((tb) => tb.properties !== undefined);
  let properties: ScoreTable['properties'];
  if (withProps) {
    const values = new Float32Array(rows.length * PROPERTY_COUNT);
    rows.forEach((r, i) => values.set(r.table.properties!.values.subarray(r.row * PROPERTY_COUNT, (r.row + 1) * PROPERTY_COUNT), i * PROPERTY_COUNT));
    properties = { values, formats: rows.map((r) => r.table.properties!.formats[r.row]!) };
  }
  return { keys: rows.map((r) => r.table.keys[r.row]!), digests: rows.map((r) => r.table.digests[r.row]!), scores, ...(properties !== undefined ? { properties } : {}) };
}
