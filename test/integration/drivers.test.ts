/**
 * One core, two drivers: the same scan run in-process (--in-process) and through the queues (Redis,
 * local worker processes started by the CLI) writes the same files, byte for byte once run ids,
 * output locations, timestamps and durations are taken out (Parquet files, whose run_id column holds
 * the run id, row by row and with their key-value metadata).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { ROOT, runCli } from '../helpers/cli.js';
import { textAsPng, truncatedJpeg } from '../helpers/images.js';

/** Every file under `dir`, by path relative to it. */
function files(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel)).flatMap((name) => {
    const r = rel === '' ? name : `${rel}/${name}`;
    return statSync(path.join(dir, r)).isDirectory() ? files(dir, r) : [r];
  });
}

/** Keys whose values are times or durations. */
const TIMING_KEYS = new Set(['startedAt', 'finishedAt', 'seconds', 'imagesPerSecond', 'throughput', 'extractSeconds', 'scoreSeconds']);

function withoutTimings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimings);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !TIMING_KEYS.has(k)).map(([k, v]) => [k, withoutTimings(v)]));
}

async function normalised(file: string, bytes: Buffer, replace: readonly [string, string][]): Promise<string> {
  const sub = (text: string): string => replace.reduce((t, [from, to]) => t.replaceAll(from, to), text);
  if (file.endsWith('.parquet')) {
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const meta = parquetMetadata(buf);
    const rows = await parquetReadObjects({ file: buf });
    return sub(JSON.stringify({ kv: meta.key_value_metadata, schema: meta.schema.map((c) => [c.name, c.type]), rows }));
  }
  let text = bytes.toString('utf8');
  for (const [from, to] of replace) text = text.replaceAll(from, to);
  if (file.endsWith('.json')) return JSON.stringify(withoutTimings(JSON.parse(text)), null, 1);
  return text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d UTC/g, '<time>')
    .replace(/<li>\d+ s, [\d.]+ images\/s,/g, '<li><duration>,');
}

describe('drivers', () => {
  it('writes the same outputs in-process and through the queues', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'ood-drivers-'));
    const id = path.join(work, 'id');
    for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
      mkdirSync(path.join(id, c), { recursive: true });
      for (const f of readdirSync(path.join(ROOT, 'examples/demo/id', c)).slice(0, 15)) cpSync(path.join(ROOT, 'examples/demo/id', c, f), path.join(id, c, f));
    }
    const lake = path.join(work, 'lake');
    cpSync(path.join(ROOT, 'examples/demo/scan/fashion-mnist'), path.join(lake, '2026-01-02'), { recursive: true });
    mkdirSync(path.join(lake, '2026-01-01'), { recursive: true });
    for (const f of readdirSync(path.join(ROOT, 'examples/demo/scan/cifar10/airplane')).slice(0, 20)) cpSync(path.join(ROOT, 'examples/demo/scan/cifar10/airplane', f), path.join(lake, '2026-01-01', f));
    writeFileSync(path.join(lake, '2026-01-01/truncated.jpg'), await truncatedJpeg());
    writeFileSync(path.join(lake, '2026-01-01/text.png'), textAsPng());
    writeFileSync(path.join(lake, 'notes.txt'), 'not an image');
    const model = path.join(work, 'model');
    const fit = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1']);
    expect(fit.code, fit.stderr).toBe(0);

    const inProcess = path.join(work, 'out-in-process');
    const queued = path.join(work, 'out-queued');
    const a = await runCli(['scan', '--in-process', '--model', model, '--input', lake, '--out', inProcess, '--shard-size', '16', '--top-k', '6']);
    expect(a.code, a.stderr).toBe(0);
    // The first scan recorded the prefix's scan state; the second must not compare with it.
    rmSync(path.join(model, 'scans'), { recursive: true });
    // A file of the user's beside the part files is left alone (only part files are replaced).
    mkdirSync(path.join(queued, 'scores'), { recursive: true });
    writeFileSync(path.join(queued, 'scores/README.txt'), 'mine');
    const b = await runCli(['scan', '--model', model, '--input', lake, '--out', queued, '--shard-size', '16', '--top-k', '6', '--workers', '1']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/starting 1 local worker process/);
    expect(a.stdout.replace(inProcess, '<out>')).toBe(b.stdout.replace(queued, '<out>'));

    const runIdOf = (stderr: string): string => /run (scan-[0-9a-f]+)/.exec(stderr)![1]!;
    const replace = (out: string, runId: string): [string, string][] => [[out, '<out>'], [runId, '<run>']];
    const listA = files(inProcess).map((f) => f.replace(runIdOf(a.stderr), '<run>')).sort();
    expect(readFileSync(path.join(queued, 'scores/README.txt'), 'utf8')).toBe('mine');
    rmSync(path.join(queued, 'scores/README.txt'));
    const listB = files(queued).map((f) => f.replace(runIdOf(b.stderr), '<run>')).sort();
    expect(listA).toEqual(listB);
    expect(listA).toEqual(expect.arrayContaining(['scores.parquet', 'scores.csv', 'failures.csv', 'skipped.csv', 'summary.json', 'report.json', 'report.html', 'report.md']));
    // The run's work area is gone once the outputs are complete.
    expect(listA.filter((f) => f.startsWith('.work/'))).toEqual([]);
    for (const pattern of [/^scores\/part-00000-[0-9a-f]{8}\.parquet$/, /^failures\/part-00000-[0-9a-f]{8}\.csv$/, /^skipped\/part-00000\.csv$/]) {
      expect(listA.some((f) => pattern.test(f)), String(pattern)).toBe(true);
    }
    for (const f of listA) {
      const fa = f.replace('<run>', runIdOf(a.stderr));
      const fb = f.replace('<run>', runIdOf(b.stderr));
      expect(await normalised(f, readFileSync(path.join(queued, fb)), replace(queued, runIdOf(b.stderr))), f).toBe(await normalised(f, readFileSync(path.join(inProcess, fa)), replace(inProcess, runIdOf(a.stderr))));
    }
    expect(readFileSync(path.join(inProcess, 'failures.csv'), 'utf8')).toMatch(/2026-01-01\/truncated.jpg,/);
  }, 240_000);
});
