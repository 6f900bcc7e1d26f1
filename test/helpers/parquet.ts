/** Reads a Parquet file's rows (Node may hand small files a pooled buffer: slice its own bytes). */
import { readFileSync } from 'node:fs';
import { parquetReadObjects } from 'hyparquet';

export async function readParquet(file: string): Promise<Record<string, unknown>[]> {
  const b = readFileSync(file);
  return parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer });
}

/** Score rows without their run id: two runs of the same images give the same rows but for it. */
export function withoutRunId(rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map(({ run_id: _r, ...rest }) => rest);
}

/** A score row without what names where it lives and which run wrote it: what its content decides. */
export function contentOf(row: Record<string, unknown>): Record<string, unknown> {
  const { key: _k, uri: _u, partition: _p, run_id: _r, ...rest } = row;
  return rest;
}
