/**
 * The SQL that docs/report-schema.md gives for querying many nightly runs, run as written by DuckDB
 * (the real engine, @duckdb/node-api) over the score parts of two nightly scans: every query parses,
 * reads every night's parts and agrees with the scans' own counts. Only the s3://bucket/reports/
 * location is replaced by the local folder the scans wrote (httpfs is not at hand offline).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { copyEntries, DEMO, demoIdSubset, fitTinyModel } from '../helpers/demo.js';


/** The SQL statements of the "Querying many runs" section of docs/report-schema.md. */
function documentedQueries(): string[] {
  const doc = readFileSync(path.join(ROOT, 'docs/report-schema.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Querying many runs'));
  const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('docs/report-schema.md: no sql block under "Querying many runs"');
  return block
    .split(';')
    .map((s) => s.replace(/^--.*$/gm, '').trim())
    .filter((s) => s !== '');
}

describe('the documented DuckDB queries', () => {
  it('run over the parts of nightly scans and agree with their counts', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-duckdb-'));
    const model = path.join(work, 'model');
    await fitTinyModel(demoIdSubset(work), model);
    const lake = path.join(work, 'lake');
    const scanned: Record<string, number> = {};
    for (const [night, c] of [['2026-11-01', 'cifar10'], ['2026-11-02', 'fashion-mnist']] as const) {
      copyEntries(path.join(DEMO, 'scan', c), path.join(lake, night), 2);
      const r = await runCli(['scan', '--in-process', '--model', model, '--input', lake, '--out', path.join(work, 'reports', night), '--shard-size', '4']);
      expect(r.code, r.stderr).toBe(0);
      scanned[night] = (JSON.parse(readFileSync(path.join(work, 'reports', night, 'summary.json'), 'utf8')) as { input: { scored: number } }).input.scored;
    }
    const queries = documentedQueries();
    expect(queries).toHaveLength(2);
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const run = async (sql: string): Promise<Record<string, unknown>[]> => (await db.runAndReadAll(sql.replaceAll('s3://bucket/reports/', `${path.join(work, 'reports')}/`))).getRowObjects();
    // Flagged fraction per night and partition: every night, every scored image.
    const perNight = await run(queries[0]!);
    const images = (n: string): number => perNight.filter((r) => r['night'] === n).reduce((s, r) => s + Number(r['images']), 0);
    expect(images('2026-11-01')).toBe(scanned['2026-11-01']);
    expect(images('2026-11-02')).toBe(scanned['2026-11-02']);
    for (const r of perNight) expect(Number(r['flagged_fraction'])).toBeGreaterThanOrEqual(0);
    // The most OOD images of the month: flagged rows, highest fused first.
    const worst = await run(queries[1]!);
    expect(worst.length).toBeGreaterThan(0);
    const fused = worst.map((r) => Number(r['fused']));
    expect(fused).toEqual([...fused].sort((a, b) => b - a));
    for (const r of worst) expect(String(r['uri'])).toContain(lake);
  }, 300_000);
});
