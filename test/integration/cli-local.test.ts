/**
 * End to end through the CLI on the committed demo sample, with local folders, the real Redis on
 * 127.0.0.1:6379 (a queue prefix of its own) and local worker processes the CLI starts: fit on a few
 * hundred CIFAR-10 images, score a mixed folder (CIFAR-10 test, Fashion-MNIST, broken files),
 * evaluate; plus the error paths.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, beforeAll } from 'vitest';
import { readParquet } from '../helpers/parquet.js';
import { runCli, ROOT } from '../helpers/cli.js';
import { hugePngHeader, textAsPng, truncatedJpeg } from '../helpers/images.js';
import { checkPage } from '../../support/browser.js';

const demo = path.join(ROOT, 'examples/demo');
const work = mkdtempSync(path.join(tmpdir(), 'ood-e2e-'));
const model = path.join(work, 'model');
const scan = path.join(work, 'scan');
const out = path.join(work, 'out');

beforeAll(async () => {
  cpSync(path.join(demo, 'scan'), scan, { recursive: true });
  mkdirSync(path.join(scan, 'broken'));
  writeFileSync(path.join(scan, 'broken/truncated.jpg'), await truncatedJpeg());
  writeFileSync(path.join(scan, 'broken/empty.jpg'), new Uint8Array(0));
  writeFileSync(path.join(scan, 'broken/text.png'), textAsPng());
  writeFileSync(path.join(scan, 'broken/bomb.png'), hugePngHeader());
  writeFileSync(path.join(scan, 'notes.txt'), 'not an image');
});

describe('CLI end to end', () => {
  it('fits, scores and evaluates the demo sample', async () => {
    // A small LFDN so the test stays fast; the default preset is exercised by the benchmarks.
    const fit = await runCli(['fit', '--id', path.join(demo, 'id'), '--model', model, '--epochs', '12', '--width', '128', '--depth', '2', '--lr', '1e-3', '--backend', 'wasm', '--shard-size', '300', '--workers', '2']);
    expect(fit.stderr).toContain('model saved');
    expect(fit.stderr).toMatch(/listed 800 entries: 800 ID images in \d+ shards/);
    expect(fit.code).toBe(0);
    for (const f of ['model.json', 'weights.bin', 'weights-first.bin', 'baselines.bin', 'calibration.json', 'training-log.json', 'checkpoints/epoch-0001.ckpt', 'checkpoints/latest.ckpt', 'cache/features']) {
      expect(existsSync(path.join(model, f)), f).toBe(true);
    }
    const log = JSON.parse(readFileSync(path.join(model, 'training-log.json'), 'utf8')) as { epochs: { loss: number }[] };
    expect(log.epochs).toHaveLength(12);
    expect(log.epochs[11]!.loss).toBeLessThan(log.epochs[0]!.loss);
    const modelJson = JSON.parse(readFileSync(path.join(model, 'model.json'), 'utf8')) as { info: { trainCount: number; holdoutCount: number; backend: string }; fingerprint: { inputSize: number } };
    expect(modelJson.info.trainCount + modelJson.info.holdoutCount).toBe(800);
    expect(modelJson.info.holdoutCount).toBe(80);
    expect(modelJson.info.backend).toBe('wasm');

    const score = await runCli(['score', '--model', model, '--input', scan, '--out', out, '--shard-size', '64', '--workers', '2']);
    expect(score.code, score.stderr).toBe(0);
    expect(score.stderr).toMatch(/listed 205 entries: 204 images in \d+ shards \(skipped: 1 not an image \(file extension\)\)/);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { input: { scored: number; failed: number; skippedNonImages: number }; flagged: number };
    expect(summary.input).toMatchObject({ scored: 200, failed: 4, skippedNonImages: 1 });
    const failures = readFileSync(path.join(out, 'failures.csv'), 'utf8');
    expect(failures).toMatch(/broken\/bomb.png,.*pixel limit/);
    expect(failures).toMatch(/broken\/empty.jpg,[^,]*,empty file/);
    const rows = await readParquet(path.join(out, 'scores.parquet'));
    expect(rows).toHaveLength(200);
    const csv = readFileSync(path.join(out, 'scores.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('key,uri,run_id,partition,sha256,fused,mfsim,mfsim_all,mse,lr,mahalanobis,knn,conditions,rank,flagged,width,height,aspect,bytesPerPixel,brightness,contrast,saturation,colourfulness,sharpness,noise,entropy,jpegQuality,grayscale,format');
    expect(csv).toHaveLength(201);
    // Fashion-MNIST is far OOD: it must be flagged far more often than CIFAR-10 test.
    const flaggedShare = (prefix: string): number => {
      const r = rows.filter((x) => String(x['key']).startsWith(prefix));
      return r.filter((x) => x['flagged'] === true).length / r.length;
    };
    expect(flaggedShare('fashion-mnist/')).toBeGreaterThan(0.8);
    expect(flaggedShare('cifar10/')).toBeLessThan(0.35);
    // Greyscale 28 px PNGs among 32 px colour JPEGs: every one is far off in its imaging conditions.
    const thr = (JSON.parse(readFileSync(path.join(model, 'calibration.json'), 'utf8')) as { scores: Record<string, { threshold: number }> }).scores['conditions']!.threshold;
    const fm = rows.filter((x) => String(x['key']).startsWith('fashion-mnist/'));
    expect(fm.every((x) => Number(x['conditions']) > thr && x['format'] === 'png' && x['grayscale'] === 1)).toBe(true);

    // The report: the Fashion-MNIST partition is the shifted one, in JSON, Markdown and a real browser.
    const scanReport = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as {
      schema: string;
      verdict: { level: string; text: string };
      partitions: { list: { name: string; level: string; flaggedFraction: number }[] };
      failures: { count: number; byReason: { reason: string; count: number }[] };
      mostOod: { key: string }[];
    };
    expect(scanReport.schema).toBe('ood-audit/report@1');
    expect(scanReport.verdict.level).toBe('shifted');
    expect(scanReport.partitions.list[0]!.name).toBe('fashion-mnist');
    expect(scanReport.partitions.list[0]!.level).toBe('shifted');
    expect(scanReport.partitions.list.find((p) => p.name === 'cifar10')!.level).not.toBe('shifted');
    expect(scanReport.failures.count).toBe(4);
    expect(scanReport.failures.byReason.map((r) => r.reason)).toContain('image too large (pixel limit)');
    expect(scanReport.mostOod.filter((e) => e.key.startsWith('fashion-mnist/')).length).toBeGreaterThan(scanReport.mostOod.length / 2);
    expect(readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/\*\*SHIFTED\*\*: shifted: \d+(\.\d)?% flagged vs 5\.0% expected/);
    const page = await checkPage(path.join(out, 'report.html'));
    expect(page.consoleErrors).toEqual([]);
    expect(page.failedRequests).toEqual([]);
    expect(page.verdict).toMatch(/^shifted: /);
    expect(page.svgCount).toBeGreaterThanOrEqual(1);
    expect(page.imagesTotal).toBe(48);
    expect(page.imagesLoaded).toBe(48);

    const evalJson = path.join(work, 'eval.json');
    const ev = await runCli(['eval', '--model', model, '--id', path.join(scan, 'cifar10'), '--ood', `fmnist=${path.join(scan, 'fashion-mnist')}`, '--json', evalJson, '--html', path.join(work, 'eval.html')]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/fmnist\s+fused/);
    const report = JSON.parse(readFileSync(evalJson, 'utf8')) as { results: { ood: string; score: string; auroc: number }[]; sets: Record<string, { count: number }> };
    expect(report.sets).toEqual({ id: { count: 150, failed: 0 }, fmnist: { count: 50, failed: 0 } });
    const fused = report.results.find((r) => r.score === 'fused')!;
    expect(fused.auroc).toBeGreaterThan(0.9);
    const evalPage = await checkPage(path.join(work, 'eval.html'));
    expect(evalPage.consoleErrors).toEqual([]);
    expect(evalPage.svgCount).toBe(1);
  }, 360_000);

  it('gives one clear line and a non-zero exit for bad paths and a missing model', async () => {
    const a = await runCli(['score', '--model', path.join(work, 'nope'), '--input', scan, '--out', out]);
    expect(a.code).toBe(1);
    expect(a.stderr.trim()).toMatch(/no such folder/);
    expect(a.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const emptyModel = path.join(work, 'empty-model');
    mkdirSync(emptyModel, { recursive: true });
    const b = await runCli(['score', '--model', emptyModel, '--input', scan, '--out', out]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/no model at .*model.json is missing/);
    const c = await runCli(['fit', '--id', scan, '--model', model, '--preset', 'huge']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/invalid --preset: expected cpu \| paper, got "huge"/);
  });
});
