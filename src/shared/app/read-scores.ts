/** Reads a run's scores.parquet back into a score table (for eval and reports). */
import { parquetReadObjects } from 'hyparquet';
import { SCORE_TYPES } from '../dlsr/config.js';
import type { ScoreTable } from '../dlsr/model.js';
import type { ObjectStore } from '../storage/object-store.js';

export async function readScoreTable(store: ObjectStore, key: string): Promise<ScoreTable & { flagged: Uint8Array }> {
  const bytes = await store.get(key);
  const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
  const keys = rows.map((r) => String(r['key']));
  const present = SCORE_TYPES.filter((t) => rows.length > 0 && rows[0]![t] !== undefined);
  const scores = Object.fromEntries(SCORE_TYPES.map((t) => [t, present.includes(t) ? Float32Array.from(rows, (r) => Number(r[t])) : new Float32Array(0)])) as ScoreTable['scores'];
  return { keys, scores, flagged: Uint8Array.from(rows, (r) => (r['flagged'] === true ? 1 : 0)) };
}
