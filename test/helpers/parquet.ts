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

/**
 * What separates two runs' score rows, one short line per difference (keys only one side has, then fields that
 * differ, by key): an assertion on it names the rows and fields instead of printing a 150-row diff a log truncates.
 */
export function rowDifferences(received: readonly Record<string, unknown>[], expected: readonly Record<string, unknown>[], limit = 20): string[] {
  const byKey = (rows: readonly Record<string, unknown>[]) => new Map(withoutRunId(rows).map((r) => [String(r['key']), r]));
  const got = byKey(received);
  const want = byKey(expected);
  const out: string[] = [];
  if (got.size !== received.length || want.size !== expected.length) out.push(`rows: ${received.length} received (${got.size} keys), ${expected.length} expected (${want.size} keys)`);
  for (const k of want.keys()) if (!got.has(k)) out.push(`${k}: missing`);
  for (const k of got.keys()) if (!want.has(k)) out.push(`${k}: unexpected`);
  for (const [k, g] of got) {
    const w = want.get(k);
    if (!w) continue;
    for (const f of new Set([...Object.keys(g), ...Object.keys(w)])) {
      if (!Object.is(g[f], w[f]) && JSON.stringify(g[f]) !== JSON.stringify(w[f])) out.push(`${k}: ${f} ${JSON.stringify(g[f])} (expected ${JSON.stringify(w[f])})`);
    }
  }
  const order = (rows: readonly Record<string, unknown>[]) => rows.map((r) => String(r['key'])).join('\n');
  if (out.length === 0 && order(received) !== order(expected)) out.push('same rows in another order');
  return out.length > limit ? [...out.slice(0, limit), `... and ${out.length - limit} more`] : out;
}
