/** Reads a run's scores.parquet back into a score table (for eval). */
import { parquetReadObjects } from 'hyparquet';
import { SCORE_TYPES } from '../dlsr/config.js';
import type { ScoreColumns, ScoreTable } from '../score-table.js';
import type { ObjectStore } from '../storage/object-store.js';

export async function readScoreTable(store: ObjectStore, key: string): Promise<ScoreTable & { flagged: Uint8Array }> {
  const bytes = await store.get(key);
  const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
  const keys = rows.map((r) => String(r['key']));
  const scores: ScoreColumns = {};
  for (const t of SCORE_TYPES) if (rows.length > 0 && rows[0]![t] !== undefined) scores[t] = Float32Array.from(rows, (r) => Number(r[t]));
  return { keys, digests: rows.map((r) => String(r['sha256'])), scores, flagged: Uint8Array.from(rows, (r) => (r['flagged'] === true ? 1 : 0)) };
}
