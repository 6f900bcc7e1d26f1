/** Reads a Parquet file's rows (Node may hand small files a pooled buffer: slice its own bytes). */
import { readFileSync } from 'node:fs';
import { parquetReadObjects } from 'hyparquet';

export async function readParquet(file: string): Promise<Record<string, unknown>[]> {
  const b = readFileSync(file);
  return parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer });
}
