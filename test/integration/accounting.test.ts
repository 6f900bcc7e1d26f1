/**
 * Every entry under a scanned folder is accounted for (scored, failed with a reason, or skipped with
 * a reason), whatever the folder holds: link loops, special files, names that are not UTF-8, broken
 * and self-referencing links, unreadable and oversized files; the same bytes score the same under any
 * name; text from the data cannot inject formulas into the CSVs or Markdown into the report.
 * Real files, a real FIFO and socket, the real CLI, in-process and through the queues.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentOf, readParquet, withoutRunId } from '../helpers/parquet.js';
import { ROOT, runCli } from '../helpers/cli.js';

const work = mkdtempSync(path.join(tmpdir(), 'ood-accounting-'));
const model = path.join(work, 'model');
const lake = path.join(work, 'lake');
const demo = (sub: string, n: number): string[] => readdirSync(path.join(ROOT, 'examples/demo', sub)).sort().slice(0, n).map((f) => path.join(ROOT, 'examples/demo', sub, f));
let socket: Server | undefined;

interface Summary {
  accounting: { listed: number; scored: number; failed: number; skipped: number; skippedByReason: Record<string, number> };
}

function csvRows(file: string): string[][] {
  return readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
}

beforeAll(async () => {
  const id = path.join(work, 'id');
  for (const c of readdirSync(path.join(ROOT, 'examples/demo/id'))) {
    mkdirSync(path.join(id, c), { recursive: true });
    for (const f of demo(`id/${c}`, 12)) cpSync(f, path.join(id, c, path.basename(f)));
  }
  const fit = await runCli(['fit', '--in-process', '--id', id, '--model', model, '--epochs', '2', '--width', '64', '--depth', '1']);
  expect(fit.code, fit.stderr).toBe(0);

  // The hostile lake.
  mkdirSync(path.join(lake, 'day1'), { recursive: true });
  for (const f of demo('scan/cifar10/airplane', 6)) cpSync(f, path.join(lake, 'day1', path.basename(f)));
  symlinkSync('.', path.join(lake, 'loop')); // one link back to the top: every file again under loop/...
  mkdirSync(path.join(lake, 'a'));
  mkdirSync(path.join(lake, 'c'));
  cpSync(demo('scan/cifar10/cat', 1)[0]!, path.join(lake, 'a', 'cat.jpg'));
  symlinkSync('../c', path.join(lake, 'a', 'to-c')); // two links: a/to-c -> c, c/to-a -> a
  symlinkSync('../a', path.join(lake, 'c', 'to-a'));
  writeFileSync(Buffer.concat([Buffer.from(path.join(lake, 'day1') + '/bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.jpg')]), readFileSync(demo('scan/cifar10/airplane', 7)[6]!));
  execFileSync('mkfifo', [path.join(lake, 'day1', 'pipe.jpg')]);
  socket = createServer();
  await new Promise<void>((r) => socket!.listen(path.join(lake, 'day1', 'sock.jpg'), () => r()));
  symlinkSync(path.join(work, 'nowhere.jpg'), path.join(lake, 'day1', 'broken.jpg'));
  symlinkSync('self.jpg', path.join(lake, 'day1', 'self.jpg'));
  symlinkSync('/proc/self/mem', path.join(lake, 'day1', 'mem.jpg'));
  writeFileSync(path.join(lake, 'day1', 'big.jpg'), readFileSync(demo('scan/cifar10/airplane', 1)[0]!));
  truncateSync(path.join(lake, 'day1', 'big.jpg'), 3_000_000); // over --max-bytes 2000000 below
  writeFileSync(path.join(lake, 'day1', 'huge.jpg'), '');
  truncateSync(path.join(lake, 'day1', 'huge.jpg'), 3 * 2 ** 30); // a sparse 3 GiB file: never read
  writeFileSync(path.join(lake, 'day1', 'notes.txt'), 'not an image');
  // The same bytes under another name: the same scores.
  mkdirSync(path.join(lake, 'copy'));
  cpSync(path.join(lake, 'day1', path.basename(demo('scan/cifar10/airplane', 1)[0]!)), path.join(lake, 'copy', 'renamed.jpg'));
  // Names that spreadsheets and Markdown would act on.
  const formulas = path.join(lake, '=HYPERLINK("http:evil.example")');
  mkdirSync(formulas);
  cpSync(demo('scan/cifar10/dog', 1)[0]!, path.join(formulas, 'x.jpg'));
  cpSync(demo('scan/cifar10/dog', 2)[1]!, path.join(lake, '@SUM(1+1).jpg'));
  const md = path.join(lake, '![x](http:evil.example)');
  mkdirSync(md);
  cpSync(demo('scan/cifar10/dog', 3)[2]!, path.join(md, '# heading.jpg'));
}, 120_000);

afterAll(() => {
  socket?.close();
});

describe('accounting', () => {
  it('accounts for every entry of a hostile folder, in-process and through the queues, with the same results', async () => {
    const outs = [path.join(work, 'out-in-process'), path.join(work, 'out-queued')];
    const a = await runCli(['scan', '--in-process', '--full', '--model', model, '--input', lake, '--out', outs[0]!, '--max-bytes', '2000000', '--top-k', '4']);
    expect(a.code, a.stderr).toBe(0);
    const b = await runCli(['scan', '--full', '--model', model, '--input', lake, '--out', outs[1]!, '--max-bytes', '2000000', '--top-k', '4', '--workers', '1']);
    expect(b.code, b.stderr).toBe(0);
    for (const out of outs) {
      const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as Summary;
      const { listed, scored, failed, skipped } = summary.accounting;
      expect(listed).toBe(scored + failed + skipped);
      const failures = Object.fromEntries(csvRows(path.join(out, 'failures.csv')).map(([key, , ...reason]) => [key!, reason.join(',')]));
      const skippedRows = Object.fromEntries(csvRows(path.join(out, 'skipped.csv')).map(([key, , ...reason]) => [key!, reason.join(',')]));
      const scoredKeys = csvRows(path.join(out, 'scores.csv')).map((r) => r[0]!);
      // Each entry in exactly one place, each image scored once (the loop did not repeat the lake).
      expect(new Set(scoredKeys).size).toBe(scoredKeys.length);
      for (const k of scoredKeys) expect(failures[k] ?? skippedRows[k], k).toBeUndefined();
      expect(scoredKeys.filter((k) => k.startsWith('loop/') || k.includes('to-a/') || k.includes('to-c/'))).toEqual([]);
      expect(scored).toBe(6 + 1 + 1 + 3); // day1, a/cat, copy/renamed, the three hostile names
      expect(skippedRows['loop/']).toMatch(/folder listed already/);
      expect(Object.keys(skippedRows).filter((k) => /to-[ac]\/$/.test(k))).toHaveLength(1);
      expect(skippedRows['day1/bad-\\xff\\xfe.jpg']).toMatch(/not valid UTF-8/);
      expect(skippedRows['day1/pipe.jpg']).toMatch(/not a regular file \(FIFO\)/);
      expect(skippedRows['day1/sock.jpg']).toMatch(/not a regular file \(socket\)/);
      expect(skippedRows['day1/broken.jpg']).toMatch(/broken symbolic link/);
      expect(skippedRows['day1/self.jpg']).toMatch(/symbolic link loop/);
      expect(skippedRows['day1/notes.txt']).toMatch(/not an image/);
      expect(failures['day1/big.jpg']).toMatch(/3000000 bytes, more than the 2000000-byte limit/);
      expect(failures['day1/huge.jpg']).toMatch(/3221225472 bytes, more than the 2000000-byte limit/);
      expect(failures['day1/mem.jpg']).toBeDefined();
      expect(failed).toBe(3);
      // Content decides the score: the renamed copy scores exactly like the original.
      const rows = await readParquet(path.join(out, 'scores.parquet'));
      const orig = rows.find((r) => r['key'] === `day1/${path.basename(demo('scan/cifar10/airplane', 1)[0]!)}`)!;
      const copy = rows.find((r) => r['key'] === 'copy/renamed.jpg')!;
      expect(contentOf(copy)).toEqual(contentOf(orig));
      expect(copy['uri']).toBe(path.join(lake, 'copy/renamed.jpg'));
      // Formula-looking cells are neutralised; the Markdown report shows names as text.
      const csv = readFileSync(path.join(out, 'scores.csv'), 'utf8');
      expect(csv).toMatch(/^"'=HYPERLINK\(""http:evil\.example""\)\/x\.jpg"/m);
      expect(csv).toMatch(/^'@SUM\(1\+1\)\.jpg,/m);
      expect(csv).not.toMatch(/^[=+\-@]/m);
      const report = readFileSync(path.join(out, 'report.md'), 'utf8');
      expect(report).not.toMatch(/(^|[^\\])!\[/);
      expect(report).not.toMatch(/^#/m);
      expect(report).toMatch(/\d+ listed = \d+ scored \\\+ 3 failed \\\+ \d+ skipped/);
      const json = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { input: { accounting: Summary['accounting'] } };
      expect(json.input.accounting).toEqual(summary.accounting);
    }
    // Both drivers scored the same rows.
    const rows = await Promise.all(outs.map((o) => readParquet(path.join(o, 'scores.parquet'))));
    expect(withoutRunId(rows[1]!)).toEqual(withoutRunId(rows[0]!));
  }, 240_000);

  it('refuses an output location that cannot be written, at once', async () => {
    const t = Date.now();
    const r = await runCli(['scan', '--in-process', '--model', model, '--input', lake, '--out', '/proc/ood-audit-test/out']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/cannot write \/proc\/ood-audit-test\/out\/.*: E[A-Z]+/);
    expect(Date.now() - t).toBeLessThan(20_000);
  });
});
