/**
 * Outcomes through the real CLI: `scan --fail-on shifted` exits 3 on a shifted scan (Fashion-MNIST
 * mixed into CIFAR-10) and 0 on a clean one; `--json` prints one parsable document on stdout with
 * the verdict and the counts (logs on stderr, here as JSON lines); `--version`. Real Redis (a queue
 * prefix of its own) and the CLI's local workers for the queued scan; the clean scan in-process.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';

const demo = path.join(ROOT, 'examples/demo');
const work = mkdtempSync(path.join(tmpdir(), 'ood-outcomes-'));
const model = path.join(work, 'model');

beforeAll(async () => {
  const fit = await runCli(['fit', '--in-process', '--id', path.join(demo, 'id'), '--model', model, '--epochs', '6', '--width', '128', '--depth', '2', '--lr', '1e-3', '--backend', 'wasm']);
  expect(fit.code, fit.stderr).toBe(0);
}, 600_000);

describe('outcomes machines can act on', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
  });

  it('scan --fail-on shifted exits 3 on a shifted scan, with --json one document on stdout', async () => {
    const mixed = path.join(work, 'mixed');
    cpSync(path.join(demo, 'scan'), mixed, { recursive: true });
    const out = path.join(work, 'out-mixed');
    const r = await runCli(['scan', '--model', model, '--input', mixed, '--out', out, '--fail-on', 'shifted', '--json', '--log-format', 'json', '--workers', '2', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(3);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({ command: 'scan', input: mixed, out, scored: 200, failed: 0, failOn: 'shifted', exitCode: 3, verdict: { level: 'shifted' } });
    expect(doc['runId']).toMatch(/^scan-[0-9a-f]{16}$/);
    expect((doc['verdict'] as { text: string }).text).toMatch(/^shifted: /);
    expect(doc['flaggedFraction']).toBeGreaterThan(0.2);
    // stderr: one JSON object per line (progress lines aside, which are plain text without a TTY).
    const logLines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(1);
    for (const l of logLines) expect(JSON.parse(l)).toMatchObject({ level: expect.any(String), msg: expect.any(String), component: expect.any(String) });
    expect(r.stderr).not.toMatch(/^\[(extract|score)\].*\[(extract|score)\]/m);
  }, 300_000);

  it('scan --fail-on shifted exits 0 on a clean scan, and the last line states the verdict', async () => {
    // ID data the model was fitted on: nothing is shifted.
    const clean = path.join(work, 'clean');
    for (const c of readdirSync(path.join(demo, 'id'))) {
      mkdirSync(path.join(clean, c), { recursive: true });
      for (const f of readdirSync(path.join(demo, 'id', c)).slice(0, 30)) cpSync(path.join(demo, 'id', c, f), path.join(clean, c, f));
    }
    const r = await runCli(['scan', '--in-process', '--model', model, '--input', clean, '--out', path.join(work, 'out-clean'), '--fail-on', 'shifted', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^verdict: no shift detected: /);
    // The same verdict under --fail-on never, and a bad --fail-on is a usage error.
    const bad = await runCli(['scan', '--model', model, '--input', clean, '--out', path.join(work, 'x'), '--fail-on', 'maybe']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --fail-on: expected shifted \| possibly \| never, got "maybe"/);
  }, 300_000);

  it('scan --primary flags with another score of the model, with its own scan state; an unknown or uncalibrated one is refused', async () => {
    const input = path.join(demo, 'scan');
    const out = path.join(work, 'out-primary');
    const states = (): number => (existsSync(path.join(model, 'scans')) ? readdirSync(path.join(model, 'scans')).length : 0);
    const statesBefore = states();
    const r = await runCli(['scan', '--in-process', '--model', model, '--input', input, '--out', out, '--primary', 'mahalanobis', '--json', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { model: { primary: string; threshold: number } };
    const calibration = JSON.parse(readFileSync(path.join(model, 'calibration.json'), 'utf8')) as { scores: Record<string, { threshold: number }> };
    expect(summary.model).toMatchObject({ primary: 'mahalanobis', threshold: calibration.scores['mahalanobis']!.threshold });
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { model: { primary: string }; run: { encoderRuntimes: string[] } };
    expect(report.model.primary).toBe('mahalanobis');
    // The encoder runtime that computed the features is recorded in the report.
    expect(report.run.encoderRuntimes).toEqual(['tfjs wasm']);
    // Flagged = mahalanobis above its threshold, row by row.
    const csv = readFileSync(path.join(out, 'scores.csv'), 'utf8').trim().split('\n');
    const head = csv[0]!.split(',');
    const [iScore, iFlag] = [head.indexOf('mahalanobis'), head.indexOf('flagged')];
    for (const line of csv.slice(1)) {
      const cells = line.split(',');
      expect(cells[iFlag] === 'true', line).toBe(Number(cells[iScore]) > calibration.scores['mahalanobis']!.threshold);
    }
    expect(states()).toBe(statesBefore + 1);
    const bad = await runCli(['scan', '--model', model, '--input', input, '--out', path.join(work, 'x'), '--primary', 'best']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --primary: expected one of fused, .*, got "best"/);
  }, 300_000);

  it('status --json prints one document', async () => {
    const r = await runCli(['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { command: string; queues: { queue: string; workers: number }[]; runs: { id: string; kind: string }[] };
    expect(doc.command).toBe('status');
    expect(doc.queues.map((q) => q.queue)).toEqual(expect.arrayContaining(['extract', 'score', 'report']));
    expect(doc.runs.some((x) => x.kind === 'scan')).toBe(true);
  }, 60_000);
});
